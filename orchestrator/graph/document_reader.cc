#include "graph/document_reader.h"

#include <rapidjson/error/en.h>

#include <algorithm>

#include "graph/json_schema.h"

namespace corch::graph {

namespace {

using rapidjson::Value;

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// "a SAP", "an end-point".
std::string withArticle(std::string_view word) {
  bool vowel =
      !word.empty() && std::string_view("aeiouAEIOU").find(word[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + std::string(word);
}

// Whether text has the syntax parseNumber() accepts, whatever its size: to tell "too large"
// from "not a number".
bool looksNumeric(std::string_view text) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    return text.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string_view::npos;
  }
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// "192.168.4.1/24": an interface address with its prefix length, so host bits are expected
// (unlike a match prefix). A bare address is a /32.
std::optional<IpPrefix> parseInterfaceAddress(std::string_view text) {
  auto slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr || addr->v6) return std::nullopt;
  IpPrefix prefix{*addr, 32};
  if (slash != std::string_view::npos) {
    std::string_view length = text.substr(slash + 1);
    if (length.empty() || length.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    auto value = parseNumber(length, 32);
    if (!value) return std::nullopt;
    prefix.length = static_cast<uint8_t>(*value);
  }
  return prefix;
}

// The message JsonSchema::check() gives an unknown field starts with this.
constexpr std::string_view kUnknownField = "unknown field '";

}  // namespace

Result<rapidjson::Document> parseJson(std::string_view json, size_t max_depth,
                                      std::string_view what) {
  rapidjson::Document doc;
  // Iterative: a deeply nested document must not exhaust the stack. Invalid UTF-8 is malformed.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(json.data(),
                                                                                    json.size());
  if (doc.HasParseError()) {
    size_t offset = std::min(doc.GetErrorOffset(), json.size());
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset; ++i) {
      if (json[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return Error(ErrorCode::Malformed,
                 "malformed JSON at line " + std::to_string(line) + ", column " +
                     std::to_string(column) + " (offset " + std::to_string(offset) +
                     "): " + rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (auto deep = findTooDeep(doc, max_depth)) {
    return invalidDocument(
        what, {{*deep, "nested deeper than " + std::to_string(max_depth) + " levels"}});
  }
  if (auto bad = findBadString(doc)) {
    return Error::field(ErrorCode::Malformed, *bad,
                        "malformed JSON: a string or name at " + (bad->empty() ? "/" : *bad) +
                            " is not valid UTF-8 (a \\u escape of a lone surrogate?)");
  }
  return doc;
}

Error invalidDocument(std::string_view what, std::vector<FieldError> errors) {
  std::string message(what);
  message += ": ";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) message += "; ";
    message += errors[i].pointer.empty() ? errors[i].message
                                         : errors[i].pointer + ": " + errors[i].message;
  }
  return Error(ErrorCode::InvalidArgument, std::move(message), std::move(errors));
}

bool isUnknownField(const FieldError& error) { return error.message.starts_with(kUnknownField); }

void DocumentReader::fail(std::string pointer, std::string message) {
  errors_.push_back({std::move(pointer), std::move(message)});
}

std::string DocumentReader::idText(const Value& id) {
  return id.IsString() ? std::string(stringView(id)) : std::to_string(id.GetUint64());
}

std::optional<uint64_t> DocumentReader::number(const Value& object, std::string_view key,
                                               const std::string& pointer, uint64_t max) {
  const Value* value = findMember(object, key);
  if (value == nullptr) return std::nullopt;
  std::string field = appendPointer(pointer, key);
  std::optional<uint64_t> number;
  if (value->IsString()) {
    std::string_view text = stringView(*value);
    number = parseNumber(text, std::numeric_limits<uint64_t>::max());
    if (!number) {
      fail(field, looksNumeric(text)
                      ? quoted(text) + " is out of range (0-" + std::to_string(max) + ")"
                      : quoted(text) + " is not a decimal or 0x-hex number");
      return std::nullopt;
    }
  } else {
    number = value->GetUint64();  // the schemas allow only non-negative integers
  }
  if (*number > max) {
    fail(field, std::to_string(*number) + " is out of range (0-" + std::to_string(max) + ")");
    return std::nullopt;
  }
  return number;
}

void DocumentReader::read(const Value& object, std::string_view key, const std::string& pointer,
                          std::optional<MacAddr>& out) {
  if (const Value* text = findMember(object, key)) {
    out = MacAddr::parse(stringView(*text));
    if (!out) {
      fail(appendPointer(pointer, key),
           quoted(stringView(*text)) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
    }
  }
}

void DocumentReader::read(const Value& object, std::string_view key, const std::string& pointer,
                          std::optional<IpPrefix>& out) {
  if (const Value* text = findMember(object, key)) {
    out = IpPrefix::parse(stringView(*text));
    if (!out) {
      fail(appendPointer(pointer, key),
           quoted(stringView(*text)) +
               " is not an IP address or prefix (a prefix has its host bits zero: 10.0.0.0/8)");
    }
  }
}

void DocumentReader::read(const Value& object, std::string_view key, const std::string& pointer,
                          std::optional<IpAddr>& out) {
  if (const Value* text = findMember(object, key)) {
    out = IpAddr::parse(stringView(*text));
    if (!out) {
      fail(appendPointer(pointer, key), quoted(stringView(*text)) + " is not an IP address");
    }
  }
}

void DocumentReader::readInterfaceAddress(const Value& object, std::string_view key,
                                          const std::string& pointer,
                                          std::optional<IpPrefix>& out) {
  if (const Value* text = findMember(object, key)) {
    out = parseInterfaceAddress(stringView(*text));
    if (!out) {
      fail(appendPointer(pointer, key),
           quoted(stringView(*text)) +
               " is not an IPv4 address with a prefix length (192.168.4.1/24)");
    }
  }
}

std::optional<PortRef> DocumentReader::reference(const Value& text, const std::string& pointer) {
  auto ref = dialect_.parseReference(stringView(text));
  if (!ref) {
    fail(pointer,
         quoted(stringView(text)) + " is not a reference: expected " + dialect_.referenceSyntax());
  }
  return ref;
}

const Value* DocumentReader::typedObject(const Value& sap, const std::string& pointer,
                                         std::string_view type,
                                         std::span<const std::string_view> types) {
  // The schema's anyOf says the same; this says it field by field.
  for (std::string_view other : types) {
    if (other != type && findMember(sap, other)) {
      fail(appendPointer(pointer, other), quoted(other) + " does not belong to " +
                                              withArticle(dialect_.sap) + " of type " +
                                              quoted(type));
    }
  }
  const Value* object = findMember(sap, type);
  if (object == nullptr) {
    fail(appendPointer(pointer, type), withArticle(dialect_.sap) + " of type " + quoted(type) +
                                           " needs a " + quoted(type) + " object");
  }
  return object;
}

void DocumentReader::readSapObject(const Value& sub, const std::string& at, Sap& sap) {
  switch (sap.type) {
    case SapType::Interface:
      sap.if_name = stringView(sub["if-name"]);
      break;
    case SapType::Vlan:
      sap.if_name = stringView(sub["if-name"]);
      sap.vlan_id = static_cast<uint16_t>(number(sub, "vlan-id", at, kMaxVlanId).value_or(0));
      break;
    case SapType::Gre: {
      std::optional<IpAddr> local, remote;
      read(sub, "local-ip", at, local);
      read(sub, "remote-ip", at, remote);
      sap.gre_local = local.value_or(IpAddr{});
      sap.gre_remote = remote.value_or(IpAddr{});
      sap.gre_key = static_cast<uint32_t>(
          number(sub, "gre-key", at, std::numeric_limits<uint32_t>::max()).value_or(0));
      break;
    }
    case SapType::HostStack: {
      std::string_view configuration = stringView(sub["configuration"]);
      sap.host_configuration =
          configuration == "static" || configuration == "STATIC" ? "static" : "dhcp";
      readInterfaceAddress(sub, "ipv4", at, sap.host_ipv4);
      break;
    }
    case SapType::Internal: {
      // The schema guarantees the member (under the format's name for "group").
      std::string key = dialect_.word("group");
      sap.internal_group = stringView(sub.FindMember(key.c_str())->value);
      break;
    }
    case SapType::InternalPort:
      sap.port_index = static_cast<uint32_t>(
          number(sub, "port-index", at, std::numeric_limits<uint32_t>::max()).value_or(0));
      break;
    case SapType::Junction:  // never in a document
      break;
  }
}

}  // namespace corch::graph
