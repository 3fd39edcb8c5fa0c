// Algorithms 1 and 2 (paper 5.4.1) as pure functions, and the network manager on the fake switch.
#define BOOST_TEST_MODULE steering
#include <boost/test/unit_test.hpp>

#include "corch/driver_registry.h"
#include "network/network_manager.h"
#include "network/steering.h"

using namespace corch;
using namespace corch::network;
using graph::PortRef;

namespace {

PortRef sap(const std::string& id) { return PortRef{PortRef::Kind::Sap, id, "", ""}; }
PortRef sfp(const std::string& sf, const std::string& port) {
  return PortRef{PortRef::Kind::SfPort, "", sf, port};
}
graph::Sap interfaceSap(const std::string& id, const std::string& ifname) {
  graph::Sap s;
  s.id = id;
  s.type = graph::SapType::Interface;
  s.if_name = ifname;
  return s;
}
graph::Sf sf(const std::string& id, const std::string& name, std::vector<std::string> ports) {
  graph::Sf out;
  out.id = id;
  out.name = name;
  for (auto& p : ports) out.ports.push_back({p, ""});
  return out;
}
graph::FlowRule rule(const std::string& id, PortRef in, std::vector<PortRef> outs,
                     uint16_t priority = 10) {
  graph::FlowRule r;
  r.id = id;
  r.priority = priority;
  r.port_in = std::move(in);
  r.outputs = std::move(outs);
  return r;
}
Endpoint port(PortRef p) { return Endpoint{Endpoint::Kind::Port, std::move(p), 0}; }
Endpoint vlink(uint32_t k) { return Endpoint{Endpoint::Kind::Vlink, {}, k}; }

// The paper's Figure 8, as far as its text describes it: eth0 -> NAT port 1 (rule 1, across
// vlink 1), NAT port 2 -> eth1 (rule 2, on the same vlink as rule 1), and a rule that stays on
// one LSI (rule 3: eth1 -> eth0).
graph::Graph figure8() {
  graph::Graph g;
  g.id = "fig8";
  g.saps = {interfaceSap("eth0", "eth0"), interfaceSap("eth1", "eth1")};
  g.sfs = {sf("nat", "nat", {"1", "2"})};
  g.rules = {rule("1", sap("eth0"), {sfp("nat", "1")}), rule("2", sfp("nat", "2"), {sap("eth1")}),
             rule("3", sap("eth1"), {sap("eth0")})};
  return g;
}

}  // namespace

BOOST_AUTO_TEST_CASE(table4_sides) {
  graph::Graph g = figure8();
  graph::Sap vlan;
  vlan.id = "v";
  vlan.type = graph::SapType::Vlan;
  graph::Sap gre;
  gre.id = "g";
  gre.type = graph::SapType::Gre;
  graph::Sap host;
  host.id = "h";
  host.type = graph::SapType::HostStack;
  graph::Sap internal;
  internal.id = "i";
  internal.type = graph::SapType::Internal;
  graph::Sap inner;
  inner.id = "j";
  inner.type = graph::SapType::Junction;
  graph::Sap unspliced;
  unspliced.id = "ip";
  unspliced.type = graph::SapType::InternalPort;
  g.saps.insert(g.saps.end(), {vlan, gre, host, internal, inner, unspliced});
  BOOST_TEST((*sideOf(g, sap("eth0")) == Side::Lsi0));
  BOOST_TEST((*sideOf(g, sap("v")) == Side::Lsi0));
  BOOST_TEST((*sideOf(g, sap("g")) == Side::GraphLsi));
  BOOST_TEST((*sideOf(g, sap("h")) == Side::GraphLsi));
  BOOST_TEST((*sideOf(g, sfp("nat", "1")) == Side::GraphLsi));
  BOOST_TEST((*sideOf(g, sap("i")) == Side::GraphLsi));
  BOOST_TEST((*sideOf(g, sap("j")) == Side::GraphLsi));
  BOOST_TEST((sideOf(g, sap("ip")).error().code() == ErrorCode::InvalidArgument));
}

BOOST_AUTO_TEST_CASE(figure8_vlinks_and_split) {
  graph::Graph g = figure8();
  auto plan = createVlinks(g);
  BOOST_REQUIRE(plan.ok());
  // One vlink carries eth0 -> NAT:1 towards the graph-LSI and NAT:2 -> eth1 towards LSI-0.
  BOOST_TEST(plan->count == 1u);
  BOOST_TEST(plan->vlink_of.at(sfp("nat", "1")) == 0u);
  BOOST_TEST(plan->vlink_of.at(sap("eth1")) == 0u);
  BOOST_TEST(plan->vlink_of.size() == 2u);

  auto rules = splitRules(g, *plan);
  BOOST_REQUIRE_EQUAL(rules.size(), 5u);
  // Rule 1: LSI-0 matches eth0 and sends on vlink 0; the graph-LSI forwards vlink 0 to NAT:1.
  BOOST_TEST((rules[0].side == Side::Lsi0));
  BOOST_TEST((rules[0].in == port(sap("eth0"))));
  BOOST_TEST((rules[0].outputs == std::vector<Endpoint>{vlink(0)}));
  // Rule 2: the graph-LSI matches NAT:2 and sends on vlink 0; LSI-0 forwards vlink 0 to eth1.
  BOOST_TEST((rules[1].side == Side::GraphLsi));
  BOOST_TEST((rules[1].in == port(sfp("nat", "2"))));
  BOOST_TEST((rules[1].outputs == std::vector<Endpoint>{vlink(0)}));
  // Rule 3 stays on LSI-0 unchanged.
  BOOST_TEST((rules[2].side == Side::Lsi0));
  BOOST_TEST((rules[2].in == port(sap("eth1"))));
  BOOST_TEST((rules[2].outputs == std::vector<Endpoint>{port(sap("eth0"))}));
  // The forwarders.
  BOOST_TEST((rules[3].side == Side::GraphLsi && rules[3].vlink_forwarder));
  BOOST_TEST((rules[3].in == vlink(0)));
  BOOST_TEST((rules[3].outputs == std::vector<Endpoint>{port(sfp("nat", "1"))}));
  BOOST_TEST((rules[4].side == Side::Lsi0 && rules[4].vlink_forwarder));
  BOOST_TEST((rules[4].in == vlink(0)));
  BOOST_TEST((rules[4].outputs == std::vector<Endpoint>{port(sap("eth1"))}));
}

BOOST_AUTO_TEST_CASE(match_and_modifications_stay_on_the_input_side) {
  graph::Graph g = figure8();
  g.rules[0].match.ether_type = 0x0800;
  g.rules[0].match.dest_port = 80;
  g.rules[0].match.protocol = 6;
  g.rules[0].mods.dec_ttl = true;
  auto plan = createVlinks(g);
  auto rules = splitRules(g, *plan);
  BOOST_TEST((rules[0].fields == g.rules[0].match));
  BOOST_TEST(rules[0].mods.dec_ttl);
  BOOST_TEST(rules[0].priority == 10u);
  BOOST_TEST((rules[3].fields == MatchFields{}));
  BOOST_TEST(rules[3].mods.empty());
}

// One graph outputs to two ports of the same SF: a vlink per distinct port, not per SF
// (un-orchestrator issue 112).
BOOST_AUTO_TEST_CASE(two_ports_of_one_sf_get_two_vlinks) {
  graph::Graph g;
  g.saps = {interfaceSap("a", "eth0"), interfaceSap("b", "eth1")};
  g.sfs = {sf("fw", "firewall", {"in", "out"})};
  g.rules = {rule("1", sap("a"), {sfp("fw", "in")}), rule("2", sap("b"), {sfp("fw", "out")}),
             rule("3", sfp("fw", "in"), {sap("a")}), rule("4", sfp("fw", "out"), {sap("b")}),
             // A second rule to an already linked port reuses its vlink.
             rule("5", sap("a"), {sfp("fw", "in")}, 20)};
  auto plan = createVlinks(g);
  BOOST_REQUIRE(plan.ok());
  BOOST_TEST(plan->count == 2u);
  BOOST_TEST(plan->vlink_of.at(sfp("fw", "in")) == 0u);
  BOOST_TEST(plan->vlink_of.at(sfp("fw", "out")) == 1u);
  BOOST_TEST(plan->vlink_of.at(sap("a")) == 0u);
  BOOST_TEST(plan->vlink_of.at(sap("b")) == 1u);
  auto rules = splitRules(g, *plan);
  size_t forwarders = 0;
  for (const auto& r : rules) forwarders += r.vlink_forwarder;
  BOOST_TEST(forwarders == 4u);  // one per vlink and direction, not one per flowrule
  BOOST_TEST(rules.size() == 9u);
}

BOOST_AUTO_TEST_CASE(multiple_outputs_across_both_lsis) {
  graph::Graph g;
  g.saps = {interfaceSap("a", "eth0"), interfaceSap("b", "eth1")};
  g.sfs = {sf("s1", "bridge", {"1", "2"}), sf("s2", "bridge", {"1", "2"})};
  g.rules = {rule("1", sap("a"), {sap("b"), sfp("s1", "1"), sfp("s2", "1")}),
             rule("2", sfp("s1", "2"), {sfp("s2", "2"), sap("a")})};
  auto plan = createVlinks(g);
  BOOST_TEST(plan->count == 2u);
  auto rules = splitRules(g, *plan);
  BOOST_TEST((rules[0].outputs == std::vector<Endpoint>{port(sap("b")), vlink(0), vlink(1)}));
  BOOST_TEST((rules[1].outputs == std::vector<Endpoint>{port(sfp("s2", "2")), vlink(0)}));
}

BOOST_AUTO_TEST_CASE(drop_rule_has_no_outputs_and_no_vlink) {
  graph::Graph g = figure8();
  g.rules.push_back(rule("4", sap("eth0"), {}, 5));
  g.rules.back().drop = true;
  auto plan = createVlinks(g);
  BOOST_TEST(plan->count == 1u);
  auto rules = splitRules(g, *plan);
  BOOST_TEST(rules[3].outputs.empty());
  BOOST_TEST((rules[3].side == Side::Lsi0));
}

// The network manager on the fake switch: the split rules get the right port numbers.
BOOST_AUTO_TEST_CASE(network_manager_on_fake_switch) {
  DriverRegistry registry;
  registerBuiltinDrivers(registry);
  auto driver = registry.makeVSwitch("fake", {});
  BOOST_REQUIRE(driver.ok());
  NetworkManager nm(**driver, NetworkOptions{"lsi0", "corch", {"eth0", "eth1"}});
  BOOST_REQUIRE(nm.start().ok());

  graph::Graph g = figure8();
  auto plan = nm.plan(g, 7, [](const std::string&) { return PortTechnology::Veth; });
  BOOST_REQUIRE(plan.ok());
  BOOST_TEST(plan->lsi == "corch-g7");
  BOOST_TEST(plan->sf_ports.size() == 2u);
  BOOST_TEST(plan->sf_ports[0].spec.name == "cg7s0p0");
  auto net = nm.createGraphLsi(*plan);
  BOOST_REQUIRE(net.ok());
  BOOST_REQUIRE(nm.installGraphRules(*plan, *net, Side::GraphLsi).ok());
  BOOST_REQUIRE(nm.installGraphRules(*plan, *net, Side::Lsi0).ok());

  auto lsi0 = (*driver)->dumpRules("lsi0");
  BOOST_REQUIRE(lsi0.ok());
  BOOST_TEST(lsi0->size() == 3u);  // rule 1, rule 3, forwarder to eth1
  uint32_t eth0 = *(*driver)->portNumber("lsi0", "eth0");
  uint32_t eth1 = *(*driver)->portNumber("lsi0", "eth1");
  uint32_t vl_a = net->lsi.vlinks.at(0).port_a;
  BOOST_TEST((*lsi0)[0].in_port == eth0);
  BOOST_TEST(((*lsi0)[0].outputs == std::vector<uint32_t>{vl_a}));
  BOOST_TEST(((*lsi0)[0].cookie >> 32) == 7u);
  BOOST_TEST((*lsi0)[2].in_port == vl_a);
  BOOST_TEST(((*lsi0)[2].outputs == std::vector<uint32_t>{eth1}));

  // Removing by cookie removes exactly this graph's rules.
  BOOST_REQUIRE(nm.removeGraphRules(*plan, Side::Lsi0).ok());
  BOOST_TEST((*driver)->dumpRules("lsi0")->empty());
  BOOST_REQUIRE(nm.destroyGraphLsi(*plan).ok());
  BOOST_TEST((*(*driver)->listLsis() == std::vector<std::string>{"lsi0"}));
}

BOOST_AUTO_TEST_CASE(network_manager_refuses_unknown_interface_and_unsupported_saps) {
  DriverRegistry registry;
  registerBuiltinDrivers(registry);
  auto driver = registry.makeVSwitch("fake", {});
  NetworkManager nm(**driver, NetworkOptions{"lsi0", "corch", {"eth0"}});
  BOOST_REQUIRE(nm.start().ok());
  graph::Graph g = figure8();  // eth1 is not a port of this node
  auto plan = nm.plan(g, 1, [](const std::string&) { return PortTechnology::Veth; });
  BOOST_REQUIRE(!plan.ok());
  BOOST_TEST((plan.error().code() == ErrorCode::Unsupported));
  BOOST_REQUIRE_EQUAL(plan.error().fields().size(), 1u);
  BOOST_TEST(plan.error().fields()[0].pointer == "/sffg/saps/1/interface/if-name");
}

// Updates: Algorithm 1 given the deployed plan keeps the vlink of every port that still needs
// one, and a new port takes a free index in its direction.
BOOST_AUTO_TEST_CASE(vlinks_are_stable_across_updates) {
  graph::Graph g;
  g.saps = {interfaceSap("a", "eth0"), interfaceSap("b", "eth1")};
  g.sfs = {sf("s1", "bridge", {"1", "2"})};
  g.rules = {rule("1", sap("a"), {sfp("s1", "1")}), rule("2", sfp("s1", "2"), {sap("b")}),
             rule("3", sap("b"), {sfp("s1", "2")}), rule("4", sfp("s1", "1"), {sap("a")})};
  auto before = createVlinks(g);
  BOOST_REQUIRE(before.ok());
  BOOST_TEST(before->count == 2u);

  // A new SF reached first in rule order: without the previous plan it would take vlink 0.
  graph::Graph after = g;
  after.sfs.insert(after.sfs.begin(), sf("s0", "bridge", {"1", "2"}));
  after.rules.insert(after.rules.begin(), rule("0", sap("a"), {sfp("s0", "1")}, 20));
  auto fresh = createVlinks(after);
  BOOST_TEST(fresh->vlink_of.at(sfp("s0", "1")) == 0u);
  auto kept = createVlinks(after, &*before);
  BOOST_REQUIRE(kept.ok());
  for (const auto& [port, index] : before->vlink_of) BOOST_TEST(kept->vlink_of.at(port) == index);
  BOOST_TEST(kept->vlink_of.at(sfp("s0", "1")) == 2u);
  BOOST_TEST(kept->count == 3u);

  // Removing the first SF's rules frees its vlinks, but the count does not shrink.
  graph::Graph smaller = after;
  smaller.rules.erase(smaller.rules.begin() + 1, smaller.rules.end());
  auto shrunk = createVlinks(smaller, &*kept);
  BOOST_TEST(shrunk->vlink_of.size() == 1u);
  BOOST_TEST(shrunk->vlink_of.at(sfp("s0", "1")) == 2u);
  BOOST_TEST(shrunk->count == 3u);
  // A port then needing a vlink in a freed direction reuses the smallest free index.
  smaller.rules.push_back(rule("9", sfp("s1", "2"), {sap("b")}));
  auto reused = createVlinks(smaller, &*shrunk);
  BOOST_TEST(reused->vlink_of.at(sap("b")) == 0u);
  BOOST_TEST(reused->count == 3u);
}

// Cookies and SF port names come from numbers kept across updates, not from positions.
BOOST_AUTO_TEST_CASE(cookies_and_port_names_are_stable_across_updates) {
  DriverRegistry registry;
  registerBuiltinDrivers(registry);
  auto driver = registry.makeVSwitch("fake", {});
  NetworkManager nm(**driver, NetworkOptions{"lsi0", "corch", {"eth0", "eth1"}});
  BOOST_REQUIRE(nm.start().ok());
  auto veth = [](const std::string&) { return PortTechnology::Veth; };

  graph::Graph g = figure8();
  auto before = nm.plan(g, 3, veth);
  BOOST_REQUIRE(before.ok());
  BOOST_TEST(before->flowrule_numbers.at("1") == 1u);
  BOOST_TEST(before->flowrule_numbers.at("3") == 3u);
  BOOST_TEST(before->sf_numbers.at("nat") == 0u);

  // A new SF and a new flowrule inserted first; flowrule 2 removed.
  graph::Graph after = g;
  after.sfs.insert(after.sfs.begin(), sf("fw", "firewall", {"in", "out"}));
  after.rules.erase(after.rules.begin() + 1);
  after.rules.insert(after.rules.begin(), rule("0", sfp("fw", "in"), {sfp("fw", "out")}));
  auto plan = nm.plan(after, 3, veth, PlanBase{&*before, {}});
  BOOST_REQUIRE(plan.ok());
  BOOST_TEST(plan->flowrule_numbers.at("1") == 1u);
  BOOST_TEST(plan->flowrule_numbers.at("3") == 3u);
  BOOST_TEST(plan->flowrule_numbers.at("0") == 4u);  // 2 is still installed during the update
  BOOST_TEST(plan->sf_numbers.at("nat") == 0u);
  BOOST_TEST(plan->sf_numbers.at("fw") == 1u);
  for (const auto& p : plan->sf_ports) {
    if (p.sf_id == "nat") BOOST_TEST(p.spec.name.starts_with("cg3s0p"));
    if (p.sf_id == "fw") BOOST_TEST(p.spec.name.starts_with("cg3s1p"));
  }
  for (const auto& r : plan->rules) {
    if (r.vlink_forwarder) continue;
    BOOST_TEST(NetworkManager::cookieOf(3, r) ==
               ((uint64_t{3} << 32) | plan->flowrule_numbers.at(r.flowrule_id)));
  }
  // An SF that is rebuilt takes a new number, so its new ports can exist next to its old ones.
  auto renumbered = nm.plan(after, 3, veth, PlanBase{&*before, {"nat"}});
  BOOST_REQUIRE(renumbered.ok());
  BOOST_TEST(renumbered->sf_numbers.at("nat") == 2u);
}

BOOST_AUTO_TEST_CASE(rule_diff_by_key) {
  auto ts = [](uint32_t in, uint16_t priority, uint32_t out) {
    TsRule r;
    r.cookie = in;
    r.priority = priority;
    r.in_port = in;
    r.outputs = {out};
    return r;
  };
  std::vector<TsRule> installed = {ts(1, 10, 2), ts(2, 10, 1), ts(3, 10, 4)};
  std::vector<TsRule> wanted = {ts(1, 10, 2), ts(2, 10, 5), ts(6, 10, 1)};
  RuleDiff d = diffRules(installed, wanted);
  BOOST_TEST(d.unchanged == 1u);
  BOOST_TEST((d.install == std::vector<TsRule>{ts(2, 10, 5), ts(6, 10, 1)}));
  BOOST_TEST((d.replaced == std::vector<TsRule>{ts(2, 10, 1)}));
  BOOST_TEST((d.remove == std::vector<TsRule>{ts(3, 10, 4)}));
  BOOST_TEST(diffRules(wanted, wanted).install.empty());
}
