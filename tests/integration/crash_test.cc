// The crash test (issue 6): corchd is killed with SIGKILL at many points of a scenario of
// deploys, updates and deletes (the kill points of state/kill_point.h: every resource recorded
// in an undo log, every undo, every write of the graph store), started again, and then:
//   - every graph whose last answered request was a PUT (2xx) is deployed and passes traffic;
//     one whose last answered request was a DELETE is gone; a graph whose request was cut by
//     the crash is either whole (deployed, traffic passes) or absent, never half-built;
//   - once every graph is deleted through the API, nothing is left: no bridge but LSI-0, no flow
//     on it, no SF port, no function namespace.
// The scenario is run once with CORCH_KILL_POINT=0 to count its points; then at least 50 of
// them (all when there are fewer than CORCH_CRASH_POINTS, default 50; spread evenly otherwise)
// are each a crash.
#define BOOST_TEST_MODULE crash
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "harness/demo_node.h"
#include "harness/sandbox.h"

using namespace corch::test;

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

std::string sap(int i) {
  const std::string n = "demo" + std::to_string(i);
  return R"({ "id": ")" + n + R"(", "type": "interface", "interface": { "if-name": ")" + n +
         R"(" } })";
}

std::string rule(const std::string& id, const std::string& priority, const std::string& in,
                 const std::string& match, const std::string& out) {
  return R"({ "id": ")" + id + R"(", "priority": ")" + priority + R"(", "match": { "port_in": ")" +
         in + "\"" + match + R"( }, "actions": { "output_to_port": ")" + out + R"(" } })";
}

// Traffic between the hosts behind demo<a> and demo<b> through bridge functions: one for
// everything; with `udp_bridge`, a second one for UDP (an update adds it).
std::string graph(const std::string& id, int a, int b, bool udp_bridge) {
  const std::string sa = "service-access-point:demo" + std::to_string(a);
  const std::string sb = "service-access-point:demo" + std::to_string(b);
  auto chain = [&](const std::string& sf, const std::string& priority, const std::string& match) {
    return rule(sf + "-in-a", priority, sa, match, "sf:" + sf + ":1") + ", " +
           rule(sf + "-out-b", priority, "sf:" + sf + ":2", "", sb) + ", " +
           rule(sf + "-in-b", priority, sb, match, "sf:" + sf + ":2") + ", " +
           rule(sf + "-out-a", priority, "sf:" + sf + ":1", "", sa);
  };
  std::string sfs =
      R"({ "id": "br", "name": "bridge", "ports": [ { "id": "1" }, { "id": "2" } ] })";
  std::string rules = chain("br", "1", "");
  if (udp_bridge) {
    sfs += R"(, { "id": "udp", "name": "bridge", "ports": [ { "id": "1" }, { "id": "2" } ] })";
    rules += ", " + chain("udp", "10", R"(, "ether_type": "0x0800", "protocol": "17")");
  }
  return R"({ "sffg": { "id": ")" + id + R"(", "name": ")" + id + R"(", "SFs": [ )" + sfs +
         R"( ], "saps": [ )" + sap(a) + ", " + sap(b) + R"( ], "flowrules": [ )" + rules + " ] } }";
}

struct Step {
  std::string method;
  std::string id;
  std::string body;  // PUT
};

// Deploy a, deploy b, update a (one more function), delete b, delete a, deploy b again.
std::vector<Step> scenario() {
  return {{"PUT", "a", graph("a", 0, 1, false)},
          {"PUT", "b", graph("b", 2, 3, false)},
          {"PUT", "a", graph("a", 0, 1, true)},
          {"DELETE", "b", ""},
          {"DELETE", "a", ""},
          {"PUT", "b", graph("b", 2, 3, false)}};
}

// The hosts a graph joins: a pings from h0 to 10.0.0.2, b from h2 to 10.0.0.4.
bool passes(DemoNode& node, const std::string& id) {
  return id == "a" ? node.ping("h0", "10.0.0.2") : node.ping("h2", "10.0.0.4");
}

// Runs the scenario until corchd stops answering. Returns, per graph, whether it must exist
// (true), must not (false), or may be either (absent from the map: its request was cut).
std::map<std::string, bool> runUntilCrash(DemoNode& node, bool& crashed) {
  std::map<std::string, bool> expected = {{"a", false}, {"b", false}};
  crashed = false;
  for (const auto& step : scenario()) {
    auto r = node.request(step.method, "/graphs/" + step.id, step.body);
    if (r.status == 0) {
      crashed = true;
      expected.erase(step.id);
      return expected;
    }
    BOOST_REQUIRE_MESSAGE(r.status / 100 == 2,
                          step.method << " " << step.id << ": " << r.status << " " << r.body);
    expected[step.id] = step.method == "PUT";
  }
  return expected;
}

void setKillPoint(std::optional<long> n) {
  if (n) {
    ::setenv("CORCH_KILL_POINT", std::to_string(*n).c_str(), 1);
  } else {
    ::unsetenv("CORCH_KILL_POINT");
  }
}

void removeEveryGraph(DemoNode& node) {
  for (const char* id : {"a", "b"}) {
    auto r = node.request("DELETE", std::string("/graphs/") + id);
    BOOST_REQUIRE_MESSAGE(r.status == 204 || r.status == 404, r.status << " " << r.body);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(killed_anywhere_corchd_comes_back_whole) {
  DemoNode node("k", "crash-node", {}, 4);
  node.setComputeDrivers(R"({"native": {}})");  // no other engine to probe at each restart
  auto started_node = node.start();
  BOOST_REQUIRE_MESSAGE(started_node.ok(),
                        (started_node.ok() ? "" : started_node.error().message()));

  // Count the scenario's kill points.
  node.corchd().kill();
  setKillPoint(0);
  auto counting = node.corchd().restart();
  setKillPoint(std::nullopt);
  BOOST_REQUIRE(counting.ok());
  bool crashed = false;
  runUntilCrash(node, crashed);
  BOOST_REQUIRE(!crashed);
  long total = 0;
  {
    static const std::regex point(R"(kill point (\d+): )");
    const std::string log = node.log();
    for (std::sregex_iterator it(log.begin(), log.end(), point), end; it != end; ++it) {
      total = std::max(total, std::stol((*it)[1]));
    }
  }
  removeEveryGraph(node);
  BOOST_TEST_MESSAGE("the scenario has " << total << " kill points");
  BOOST_REQUIRE_GE(total, 50);

  long wanted = 50;
  if (const char* v = std::getenv("CORCH_CRASH_POINTS")) wanted = std::max(1L, std::atol(v));
  std::set<long> points;
  for (long i = 0; i < std::min(wanted, total); ++i)
    points.insert(1 + i * total / std::min(wanted, total));

  int recovered = 0;
  for (long k : points) {
    BOOST_TEST_CONTEXT("kill point " << k) {
      node.corchd().kill();
      setKillPoint(k);
      auto started = node.corchd().restart();
      setKillPoint(std::nullopt);
      BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));

      auto expected = runUntilCrash(node, crashed);
      BOOST_TEST(crashed, "corchd was not killed");
      node.corchd().kill();
      auto restarted = node.corchd().restart();
      BOOST_REQUIRE_MESSAGE(restarted.ok(), (restarted.ok() ? "" : restarted.error().message()));

      for (const char* id : {"a", "b"}) {
        auto status = node.request("GET", std::string("/graphs/") + id + "/status");
        auto want = expected.find(id);
        if (status.status == 404) {
          BOOST_TEST((want == expected.end() || !want->second), id << " lost");
          continue;
        }
        BOOST_TEST(status.status == 200);
        BOOST_TEST((want == expected.end() || want->second), id << " came back after its DELETE");
        BOOST_TEST(status.body.find("\"deployed\"") != std::string::npos,
                   id << ": " << status.body);
        BOOST_TEST(passes(node, id), id << " does not pass traffic");
      }
      removeEveryGraph(node);
      const std::string left = node.leftovers();
      BOOST_TEST(left.empty(), "left behind: " << left);
      ++recovered;
    }
  }
  BOOST_TEST_MESSAGE(recovered << " crashes at " << points.size()
                               << " kill points, every one recovered");
}
