// The configuration of a native function as environment variables, so that plain sh scripts need
// no JSON parser (nsf/README.md documents the mapping):
//
//   key "allowed-tcp-ports": [22, 80]  ->  CORCH_CFG_ALLOWED_TCP_PORTS="22 80"
//   key "allow-icmp": true             ->  CORCH_CFG_ALLOW_ICMP="true"
//
// The name is CORCH_CFG_ followed by the key upper-cased, every character other than a letter or
// a digit turned into '_'. Strings are passed as they are, numbers in decimal, booleans as
// true/false, null as an empty string, lists as their items separated by one space (an item that
// is itself a list or an object as compact JSON), objects as compact JSON.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "corch/error.h"

namespace corch::drivers::common {

// The variable name for a configuration key ("allow-icmp" -> "CORCH_CFG_ALLOW_ICMP").
std::string configVariable(const std::string& key);

// The variables for a configuration document (a JSON object; empty text means no configuration).
// InvalidArgument when it is not an object, or when two keys map onto the same variable.
Result<std::vector<std::pair<std::string, std::string>>> configToEnv(
    const std::string& config_json);

}  // namespace corch::drivers::common
