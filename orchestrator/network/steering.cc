#include "network/steering.h"

#include <algorithm>
#include <set>

namespace corch::network {

std::string_view toString(Side side) { return side == Side::Lsi0 ? "LSI-0" : "graph-LSI"; }

Result<Side> sideOf(const graph::Graph& graph, const graph::PortRef& port) {
  if (port.kind == graph::PortRef::Kind::SfPort) return Side::GraphLsi;
  const graph::Sap* sap = graph.findSap(port.sap_id);
  if (!sap) return Error(ErrorCode::InvalidArgument, "unknown SAP " + port.str());
  switch (sap->type) {
    case graph::SapType::Interface:
    case graph::SapType::Vlan:
      return Side::Lsi0;
    case graph::SapType::Gre:
    case graph::SapType::HostStack:
    case graph::SapType::Internal:
    case graph::SapType::Junction:
      return Side::GraphLsi;
    case graph::SapType::InternalPort:
      break;
  }
  return Error(
      ErrorCode::InvalidArgument,
      "SAP " + sap->id + " is of type internal-port, which only a graph template's graph may have");
}

Result<VlinkPlan> createVlinks(const graph::Graph& graph, const VlinkPlan* previous) {
  // The ports that need a vlink, in rule order (the order decides the indices of a first plan).
  std::vector<std::pair<graph::PortRef, Side>> needed;
  std::map<graph::PortRef, Side> seen;
  for (const auto& rule : graph.rules) {
    auto in_side = sideOf(graph, rule.port_in);
    if (!in_side) return std::move(in_side).error();
    for (const auto& out : rule.outputs) {
      auto out_side = sideOf(graph, out);
      if (!out_side) return std::move(out_side).error();
      if (*out_side == *in_side || seen.count(out)) continue;
      seen[out] = *out_side;
      needed.push_back({out, *out_side});
    }
  }
  VlinkPlan plan;
  // (index, far side) taken: each vlink carries one port in each direction.
  std::set<std::pair<uint32_t, Side>> taken;
  if (previous) {
    for (const auto& [port, side] : needed) {
      auto index = previous->vlink_of.find(port);
      auto old_side = previous->side_of.find(port);
      if (index == previous->vlink_of.end() || old_side == previous->side_of.end() ||
          old_side->second != side) {
        continue;
      }
      plan.vlink_of[port] = index->second;
      plan.side_of[port] = side;
      taken.insert({index->second, side});
    }
  }
  for (const auto& [port, side] : needed) {
    if (plan.vlink_of.count(port)) continue;
    uint32_t k = 0;
    while (taken.count({k, side})) ++k;
    plan.vlink_of[port] = k;
    plan.side_of[port] = side;
    taken.insert({k, side});
  }
  plan.count = previous ? previous->count : 0;
  for (const auto& [index, side] : taken) plan.count = std::max(plan.count, index + 1);
  return plan;
}

std::vector<SplitRule> splitRules(const graph::Graph& graph, const VlinkPlan& vlinks) {
  std::vector<SplitRule> out;
  std::set<std::pair<graph::PortRef, bool>> forwarded;  // (port, far side is graph) done
  std::vector<SplitRule> forwarders;
  for (size_t i = 0; i < graph.rules.size(); ++i) {
    const auto& rule = graph.rules[i];
    // The graph was validated and its vlinks planned: sides resolve.
    Side in_side = *sideOf(graph, rule.port_in);
    SplitRule main;
    main.side = in_side;
    main.flowrule_id = rule.id;
    main.flowrule_index = i;
    main.priority = rule.priority;
    main.in = Endpoint{Endpoint::Kind::Port, rule.port_in, 0};
    main.fields = rule.match;
    main.mods = rule.mods;
    for (const auto& port : rule.outputs) {
      Side out_side = *sideOf(graph, port);
      if (out_side == in_side) {
        main.outputs.push_back(Endpoint{Endpoint::Kind::Port, port, 0});
        continue;
      }
      uint32_t vlink = vlinks.vlink_of.at(port);
      main.outputs.push_back(Endpoint{Endpoint::Kind::Vlink, {}, vlink});
      if (forwarded.insert({port, out_side == Side::GraphLsi}).second) {
        SplitRule fwd;
        fwd.side = out_side;
        fwd.flowrule_id = rule.id;
        fwd.flowrule_index = i;
        fwd.vlink_forwarder = true;
        fwd.priority = kVlinkForwarderPriority;
        fwd.in = Endpoint{Endpoint::Kind::Vlink, {}, vlink};
        fwd.outputs.push_back(Endpoint{Endpoint::Kind::Port, port, 0});
        forwarders.push_back(std::move(fwd));
      }
    }
    out.push_back(std::move(main));
  }
  for (auto& fwd : forwarders) out.push_back(std::move(fwd));
  return out;
}

}  // namespace corch::network

namespace corch::network {

bool sameKey(const TsRule& a, const TsRule& b) {
  return a.in_port == b.in_port && a.priority == b.priority && a.fields == b.fields;
}

RuleDiff diffRules(const std::vector<TsRule>& installed, const std::vector<TsRule>& wanted) {
  RuleDiff d;
  for (const auto& w : wanted) {
    bool same = false;
    const TsRule* replaced = nullptr;
    for (const auto& i : installed) {
      if (!sameKey(i, w)) continue;
      if (i == w) {
        same = true;
      } else {
        replaced = &i;
      }
    }
    if (same) {
      ++d.unchanged;
      continue;
    }
    d.install.push_back(w);
    if (replaced) d.replaced.push_back(*replaced);
  }
  for (const auto& i : installed) {
    bool kept = false;
    for (const auto& w : wanted) kept = kept || sameKey(i, w);
    if (!kept) d.remove.push_back(i);
  }
  return d;
}

}  // namespace corch::network
