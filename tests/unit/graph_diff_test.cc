// The pure diff of two versions of a graph (graph/diff.h): parts are matched by id.
#define BOOST_TEST_MODULE graph_diff
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "graph/diff.h"

using namespace corch;
using namespace corch::graph;

namespace {

using Ids = std::vector<std::string>;

PortRef sap(const std::string& id) { return PortRef{PortRef::Kind::Sap, id, "", ""}; }
PortRef sfp(const std::string& sf, const std::string& port) {
  return PortRef{PortRef::Kind::SfPort, "", sf, port};
}

Sf bridge(const std::string& id, Ids ports = {"1", "2"}) {
  Sf s;
  s.id = id;
  s.name = "bridge";
  for (auto& p : ports) s.ports.push_back({p, ""});
  return s;
}

FlowRule rule(const std::string& id, PortRef in, PortRef out, uint16_t priority = 10) {
  FlowRule r;
  r.id = id;
  r.priority = priority;
  r.port_in = std::move(in);
  r.outputs = {std::move(out)};
  return r;
}

Graph base() {
  Graph g;
  g.id = "g";
  g.name = "chain";
  Sap a;
  a.id = "a";
  a.if_name = "eth0";
  Sap b = a;
  b.id = "b";
  b.if_name = "eth1";
  g.saps = {a, b};
  g.sfs = {bridge("br1")};
  g.rules = {rule("1", sap("a"), sfp("br1", "1")), rule("2", sfp("br1", "2"), sap("b")),
             rule("3", sap("b"), sfp("br1", "2")), rule("4", sfp("br1", "1"), sap("a"))};
  return g;
}

}  // namespace

BOOST_AUTO_TEST_CASE(same_graph_no_change) {
  GraphDiff d = diff(base(), base());
  BOOST_TEST(!d.deploymentChanged());
  BOOST_TEST(d.describe().empty());
  BOOST_TEST((d.sfs_kept == Ids{"br1"}));
}

BOOST_AUTO_TEST_CASE(reordered_lists_are_no_change) {
  Graph after = base();
  std::reverse(after.rules.begin(), after.rules.end());
  std::reverse(after.saps.begin(), after.saps.end());
  BOOST_TEST(!diff(base(), after).deploymentChanged());
}

BOOST_AUTO_TEST_CASE(added_sf_and_rules) {
  Graph after = base();
  after.sfs.push_back(bridge("br2"));
  after.rules.push_back(rule("5", sap("a"), sfp("br2", "1"), 20));
  after.rules.push_back(rule("6", sfp("br2", "2"), sap("b"), 20));
  GraphDiff d = diff(base(), after);
  BOOST_TEST(d.deploymentChanged());
  BOOST_TEST((d.sfs_added == Ids{"br2"}));
  BOOST_TEST((d.sfs_kept == Ids{"br1"}));
  BOOST_TEST(d.sfs_removed.empty());
  BOOST_TEST(d.sfs_changed.empty());
  BOOST_TEST((d.rules_added == Ids{"5", "6"}));
  BOOST_TEST(d.rules_removed.empty());
  BOOST_TEST(d.rules_changed.empty());
  BOOST_TEST((d.describe() == Ids{"sf br2 added", "flowrule 5 added", "flowrule 6 added"}));
  // The other way round: removed.
  GraphDiff back = diff(after, base());
  BOOST_TEST((back.sfs_removed == Ids{"br2"}));
  BOOST_TEST((back.rules_removed == Ids{"5", "6"}));
}

BOOST_AUTO_TEST_CASE(changed_sf_says_how) {
  Graph after = base();
  after.sfs[0].ports.push_back({"3", ""});
  after.sfs[0].config_json = R"({"stp":true})";
  GraphDiff d = diff(base(), after);
  BOOST_REQUIRE_EQUAL(d.sfs_changed.size(), 1u);
  const SfChange& c = d.sfs_changed[0];
  BOOST_TEST(c.id == "br1");
  BOOST_TEST((c.ports_added == Ids{"3"}));
  BOOST_TEST(c.ports_removed.empty());
  BOOST_TEST(!c.ports_reordered);
  BOOST_TEST(c.config_changed);
  BOOST_TEST(!c.implementation_changed);
  BOOST_TEST((d.describe() == Ids{"sf br1 changed (port 3 added, config changed)"}));

  Graph swapped = base();
  std::swap(swapped.sfs[0].ports[0], swapped.sfs[0].ports[1]);
  swapped.sfs[0].template_id = "bridge-nsf";
  GraphDiff s = diff(base(), swapped);
  BOOST_REQUIRE_EQUAL(s.sfs_changed.size(), 1u);
  BOOST_TEST(s.sfs_changed[0].ports_reordered);
  BOOST_TEST(s.sfs_changed[0].implementation_changed);
}

BOOST_AUTO_TEST_CASE(changed_rules_saps_name_and_measure) {
  Graph after = base();
  after.rules[0].match.ether_type = 0x0800;
  after.rules[1].priority = 11;
  after.saps[1].if_name = "eth2";
  after.name = "renamed";
  after.measure = "m";
  GraphDiff d = diff(base(), after);
  BOOST_TEST((d.rules_changed == Ids{"1", "2"}));
  BOOST_TEST((d.saps_changed == Ids{"b"}));
  BOOST_TEST(d.name_changed);
  BOOST_TEST(d.measure_changed);
  BOOST_TEST(d.deploymentChanged());

  Graph renamed = base();
  renamed.name = "other";
  BOOST_TEST(!diff(base(), renamed).deploymentChanged());
  BOOST_TEST((diff(base(), renamed).describe() == Ids{"name, description or domain changed"}));
}
