// The network manager (paper 5.4): keeps LSI-0 with the node's physical ports, and for each graph
// a graph-LSI with its SF ports, the vlinks of Algorithm 1 and the rules of Algorithm 2, through
// the vSwitch driver's management and control interfaces.
//
// Planning is separate from building: plan() checks everything it can (SAP types, interface
// names, rule fields the driver can express) without touching the switch, so a graph that cannot
// be deployed is refused before anything is created. The build calls are each undone by one
// matching call (destroyGraphLsi, removeGraphRules), which the node manager records in the
// graph's undo log.
//
// Updates (a PUT on a deployed graph). plan() given the deployed plan keeps what identifies the
// built parts: vlink indices (Algorithm 1 with a previous plan), SF numbers (hence SF port names)
// and flowrule numbers (hence cookies). The rules of the two versions can then be compared as
// TsRules (diffRules) and only the difference applied: addVlinks, createSfPorts, installRules and
// removeRules are the finer-grained build calls, each undone by its counterpart (removeVlinks,
// destroySfPorts, removeRules / installRules). The LSI-0 registry follows installRules and
// removeRules rule by rule.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "corch/vswitch.h"
#include "graph/model.h"
#include "network/steering.h"
#include "platform/process.h"

namespace corch::network {

struct NetworkOptions {
  std::string lsi0 = "corch0";              // LSI-0's name
  std::string prefix = "corch";             // graph-LSIs are <prefix>-g<index>
  std::vector<std::string> physical_ports;  // attached to LSI-0 at start()
};

// The DHCP client of host-stack SAPs (busybox's udhcpc; "udhcpc" alone works too), or "" if
// the node has none.
std::string dhcpClient();

// The largest graph index (names must fit in 15 characters) and per-graph limits.
inline constexpr uint32_t kMaxGraphIndex = 9999;
inline constexpr size_t kMaxSfsPerGraph = 999;
inline constexpr size_t kMaxPortsPerSf = 99;

struct SfPortPlan {
  std::string sf_id;
  std::string port_id;
  PortSpec spec;
};

// A SAP with a port on the graph-LSI (Table 4): gre (a tunnel port), host-stack (an internal port
// in the node's own stack), internal (a link to its group's LSI) and junction (one end of a link
// looping back into the graph-LSI; the pair's `first` end makes the link for both).
struct SapPortPlan {
  std::string sap_id;
  graph::SapType type = graph::SapType::Gre;
  PortSpec spec;  // gre and host-stack: the port; internal, junction: spec.name names the link
  std::optional<IpPrefix> address;  // host-stack, static
  bool dhcp = false;                // host-stack, dhcp
  std::string group;                // internal
  std::string peer;                 // junction: the other end's SAP id
  bool first = false;               // junction: this end makes the pair
  bool operator==(const SapPortPlan&) const = default;
};

struct GraphNetworkPlan {
  uint32_t index = 0;
  std::string lsi;
  VlinkPlan vlinks;
  std::vector<SplitRule> rules;
  std::vector<SfPortPlan> sf_ports;                   // in graph order
  std::map<std::string, std::string> sap_interfaces;  // interface/vlan SAP id -> LSI-0 port name
  std::map<std::string, uint16_t> sap_vlans;          // vlan SAP id -> its VLAN id
  std::vector<SapPortPlan> sap_ports;                 // SAPs on the graph-LSI, in graph order
  // Stable numbers, kept across updates: an SF's number names its ports ("cg<graph>s<n>p<port>"),
  // a flowrule's number (from 1) is the low half of its rules' cookies.
  std::map<std::string, uint32_t> sf_numbers;  // SF id -> number (0-based)
  // (SF id, port id) -> the port's number within its SF ("p<n>"): its index at first, kept while
  // the SF keeps its number, so that a port plugged into or unplugged from a running function
  // leaves its other ports' names alone.
  std::map<std::pair<std::string, std::string>, uint32_t> sf_port_numbers;
  std::map<std::string, uint32_t> flowrule_numbers;  // flowrule id -> number (from 1)
  // A graph-LSI SAP's number names its port or link ("cg<graph>a<n>"); kept across updates while
  // the SAP stays the same.
  std::map<std::string, uint32_t> sap_numbers;
};

// What plan() keeps of a deployed version of the graph (all empty for a first deploy).
struct PlanBase {
  const GraphNetworkPlan* previous = nullptr;
  // SFs that are rebuilt (restarted): they take a new number, so that their new ports can be
  // made while the old ones still exist.
  std::set<std::string> renumber;
};

// What was built for a graph on the switch.
struct GraphNetwork {
  LsiInfo lsi;
  std::map<std::pair<std::string, std::string>, PortInfo> sf_ports;  // (sf, port) -> port
  std::map<std::string, PortInfo> sap_ports;                         // graph-LSI SAP -> its port
};

// What createSapPorts made for one SAP port plan (a junction pair: for its first end), to undo.
struct SapPortMade {
  SapPortPlan sap;
  std::map<std::string, PortInfo> ports;  // SAP id -> its port (both ends of a junction)
  std::optional<VlinkInfo> link;          // internal and junction: the link made
  bool joined = false;                    // internal: a member of sap.group
};
using SapPortsMade = std::vector<SapPortMade>;

class NetworkManager {
 public:
  NetworkManager(VSwitchDriver& driver, NetworkOptions options);
  ~NetworkManager();

  // Creates LSI-0 with the physical ports and removes the stale LSIs of this prefix an earlier
  // run left. Restart (node/node_manager.h): an LSI-0 that exists with every configured physical
  // port is kept as it is, flows included (adopted), and so are the graph-LSIs named in
  // `keep_lsis` and, when there are any, the internal groups' LSIs (adoptGraphLsi finds a
  // group's there; removeStaleLsis removes those no graph joined again); returns whether LSI-0
  // was kept. When it was not (it was missing or its ports
  // differ), it is made anew and no graph-LSI is kept: their vlinks ended on the old one.
  Result<bool> start(const std::set<std::string>& keep_lsis = {});
  // Removes the LSIs of this prefix other than LSI-0 and `keep` (graph-LSIs, internal groups'
  // LSIs that no group has): after a restart, those kept for graphs that were then rebuilt.
  Result<void> removeStaleLsis(const std::set<std::string>& keep);

  // Finds on a graph-LSI kept by start() what createGraphLsi and createSapPorts built for `plan`
  // (a plan made with the stored numbers: node/graph_store.h): every SF port, every vlink (its
  // ends named by `vlink_names`, by index) and every SAP port or link (gre, host-stack, junction,
  // internal), and nothing else.
  // Conflict naming what differs (the caller then destroys the LSI and builds the graph anew);
  // Internal SAPs: the link to their group's LSI (kept by start()) must be there too; the group
  // then counts the graph as a member again. Changes nothing but starting the DHCP clients of
  // host-stack SAPs again.
  struct Adopted {
    GraphNetwork network;
    SapPortsMade sap_ports;
  };
  Result<Adopted> adoptGraphLsi(
      const GraphNetworkPlan& plan,
      const std::vector<std::pair<std::string, std::string>>& vlink_names);
  // Makes an LSI's flow table what the rules installed through this manager since start() say:
  // after adoption, removes what an earlier run left that no graph wants any more.
  Result<void> syncRules(const std::string& lsi);

  const NetworkOptions& options() const { return options_; }
  // The name of graph index `index`'s graph-LSI.
  std::string lsiName(uint32_t index) const;
  VSwitchDriver& driver() { return driver_; }

  // Plans a graph's network. technology(sf_id) gives the port technology its implementation
  // wants. Errors carry the JSON pointer of the offending field.
  // With base.previous, the plan keeps the previous one's vlink indices, SF numbers (except
  // base.renumber's) and flowrule numbers; new SFs and flowrules take the smallest number used by
  // neither version, so no name or cookie of a removed part is reused in the same update.
  Result<GraphNetworkPlan> plan(const graph::Graph& graph, uint32_t index,
                                const std::function<PortTechnology(const std::string&)>& technology,
                                const PlanBase& base = {}) const;

  // Creates the graph-LSI, its SF ports and vlinks (one batch). Undo: destroyGraphLsi.
  Result<GraphNetwork> createGraphLsi(const GraphNetworkPlan& plan);
  Result<void> destroyGraphLsi(const GraphNetworkPlan& plan);

  // Installs the graph's rules on one side as one batch. Undo: removeGraphRules(plan, side).
  Result<void> installGraphRules(const GraphNetworkPlan& plan, const GraphNetwork& network,
                                 Side side);
  Result<void> removeGraphRules(const GraphNetworkPlan& plan, Side side);

  // Grows the graph-LSI's vlinks to plan.vlinks.count; returns the vlinks made (empty if none
  // was needed), to append to network.lsi.vlinks. Undo: removeVlinks.
  Result<std::vector<VlinkInfo>> addVlinks(const GraphNetworkPlan& plan,
                                           const GraphNetwork& network);
  Result<void> removeVlinks(const std::vector<VlinkInfo>& vlinks);

  // Creates some SF ports of the plan on its graph-LSI, all or nothing; the result is in the order
  // of `ports`. Undo: destroySfPorts.
  Result<std::vector<PortInfo>> createSfPorts(const GraphNetworkPlan& plan,
                                              const std::vector<SfPortPlan>& ports);
  Result<void> destroySfPorts(const GraphNetworkPlan& plan, const std::vector<std::string>& names);

  // Makes the graph-LSI ports of some SAPs of the plan (all of plan.sap_ports for a deploy):
  // tunnel and internal ports (an internal port given its static address, or a DHCP client),
  // links to internal groups (creating a group's LSI for its first member) and junction loops;
  // all or nothing. Undo: destroySapPorts(made).
  Result<SapPortsMade> createSapPorts(const GraphNetworkPlan& plan,
                                      const std::vector<SapPortPlan>& saps);
  Result<void> destroySapPorts(const GraphNetworkPlan& plan, const SapPortsMade& made);

  // The LSIs of internal groups that exist (for tests and the domain description).
  std::map<std::string, std::string> internalGroups() const;

  // Installs (OpenFlow add: a rule of the same key is replaced) or removes (strictly, by key)
  // some rules of the graph on one side, as one batch. On LSI-0, installRules claims their keys
  // for the graph (Conflict if another graph has one) and removeRules releases them.
  Result<void> installRules(const GraphNetworkPlan& plan, Side side,
                            const std::vector<TsRule>& rules);
  Result<void> removeRules(const GraphNetworkPlan& plan, Side side,
                           const std::vector<TsRule>& rules);

  // The traffic steering rules of one side, with port numbers (for installation and tests).
  Result<std::vector<TsRule>> resolveRules(const GraphNetworkPlan& plan,
                                           const GraphNetwork& network, Side side) const;

  // The cookie of a split rule: the graph index in the high 32 bits, the flowrule's number (or
  // 0x80000000 | vlink for a forwarder) in the low ones.
  static uint64_t cookieOf(uint32_t graph_index, const SplitRule& rule);
  static constexpr uint64_t kGraphCookieMask = 0xffffffff00000000ull;

 private:
  Result<uint32_t> lsi0Port(const std::string& ifname) const;
  // Whether an LSI other than LSI-0 is named as this manager names graph-LSIs and groups' LSIs.
  bool isOurs(const std::string& lsi) const;
  // Adds the tags of vlan SAPs to a rule of LSI-0: its input's (matched, then removed) and its
  // outputs' (pushed). Errors name the flowrule field the SAP's tag conflicts with.
  Result<void> tagVlanSaps(const GraphNetworkPlan& plan, const SplitRule& rule, TsRule& ts) const;
  // Internal groups: the LSI joining their members, made for the first, removed after the last.
  Result<std::string> joinGroup(const std::string& group);
  Result<void> leaveGroup(const std::string& group);
  // Adoption: the LSI of `group` (its registered one, else the groups' LSIs an earlier run left)
  // that has the link end `port`, with that end's number; and the member adopted.
  Result<std::pair<std::string, uint32_t>> findGroupLsi(const std::string& group,
                                                        const std::string& port);
  void adoptGroupMember(const std::string& group, const std::string& lsi);
  struct Group {
    std::string lsi;
    uint32_t members = 0;
  };
  // DHCP clients of host-stack SAPs, by port: busybox's udhcpc, which calls a script of ours
  // (written once, removed with the manager) to set the address it leased.
  Result<void> startDhcp(const std::string& ifname);
  void stopDhcp(const std::string& ifname);
  std::mutex dhcp_mu_;
  std::map<std::string, platform::Child> dhcp_;
  std::string dhcp_script_;

  mutable std::mutex groups_mu_;
  std::map<std::string, Group> groups_;
  uint32_t next_group_ = 1;

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
  void claimLsi0(uint32_t graph_index, const std::vector<TsRule>& rules);
  void releaseLsi0(uint32_t graph_index, const std::vector<TsRule>& rules);

  std::map<std::string, uint32_t> lsi0_ports_;  // physical port -> number on LSI-0
  mutable std::mutex owners_mu_;
  std::vector<std::pair<Lsi0Key, uint32_t>> lsi0_owners_;  // LSI-0 match -> graph index
};

}  // namespace corch::network
