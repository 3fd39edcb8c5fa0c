// Traffic steering (paper 5.2, 5.4.1; DESIGN section 3): where each port of a graph lives, how
// many vlinks a graph needs (Algorithm 1), and how each flowrule splits into traffic steering
// rules for LSI-0 and the graph-LSI (Algorithm 2). Pure functions of the graph: no switch here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "corch/flow.h"
#include "graph/model.h"

namespace corch::network {

// The two LSIs a graph's rules live on.
enum class Side { Lsi0, GraphLsi };
std::string_view toString(Side side);

// Interface and vlan SAPs are on LSI-0; SF ports, gre, host-stack and internal SAPs and the
// junctions of spliced graph templates on the graph-LSI (Table 4; an internal SAP is the graph's
// end of a link to its group's LSI). An internal-port SAP left unspliced is InvalidArgument.
Result<Side> sideOf(const graph::Graph& graph, const graph::PortRef& port);

// Algorithm 1: one vlink per distinct output port that a rule must reach across the two LSIs.
// The k-th port reached from LSI-0 and the k-th port reached from the graph-LSI share vlink k
// (one vlink carries traffic both ways), so count = max of the two.
//
// Updates. With `previous` (the plan of the deployed version of the graph), a port that still
// needs a vlink in the same direction keeps its index, and a new port takes the smallest index
// free in its direction; count never shrinks below previous->count (vlinks left unused stay, to
// be reused by a later update): the vlinks that exist stay valid and unchanged rules through
// them stay identical.
struct VlinkPlan {
  std::map<graph::PortRef, uint32_t> vlink_of;  // output port -> vlink index (0-based)
  std::map<graph::PortRef, Side> side_of;       // output port -> its side (the vlink's far end)
  uint32_t count = 0;
  bool operator==(const VlinkPlan&) const = default;
};
Result<VlinkPlan> createVlinks(const graph::Graph& graph, const VlinkPlan* previous = nullptr);

// One end of a split rule: a port of the graph, or one end of a vlink.
struct Endpoint {
  enum class Kind { Port, Vlink };
  Kind kind = Kind::Port;
  graph::PortRef port;  // Kind::Port
  uint32_t vlink = 0;   // Kind::Vlink: the end of vlink `vlink` on the rule's own LSI
  bool operator==(const Endpoint&) const = default;
};

// A traffic steering rule on one LSI, before port numbers are known.
struct SplitRule {
  Side side = Side::Lsi0;
  std::string flowrule_id;  // the flowrule it came from (for vlink forwarders: the first one)
  size_t flowrule_index = 0;
  uint32_t number = 0;  // the flowrule's stable number in its graph (its cookie), set by plan()
  bool vlink_forwarder = false;  // a "vlink -> port" rule shared by every flowrule using it
  uint16_t priority = 0;
  Endpoint in;
  MatchFields fields;
  Modifications mods;
  std::vector<Endpoint> outputs;  // empty: drop
  bool operator==(const SplitRule&) const = default;
};

// The priority of the "vlink -> port" forwarders: their match (the vlink alone) is unique.
inline constexpr uint16_t kVlinkForwarderPriority = 1;

// Algorithm 2, generalised to rules with several outputs: each flowrule becomes one rule on the
// LSI of its input port (its match and modifications; outputs on the other LSI replaced by
// their vlink), and each vlink used gets one forwarder on the far LSI (match the vlink, output
// the port). Forwarders are emitted once per vlink and direction, not once per flowrule.
std::vector<SplitRule> splitRules(const graph::Graph& graph, const VlinkPlan& vlinks);

// The difference between the rules installed on one LSI and the rules wanted there, rules being
// the same OpenFlow rule when their input port, priority and match are equal (their key).
struct RuleDiff {
  std::vector<TsRule> install;   // wanted rules not installed exactly so (new or changed)
  std::vector<TsRule> replaced;  // installed rules that an `install` rule of the same key replaces
  std::vector<TsRule> remove;    // installed rules whose key is not wanted any more
  size_t unchanged = 0;          // wanted rules installed exactly so: left alone
};
RuleDiff diffRules(const std::vector<TsRule>& installed, const std::vector<TsRule>& wanted);
// Whether two rules are the same OpenFlow rule (input port, priority and match).
bool sameKey(const TsRule& a, const TsRule& b);

}  // namespace corch::network
