// Parsing of a dpdk template's "engine" object (engine.h).
#include "engine.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <functional>
#include <map>

namespace corch::drivers::dpdk {
namespace {

Error bad(const std::string& key, const std::string& why) {
  return Error::field(ErrorCode::InvalidArgument, "/engine/" + key,
                      "invalid dpdk engine setting engine/" + key + ": " + why);
}

Result<void> readString(const rapidjson::Value& v, const std::string& key, std::string& out) {
  if (!v.IsString()) return bad(key, "must be a string");
  out = v.GetString();
  return Ok();
}

Result<void> readStrings(const rapidjson::Value& v, const std::string& key,
                         std::vector<std::string>& out) {
  if (!v.IsArray()) return bad(key, "must be an array of strings");
  for (const auto& item : v.GetArray()) {
    if (!item.IsString()) return bad(key, "must be an array of strings");
    out.emplace_back(item.GetString());
  }
  return Ok();
}

Result<void> readCount(const rapidjson::Value& v, const std::string& key, uint64_t& out) {
  if (!v.IsUint64() || v.GetUint64() == 0) return bad(key, "must be a positive integer");
  out = v.GetUint64();
  return Ok();
}

}  // namespace

Result<Engine> parseEngine(const std::string& json) {
  Engine e;
  if (json.empty()) return e;
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Error(ErrorCode::InvalidArgument, "invalid dpdk engine settings: not a JSON object");
  }
  using Reader = std::function<Result<void>(const rapidjson::Value&, const std::string&)>;
  const std::map<std::string, Reader> readers = {
      {"program", [&](auto& v, auto& k) { return readString(v, k, e.program); }},
      {"args", [&](auto& v, auto& k) { return readStrings(v, k, e.args); }},
      {"extra-eal", [&](auto& v, auto& k) { return readStrings(v, k, e.extra_eal); }},
      {"forward-mode", [&](auto& v, auto& k) { return readString(v, k, e.forward_mode); }},
      {"mbufs", [&](auto& v, auto& k) { return readCount(v, k, e.mbufs); }},
      {"stats-period", [&](auto& v, auto& k) { return readCount(v, k, e.stats_period); }},
      {"ready-text", [&](auto& v, auto& k) { return readString(v, k, e.ready_text); }},
  };
  for (const auto& member : doc.GetObject()) {
    const std::string key = member.name.GetString();
    auto reader = readers.find(key);
    if (reader == readers.end()) {
      return bad(key,
                 "unknown key (known: program, args, extra-eal, forward-mode, mbufs, "
                 "stats-period, ready-text)");
    }
    CORCH_TRY(reader->second(member.value, key));
  }
  if (e.forward_mode != "io" && e.forward_mode != "mac") {
    return bad("forward-mode", "must be \"io\" or \"mac\", not \"" + e.forward_mode + "\"");
  }
  if (!e.isTestpmd()) {
    for (const char* key : {"forward-mode", "mbufs", "stats-period"}) {
      if (doc.HasMember(key)) {
        return bad(key,
                   "is a testpmd setting; with engine/program the program's own options go "
                   "in engine/args");
      }
    }
  }
  return e;
}

}  // namespace corch::drivers::dpdk
