// The "engine" object of a docker template (SfSpec::engine_json), read and checked:
//
//   "command":      ["sh", "-c", "..."]   the container's Cmd (default: the image's)
//   "entrypoint":   ["/bin/sh", "/x"]     the container's Entrypoint (default: the image's)
//   "env":          {"NAME": "value"}     extra environment variables (strings)
//   "cap-add":      ["NET_ADMIN"]         capabilities added (default NET_ADMIN and NET_RAW, what a
//                                         network function needs to configure its interfaces)
//   "privileged":   false                 a privileged container (default false)
//   "stop-timeout": 2                     seconds between SIGTERM and SIGKILL at stop (default 2;
//                                         capped so that a stop fits in SfSpec::timeout)
//
// Any other key is refused (InvalidArgument naming "engine/<key>").
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "corch/error.h"

namespace corch::drivers::docker {

struct EngineSettings {
  std::optional<std::vector<std::string>> command;
  std::optional<std::vector<std::string>> entrypoint;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> cap_add{"NET_ADMIN", "NET_RAW"};
  bool privileged = false;
  unsigned stop_timeout_s = 2;
};

// Parses SfSpec::engine_json (empty text: every default).
Result<EngineSettings> parseEngineSettings(const std::string& engine_json);

}  // namespace corch::drivers::docker
