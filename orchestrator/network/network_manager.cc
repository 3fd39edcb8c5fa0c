#include "network/network_manager.h"

#include <algorithm>

#include "corch/log.h"

namespace corch::network {
namespace {

log::Logger lg("network");

}  // namespace

NetworkManager::NetworkManager(VSwitchDriver& driver, NetworkOptions options)
    : driver_(driver), options_(std::move(options)) {}

std::string NetworkManager::lsiName(uint32_t index) const {
  return options_.prefix + "-g" + std::to_string(index);
}

Result<void> NetworkManager::start() {
  auto existing = driver_.listLsis();
  if (!existing) return std::move(existing).error().context("cannot list LSIs");
  const std::string graph_prefix = options_.prefix + "-g";
  for (const auto& name : *existing) {
    if (name == options_.lsi0 || name.starts_with(graph_prefix)) {
      CORCH_LOG(lg, Info) << "removing stale LSI " << name << " left by an earlier run";
      CORCH_TRY(driver_.destroyLsi(name));
    }
  }
  LsiSpec spec;
  spec.name = options_.lsi0;
  spec.interfaces = options_.physical_ports;
  auto info = driver_.createLsi(spec);
  if (!info) return std::move(info).error().context("cannot create LSI-0 " + options_.lsi0);
  lsi0_ports_.clear();
  for (const auto& port : info->interfaces) lsi0_ports_[port.name] = port.of_port;
  CORCH_LOG(lg, Info) << "LSI-0 " << options_.lsi0 << " up with " << lsi0_ports_.size()
                      << " physical port(s)";
  return Ok();
}

Result<uint32_t> NetworkManager::lsi0Port(const std::string& ifname) const {
  auto it = lsi0_ports_.find(ifname);
  if (it == lsi0_ports_.end()) {
    return Error(ErrorCode::NotFound, "interface " + ifname + " is not a port of LSI-0");
  }
  return it->second;
}

Result<GraphNetworkPlan> NetworkManager::plan(
    const graph::Graph& graph, uint32_t index,
    const std::function<PortTechnology(const std::string&)>& technology,
    const PlanBase& base) const {
  std::vector<FieldError> errors;
  std::map<std::string, std::string> plan_sap_interfaces;
  if (index == 0 || index > kMaxGraphIndex) {
    return Error(ErrorCode::ResourceExhausted,
                 "no free graph index (at most " + std::to_string(kMaxGraphIndex) + " graphs)");
  }
  if (graph.sfs.size() > kMaxSfsPerGraph) {
    errors.push_back({"/sffg/SFs", "a graph has at most " + std::to_string(kMaxSfsPerGraph) +
                                       " SFs on this node"});
  }
  // SAPs: where they live, and whether their interface is one of LSI-0's.
  for (size_t i = 0; i < graph.saps.size(); ++i) {
    const graph::Sap& sap = graph.saps[i];
    std::string ptr = "/sffg/saps/" + std::to_string(i);
    auto side = sideOf(graph, graph::PortRef{graph::PortRef::Kind::Sap, sap.id, "", ""});
    if (!side) {
      errors.push_back({ptr + "/type", side.error().message()});
      continue;
    }
    if (sap.type == graph::SapType::Interface && !lsi0_ports_.count(sap.if_name)) {
      std::string known;
      for (const auto& [name, number] : lsi0_ports_) known += (known.empty() ? "" : ", ") + name;
      errors.push_back({ptr + "/interface/if-name",
                        "interface '" + sap.if_name + "' is not a physical port of this node (" +
                            (known.empty() ? "none configured" : "ports: " + known) + ")"});
    } else if (sap.type == graph::SapType::Interface) {
      plan_sap_interfaces[sap.id] = sap.if_name;
    } else {
      errors.push_back({ptr + "/type", "SAP type '" + std::string(graph::toString(sap.type)) +
                                           "' is not supported by this node yet"});
    }
  }
  if (!errors.empty()) {
    return Error(ErrorCode::Unsupported, "the graph's SAPs cannot be deployed here",
                 std::move(errors));
  }

  GraphNetworkPlan plan;
  plan.index = index;
  plan.lsi = lsiName(index);
  plan.sap_interfaces = std::move(plan_sap_interfaces);
  const GraphNetworkPlan* previous = base.previous;
  auto vlinks = createVlinks(graph, previous ? &previous->vlinks : nullptr);
  if (!vlinks) return std::move(vlinks).error();
  plan.vlinks = std::move(*vlinks);
  plan.rules = splitRules(graph, plan.vlinks);

  // Stable numbers: kept from the previous version, new ones the smallest used by neither
  // version (a removed SF's ports and a removed flowrule's rules still exist while the update
  // builds the new ones).
  std::set<uint32_t> sf_taken;
  std::set<uint32_t> rule_taken;
  if (previous) {
    for (const auto& [id, n] : previous->sf_numbers) sf_taken.insert(n);
    for (const auto& [id, n] : previous->flowrule_numbers) rule_taken.insert(n);
  }
  for (const auto& sf : graph.sfs) {
    if (!previous || base.renumber.count(sf.id)) continue;
    auto it = previous->sf_numbers.find(sf.id);
    if (it != previous->sf_numbers.end()) plan.sf_numbers[sf.id] = it->second;
  }
  for (const auto& rule : graph.rules) {
    if (!previous) continue;
    auto it = previous->flowrule_numbers.find(rule.id);
    if (it != previous->flowrule_numbers.end()) plan.flowrule_numbers[rule.id] = it->second;
  }
  uint32_t next_sf = 0;
  for (size_t s = 0; s < graph.sfs.size(); ++s) {
    const graph::Sf& sf = graph.sfs[s];
    if (plan.sf_numbers.count(sf.id)) continue;
    while (sf_taken.count(next_sf)) ++next_sf;
    if (next_sf >= kMaxSfsPerGraph) {
      errors.push_back({"/sffg/SFs/" + std::to_string(s),
                        "no free SF number on this node (at most " +
                            std::to_string(kMaxSfsPerGraph) +
                            " SFs per graph, counting those an update replaces)"});
      continue;
    }
    plan.sf_numbers[sf.id] = next_sf;
    sf_taken.insert(next_sf);
  }
  uint32_t next_rule = 1;
  for (const auto& rule : graph.rules) {
    if (plan.flowrule_numbers.count(rule.id)) continue;
    while (rule_taken.count(next_rule)) ++next_rule;
    plan.flowrule_numbers[rule.id] = next_rule;
    rule_taken.insert(next_rule);
  }
  for (auto& rule : plan.rules) {
    if (!rule.vlink_forwarder) rule.number = plan.flowrule_numbers.at(rule.flowrule_id);
  }

  for (size_t s = 0; s < graph.sfs.size(); ++s) {
    const graph::Sf& sf = graph.sfs[s];
    if (sf.ports.size() > kMaxPortsPerSf) {
      errors.push_back({"/sffg/SFs/" + std::to_string(s) + "/ports",
                        "an SF has at most " + std::to_string(kMaxPortsPerSf) + " ports"});
      continue;
    }
    auto number = plan.sf_numbers.find(sf.id);
    if (number == plan.sf_numbers.end()) continue;  // reported above
    for (size_t p = 0; p < sf.ports.size(); ++p) {
      // "cg<graph>s<sf>p<port>": at most 13 characters, so drivers can suffix the peer's name.
      PortSpec spec{"cg" + std::to_string(index) + "s" + std::to_string(number->second) + "p" +
                        std::to_string(p),
                    technology(sf.id)};
      plan.sf_ports.push_back(SfPortPlan{sf.id, sf.ports[p].id, std::move(spec)});
    }
  }
  if (!errors.empty()) {
    return Error(ErrorCode::Unsupported, "the graph is too large for this node", std::move(errors));
  }

  // Ask the driver whether it can express every rule, before anything is built.
  for (const auto& rule : plan.rules) {
    if (rule.vlink_forwarder) continue;
    TsRule ts;
    ts.priority = rule.priority;
    ts.fields = rule.fields;
    ts.mods = rule.mods;
    auto checked = driver_.checkRules({ts});
    if (!checked) {
      errors.push_back(
          {"/sffg/flowrules/" + std::to_string(rule.flowrule_index), checked.error().message()});
    }
  }
  if (!errors.empty()) {
    return Error(ErrorCode::Unsupported, "the vSwitch cannot install some flowrules",
                 std::move(errors));
  }
  // Refuse early a rule another graph already has on LSI-0 (checked again at installation).
  GraphNetwork no_ports;
  std::vector<TsRule> lsi0_rules;
  for (const auto& rule : plan.rules) {
    if (rule.side != Side::Lsi0 || rule.vlink_forwarder ||
        rule.in.port.kind != graph::PortRef::Kind::Sap) {
      continue;
    }
    auto in = lsi0Port(plan.sap_interfaces.at(rule.in.port.sap_id));
    if (!in) continue;
    TsRule ts;
    ts.cookie = cookieOf(index, rule);
    ts.priority = rule.priority;
    ts.in_port = *in;
    ts.fields = rule.fields;
    lsi0_rules.push_back(ts);
  }
  CORCH_TRY(checkLsi0Conflicts(plan, lsi0_rules));
  return plan;
}

Result<GraphNetwork> NetworkManager::createGraphLsi(const GraphNetworkPlan& plan) {
  LsiSpec spec;
  spec.name = plan.lsi;
  for (const auto& port : plan.sf_ports) spec.ports.push_back(port.spec);
  spec.vlink_peer = options_.lsi0;
  spec.vlink_count = plan.vlinks.count;
  auto info = driver_.createLsi(spec);
  if (!info) return std::move(info).error().context("cannot create graph-LSI " + plan.lsi);
  GraphNetwork network;
  for (size_t i = 0; i < plan.sf_ports.size() && i < info->ports.size(); ++i) {
    network.sf_ports[{plan.sf_ports[i].sf_id, plan.sf_ports[i].port_id}] = info->ports[i];
  }
  network.lsi = std::move(*info);
  return network;
}

Result<void> NetworkManager::destroyGraphLsi(const GraphNetworkPlan& plan) {
  auto done = driver_.destroyLsi(plan.lsi);
  if (!done) return std::move(done).error().context("cannot destroy graph-LSI " + plan.lsi);
  return Ok();
}

uint64_t NetworkManager::cookieOf(uint32_t graph_index, const SplitRule& rule) {
  // Flowrules are numbered from 1 (stable across updates); forwarders carry their vlink with the
  // top bit set.
  uint64_t low = rule.vlink_forwarder ? 0x80000000u | rule.in.vlink : rule.number;
  return (static_cast<uint64_t>(graph_index) << 32) | low;
}

Result<std::vector<TsRule>> NetworkManager::resolveRules(const GraphNetworkPlan& plan,
                                                         const GraphNetwork& network,
                                                         Side side) const {
  auto number = [&](const Endpoint& end) -> Result<uint32_t> {
    if (end.kind == Endpoint::Kind::Vlink) {
      if (end.vlink >= network.lsi.vlinks.size()) {
        return Error(ErrorCode::Internal,
                     "vlink " + std::to_string(end.vlink) + " of " + plan.lsi + " is missing");
      }
      const VlinkInfo& v = network.lsi.vlinks[end.vlink];
      return side == Side::Lsi0 ? v.port_a : v.port_b;
    }
    if (end.port.kind == graph::PortRef::Kind::SfPort) {
      auto it = network.sf_ports.find({end.port.sf_id, end.port.port_id});
      if (it == network.sf_ports.end()) {
        return Error(ErrorCode::Internal, "port " + end.port.str() + " is missing");
      }
      return it->second.of_port;
    }
    auto it = plan.sap_interfaces.find(end.port.sap_id);
    if (it == plan.sap_interfaces.end()) {
      return Error(ErrorCode::Internal, "SAP " + end.port.sap_id + " has no port");
    }
    return lsi0Port(it->second);
  };
  std::vector<TsRule> out;
  for (const auto& rule : plan.rules) {
    if (rule.side != side) continue;
    TsRule ts;
    ts.cookie = cookieOf(plan.index, rule);
    ts.priority = rule.priority;
    ts.fields = rule.fields;
    ts.mods = rule.mods;
    auto in = number(rule.in);
    if (!in) return std::move(in).error();
    ts.in_port = *in;
    for (const auto& end : rule.outputs) {
      auto port = number(end);
      if (!port) return std::move(port).error();
      ts.outputs.push_back(*port);
    }
    out.push_back(std::move(ts));
  }
  return out;
}

Result<void> NetworkManager::checkLsi0Conflicts(const GraphNetworkPlan& plan,
                                                const std::vector<TsRule>& rules) const {
  std::lock_guard lock(owners_mu_);
  std::vector<FieldError> errors;
  for (const auto& rule : rules) {
    Lsi0Key key{rule.in_port, rule.priority, rule.fields};
    for (const auto& [owned, graph_index] : lsi0_owners_) {
      if (owned == key && graph_index != plan.index) {
        // The cookie carries the flowrule's number; the pointer wants its position.
        size_t flowrule = 0;
        for (const auto& r : plan.rules) {
          if (!r.vlink_forwarder && cookieOf(plan.index, r) == rule.cookie) {
            flowrule = r.flowrule_index;
          }
        }
        errors.push_back(
            {"/sffg/flowrules/" + std::to_string(flowrule),
             "another graph (" + lsiName(graph_index) +
                 ") already has a rule with this input port, priority and match on LSI-0; "
                 "give this one another priority or a narrower match"});
        break;
      }
    }
  }
  if (!errors.empty()) {
    return Error(ErrorCode::Conflict, "the graph's rules collide with another graph's on LSI-0",
                 std::move(errors));
  }
  return Ok();
}

Result<void> NetworkManager::installGraphRules(const GraphNetworkPlan& plan,
                                               const GraphNetwork& network, Side side) {
  auto rules = resolveRules(plan, network, side);
  if (!rules) return std::move(rules).error();
  const std::string& lsi = side == Side::Lsi0 ? options_.lsi0 : plan.lsi;
  if (side == Side::Lsi0) {
    // Check and claim in one step, so that two graphs deployed at once cannot both pass.
    std::vector<TsRule> owned;
    for (const auto& r : *rules) {
      if (!(r.cookie & 0x80000000u)) owned.push_back(r);
    }
    CORCH_TRY(checkLsi0Conflicts(plan, owned));
    claimLsi0(plan.index, owned);
  }
  auto done = driver_.installRules(lsi, *rules);
  if (!done && side == Side::Lsi0) releaseLsi0(plan.index);
  if (!done) {
    return std::move(done).error().context("cannot install the rules of graph-LSI " + plan.lsi +
                                           " on " + lsi);
  }
  return Ok();
}

Result<void> NetworkManager::removeGraphRules(const GraphNetworkPlan& plan, Side side) {
  const std::string& lsi = side == Side::Lsi0 ? options_.lsi0 : plan.lsi;
  uint64_t cookie = static_cast<uint64_t>(plan.index) << 32;
  auto done = driver_.removeRulesByCookie(lsi, cookie, kGraphCookieMask);
  if (!done) return std::move(done).error().context("cannot remove rules of " + plan.lsi);
  if (side == Side::Lsi0) releaseLsi0(plan.index);
  return Ok();
}

Result<std::vector<VlinkInfo>> NetworkManager::addVlinks(const GraphNetworkPlan& plan,
                                                         const GraphNetwork& network) {
  const auto have = static_cast<uint32_t>(network.lsi.vlinks.size());
  if (plan.vlinks.count <= have) return std::vector<VlinkInfo>{};
  // Names unlike createLsi's ("<lsi>-vl<k>a") and unique per update: the first new index.
  auto made = driver_.connectLsis(options_.lsi0, plan.lsi, plan.vlinks.count - have,
                                  plan.lsi + "-vx" + std::to_string(have) + "-");
  if (!made) return std::move(made).error().context("cannot add vlinks to " + plan.lsi);
  return made;
}

Result<void> NetworkManager::removeVlinks(const std::vector<VlinkInfo>& vlinks) {
  if (vlinks.empty()) return Ok();
  return driver_.destroyVlinks(vlinks);
}

Result<std::vector<PortInfo>> NetworkManager::createSfPorts(const GraphNetworkPlan& plan,
                                                            const std::vector<SfPortPlan>& ports) {
  if (ports.empty()) return std::vector<PortInfo>{};
  std::vector<PortSpec> specs;
  for (const auto& p : ports) specs.push_back(p.spec);
  auto made = driver_.createPorts(plan.lsi, specs);
  if (!made) return std::move(made).error().context("cannot create SF ports on " + plan.lsi);
  if (made->size() != ports.size()) {
    return Error(ErrorCode::Internal, "the vSwitch made " + std::to_string(made->size()) + " of " +
                                          std::to_string(ports.size()) + " SF ports on " +
                                          plan.lsi);
  }
  return made;
}

Result<void> NetworkManager::destroySfPorts(const GraphNetworkPlan& plan,
                                            const std::vector<std::string>& names) {
  if (names.empty()) return Ok();
  auto done = driver_.destroyPorts(plan.lsi, names);
  if (!done) return std::move(done).error().context("cannot destroy SF ports of " + plan.lsi);
  return Ok();
}

Result<void> NetworkManager::installRules(const GraphNetworkPlan& plan, Side side,
                                          const std::vector<TsRule>& rules) {
  if (rules.empty()) return Ok();
  const std::string& lsi = side == Side::Lsi0 ? options_.lsi0 : plan.lsi;
  std::vector<TsRule> owned;
  if (side == Side::Lsi0) {
    for (const auto& r : rules) {
      if (!(r.cookie & 0x80000000u)) owned.push_back(r);
    }
    CORCH_TRY(checkLsi0Conflicts(plan, owned));
    claimLsi0(plan.index, owned);
  }
  auto done = driver_.installRules(lsi, rules);
  if (!done) {
    if (side == Side::Lsi0) releaseLsi0(plan.index, owned);
    return std::move(done).error().context("cannot install rules of graph-LSI " + plan.lsi +
                                           " on " + lsi);
  }
  return Ok();
}

Result<void> NetworkManager::removeRules(const GraphNetworkPlan& plan, Side side,
                                         const std::vector<TsRule>& rules) {
  if (rules.empty()) return Ok();
  const std::string& lsi = side == Side::Lsi0 ? options_.lsi0 : plan.lsi;
  auto done = driver_.removeRules(lsi, rules);
  if (!done) {
    return std::move(done).error().context("cannot remove rules of graph-LSI " + plan.lsi +
                                           " from " + lsi);
  }
  if (side == Side::Lsi0) releaseLsi0(plan.index, rules);
  return Ok();
}

void NetworkManager::claimLsi0(uint32_t graph_index, const std::vector<TsRule>& rules) {
  std::lock_guard lock(owners_mu_);
  for (const auto& r : rules) {
    std::pair<Lsi0Key, uint32_t> owner{{r.in_port, r.priority, r.fields}, graph_index};
    if (std::find(lsi0_owners_.begin(), lsi0_owners_.end(), owner) == lsi0_owners_.end()) {
      lsi0_owners_.push_back(std::move(owner));
    }
  }
}

void NetworkManager::releaseLsi0(uint32_t graph_index, const std::vector<TsRule>& rules) {
  std::lock_guard lock(owners_mu_);
  for (const auto& r : rules) {
    Lsi0Key key{r.in_port, r.priority, r.fields};
    std::erase_if(lsi0_owners_, [&](const auto& owner) {
      return owner.second == graph_index && owner.first == key;
    });
  }
}

void NetworkManager::releaseLsi0(uint32_t graph_index) {
  std::lock_guard lock(owners_mu_);
  std::erase_if(lsi0_owners_, [&](const auto& owner) { return owner.second == graph_index; });
}

}  // namespace corch::network
