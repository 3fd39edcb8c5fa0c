// The node resource manager on the fake switch and fake compute driver: deploy, rollback on a
// failure at each step, delete, update, admission.
#define BOOST_TEST_MODULE node_manager
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include "corch/driver_registry.h"
#include "node/node_manager.h"

using namespace corch;

namespace {

graph::Graph chain(const std::string& fw_config = "{}") {
  graph::Graph g;
  g.name = "chain";
  graph::Sap a;
  a.id = "a";
  a.if_name = "eth0";
  graph::Sap b = a;
  b.id = "b";
  b.if_name = "eth1";
  g.saps = {a, b};
  graph::Sf fw;
  fw.id = "fw";
  fw.name = "firewall";
  fw.ports = {{"in", ""}, {"out", ""}};
  fw.config_json = fw_config;
  g.sfs = {fw};
  using K = graph::PortRef::Kind;
  auto rule = [](std::string id, graph::PortRef in, graph::PortRef out) {
    graph::FlowRule r;
    r.id = std::move(id);
    r.priority = 10;
    r.port_in = std::move(in);
    r.outputs = {std::move(out)};
    return r;
  };
  g.rules = {rule("1", {K::Sap, "a", "", ""}, {K::SfPort, "", "fw", "in"}),
             rule("2", {K::SfPort, "", "fw", "out"}, {K::Sap, "b", "", ""}),
             rule("3", {K::Sap, "b", "", ""}, {K::SfPort, "", "fw", "out"}),
             rule("4", {K::SfPort, "", "fw", "in"}, {K::Sap, "a", "", ""})};
  return g;
}

struct Node {
  explicit Node(const std::string& vswitch_fail = "", double cores = 4) {
    registerBuiltinDrivers(registry);
    DriverOptions vs_options;
    vs_options.values["fail"] = vswitch_fail;
    vswitch = std::move(*registry.makeVSwitch("fake", vs_options));
    std::map<std::string, std::unique_ptr<ComputeDriver>> drivers;
    drivers["native"] = std::move(*registry.makeCompute("fake", {}));
    fake_compute = drivers["native"].get();
    log_dir =
        std::filesystem::temp_directory_path() / ("corch-node-test-" + std::to_string(getpid()));
    network = std::make_unique<network::NetworkManager>(
        *vswitch, network::NetworkOptions{"lsi0", "corch", {"eth0", "eth1"}});
    compute = std::make_unique<compute::ComputeManager>(
        std::move(drivers), compute::ComputeOptions{"corch", log_dir.string()});
    repository = std::move(*resolver::openFolderRepository(std::string(CORCH_SOURCE_DIR) +
                                                           "/tests/data/node/templates"));
    node = std::make_unique<node::NodeManager>(
        *network, *compute, *repository,
        node::NodeOptions{"/nonexistent", resolver::Resources{cores, 1024, 1024}});
    BOOST_REQUIRE(node->start().ok());
  }
  ~Node() { std::filesystem::remove_all(log_dir); }

  // Nothing but LSI-0 on the switch, no rule on it, no function left.
  void expectEmpty() {
    BOOST_TEST((*vswitch->listLsis() == std::vector<std::string>{"lsi0"}));
    BOOST_TEST(vswitch->dumpRules("lsi0")->empty());
    SfSpec probe;
    probe.instance = "corch-g1-fw";
    BOOST_TEST(fake_compute->createSf(probe).ok());  // the name is free again
    (void)fake_compute->destroySf(probe);
  }

  DriverRegistry registry;
  std::unique_ptr<VSwitchDriver> vswitch;
  ComputeDriver* fake_compute = nullptr;
  std::filesystem::path log_dir;
  std::unique_ptr<network::NetworkManager> network;
  std::unique_ptr<compute::ComputeManager> compute;
  std::unique_ptr<resolver::Repository> repository;
  std::unique_ptr<node::NodeManager> node;
};

}  // namespace

BOOST_AUTO_TEST_CASE(deploy_get_list_delete) {
  Node n;
  auto put = n.node->putGraph("g1", chain());
  BOOST_REQUIRE_MESSAGE(put.ok(), (put.ok() ? std::string() : put.error().message()));
  BOOST_TEST(put->created);
  auto status = n.node->graphStatus("g1");
  BOOST_TEST((status->state == node::GraphState::Deployed));
  BOOST_TEST(status->progress == 100);
  BOOST_TEST(n.node->getGraph("g1")->id == "g1");
  BOOST_TEST(n.node->listGraphs()->size() == 1u);
  BOOST_TEST(n.vswitch->listLsis()->size() == 2u);
  BOOST_TEST(n.vswitch->dumpRules("lsi0")->size() == 4u);  // 2 matches + 2 forwarders
  BOOST_TEST(n.vswitch->dumpRules("corch-g1")->size() == 4u);

  auto again = n.node->putGraph("g1", chain());
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(!again->created);
  BOOST_TEST((again->changes == std::vector<std::string>{"no change"}));

  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  BOOST_TEST((n.node->getGraph("g1").error().code() == ErrorCode::NotFound));
  BOOST_TEST((n.node->deleteGraph("g1").error().code() == ErrorCode::NotFound));
  n.expectEmpty();
}

BOOST_AUTO_TEST_CASE(failed_start_rolls_everything_back) {
  Node n;
  auto put = n.node->putGraph("g1", chain(R"({"fake-fail":"start"})"));
  BOOST_REQUIRE(!put.ok());
  BOOST_TEST(put.error().message().find("start of corch-g1-fw fails") != std::string::npos);
  auto status = n.node->graphStatus("g1");
  BOOST_TEST((status->state == node::GraphState::Failed));
  BOOST_REQUIRE(status->error.has_value());
  BOOST_TEST((n.node->getGraph("g1").error().code() == ErrorCode::NotFound));
  n.expectEmpty();
  // The failed graph's status is cleared by a DELETE, and a good PUT then works.
  BOOST_TEST(n.node->deleteGraph("g1").ok());
  BOOST_TEST((n.node->graphStatus("g1").error().code() == ErrorCode::NotFound));
  BOOST_TEST(n.node->putGraph("g1", chain()).ok());
}

BOOST_AUTO_TEST_CASE(failed_rule_install_rolls_everything_back) {
  Node n("installRules:lsi0");
  auto put = n.node->putGraph("g1", chain());
  BOOST_REQUIRE(!put.ok());
  BOOST_TEST((put.error().code() == ErrorCode::Unavailable));
  n.expectEmpty();
}

BOOST_AUTO_TEST_CASE(unresolvable_graph_creates_nothing) {
  Node n;
  graph::Graph g = chain();
  g.sfs[0].name = "dpi";
  auto put = n.node->putGraph("g1", g);
  BOOST_REQUIRE(!put.ok());
  BOOST_TEST(put.error().httpStatus() == 422);
  BOOST_REQUIRE(!put.error().fields().empty());
  BOOST_TEST(put.error().fields()[0].pointer == "/sffg/SFs/0");
  n.expectEmpty();
}

BOOST_AUTO_TEST_CASE(admission_refuses_what_does_not_fit) {
  Node n("", 0.7);  // room for one firewall (0.5 cores), not two
  BOOST_REQUIRE(n.node->putGraph("g1", chain()).ok());
  auto second = n.node->putGraph("g2", chain());
  BOOST_REQUIRE(!second.ok());
  BOOST_TEST(second.error().httpStatus() == 409);
  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  BOOST_TEST(n.node->putGraph("g2", chain()).ok());
}

BOOST_AUTO_TEST_CASE(update_replaces_and_failed_update_restores) {
  Node n;
  BOOST_REQUIRE(n.node->putGraph("g1", chain()).ok());
  graph::Graph bigger = chain();
  bigger.name = "renamed";
  auto updated = n.node->putGraph("g1", bigger);
  BOOST_REQUIRE(updated.ok());
  BOOST_TEST(!updated->created);
  BOOST_TEST(n.node->getGraph("g1")->name == "renamed");

  auto failed = n.node->putGraph("g1", chain(R"({"fake-fail":"start"})"));
  BOOST_REQUIRE(!failed.ok());
  auto status = n.node->graphStatus("g1");
  BOOST_TEST((status->state == node::GraphState::Deployed));
  BOOST_TEST(status->error.has_value());
  BOOST_TEST(n.node->getGraph("g1")->name == "renamed");
  BOOST_TEST(n.vswitch->dumpRules("lsi0")->size() == 4u);
}

BOOST_AUTO_TEST_CASE(two_graphs_get_separate_lsis_and_cookies) {
  Node n;
  BOOST_REQUIRE(n.node->putGraph("g1", chain()).ok());
  // The same rules on the same interfaces would be one OpenFlow rule: refused, naming the rule.
  auto clash = n.node->putGraph("g2", chain());
  BOOST_REQUIRE(!clash.ok());
  BOOST_TEST(clash.error().httpStatus() == 409);
  BOOST_REQUIRE(!clash.error().fields().empty());
  BOOST_TEST(clash.error().fields()[0].pointer == "/sffg/flowrules/0");
  BOOST_TEST(n.vswitch->listLsis()->size() == 2u);  // nothing of g2 was built
  // Another priority keeps them apart.
  graph::Graph other = chain();
  for (auto& r : other.rules) r.priority = 20;
  BOOST_REQUIRE(n.node->putGraph("g2", other).ok());
  BOOST_TEST(n.vswitch->listLsis()->size() == 3u);
  BOOST_TEST(n.vswitch->dumpRules("lsi0")->size() == 8u);
  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  auto rules = n.vswitch->dumpRules("lsi0");
  BOOST_TEST(rules->size() == 4u);
  for (const auto& r : *rules) BOOST_TEST((r.cookie >> 32) == 2u);
  BOOST_REQUIRE(n.node->deleteGraph("g2").ok());
  n.expectEmpty();
}
