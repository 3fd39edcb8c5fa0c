#include "compute/common/config_env.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>

namespace corch::drivers::common {
namespace {

std::string compactJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  v.Accept(writer);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string scalarText(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsNull()) return "";
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  return compactJson(v);  // doubles keep RapidJSON's shortest exact form; lists and objects
}

}  // namespace

std::string configVariable(const std::string& key) {
  std::string name = "CORCH_CFG_";
  for (char c : key) {
    if (c >= 'a' && c <= 'z') {
      name += static_cast<char>(c - 'a' + 'A');
    } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      name += c;
    } else {
      name += '_';
    }
  }
  return name;
}

Result<std::vector<std::pair<std::string, std::string>>> configToEnv(
    const std::string& config_json) {
  std::vector<std::pair<std::string, std::string>> env;
  if (config_json.empty()) return env;
  rapidjson::Document doc;
  doc.Parse(config_json.c_str(), config_json.size());
  if (doc.HasParseError()) {
    return Error(ErrorCode::InvalidArgument,
                 std::string("the function's configuration is not valid JSON: ") +
                     rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) {
    return Error(ErrorCode::InvalidArgument, "the function's configuration must be a JSON object");
  }
  std::map<std::string, std::string> origin;  // variable -> the key it came from
  for (const auto& member : doc.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    std::string var = configVariable(key);
    auto [it, fresh] = origin.emplace(var, key);
    if (!fresh) {
      return Error(ErrorCode::InvalidArgument, "configuration keys '" + it->second + "' and '" +
                                                   key + "' both map onto variable " + var);
    }
    std::string value;
    if (member.value.IsArray()) {
      bool first = true;
      for (const auto& item : member.value.GetArray()) {
        if (!first) value += ' ';
        first = false;
        value += scalarText(item);
      }
    } else {
      value = scalarText(member.value);
    }
    if (value.find('\0') != std::string::npos) {
      return Error(ErrorCode::InvalidArgument, "configuration key '" + key +
                                                   "' holds a NUL character, which no environment "
                                                   "variable can carry");
    }
    env.emplace_back(std::move(var), std::move(value));
  }
  return env;
}

}  // namespace corch::drivers::common
