// Reading the "engine" object of a docker template (see engine_settings.h for its keys).
#include "engine_settings.h"

#include <rapidjson/document.h>

namespace corch::drivers::docker {
namespace {

using rapidjson::Value;

Error invalid(const std::string& key, const std::string& why) {
  return Error::field(ErrorCode::InvalidArgument, "/engine/" + key, why);
}

Result<std::vector<std::string>> stringArray(const std::string& key, const Value& v) {
  if (!v.IsArray()) return invalid(key, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : v.GetArray()) {
    if (!item.IsString()) return invalid(key, "must be an array of strings");
    out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

Result<void> readEnv(const Value& v, EngineSettings& s) {
  if (!v.IsObject()) return invalid("env", "must be an object of strings");
  for (const auto& m : v.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (!m.value.IsString()) return invalid("env/" + name, "must be a string");
    if (name.empty() || name.find('=') != std::string::npos) {
      return invalid("env/" + name, "is not a valid variable name");
    }
    s.env.emplace_back(std::move(name),
                       std::string(m.value.GetString(), m.value.GetStringLength()));
  }
  return Ok();
}

Result<void> readKey(const std::string& key, const Value& v, EngineSettings& s) {
  if (key == "command" || key == "entrypoint" || key == "cap-add") {
    auto list = stringArray(key, v);
    if (!list.ok()) return std::move(list).error();
    if (key == "command") s.command = std::move(*list);
    if (key == "entrypoint") s.entrypoint = std::move(*list);
    if (key == "cap-add") s.cap_add = std::move(*list);
    return Ok();
  }
  if (key == "env") return readEnv(v, s);
  if (key == "privileged") {
    if (!v.IsBool()) return invalid(key, "must be true or false");
    s.privileged = v.GetBool();
    return Ok();
  }
  if (key == "stop-timeout") {
    if (!v.IsUint() || v.GetUint() > 3600) return invalid(key, "must be 0 to 3600 (seconds)");
    s.stop_timeout_s = v.GetUint();
    return Ok();
  }
  return invalid(key,
                 "is not a setting of the docker driver (it knows command, entrypoint, env, "
                 "cap-add, privileged, stop-timeout)");
}

}  // namespace

Result<EngineSettings> parseEngineSettings(const std::string& engine_json) {
  EngineSettings s;
  if (engine_json.empty()) return s;
  rapidjson::Document doc;
  doc.Parse(engine_json.c_str(), engine_json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Error::field(ErrorCode::InvalidArgument, "/engine", "must be a JSON object");
  }
  for (const auto& m : doc.GetObject()) {
    CORCH_TRY(readKey(std::string(m.name.GetString(), m.name.GetStringLength()), m.value, s));
  }
  return s;
}

}  // namespace corch::drivers::docker
