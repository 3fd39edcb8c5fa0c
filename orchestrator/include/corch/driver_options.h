// Options handed to a driver's factory: the string key/values of the driver's section of the
// configuration (for example {"ovsdb": "unix:/run/corch/db.sock", "datapath": "netdev"}).
#pragma once

#include <map>
#include <optional>
#include <string>

namespace corch {

struct DriverOptions {
  std::map<std::string, std::string> values;

  std::optional<std::string> get(const std::string& key) const {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  std::string getOr(const std::string& key, const std::string& fallback) const {
    return get(key).value_or(fallback);
  }
};

}  // namespace corch
