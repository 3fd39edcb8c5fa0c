// The node resource manager on the fake switch and fake compute driver: deploy, rollback on a
// failure at each step, delete, update by diff (what is untouched stays untouched; a failed
// update restores the previous version), admission.
#define BOOST_TEST_MODULE node_manager
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <mutex>

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

graph::PortRef sapRef(const std::string& id) {
  return graph::PortRef{graph::PortRef::Kind::Sap, id, "", ""};
}
graph::PortRef sfRef(const std::string& sf, const std::string& port) {
  return graph::PortRef{graph::PortRef::Kind::SfPort, "", sf, port};
}

// chain() plus a second SF `id` (capability `name`) on its own path: traffic from a with
// ether_type `ether_type` goes through it to b, at priority 20 (the chain's rules stay as they
// are).
graph::Graph withSecondSf(graph::Graph g, const std::string& id = "br",
                          const std::string& name = "bridge", const std::string& config = "{}",
                          uint16_t ether_type = 0x0806) {
  graph::Sf sf;
  sf.id = id;
  sf.name = name;
  sf.ports = {{"in", ""}, {"out", ""}};
  sf.config_json = config;
  g.sfs.push_back(sf);
  graph::FlowRule in;
  in.id = id + "-in";
  in.priority = 20;
  in.port_in = sapRef("a");
  in.match.ether_type = ether_type;
  in.outputs = {sfRef(id, "in")};
  graph::FlowRule out;
  out.id = id + "-out";
  out.priority = 20;
  out.port_in = sfRef(id, "out");
  out.outputs = {sapRef("b")};
  g.rules.push_back(in);
  g.rules.push_back(out);
  return g;
}

// The fake vSwitch, with every rule call recorded, and a switch to make installRules on one LSI
// fail (once armed), to fail an update half-way.
class RecordingVSwitch final : public VSwitchDriver {
 public:
  struct Call {
    std::string what;  // "install", "remove", "removeByCookie"
    std::string lsi;
    std::vector<TsRule> rules;
  };
  explicit RecordingVSwitch(std::unique_ptr<VSwitchDriver> inner) : inner_(std::move(inner)) {}

  std::vector<Call> calls;
  std::string fail_install_on;  // an LSI name, or empty

  std::string_view name() const override { return inner_->name(); }
  Result<void> probe() override { return inner_->probe(); }
  Result<LsiInfo> createLsi(const LsiSpec& spec) override { return inner_->createLsi(spec); }
  Result<void> destroyLsi(const std::string& lsi) override { return inner_->destroyLsi(lsi); }
  Result<std::vector<std::string>> listLsis() override { return inner_->listLsis(); }
  Result<std::vector<VlinkInfo>> connectLsis(const std::string& a, const std::string& b, uint32_t n,
                                             const std::string& prefix) override {
    return inner_->connectLsis(a, b, n, prefix);
  }
  Result<void> destroyVlinks(const std::vector<VlinkInfo>& vlinks) override {
    return inner_->destroyVlinks(vlinks);
  }
  Result<std::vector<PortInfo>> createPorts(const std::string& lsi,
                                            const std::vector<PortSpec>& ports) override {
    return inner_->createPorts(lsi, ports);
  }
  Result<void> destroyPorts(const std::string& lsi,
                            const std::vector<std::string>& names) override {
    return inner_->destroyPorts(lsi, names);
  }
  Result<std::vector<PortInfo>> listPorts(const std::string& lsi) override {
    return inner_->listPorts(lsi);
  }
  Result<void> syncRules(const std::string& lsi) override { return inner_->syncRules(lsi); }
  Result<uint32_t> portNumber(const std::string& lsi, const std::string& port) override {
    return inner_->portNumber(lsi, port);
  }
  Result<void> checkRules(const std::vector<TsRule>& rules) override {
    return inner_->checkRules(rules);
  }
  Result<void> installRules(const std::string& lsi, const std::vector<TsRule>& rules) override {
    if (lsi == fail_install_on) return Error(ErrorCode::Unavailable, "recording: install fails");
    calls.push_back({"install", lsi, rules});
    return inner_->installRules(lsi, rules);
  }
  Result<void> removeRules(const std::string& lsi, const std::vector<TsRule>& rules) override {
    calls.push_back({"remove", lsi, rules});
    return inner_->removeRules(lsi, rules);
  }
  Result<void> removeRulesByCookie(const std::string& lsi, uint64_t cookie,
                                   uint64_t mask) override {
    calls.push_back({"removeByCookie", lsi, {}});
    return inner_->removeRulesByCookie(lsi, cookie, mask);
  }
  Result<std::vector<TsRule>> dumpRules(const std::string& lsi) override {
    return inner_->dumpRules(lsi);
  }

 private:
  std::unique_ptr<VSwitchDriver> inner_;
};

// The fake compute driver, with every call journaled as "<verb> <instance>".
class JournalingCompute final : public ComputeDriver {
 public:
  explicit JournalingCompute(std::unique_ptr<ComputeDriver> inner) : inner_(std::move(inner)) {}

  std::string_view name() const override { return inner_->name(); }
  Result<void> probe() override { return inner_->probe(); }
  Result<void> createSf(const SfSpec& sf) override {
    return log("create", sf, &ComputeDriver::createSf);
  }
  Result<void> startSf(const SfSpec& sf) override {
    return log("start", sf, &ComputeDriver::startSf);
  }
  Result<void> stopSf(const SfSpec& sf) override { return log("stop", sf, &ComputeDriver::stopSf); }
  Result<void> destroySf(const SfSpec& sf) override {
    return log("destroy", sf, &ComputeDriver::destroySf);
  }

  std::vector<std::string> journal() {
    std::lock_guard lock(mu_);
    return journal_;
  }
  void clear() {
    std::lock_guard lock(mu_);
    journal_.clear();
  }
  // The calls that named one instance.
  std::vector<std::string> callsFor(const std::string& instance) {
    std::vector<std::string> out;
    for (const auto& line : journal()) {
      if (line.ends_with(" " + instance)) out.push_back(line.substr(0, line.find(' ')));
    }
    return out;
  }

 private:
  Result<void> log(const std::string& verb, const SfSpec& sf,
                   Result<void> (ComputeDriver::*call)(const SfSpec&)) {
    {
      std::lock_guard lock(mu_);
      journal_.push_back(verb + " " + sf.instance);
    }
    return (inner_.get()->*call)(sf);
  }

  std::unique_ptr<ComputeDriver> inner_;
  std::mutex mu_;
  std::vector<std::string> journal_;
};

// Rules as a sorted list, to compare the rules of an LSI regardless of their order.
std::vector<std::string> sorted(const std::vector<TsRule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) out.push_back(toString(r) + " cookie=" + std::to_string(r.cookie));
  std::sort(out.begin(), out.end());
  return out;
}

struct Node {
  explicit Node(const std::string& vswitch_fail = "", double cores = 4,
                compute::CpuScheduler* scheduler = nullptr, bool strict_pinning = false) {
    registerBuiltinDrivers(registry);
    DriverOptions vs_options;
    vs_options.values["fail"] = vswitch_fail;
    auto recording =
        std::make_unique<RecordingVSwitch>(std::move(*registry.makeVSwitch("fake", vs_options)));
    switch_calls = recording.get();
    vswitch = std::move(recording);
    std::map<std::string, std::unique_ptr<ComputeDriver>> drivers;
    auto journaling =
        std::make_unique<JournalingCompute>(std::move(*registry.makeCompute("fake", {})));
    journal = journaling.get();
    drivers["native"] = std::move(journaling);
    fake_compute = drivers["native"].get();
    drivers["dpdk"] = std::move(*registry.makeCompute("fake", {}));
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
        node::NodeOptions{"/nonexistent", resolver::Resources{cores, 1024, 1024}, scheduler,
                          strict_pinning});
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

  // The rules of an LSI, sorted, with the port numbers replaced by the ports' names (of the
  // first graph's SF ports and vlinks), so that rules survive a renumbering of their ports.
  std::vector<std::string> namedRules(const std::string& lsi) {
    std::map<uint32_t, std::string> names;
    for (std::string name : {"cg1s0p0", "cg1s0p1", "cg1s1p0", "cg1s1p1", "cg1s2p0", "cg1s2p1",
                             "corch-g1-vl0b", "corch-g1-vl1b", "corch-g1-vx2-0b"}) {
      auto number = vswitch->portNumber(lsi, name);
      if (number.ok()) names[*number] = name;
    }
    auto name = [&](uint32_t number) {
      auto it = names.find(number);
      return it == names.end() ? std::to_string(number) : it->second;
    };
    std::vector<std::string> out;
    auto rules = vswitch->dumpRules(lsi);
    for (const auto& r : *rules) {
      TsRule bare = r;
      bare.in_port = 0;
      bare.outputs.clear();
      std::string text = toString(bare) + " cookie=" + std::to_string(r.cookie) +
                         " in=" + name(r.in_port) + " out=";
      for (uint32_t o : r.outputs) text += name(o) + ",";
      out.push_back(text);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Whether a function exists and runs: the fake refuses to start what is not just created.
  bool running(const std::string& instance) {
    SfSpec probe;
    probe.instance = instance;
    if (fake_compute->createSf(probe).ok()) {  // it did not exist
      (void)fake_compute->destroySf(probe);
      return false;
    }
    auto started = fake_compute->startSf(probe);
    if (started.ok()) (void)fake_compute->stopSf(probe);  // it was created, not running
    return !started.ok() && started.error().code() == ErrorCode::Conflict;
  }

  DriverRegistry registry;
  std::unique_ptr<VSwitchDriver> vswitch;
  RecordingVSwitch* switch_calls = nullptr;
  JournalingCompute* journal = nullptr;
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

BOOST_AUTO_TEST_CASE(update_of_name_only_touches_nothing_and_failed_update_restores) {
  Node n;
  BOOST_REQUIRE(n.node->putGraph("g1", chain()).ok());
  n.switch_calls->calls.clear();
  n.journal->clear();
  graph::Graph renamed = chain();
  renamed.name = "renamed";
  auto updated = n.node->putGraph("g1", renamed);
  BOOST_REQUIRE(updated.ok());
  BOOST_TEST(!updated->created);
  BOOST_TEST(n.node->getGraph("g1")->name == "renamed");
  BOOST_TEST(n.switch_calls->calls.empty());
  BOOST_TEST(n.journal->journal().empty());
  BOOST_TEST(std::count(updated->changes.begin(), updated->changes.end(),
                        "name, description or domain changed") == 1);

  // A new configuration restarts the function; its start fails: the previous one runs again.
  auto failed = n.node->putGraph("g1", chain(R"({"fake-fail":"start"})"));
  BOOST_REQUIRE(!failed.ok());
  auto status = n.node->graphStatus("g1");
  BOOST_TEST((status->state == node::GraphState::Deployed));
  BOOST_TEST(status->error.has_value());
  BOOST_TEST(n.node->getGraph("g1")->name == "renamed");
  BOOST_TEST(n.vswitch->dumpRules("lsi0")->size() == 4u);
  BOOST_TEST(n.running("corch-g1-fw"));
  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  n.expectEmpty();
}

// Adding an SF on a path of its own: the running SF is not stopped, the installed rules are not
// removed nor reinstalled, only the new ones are installed; DELETE then removes everything,
// including what the update added (ports, vlinks).
BOOST_AUTO_TEST_CASE(update_adds_sf_without_touching_the_rest) {
  Node n;
  BOOST_REQUIRE(n.node->putGraph("g1", chain()).ok());
  auto lsi0_before = *n.vswitch->dumpRules("lsi0");
  auto graph_before = *n.vswitch->dumpRules("corch-g1");
  n.switch_calls->calls.clear();
  n.journal->clear();

  auto put = n.node->putGraph("g1", withSecondSf(chain()));
  BOOST_REQUIRE_MESSAGE(put.ok(), (put.ok() ? std::string() : put.error().message()));
  BOOST_TEST(!put->created);
  std::string changes;
  for (const auto& c : put->changes) changes += c + "\n";
  BOOST_TEST_MESSAGE(changes);
  BOOST_TEST(changes.find("sf br added") != std::string::npos, changes);
  BOOST_TEST(changes.find("flowrule br-in added") != std::string::npos, changes);
  BOOST_TEST(changes.find("sf br started as bridge-test (native)") != std::string::npos, changes);

  BOOST_TEST(n.journal->callsFor("corch-g1-fw").empty());
  BOOST_TEST((n.journal->callsFor("corch-g1-br") == std::vector<std::string>{"create", "start"}));
  BOOST_TEST(n.running("corch-g1-fw"));
  BOOST_TEST(n.running("corch-g1-br"));

  // No rule removed; each rule installed is new (not one of those already there).
  for (const auto& call : n.switch_calls->calls) {
    BOOST_TEST(call.what == "install");
    const auto& before = call.lsi == "lsi0" ? lsi0_before : graph_before;
    for (const auto& r : call.rules) {
      BOOST_TEST((std::find(before.begin(), before.end(), r) == before.end()), toString(r));
    }
  }
  // Every rule there before is there after, identical (same ports, same cookie).
  auto lsi0_after = *n.vswitch->dumpRules("lsi0");
  auto graph_after = *n.vswitch->dumpRules("corch-g1");
  for (const auto& r : lsi0_before) {
    BOOST_TEST((std::find(lsi0_after.begin(), lsi0_after.end(), r) != lsi0_after.end()));
  }
  for (const auto& r : graph_before) {
    BOOST_TEST((std::find(graph_after.begin(), graph_after.end(), r) != graph_after.end()));
  }
  BOOST_TEST(lsi0_after.size() == lsi0_before.size() + 1);        // br-in (b's forwarder exists)
  BOOST_TEST(graph_after.size() == graph_before.size() + 2);      // br-out + forwarder to br:in
  BOOST_TEST(n.vswitch->portNumber("corch-g1", "cg1s1p0").ok());  // the new SF's number is 1

  // The same update again changes nothing.
  auto again = n.node->putGraph("g1", withSecondSf(chain()));
  BOOST_TEST((again->changes == std::vector<std::string>{"no change"}));

  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  n.expectEmpty();
  BOOST_TEST(!n.running("corch-g1-br"));
}

// Removing an SF: it is stopped and destroyed with its ports, its rules removed; the other SF
// and its rules are not touched. The first SF's port names do not depend on its position.
BOOST_AUTO_TEST_CASE(update_removes_sf_and_keeps_the_other) {
  Node n;
  // The second SF first in the list: it has number 0, fw number 1.
  graph::Graph two = withSecondSf(chain());
  std::rotate(two.sfs.begin(), two.sfs.begin() + 1, two.sfs.end());
  BOOST_REQUIRE(n.node->putGraph("g1", two).ok());
  BOOST_TEST(n.vswitch->portNumber("corch-g1", "cg1s1p0").ok());
  n.switch_calls->calls.clear();
  n.journal->clear();

  auto put = n.node->putGraph("g1", chain());
  BOOST_REQUIRE_MESSAGE(put.ok(), (put.ok() ? std::string() : put.error().message()));
  BOOST_TEST((n.journal->callsFor("corch-g1-br") == std::vector<std::string>{"stop", "destroy"}));
  BOOST_TEST(n.journal->callsFor("corch-g1-fw").empty());
  BOOST_TEST(n.running("corch-g1-fw"));
  BOOST_TEST(!n.vswitch->portNumber("corch-g1", "cg1s0p0").ok());  // br's ports are gone
  BOOST_TEST(n.vswitch->portNumber("corch-g1", "cg1s1p0").ok());   // fw keeps its names
  for (const auto& call : n.switch_calls->calls) BOOST_TEST(call.what == "remove");
  BOOST_TEST(n.vswitch->dumpRules("lsi0")->size() == 4u);
  BOOST_TEST(n.vswitch->dumpRules("corch-g1")->size() == 4u);
  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  n.expectEmpty();
}

// An update that fails after it has restarted a changed SF, made a new one and installed rules:
// every step is undone, and the graph is as it was (same rules, the old function running).
BOOST_AUTO_TEST_CASE(failed_update_restores_the_previous_state_exactly) {
  Node n;
  BOOST_REQUIRE(n.node->putGraph("g1", chain()).ok());
  auto lsi0_before = sorted(*n.vswitch->dumpRules("lsi0"));
  auto graph_before = n.namedRules("corch-g1");
  auto lsis_before = *n.vswitch->listLsis();

  // fw's configuration changes (it is restarted on new ports), br is added; LSI-0 then refuses
  // the new rules.
  graph::Graph next = withSecondSf(chain(R"({"fake-fail":""})"));
  n.switch_calls->fail_install_on = "lsi0";
  n.journal->clear();
  auto put = n.node->putGraph("g1", next);
  BOOST_REQUIRE(!put.ok());
  BOOST_TEST((put.error().code() == ErrorCode::Unavailable));
  // fw: the old one stopped and destroyed, the new one made, then all undone and the old back.
  auto fw = n.journal->callsFor("corch-g1-fw");
  BOOST_TEST((fw == std::vector<std::string>{"stop", "destroy", "create", "start", "stop",
                                             "destroy", "destroy", "create", "start"}));
  BOOST_TEST((n.journal->callsFor("corch-g1-br") ==
              std::vector<std::string>{"create", "start", "stop", "destroy"}));
  BOOST_TEST(n.running("corch-g1-fw"));
  BOOST_TEST(!n.running("corch-g1-br"));
  BOOST_TEST((sorted(*n.vswitch->dumpRules("lsi0")) == lsi0_before));
  // fw's old ports were made again (the switch may number them anew): same rules, by port name.
  BOOST_TEST((n.namedRules("corch-g1") == graph_before));
  BOOST_TEST((*n.vswitch->listLsis() == lsis_before));
  BOOST_TEST(n.vswitch->portNumber("corch-g1", "cg1s0p0").ok());   // fw's old ports
  BOOST_TEST(!n.vswitch->portNumber("corch-g1", "cg1s1p0").ok());  // the new SFs' ports are gone
  BOOST_TEST(!n.vswitch->portNumber("corch-g1", "cg1s2p0").ok());
  auto status = n.node->graphStatus("g1");
  BOOST_TEST((status->state == node::GraphState::Deployed));
  BOOST_TEST(status->error.has_value());
  BOOST_TEST((*n.node->getGraph("g1") == [] {
    graph::Graph g = chain();
    g.id = "g1";
    return g;
  }()));

  // The same update then works, and says that fw was restarted.
  n.switch_calls->fail_install_on.clear();
  auto retry = n.node->putGraph("g1", next);
  BOOST_REQUIRE_MESSAGE(retry.ok(), (retry.ok() ? std::string() : retry.error().message()));
  bool restarted = false;
  for (const auto& c : retry->changes) restarted = restarted || c.starts_with("sf fw restarted");
  BOOST_TEST(restarted);
  BOOST_TEST(n.running("corch-g1-fw"));
  BOOST_TEST(n.running("corch-g1-br"));
  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  n.expectEmpty();
}

// The LSI-0 registry follows updates: a rule an update adds may not take another graph's match,
// and a rule an update removes frees its match for other graphs.
BOOST_AUTO_TEST_CASE(updates_keep_the_lsi0_registry_right) {
  Node n;
  BOOST_REQUIRE(n.node->putGraph("g1", chain()).ok());
  graph::Graph other = chain();
  for (auto& r : other.rules) r.priority = 20;
  other.sfs[0].id = "fw";
  BOOST_REQUIRE(n.node->putGraph("g2", other).ok());
  auto g2_rules = sorted(*n.vswitch->dumpRules("corch-g2"));

  // g1 adds a rule with g2's match on LSI-0 (a, priority 20, any): refused, g1 unchanged.
  graph::Graph clash = chain();
  graph::FlowRule r = clash.rules[0];
  r.id = "5";
  r.priority = 20;
  clash.rules.push_back(r);
  auto put = n.node->putGraph("g1", clash);
  BOOST_REQUIRE(!put.ok());
  BOOST_TEST(put.error().httpStatus() == 409);
  BOOST_REQUIRE(!put.error().fields().empty());
  BOOST_TEST(put.error().fields()[0].pointer == "/sffg/flowrules/4");
  BOOST_TEST(n.vswitch->dumpRules("lsi0")->size() == 8u);

  // g1 moves its rules to priority 30 (remove + install on LSI-0), then g2 may take 10.
  graph::Graph moved = chain();
  for (auto& rule : moved.rules) rule.priority = 30;
  BOOST_REQUIRE(n.node->putGraph("g1", moved).ok());
  BOOST_TEST(n.vswitch->dumpRules("lsi0")->size() == 8u);
  graph::Graph g2_at_10 = other;
  for (auto& rule : g2_at_10.rules) rule.priority = 10;
  auto put2 = n.node->putGraph("g2", g2_at_10);
  BOOST_REQUIRE_MESSAGE(put2.ok(), (put2.ok() ? std::string() : put2.error().message()));
  // And g1 cannot go back to 10 now.
  BOOST_TEST(n.node->putGraph("g1", chain()).error().httpStatus() == 409);
  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  BOOST_REQUIRE(n.node->deleteGraph("g2").ok());
  n.expectEmpty();
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

// CPU placement (paper 5.3) on a node like this machine (two cores, no SMT): a DPDK function gets
// the one CPU that may be dedicated (one stays shared), the next one runs unpinned and says why,
// and deleting the first graph gives the CPU back.
BOOST_AUTO_TEST_CASE(dpdk_functions_get_a_dedicated_cpu_and_give_it_back) {
  auto topology = compute::readCpuTopology(std::string(CORCH_SOURCE_DIR) +
                                           "/tests/data/cpu-topology/two-cores");
  BOOST_REQUIRE(topology.ok());
  auto scheduler = compute::CpuScheduler::create(*topology);
  BOOST_REQUIRE(scheduler.ok());
  Node n("", 4, scheduler->get());
  // Each graph on its own priorities, so that their rules on LSI-0 do not collide.
  auto graphNumber = [](int k) {
    graph::Graph g = withSecondSf(chain(), "fwd", "forwarder");
    for (auto& r : g.rules) r.priority = static_cast<uint16_t>(r.priority + 100 * k);
    return g;
  };
  auto functionOf = [&](const std::string& id, const std::string& sf) {
    auto status = n.node->graphStatus(id);
    BOOST_REQUIRE(status.ok());
    for (const auto& f : status->functions) {
      if (f.sf_id == sf) return f;
    }
    BOOST_FAIL("no function " + sf + " in the status of " + id);
    return node::FunctionStatus{};
  };
  BOOST_REQUIRE(n.node->putGraph("g1", graphNumber(1)).ok());
  auto fwd = functionOf("g1", "fwd");
  BOOST_TEST(fwd.type == "dpdk");
  BOOST_TEST(fwd.cpus.size() == 1u);
  BOOST_TEST(fwd.placement.starts_with("dedicated"), fwd.placement);
  auto fw = functionOf("g1", "fw");
  BOOST_TEST(fw.cpus.empty(), "a native function floats");

  BOOST_REQUIRE(n.node->putGraph("g2", graphNumber(2)).ok());
  auto second = functionOf("g2", "fwd");
  BOOST_TEST(second.cpus.empty());
  BOOST_TEST(second.placement.find("no free core") != std::string::npos, second.placement);

  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  BOOST_REQUIRE(n.node->putGraph("g3", graphNumber(3)).ok());
  BOOST_TEST(functionOf("g3", "fwd").cpus == fwd.cpus, "g1's CPU is free again");
}

// With strict pinning, a graph whose DPDK function finds no free core is refused (409) and
// leaves nothing behind.
BOOST_AUTO_TEST_CASE(strict_pinning_refuses_a_graph_without_a_free_core) {
  auto topology = compute::readCpuTopology(std::string(CORCH_SOURCE_DIR) +
                                           "/tests/data/cpu-topology/two-cores");
  BOOST_REQUIRE(topology.ok());
  auto scheduler = compute::CpuScheduler::create(*topology);
  BOOST_REQUIRE(scheduler.ok());
  Node n("", 4, scheduler->get(), /*strict_pinning=*/true);
  graph::Graph g = withSecondSf(chain(), "fwd", "forwarder");
  BOOST_REQUIRE(n.node->putGraph("g1", g).ok());
  auto lsis = n.vswitch->listLsis();
  for (auto& r : g.rules) r.priority = static_cast<uint16_t>(r.priority + 100);
  auto refused = n.node->putGraph("g2", g);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.error().code() == ErrorCode::ResourceExhausted));
  BOOST_TEST(refused.error().message().find("dedicated") != std::string::npos,
             refused.error().message());
  BOOST_TEST((*n.vswitch->listLsis() == *lsis), "nothing of g2 was built");
  BOOST_REQUIRE(n.node->deleteGraph("g1").ok());
  n.expectEmpty();
}
