#include "resolver/config.h"

#include <map>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace corch::resolver {
namespace {

// How a JSON value is called in messages, with its article.
std::string kindOf(const rapidjson::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "a bool";
  if (v.IsInt64()) return "an int";
  if (v.IsNumber()) return "a non-integer number";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "a list";
  return "an object";
}

// Whether a scalar fits a declared scalar type; an empty type (a list without "items") takes any
// scalar.
bool fits(const rapidjson::Value& v, const std::string& type) {
  if (type == "int") return v.IsInt64();
  if (type == "bool") return v.IsBool();
  if (type == "string") return v.IsString();
  if (type.empty()) return v.IsBool() || v.IsNumber() || v.IsString();
  return false;
}

std::string expected(const std::string& type) {
  if (type == "int") return "an int";
  if (type == "bool") return "a bool";
  if (type == "string") return "a string";
  return "a scalar (bool, number or string)";
}

std::string toJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string knownParams(const Template& tmpl) {
  if (tmpl.config.empty()) return "it takes none";
  std::string known = "known: ";
  bool first = true;
  for (const auto& [name, param] : tmpl.config) {
    if (!first) known += ", ";
    known += name;
    first = false;
  }
  return known;
}

}  // namespace

std::string escapePointerToken(const std::string& token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

bool isParamType(const std::string& type) {
  return type == "list" || type == "bool" || type == "int" || type == "string";
}

bool isItemType(const std::string& items) { return items == "int" || items == "string"; }

std::vector<TypeMismatch> typeMismatches(const rapidjson::Value& value, const ConfigParam& param) {
  std::vector<TypeMismatch> out;
  if (param.type != "list") {
    if (!fits(value, param.type)) {
      out.push_back({"", "must be " + expected(param.type) + ", got " + kindOf(value)});
    }
    return out;
  }
  if (!value.IsArray()) {
    std::string what = param.items.empty() ? "a list" : "a list of " + param.items;
    out.push_back({"", "must be " + what + ", got " + kindOf(value)});
    return out;
  }
  for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
    if (!fits(value[i], param.items)) {
      out.push_back({"/" + std::to_string(i), "item " + std::to_string(i) + " must be " +
                                                  expected(param.items) + ", got " +
                                                  kindOf(value[i])});
    }
  }
  return out;
}

Result<std::string> mergeConfig(const Template& tmpl, const std::string& sf_config_json,
                                const std::string& pointer) {
  // Values as JSON text by parameter name: a std::map keeps the output sorted, hence stable.
  std::map<std::string, std::string> merged;
  for (const auto& [name, param] : tmpl.config) {
    if (!param.default_json.empty()) merged[name] = param.default_json;
  }

  rapidjson::Document sf;
  static const std::string kEmpty = "{}";
  const std::string& text = sf_config_json.empty() ? kEmpty : sf_config_json;
  sf.Parse(text.data(), text.size());
  if (sf.HasParseError() || !sf.IsObject()) {
    return Error::field(ErrorCode::InvalidArgument, pointer, "the configuration must be an object");
  }

  std::vector<FieldError> errors;
  for (const auto& member : sf.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    std::string at = pointer + "/" + escapePointerToken(key);
    auto it = tmpl.config.find(key);
    if (it == tmpl.config.end()) {
      errors.push_back({at, "unknown configuration parameter '" + key + "' for template " +
                                tmpl.id + " (" + knownParams(tmpl) + ")"});
      continue;
    }
    auto mismatches = typeMismatches(member.value, it->second);
    for (const auto& m : mismatches) {
      errors.push_back({at + m.pointer_suffix, "configuration parameter '" + key +
                                                   "' of template " + tmpl.id + ": " + m.message});
    }
    if (mismatches.empty()) merged[key] = toJson(member.value);
  }
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors) {
      if (!message.empty()) message += "; ";
      message += e.pointer + ": " + e.message;
    }
    return Error(ErrorCode::InvalidArgument, std::move(message), std::move(errors));
  }

  std::string out = "{";
  for (const auto& [name, json] : merged) {
    if (out.size() > 1) out += ',';
    rapidjson::Value key(rapidjson::StringRef(name.data(), name.size()));
    out += toJson(key);
    out += ':';
    out += json;
  }
  out += '}';
  return out;
}

}  // namespace corch::resolver
