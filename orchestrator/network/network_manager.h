// The network manager (paper 5.4): keeps LSI-0 with the node's physical ports, and for each graph
// a graph-LSI with its SF ports, the vlinks of Algorithm 1 and the rules of Algorithm 2, through
// the vSwitch driver's management and control interfaces.
//
// Planning is separate from building: plan() checks everything it can (SAP types, interface
// names, rule fields the driver can express) without touching the switch, so a graph that cannot
// be deployed is refused before anything is created. The build calls are each undone by one
// matching call (destroyGraphLsi, removeGraphRules), which the node manager records in the
// graph's undo log.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "corch/vswitch.h"
#include "graph/model.h"
#include "network/steering.h"

namespace corch::network {

struct NetworkOptions {
  std::string lsi0 = "corch0";              // LSI-0's name
  std::string prefix = "corch";             // graph-LSIs are <prefix>-g<index>
  std::vector<std::string> physical_ports;  // attached to LSI-0 at start()
};

// The largest graph index (names must fit in 15 characters) and per-graph limits.
inline constexpr uint32_t kMaxGraphIndex = 9999;
inline constexpr size_t kMaxSfsPerGraph = 999;
inline constexpr size_t kMaxPortsPerSf = 99;

struct SfPortPlan {
  std::string sf_id;
  std::string port_id;
  PortSpec spec;
};

struct GraphNetworkPlan {
  uint32_t index = 0;
  std::string lsi;
  VlinkPlan vlinks;
  std::vector<SplitRule> rules;
  std::vector<SfPortPlan> sf_ports;                   // in graph order
  std::map<std::string, std::string> sap_interfaces;  // interface SAP id -> LSI-0 port name
};

// What was built for a graph on the switch.
struct GraphNetwork {
  LsiInfo lsi;
  std::map<std::pair<std::string, std::string>, PortInfo> sf_ports;  // (sf, port) -> port
};

class NetworkManager {
 public:
  NetworkManager(VSwitchDriver& driver, NetworkOptions options);

  // Creates LSI-0 with the physical ports, replacing a stale LSI-0 and removing stale graph-LSIs
  // of this prefix left by an earlier run.
  Result<void> start();

  const NetworkOptions& options() const { return options_; }
  VSwitchDriver& driver() { return driver_; }

  // Plans a graph's network. technology(sf_id) gives the port technology its implementation
  // wants. Errors carry the JSON pointer of the offending field.
  Result<GraphNetworkPlan> plan(
      const graph::Graph& graph, uint32_t index,
      const std::function<PortTechnology(const std::string&)>& technology) const;

  // Creates the graph-LSI, its SF ports and vlinks (one batch). Undo: destroyGraphLsi.
  Result<GraphNetwork> createGraphLsi(const GraphNetworkPlan& plan);
  Result<void> destroyGraphLsi(const GraphNetworkPlan& plan);

  // Installs the graph's rules on one side as one batch. Undo: removeGraphRules(plan, side).
  Result<void> installGraphRules(const GraphNetworkPlan& plan, const GraphNetwork& network,
                                 Side side);
  Result<void> removeGraphRules(const GraphNetworkPlan& plan, Side side);

  // The traffic steering rules of one side, with port numbers (for installation and tests).
  Result<std::vector<TsRule>> resolveRules(const GraphNetworkPlan& plan,
                                           const GraphNetwork& network, Side side) const;

  // The cookie of a split rule: the graph index in the high 32 bits.
  static uint64_t cookieOf(uint32_t graph_index, const SplitRule& rule);
  static constexpr uint64_t kGraphCookieMask = 0xffffffff00000000ull;

 private:
  Result<uint32_t> lsi0Port(const std::string& ifname) const;
  std::string lsiName(uint32_t index) const;

  VSwitchDriver& driver_;
  NetworkOptions options_;
  // Rules of different graphs share LSI-0. Two rules with the same priority and match would be
  // one OpenFlow rule: the second graph would silently take the first one's traffic, and lose it
  // to nobody when deleted (un-orchestrator issue 110). So each (in_port, priority, match) on
  // LSI-0 belongs to one graph, and a graph that wants a taken one is refused.
  struct Lsi0Key {
    uint32_t in_port;
    uint16_t priority;
    MatchFields fields;
    bool operator==(const Lsi0Key&) const = default;
  };
  // The flowrule of `plan` that collides with another graph's rule on LSI-0, as an error.
  Result<void> checkLsi0Conflicts(const GraphNetworkPlan& plan,
                                  const std::vector<TsRule>& rules) const;

  void releaseLsi0(uint32_t graph_index);

  std::map<std::string, uint32_t> lsi0_ports_;  // physical port -> number on LSI-0
  mutable std::mutex owners_mu_;
  std::vector<std::pair<Lsi0Key, uint32_t>> lsi0_owners_;  // LSI-0 match -> graph index
};

}  // namespace corch::network
