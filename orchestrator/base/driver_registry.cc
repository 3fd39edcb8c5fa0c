#include "corch/driver_registry.h"

namespace corch {
namespace {

template <class Map>
Result<void> add(Map& map, const std::string& kind, const std::string& name,
                 typename Map::mapped_type factory) {
  if (name.empty()) return Error(ErrorCode::InvalidArgument, kind + " driver with an empty name");
  if (!map.emplace(name, std::move(factory)).second) {
    return Error(ErrorCode::AlreadyExists, kind + " driver '" + name + "' is already registered");
  }
  return Ok();
}

template <class Map>
std::vector<std::string> names(const Map& map) {
  std::vector<std::string> out;
  for (const auto& [name, factory] : map) out.push_back(name);
  return out;
}

template <class Map>
auto make(const Map& map, const std::string& kind, const std::string& name,
          const DriverOptions& options) -> decltype(map.begin()->second(options)) {
  auto it = map.find(name);
  if (it == map.end()) {
    std::string known;
    for (const auto& n : names(map)) known += (known.empty() ? "" : ", ") + n;
    return Error(ErrorCode::NotFound, "no " + kind + " driver named '" + name +
                                          "' (this build has: " + (known.empty() ? "none" : known) +
                                          ")");
  }
  return it->second(options);
}

}  // namespace

Result<void> DriverRegistry::addVSwitch(const std::string& name, VSwitchFactory factory) {
  return add(vswitch_, "vSwitch", name, std::move(factory));
}
Result<void> DriverRegistry::addCompute(const std::string& name, ComputeFactory factory) {
  return add(compute_, "compute", name, std::move(factory));
}
Result<std::unique_ptr<VSwitchDriver>> DriverRegistry::makeVSwitch(
    const std::string& name, const DriverOptions& options) const {
  return make(vswitch_, "vSwitch", name, options);
}
Result<std::unique_ptr<ComputeDriver>> DriverRegistry::makeCompute(
    const std::string& name, const DriverOptions& options) const {
  return make(compute_, "compute", name, options);
}
std::vector<std::string> DriverRegistry::vswitchNames() const { return names(vswitch_); }
std::vector<std::string> DriverRegistry::computeNames() const { return names(compute_); }

std::string_view toString(PortTechnology technology) {
  switch (technology) {
    case PortTechnology::Veth:
      return "veth";
    case PortTechnology::Internal:
      return "internal";
    case PortTechnology::Tap:
      return "tap";
    case PortTechnology::VhostUser:
      return "vhost-user";
    case PortTechnology::Gre:
      return "gre";
  }
  return "?";
}

}  // namespace corch
