#include "graph/sffg_codec.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "graph/json_schema.h"
#include "graph/sffg_schema.inc"

namespace corch::graph {

namespace {

using rapidjson::Value;

// Deeper than any SF-FG needs (the schema's own depth is 6, a "config" gets the rest); the limit
// keeps a hostile document from exhausting the stack of the recursive schema validator.
constexpr size_t kMaxDepth = 64;
constexpr size_t kMaxIdLength = 64;

constexpr std::string_view kSapPrefix = "service-access-point:";
constexpr std::string_view kSfPrefix = "sf:";

constexpr SapType kSapTypes[] = {SapType::Interface, SapType::Vlan, SapType::Gre,
                                 SapType::HostStack, SapType::Internal};

const JsonSchema& sffgSchema() {
  static const JsonSchema schema(kSffgSchema);
  return schema;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string hex4(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%04llx", static_cast<unsigned long long>(value));
  return text;
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

bool isTransport(std::optional<uint8_t> protocol) {
  return protocol && (*protocol == 6 || *protocol == 17 || *protocol == 132);
}

bool isIcmp(std::optional<uint8_t> protocol) {
  return protocol && (*protocol == 1 || *protocol == 58);
}

// " (not 1)" when a prerequisite field is present with the wrong value, "" when it is absent.
template <class T>
std::string notValue(const std::optional<T>& value) {
  return value ? " (not " + std::to_string(uint64_t{*value}) + ")" : "";
}

// Whether text has the syntax parseNumber() accepts, whatever its size: to tell "too large"
// from "not a number".
bool looksNumeric(std::string_view text) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    return text.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string_view::npos;
  }
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// An interface name the kernel accepts (IFNAMSIZ - 1 bytes, no '/', ':' or white space), and
// ASCII, so that it prints the same everywhere.
bool validIfName(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (unsigned char c : name) {
    if (c == '/' || c == ':' || c <= ' ' || c >= 0x7f) return false;
  }
  return true;
}

bool validId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (unsigned char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
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

// The IP version a field of a rule implies, and which field said so, for error messages.
struct IpVersion {
  bool v6 = false;
  std::string why;  // "ether_type 0x0800"
};

std::string versionName(bool v6) { return v6 ? "IPv6" : "IPv4"; }

// Reads a schema-valid {"sffg": {...}} into a Graph, collecting every semantic error. Types and
// required fields are not checked again: JsonSchema::check() has.
class SffgReader {
 public:
  Graph readGraph(const Value& sffg);
  std::vector<FieldError>& errors() { return errors_; }

 private:
  void fail(std::string pointer, std::string message) {
    errors_.push_back({std::move(pointer), std::move(message)});
  }
  std::string id(const Value& object, const std::string& pointer);
  void unique(std::map<std::string, std::string>& seen, const std::string& id,
              const std::string& pointer, std::string_view what);
  std::optional<uint64_t> number(const Value& object, std::string_view key,
                                 const std::string& pointer, uint64_t max);
  template <class T>
  void read(const Value& object, std::string_view key, const std::string& pointer,
            std::optional<T>& out, uint64_t max = std::numeric_limits<T>::max());
  void read(const Value& object, std::string_view key, const std::string& pointer,
            std::optional<MacAddr>& out);
  void read(const Value& object, std::string_view key, const std::string& pointer,
            std::optional<IpPrefix>& out);
  void read(const Value& object, std::string_view key, const std::string& pointer,
            std::optional<IpAddr>& out);
  std::string ifName(const Value& object, const std::string& pointer);
  std::optional<PortRef> reference(const Value& text, const std::string& pointer);

  void readSf(const Value& json, const std::string& pointer);
  void readSap(const Value& json, const std::string& pointer);
  bool readRule(const Value& json, const std::string& pointer);
  void readMatch(const Value& json, const std::string& pointer, FlowRule& rule);
  void readActions(const Value& json, const std::string& pointer, FlowRule& rule);
  void checkMatch(const FlowRule& rule, const std::string& pointer,
                  std::optional<IpVersion>& version);
  void checkActions(const FlowRule& rule, const std::string& pointer,
                    const std::optional<IpVersion>& version);

  Graph graph_;
  std::vector<FieldError> errors_;
  std::map<std::string, std::string> sap_ids_;
  std::map<std::string, std::string> sap_endpoints_;  // "interface eth1" -> pointer of its SAP
  std::map<std::string, std::string> sf_ids_;
  std::map<std::string, std::string> rule_ids_;
};

std::string SffgReader::id(const Value& object, const std::string& pointer) {
  const Value& value = object["id"];
  std::string text =
      value.IsString() ? std::string(stringView(value)) : std::to_string(value.GetUint64());
  if (!validId(text)) {
    fail(appendPointer(pointer, "id"),
         "id " + quoted(text) + " must be 1 to 64 letters, digits, '.', '_' or '-'");
  }
  return text;
}

void SffgReader::unique(std::map<std::string, std::string>& seen, const std::string& id,
                        const std::string& pointer, std::string_view what) {
  auto [it, inserted] = seen.emplace(id, pointer);
  if (!inserted) {
    fail(appendPointer(pointer, "id"),
         "duplicate " + std::string(what) + " id " + quoted(id) + " (first at " + it->second + ")");
  }
}

std::optional<uint64_t> SffgReader::number(const Value& object, std::string_view key,
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
    number = value->GetUint64();  // the schema allows only non-negative integers
  }
  if (*number > max) {
    fail(field, std::to_string(*number) + " is out of range (0-" + std::to_string(max) + ")");
    return std::nullopt;
  }
  return number;
}

template <class T>
void SffgReader::read(const Value& object, std::string_view key, const std::string& pointer,
                      std::optional<T>& out, uint64_t max) {
  if (auto value = number(object, key, pointer, max)) out = static_cast<T>(*value);
}

void SffgReader::read(const Value& object, std::string_view key, const std::string& pointer,
                      std::optional<MacAddr>& out) {
  if (const Value* text = findMember(object, key)) {
    out = MacAddr::parse(stringView(*text));
    if (!out) {
      fail(appendPointer(pointer, key),
           quoted(stringView(*text)) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
    }
  }
}

void SffgReader::read(const Value& object, std::string_view key, const std::string& pointer,
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

void SffgReader::read(const Value& object, std::string_view key, const std::string& pointer,
                      std::optional<IpAddr>& out) {
  if (const Value* text = findMember(object, key)) {
    out = IpAddr::parse(stringView(*text));
    if (!out) {
      fail(appendPointer(pointer, key), quoted(stringView(*text)) + " is not an IP address");
    }
  }
}

std::string SffgReader::ifName(const Value& object, const std::string& pointer) {
  std::string name(stringView(object["if-name"]));
  if (!validIfName(name)) {
    fail(appendPointer(pointer, "if-name"),
         quoted(name) +
             " is not an interface name (1 to 15 printable ASCII characters, no '/' or ':')");
  }
  return name;
}

std::optional<PortRef> SffgReader::reference(const Value& json, const std::string& pointer) {
  std::string_view text = stringView(json);
  PortRef ref;
  if (text.starts_with(kSapPrefix) && text.size() > kSapPrefix.size()) {
    ref.kind = PortRef::Kind::Sap;
    ref.sap_id = text.substr(kSapPrefix.size());
    if (graph_.findSap(ref.sap_id) == nullptr) {
      fail(pointer, "unknown SAP " + quoted(ref.sap_id) + " in " + quoted(text));
      return std::nullopt;
    }
    return ref;
  }
  if (text.starts_with(kSfPrefix)) {
    std::string_view rest = text.substr(kSfPrefix.size());
    auto colon = rest.find(':');
    if (colon != std::string_view::npos && colon > 0 && colon + 1 < rest.size()) {
      ref.kind = PortRef::Kind::SfPort;
      ref.sf_id = rest.substr(0, colon);
      ref.port_id = rest.substr(colon + 1);
      const Sf* sf = graph_.findSf(ref.sf_id);
      if (sf == nullptr) {
        fail(pointer, "unknown SF " + quoted(ref.sf_id) + " in " + quoted(text));
        return std::nullopt;
      }
      for (const auto& port : sf->ports) {
        if (port.id == ref.port_id) return ref;
      }
      fail(pointer, "SF " + quoted(ref.sf_id) + " has no port " + quoted(ref.port_id) + " (in " +
                        quoted(text) + ")");
      return std::nullopt;
    }
  }
  fail(pointer, quoted(text) +
                    " is not a reference: expected service-access-point:<sap-id> or "
                    "sf:<sf-id>:<port-id>");
  return std::nullopt;
}

Graph SffgReader::readGraph(const Value& sffg) {
  if (findMember(sffg, "id")) graph_.id = id(sffg, "/sffg");
  if (const Value* name = findMember(sffg, "name")) graph_.name = stringView(*name);
  if (const Value* measure = findMember(sffg, "measure")) graph_.measure = stringView(*measure);
  // SFs and SAPs first: the rules refer to them.
  if (const Value* sfs = findMember(sffg, "SFs")) {
    for (rapidjson::SizeType i = 0; i < sfs->Size(); ++i) {
      readSf((*sfs)[i], appendPointer("/sffg/SFs", i));
    }
  }
  if (const Value* saps = findMember(sffg, "saps")) {
    for (rapidjson::SizeType i = 0; i < saps->Size(); ++i) {
      readSap((*saps)[i], appendPointer("/sffg/saps", i));
    }
  }
  if (const Value* rules = findMember(sffg, "flowrules")) {
    std::vector<bool> clean;
    for (rapidjson::SizeType i = 0; i < rules->Size(); ++i) {
      clean.push_back(readRule((*rules)[i], appendPointer("/sffg/flowrules", i)));
    }
    // OpenFlow keeps one of two rules with the same priority and match; say which ones collide.
    for (size_t j = 0; j < graph_.rules.size(); ++j) {
      for (size_t i = 0; i < j && clean[j]; ++i) {
        const FlowRule& a = graph_.rules[i];
        const FlowRule& b = graph_.rules[j];
        if (clean[i] && a.priority == b.priority && a.port_in == b.port_in && a.match == b.match) {
          fail(appendPointer("/sffg/flowrules", j),
               "same priority, port_in and match as flowrule " + quoted(a.id) +
                   " (/sffg/flowrules/" + std::to_string(i) + "): which one applies is undefined");
          break;
        }
      }
    }
  }
  return std::move(graph_);
}

void SffgReader::readSf(const Value& json, const std::string& pointer) {
  Sf sf;
  sf.id = id(json, pointer);
  unique(sf_ids_, sf.id, pointer, "SF");
  sf.name = stringView(json["name"]);
  if (const Value* tmpl = findMember(json, "template"))
    sf.template_id = std::string(stringView(*tmpl));
  if (const Value* ports = findMember(json, "ports")) {
    std::map<std::string, std::string> port_ids;
    for (rapidjson::SizeType i = 0; i < ports->Size(); ++i) {
      const Value& port_json = (*ports)[i];
      std::string port_pointer = appendPointer(appendPointer(pointer, "ports"), i);
      SfPort port;
      port.id = id(port_json, port_pointer);
      unique(port_ids, port.id, port_pointer, "port");
      if (const Value* name = findMember(port_json, "name")) port.name = stringView(*name);
      sf.ports.push_back(std::move(port));
    }
  }
  if (const Value* config = findMember(json, "config")) {
    rapidjson::StringBuffer text;
    rapidjson::Writer<rapidjson::StringBuffer> writer(text);
    config->Accept(writer);
    sf.config_json.assign(text.GetString(), text.GetSize());
  }
  graph_.sfs.push_back(std::move(sf));
}

void SffgReader::readSap(const Value& json, const std::string& pointer) {
  Sap sap;
  sap.id = id(json, pointer);
  unique(sap_ids_, sap.id, pointer, "SAP");
  if (const Value* name = findMember(json, "name")) sap.name = stringView(*name);
  std::string_view type = stringView(json["type"]);
  for (SapType candidate : kSapTypes) {
    if (toString(candidate) == type) sap.type = candidate;
  }
  // The schema's anyOf says the same; this says it field by field.
  for (SapType other : kSapTypes) {
    if (other != sap.type && findMember(json, toString(other))) {
      fail(appendPointer(pointer, toString(other)),
           quoted(toString(other)) + " does not belong to a SAP of type " + quoted(type));
    }
  }
  std::string sub_pointer = appendPointer(pointer, type);
  const Value* sub = findMember(json, type);
  if (sub == nullptr) {
    fail(sub_pointer, "a SAP of type " + quoted(type) + " needs a " + quoted(type) + " object");
    graph_.saps.push_back(std::move(sap));
    return;
  }
  // What the SAP attaches to, so that two SAPs of a graph do not claim the same thing.
  std::string endpoint;
  switch (sap.type) {
    case SapType::Interface:
      sap.if_name = ifName(*sub, sub_pointer);
      endpoint = "interface " + quoted(sap.if_name);
      break;
    case SapType::Vlan: {
      sap.if_name = ifName(*sub, sub_pointer);
      auto vlan = number(*sub, "vlan-id", sub_pointer, 4095);
      sap.vlan_id = static_cast<uint16_t>(vlan.value_or(0));
      endpoint = "VLAN " + std::to_string(sap.vlan_id) + " on " + quoted(sap.if_name);
      break;
    }
    case SapType::Gre: {
      std::optional<IpAddr> local, remote;
      read(*sub, "local-ip", sub_pointer, local);
      read(*sub, "remote-ip", sub_pointer, remote);
      if (local && remote && local->v6 != remote->v6) {
        fail(appendPointer(sub_pointer, "remote-ip"), "remote-ip is " + versionName(remote->v6) +
                                                          " but local-ip is " +
                                                          versionName(local->v6));
      }
      sap.gre_local = local.value_or(IpAddr{});
      sap.gre_remote = remote.value_or(IpAddr{});
      sap.gre_key = static_cast<uint32_t>(
          number(*sub, "gre-key", sub_pointer, std::numeric_limits<uint32_t>::max()).value_or(0));
      endpoint = "GRE tunnel " + sap.gre_local.str() + " -> " + sap.gre_remote.str() + " key " +
                 std::to_string(sap.gre_key);
      break;
    }
    case SapType::HostStack: {
      sap.host_configuration = stringView((*sub)["configuration"]);
      const Value* ipv4 = findMember(*sub, "ipv4");
      std::string ipv4_pointer = appendPointer(sub_pointer, "ipv4");
      if (sap.host_configuration == "dhcp" && ipv4) {
        fail(ipv4_pointer, "a dhcp configuration takes no ipv4 address");
      } else if (sap.host_configuration == "static" && !ipv4) {
        fail(ipv4_pointer, "a static configuration needs an ipv4 address (192.168.4.1/24)");
      } else if (ipv4) {
        sap.host_ipv4 = parseInterfaceAddress(stringView(*ipv4));
        if (!sap.host_ipv4) {
          fail(ipv4_pointer, quoted(stringView(*ipv4)) +
                                 " is not an IPv4 address with a prefix length (192.168.4.1/24)");
        }
      }
      break;
    }
    case SapType::Internal:
      sap.internal_group = stringView((*sub)["group"]);
      endpoint = "internal group " + quoted(sap.internal_group);
      break;
  }
  if (!endpoint.empty()) {
    auto [it, inserted] = sap_endpoints_.emplace(endpoint, pointer);
    if (!inserted) {
      fail(sub_pointer,
           "SAP " + quoted(sap.id) + " uses the same " + endpoint + " as " + it->second);
    }
  }
  graph_.saps.push_back(std::move(sap));
}

bool SffgReader::readRule(const Value& json, const std::string& pointer) {
  size_t errors_before = errors_.size();
  FlowRule rule;
  rule.id = id(json, pointer);
  unique(rule_ids_, rule.id, pointer, "flowrule");
  rule.priority = static_cast<uint16_t>(number(json, "priority", pointer, 65535).value_or(0));
  readMatch(json["match"], appendPointer(pointer, "match"), rule);
  readActions(json["actions"], appendPointer(pointer, "actions"), rule);
  // The prerequisites compare fields with each other: only meaningful when each one is valid.
  if (errors_.size() == errors_before) {
    std::optional<IpVersion> version;
    checkMatch(rule, appendPointer(pointer, "match"), version);
    checkActions(rule, appendPointer(pointer, "actions"), version);
  }
  graph_.rules.push_back(std::move(rule));
  return errors_.size() == errors_before;
}

void SffgReader::readMatch(const Value& json, const std::string& pointer, FlowRule& rule) {
  if (auto ref = reference(json["port_in"], appendPointer(pointer, "port_in"))) {
    rule.port_in = *ref;
  }
  MatchFields& m = rule.match;
  read(json, "ether_type", pointer, m.ether_type);
  read(json, "vlan_id", pointer, m.vlan_id, 4095);
  read(json, "vlan_pcp", pointer, m.vlan_pcp, 7);
  read(json, "source_mac", pointer, m.source_mac);
  read(json, "dest_mac", pointer, m.dest_mac);
  read(json, "source_ip", pointer, m.source_ip);
  read(json, "dest_ip", pointer, m.dest_ip);
  read(json, "protocol", pointer, m.protocol);
  read(json, "source_port", pointer, m.source_port);
  read(json, "dest_port", pointer, m.dest_port);
  read(json, "ip_dscp", pointer, m.ip_dscp, 63);
  read(json, "icmp_type", pointer, m.icmp_type);
  read(json, "icmp_code", pointer, m.icmp_code);
  read(json, "arp_opcode", pointer, m.arp_opcode);
}

void SffgReader::readActions(const Value& json, const std::string& pointer, FlowRule& rule) {
  Modifications& a = rule.mods;
  read(json, "push_vlan", pointer, a.push_vlan, 4095);
  if (const Value* pop = findMember(json, "pop_vlan")) a.pop_vlan = pop->GetBool();
  read(json, "set_vlan_id", pointer, a.set_vlan_id, 4095);
  read(json, "set_source_mac", pointer, a.set_source_mac);
  read(json, "set_dest_mac", pointer, a.set_dest_mac);
  read(json, "set_source_ip", pointer, a.set_source_ip);
  read(json, "set_dest_ip", pointer, a.set_dest_ip);
  read(json, "set_source_port", pointer, a.set_source_port);
  read(json, "set_dest_port", pointer, a.set_dest_port);
  if (const Value* dec = findMember(json, "dec_ttl")) a.dec_ttl = dec->GetBool();
  if (const Value* drop = findMember(json, "drop")) rule.drop = drop->GetBool();

  const Value* outputs = findMember(json, "output_to_port");
  if (outputs == nullptr) return;
  std::string outputs_pointer = appendPointer(pointer, "output_to_port");
  auto add = [&](const Value& text, const std::string& item_pointer) {
    auto ref = reference(text, item_pointer);
    if (!ref) return;
    for (const auto& seen : rule.outputs) {
      if (seen == *ref) {
        fail(item_pointer, quoted(stringView(text)) + " is listed twice");
        return;
      }
    }
    rule.outputs.push_back(std::move(*ref));
  };
  if (outputs->IsString()) {
    add(*outputs, outputs_pointer);
  } else {
    for (rapidjson::SizeType i = 0; i < outputs->Size(); ++i) {
      add((*outputs)[i], appendPointer(outputs_pointer, i));
    }
  }
}

void SffgReader::checkMatch(const FlowRule& rule, const std::string& pointer,
                            std::optional<IpVersion>& version) {
  const MatchFields& m = rule.match;
  auto at = [&](std::string_view field) { return appendPointer(pointer, field); };
  // The IP fields in the order a reader meets them, to name the first conflicting one.
  const std::pair<std::string_view, bool> ip_fields[] = {
      {"source_ip", m.source_ip.has_value()},
      {"dest_ip", m.dest_ip.has_value()},
      {"protocol", m.protocol.has_value()},
      {"ip_dscp", m.ip_dscp.has_value()},
  };

  if (m.ether_type == 0x0800 || m.ether_type == 0x86dd) {
    version = IpVersion{*m.ether_type == 0x86dd, "ether_type " + hex4(*m.ether_type)};
  } else if (m.ether_type) {
    for (const auto& [field, present] : ip_fields) {
      if (present) {
        fail(at(field), std::string(field) +
                            " needs ether_type 0x0800 (IPv4) or 0x86dd (IPv6), not " +
                            hex4(*m.ether_type));
      }
    }
  }
  auto implies = [&](std::string_view field, bool v6, std::string why) {
    if (!version) {
      version = IpVersion{v6, std::move(why)};
    } else if (version->v6 != v6) {
      fail(at(field), why + " is " + versionName(v6) + " but " + version->why + " is " +
                          versionName(version->v6));
    }
  };
  if (m.source_ip) implies("source_ip", m.source_ip->addr.v6, "source_ip " + m.source_ip->str());
  if (m.dest_ip) implies("dest_ip", m.dest_ip->addr.v6, "dest_ip " + m.dest_ip->str());
  if (m.protocol == 1) implies("protocol", false, "protocol 1 (ICMP)");
  if (m.protocol == 58) implies("protocol", true, "protocol 58 (ICMPv6)");

  if (m.arp_opcode) {
    if (m.ether_type && *m.ether_type != 0x0806) {
      fail(at("arp_opcode"),
           "arp_opcode needs ether_type 0x0806 (ARP), not " + hex4(*m.ether_type));
    } else if (!m.ether_type) {
      for (const auto& [field, present] : ip_fields) {
        if (present) {
          fail(at("arp_opcode"),
               "arp_opcode (ARP) cannot be matched with the IP field " + std::string(field));
          break;
        }
      }
    }
  }
  for (auto [field, present] : {std::pair{"source_port", m.source_port.has_value()},
                                std::pair{"dest_port", m.dest_port.has_value()}}) {
    if (present && !isTransport(m.protocol)) {
      fail(at(field), std::string(field) + " needs protocol 6 (TCP), 17 (UDP) or 132 (SCTP)" +
                          notValue(m.protocol));
    }
  }
  for (auto [field, present] : {std::pair{"icmp_type", m.icmp_type.has_value()},
                                std::pair{"icmp_code", m.icmp_code.has_value()}}) {
    if (present && !isIcmp(m.protocol)) {
      fail(at(field),
           std::string(field) + " needs protocol 1 (ICMP) or 58 (ICMPv6)" + notValue(m.protocol));
    }
  }
  if (m.vlan_pcp && !m.vlan_id) fail(at("vlan_pcp"), "vlan_pcp needs vlan_id in the match");
}

void SffgReader::checkActions(const FlowRule& rule, const std::string& pointer,
                              const std::optional<IpVersion>& version) {
  const Modifications& a = rule.mods;
  auto at = [&](std::string_view field) { return appendPointer(pointer, field); };
  const std::pair<std::string_view, bool> modifications[] = {
      {"push_vlan", a.push_vlan.has_value()},
      {"pop_vlan", a.pop_vlan},
      {"set_vlan_id", a.set_vlan_id.has_value()},
      {"set_source_mac", a.set_source_mac.has_value()},
      {"set_dest_mac", a.set_dest_mac.has_value()},
      {"set_source_ip", a.set_source_ip.has_value()},
      {"set_dest_ip", a.set_dest_ip.has_value()},
      {"set_source_port", a.set_source_port.has_value()},
      {"set_dest_port", a.set_dest_port.has_value()},
      {"dec_ttl", a.dec_ttl},
  };
  if (rule.drop) {
    if (!rule.outputs.empty()) {
      fail(at("output_to_port"), "a rule that drops has no output_to_port");
    }
    for (const auto& [field, present] : modifications) {
      if (present) fail(at(field), std::string(field) + " has no effect on a rule that drops");
    }
    return;
  }
  if (rule.outputs.empty()) {
    fail(pointer, "a rule needs output_to_port, or drop: true");
    return;
  }
  for (size_t i = 0; i < rule.outputs.size(); ++i) {
    if (rule.outputs[i] == rule.port_in) {
      std::string where = at("output_to_port");
      if (rule.outputs.size() > 1) where = appendPointer(where, i);
      fail(where, "output_to_port " + quoted(rule.port_in.str()) +
                      " is the rule's own port_in: traffic cannot be sent back out of the port it "
                      "came in on");
    }
  }
  for (auto [field, present] : {std::pair{"set_source_port", a.set_source_port.has_value()},
                                std::pair{"set_dest_port", a.set_dest_port.has_value()}}) {
    if (present && !isTransport(rule.match.protocol)) {
      fail(at(field), std::string(field) +
                          " needs protocol 6 (TCP), 17 (UDP) or 132 (SCTP) in the match" +
                          notValue(rule.match.protocol));
    }
  }
  std::optional<bool> set_v6;
  for (auto [field, addr] :
       {std::pair{"set_source_ip", &a.set_source_ip}, std::pair{"set_dest_ip", &a.set_dest_ip}}) {
    if (!*addr) continue;
    bool v6 = (*addr)->v6;
    std::string what = std::string(field) + " " + (*addr)->str() + " is " + versionName(v6);
    if (set_v6 && *set_v6 != v6) {
      fail(at(field), what + " but set_source_ip is " + versionName(*set_v6));
    } else if (!version) {
      fail(at(field), std::string(field) + " needs a match that selects " + versionName(v6) +
                          " packets (ether_type " + (v6 ? "0x86dd" : "0x0800") +
                          ", or an address in source_ip or dest_ip)");
    } else if (version->v6 != v6) {
      fail(at(field),
           what + " but the match selects " + versionName(version->v6) + " (" + version->why + ")");
    }
    set_v6 = v6;
  }
}

// Printing. Numbers as DESIGN section 6 shows them: strings, except the priority.
class SffgWriter {
 public:
  SffgWriter() : writer_(buffer_) { writer_.SetIndent(' ', 2); }
  std::string print(const Graph& graph);

 private:
  void string(std::string_view text) {
    writer_.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
  void field(const char* key, std::string_view text) {
    writer_.Key(key);
    string(text);
  }
  template <class T>
  void field(const char* key, const std::optional<T>& value) {
    if (value) field(key, std::to_string(uint64_t{*value}));
  }
  void field(const char* key, const std::optional<MacAddr>& value) {
    if (value) field(key, value->str());
  }
  void field(const char* key, const std::optional<IpPrefix>& value) {
    if (value) field(key, value->str());
  }
  void field(const char* key, const std::optional<IpAddr>& value) {
    if (value) field(key, value->str());
  }
  void flag(const char* key, bool value) {
    if (!value) return;
    writer_.Key(key);
    writer_.Bool(true);
  }
  void sf(const Sf& sf);
  void sap(const Sap& sap);
  void rule(const FlowRule& rule);

  rapidjson::StringBuffer buffer_;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer_;
};

std::string SffgWriter::print(const Graph& graph) {
  writer_.StartObject();
  writer_.Key("sffg");
  writer_.StartObject();
  if (!graph.id.empty()) field("id", graph.id);
  if (!graph.name.empty()) field("name", graph.name);
  writer_.Key("SFs");
  writer_.StartArray();
  for (const auto& s : graph.sfs) sf(s);
  writer_.EndArray();
  writer_.Key("saps");
  writer_.StartArray();
  for (const auto& s : graph.saps) sap(s);
  writer_.EndArray();
  writer_.Key("flowrules");
  writer_.StartArray();
  for (const auto& r : graph.rules) rule(r);
  writer_.EndArray();
  if (!graph.measure.empty()) field("measure", graph.measure);
  writer_.EndObject();
  writer_.EndObject();
  return {buffer_.GetString(), buffer_.GetSize()};
}

void SffgWriter::sf(const Sf& sf) {
  writer_.StartObject();
  field("id", sf.id);
  field("name", sf.name);
  if (sf.template_id) field("template", *sf.template_id);
  writer_.Key("ports");
  writer_.StartArray();
  for (const auto& port : sf.ports) {
    writer_.StartObject();
    field("id", port.id);
    if (!port.name.empty()) field("name", port.name);
    writer_.EndObject();
  }
  writer_.EndArray();
  if (sf.config_json != "{}") {
    // Re-parsed rather than copied raw, so that the document stays well indented.
    rapidjson::Document config;
    config.Parse<rapidjson::kParseIterativeFlag>(sf.config_json.data(), sf.config_json.size());
    if (!config.HasParseError() && config.IsObject()) {
      writer_.Key("config");
      config.Accept(writer_);
    }
  }
  writer_.EndObject();
}

void SffgWriter::sap(const Sap& sap) {
  writer_.StartObject();
  field("id", sap.id);
  if (!sap.name.empty()) field("name", sap.name);
  std::string_view type = toString(sap.type);
  field("type", type);
  writer_.Key(type.data(), static_cast<rapidjson::SizeType>(type.size()));
  writer_.StartObject();
  switch (sap.type) {
    case SapType::Interface:
      field("if-name", sap.if_name);
      break;
    case SapType::Vlan:
      field("vlan-id", std::to_string(sap.vlan_id));
      field("if-name", sap.if_name);
      break;
    case SapType::Gre:
      field("local-ip", sap.gre_local.str());
      field("remote-ip", sap.gre_remote.str());
      field("gre-key", hex(sap.gre_key));
      break;
    case SapType::HostStack:
      field("configuration", sap.host_configuration);
      if (sap.host_ipv4)
        field("ipv4", sap.host_ipv4->addr.str() + "/" + std::to_string(sap.host_ipv4->length));
      break;
    case SapType::Internal:
      field("group", sap.internal_group);
      break;
  }
  writer_.EndObject();
  writer_.EndObject();
}

void SffgWriter::rule(const FlowRule& rule) {
  writer_.StartObject();
  field("id", rule.id);
  writer_.Key("priority");
  writer_.Uint(rule.priority);

  const MatchFields& m = rule.match;
  writer_.Key("match");
  writer_.StartObject();
  field("port_in", rule.port_in.str());
  if (m.ether_type) field("ether_type", hex4(*m.ether_type));
  field("vlan_id", m.vlan_id);
  field("vlan_pcp", m.vlan_pcp);
  field("source_mac", m.source_mac);
  field("dest_mac", m.dest_mac);
  field("source_ip", m.source_ip);
  field("dest_ip", m.dest_ip);
  field("protocol", m.protocol);
  field("source_port", m.source_port);
  field("dest_port", m.dest_port);
  field("ip_dscp", m.ip_dscp);
  field("icmp_type", m.icmp_type);
  field("icmp_code", m.icmp_code);
  field("arp_opcode", m.arp_opcode);
  writer_.EndObject();

  const Modifications& a = rule.mods;
  writer_.Key("actions");
  writer_.StartObject();
  if (rule.outputs.size() == 1) {
    field("output_to_port", rule.outputs[0].str());
  } else if (!rule.outputs.empty()) {
    writer_.Key("output_to_port");
    writer_.StartArray();
    for (const auto& out : rule.outputs) string(out.str());
    writer_.EndArray();
  }
  field("push_vlan", a.push_vlan);
  flag("pop_vlan", a.pop_vlan);
  field("set_vlan_id", a.set_vlan_id);
  field("set_source_mac", a.set_source_mac);
  field("set_dest_mac", a.set_dest_mac);
  field("set_source_ip", a.set_source_ip);
  field("set_dest_ip", a.set_dest_ip);
  field("set_source_port", a.set_source_port);
  field("set_dest_port", a.set_dest_port);
  flag("dec_ttl", a.dec_ttl);
  flag("drop", rule.drop);
  writer_.EndObject();
  writer_.EndObject();
}

Error invalid(std::vector<FieldError> errors) {
  std::string message = "invalid SF-FG document: ";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) message += "; ";
    message += errors[i].pointer.empty() ? errors[i].message
                                         : errors[i].pointer + ": " + errors[i].message;
  }
  return Error(ErrorCode::InvalidArgument, std::move(message), std::move(errors));
}

Error malformed(std::string_view json, const rapidjson::Document& doc) {
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
  return Error(ErrorCode::Malformed, "malformed JSON at line " + std::to_string(line) +
                                         ", column " + std::to_string(column) + " (offset " +
                                         std::to_string(offset) +
                                         "): " + rapidjson::GetParseError_En(doc.GetParseError()));
}

}  // namespace

Result<Graph> parseSffg(std::string_view json) {
  rapidjson::Document doc;
  // Iterative: a deeply nested document must not exhaust the stack. Invalid UTF-8 is malformed.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(json.data(),
                                                                                    json.size());
  if (doc.HasParseError()) return malformed(json, doc);
  if (auto deep = findTooDeep(doc, kMaxDepth)) {
    return invalid({{*deep, "nested deeper than " + std::to_string(kMaxDepth) + " levels"}});
  }
  const JsonSchema& schema = sffgSchema();
  if (auto errors = schema.check(doc); !errors.empty()) return invalid(std::move(errors));
  SffgReader reader;
  Graph graph = reader.readGraph(doc["sffg"]);
  if (!reader.errors().empty()) return invalid(std::move(reader.errors()));
  // Both passes above should cover the schema; this guards against the two drifting apart.
  if (auto error = schema.validate(doc)) return invalid({std::move(*error)});
  return graph;
}

std::string printSffg(const Graph& graph) { return SffgWriter().print(graph); }

}  // namespace corch::graph
