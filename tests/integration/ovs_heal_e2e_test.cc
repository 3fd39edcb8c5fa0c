// End to end (issue 6): a graph deployed through corchd (a native bridge function between the
// demo node's two hosts), ovs-vswitchd restarted under it, and a ping between the hosts back
// within 2 s with no API call: corchd's ovs driver notices the restart and restores the flows of
// LSI-0 and of the graph-LSI by itself.
#define BOOST_TEST_MODULE ovs_heal_e2e
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>

#include "harness/demo_node.h"
#include "harness/sandbox.h"

using namespace corch::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

const char* kGraph = R"({
  "sffg": {
    "id": "heal",
    "name": "heal",
    "SFs": [
      { "id": "br", "name": "bridge",
        "ports": [ { "id": "0xa", "name": "west" }, { "id": "0xb", "name": "east" } ] }
    ],
    "saps": [
      { "id": "demo0", "type": "interface", "interface": { "if-name": "demo0" } },
      { "id": "demo1", "type": "interface", "interface": { "if-name": "demo1" } }
    ],
    "flowrules": [
      { "id": "in-west", "priority": "1", "match": { "port_in": "service-access-point:demo0" },
        "actions": { "output_to_port": "sf:br:0xa" } },
      { "id": "out-west", "priority": "1", "match": { "port_in": "sf:br:0xa" },
        "actions": { "output_to_port": "service-access-point:demo0" } },
      { "id": "in-east", "priority": "1", "match": { "port_in": "service-access-point:demo1" },
        "actions": { "output_to_port": "sf:br:0xb" } },
      { "id": "out-east", "priority": "1", "match": { "port_in": "sf:br:0xb" },
        "actions": { "output_to_port": "service-access-point:demo1" } }
    ]
  }
})";

int64_t msBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// One ping with a short wait, so that the time it comes back is measured finely.
bool pingOnce(DemoNode& node) {
  return node.sandbox().runIn("h0", "ping -c 1 -W 0.2 10.0.0.2", 5s).ok();
}

}  // namespace

BOOST_AUTO_TEST_CASE(ping_recovers_after_ovs_vswitchd_restarts_with_no_api_call) {
  DemoNode node("r", "heal-node");
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? std::string() : started.error().message()));
  auto put = node.request("PUT", "/graphs/heal", kGraph);
  BOOST_REQUIRE_MESSAGE(put.status == 201, put.status << " " << put.body << node.log());
  BOOST_REQUIRE(node.ping("h0", "10.0.0.2"));
  BOOST_REQUIRE(node.ping("h1", "10.0.0.1"));

  auto& sb = node.sandbox();
  for (auto how : {Sandbox::Stop::Term, Sandbox::Stop::Kill}) {
    const char* what = how == Sandbox::Stop::Term ? "stopped (SIGTERM)" : "killed (SIGKILL)";
    auto t0 = Clock::now();
    auto restarted = sb.restartVswitchd(how);
    BOOST_REQUIRE_MESSAGE(restarted.ok(),
                          (restarted.ok() ? std::string() : restarted.error().message()));
    auto up = Clock::now();
    std::optional<Clock::time_point> back;
    waitUntil(
        [&] {
          if (!pingOnce(node)) return false;
          back = Clock::now();
          return true;
        },
        10s, 0ms);
    BOOST_REQUIRE_MESSAGE(back, "no ping 10 s after ovs-vswitchd was " << what << "\n"
                                                                       << node.log());
    BOOST_TEST_MESSAGE("ovs-vswitchd " << what << " and started again in " << msBetween(t0, up)
                                       << " ms; ping back " << msBetween(up, *back)
                                       << " ms after it was up (" << msBetween(t0, *back)
                                       << " ms after the stop)");
    BOOST_TEST(msBetween(up, *back) < 2000);
    BOOST_TEST(node.ping("h1", "10.0.0.1"));
  }
  // What corchd said: a warning when it lost each LSI's connection, the time each heal took.
  std::string log = node.log();
  std::istringstream lines(log);
  int heals = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find(" ovs: ") == std::string::npos) continue;
    if (line.find("healed") != std::string::npos) ++heals;
    if (line.find("healed") != std::string::npos ||
        line.find("lost its OpenFlow connection") != std::string::npos) {
      BOOST_TEST_MESSAGE("corchd: " << line);
    }
  }
  // Two restarts, two LSIs (LSI-0 and the graph's).
  BOOST_TEST(heals >= 4, "corchd's log shows " << heals << " heals");

  auto deleted = node.request("DELETE", "/graphs/heal");
  BOOST_TEST(deleted.status == 204);
  std::string left = node.leftovers();
  BOOST_TEST(left.empty(), "left behind: " << left);
}
