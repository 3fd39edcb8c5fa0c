// Restart and recovery of corchd (issue 6, "Durable state and recovery") on the demo node, as
// root inside the sandbox: graphs stored before the API answers come back after a SIGKILL or a
// SIGTERM; after a SIGKILL they are adopted (their graph-LSI, flows and functions kept: traffic
// never stops), or deployed anew when what was left of them is not whole; whatever carries the
// node's prefix and no stored graph owns (a function namespace with its processes, a graph-LSI)
// is removed at start; the configuration's initial graphs are deployed at boot and managed
// through the API like any other.
#define BOOST_TEST_MODULE restart
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "harness/demo_node.h"
#include "harness/sandbox.h"

using namespace corch::test;
namespace fs = std::filesystem;

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

// A bridge function between the hosts behind demo<a> and demo<b>.
std::string bridgeGraph(const std::string& id, int a, int b) {
  const std::string sa = "service-access-point:demo" + std::to_string(a);
  const std::string sb = "service-access-point:demo" + std::to_string(b);
  auto rule = [](const std::string& rid, const std::string& in, const std::string& out) {
    return R"({ "id": ")" + rid + R"(", "priority": "1", "match": { "port_in": ")" + in +
           R"(" }, "actions": { "output_to_port": ")" + out + R"(" } })";
  };
  return R"({ "sffg": { "id": ")" + id + R"(", "name": ")" + id + R"(",
    "SFs": [ { "id": "br", "name": "bridge", "ports": [ { "id": "1" }, { "id": "2" } ] } ],
    "saps": [
      { "id": "demo)" +
         std::to_string(a) + R"(", "type": "interface", "interface": { "if-name": "demo)" +
         std::to_string(a) + R"(" } },
      { "id": "demo)" +
         std::to_string(b) + R"(", "type": "interface", "interface": { "if-name": "demo)" +
         std::to_string(b) + R"(" } } ],
    "flowrules": [ )" +
         rule("in-a", sa, "sf:br:1") + ", " + rule("out-b", "sf:br:2", sb) + ", " +
         rule("in-b", sb, "sf:br:2") + ", " + rule("out-a", "sf:br:1", sa) + " ] } }";
}

bool deployed(DemoNode& node, const std::string& id) {
  auto status = node.request("GET", "/graphs/" + id + "/status");
  return status.status == 200 && status.body.find("\"deployed\"") != std::string::npos;
}

// A process planted in a function's namespace lives as long as the function: it survives an
// adoption, not a rebuild (which kills whatever runs in the namespace). Namespace inodes would
// not tell: the kernel reuses them.
void plantMarker(DemoNode& node, const std::string& instance, const std::string& seconds) {
  BOOST_REQUIRE(node.sandbox()
                    .run("ip netns exec " + instance + " setsid sleep " + seconds +
                         " </dev/null >/dev/null 2>&1 &")
                    .ok());
}
bool markerAlive(DemoNode& node, const std::string& seconds) {
  return node.sandbox().run("pgrep -f '^sleep " + seconds + "$'").ok();
}

// Pings from a host in the background, 20 a second for `seconds`, into a file; then the number
// of replies missing (transmitted - received), or -1 if the summary cannot be read.
class BackgroundPing {
 public:
  BackgroundPing(DemoNode& node, const std::string& from, const std::string& to, int seconds)
      : node_(node), file_(node.sandbox().dir() + "/ping-" + from + ".txt") {
    node_.sandbox().runIn(from, "ping -q -i 0.05 -W 1 -c " + std::to_string(seconds * 20) + " " +
                                    to + " >" + file_ + " 2>&1 &");
  }
  int lost() {
    int missing = -1;
    waitUntil(
        [&] {
          std::ifstream in(file_);
          std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          int sent = 0;
          int received = 0;
          auto at = text.find(" packets transmitted, ");
          if (at == std::string::npos) return false;
          auto start = text.rfind('\n', at);
          sent = std::stoi(text.substr(start == std::string::npos ? 0 : start + 1));
          received = std::stoi(text.substr(at + 22));
          missing = sent - received;
          return true;
        },
        30s, 100ms);
    return missing;
  }

 private:
  DemoNode& node_;
  std::string file_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_killed_corchd_restores_its_graphs_and_removes_what_no_graph_owns) {
  DemoNode node("r", "restart-node");
  node.setComputeDrivers(R"({"native": {}})");
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
  auto put = node.request("PUT", "/graphs/kept", bridgeGraph("kept", 0, 1));
  BOOST_REQUIRE_MESSAGE(put.status == 201, put.status << " " << put.body << node.log());
  BOOST_REQUIRE(node.ping("h0", "10.0.0.2"));

  node.corchd().kill();
  // What a crash in the middle of another deploy leaves: a function namespace with a process in
  // it, and a graph-LSI.
  auto& sb = node.sandbox();
  const std::string ghost = node.prefix() + "-ghost-fw";
  BOOST_REQUIRE(sb.run("ip netns add " + ghost).ok());
  BOOST_REQUIRE(
      sb.run("ip netns exec " + ghost + " setsid sleep 6001 </dev/null >/dev/null 2>&1 &").ok());
  BOOST_REQUIRE(sb.run("ovs-vsctl add-br " + node.prefix() + "-g77 -- set bridge " + node.prefix() +
                       "-g77 datapath_type=netdev")
                    .ok());
  // The stored graph's function still runs: the restart adopts it.
  plantMarker(node, node.prefix() + "-kept-br", "6002");

  auto restarted = node.corchd().restart();
  BOOST_REQUIRE_MESSAGE(restarted.ok(), (restarted.ok() ? "" : restarted.error().message()));
  BOOST_TEST(deployed(node, "kept"));
  BOOST_TEST(markerAlive(node, "6002"), "the function was rebuilt, not adopted");
  BOOST_TEST(node.log().find("graph kept adopted") != std::string::npos, node.log());
  BOOST_TEST(node.request("GET", "/graphs/kept").body.find("\"bridge\"") != std::string::npos);
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h1", "10.0.0.1"));
  BOOST_TEST(!sb.run("ip netns list | grep -q '^" + ghost + "'").ok(),
             "the orphan namespace stays");
  BOOST_TEST(!sb.run("pgrep -f '^sleep 6001'").ok(), "the orphan's process stays");
  BOOST_TEST(!sb.run("ovs-vsctl br-exists " + node.prefix() + "-g77").ok(), "the stale LSI stays");
  BOOST_TEST(node.log().find("left by an earlier run") != std::string::npos);

  // A deleted graph stays deleted across a restart.
  BOOST_REQUIRE_EQUAL(node.request("DELETE", "/graphs/kept").status, 204);
  node.corchd().kill();
  BOOST_REQUIRE(node.corchd().restart().ok());
  BOOST_TEST(node.request("GET", "/graphs/kept").status == 404);
  BOOST_TEST(node.leftovers().empty(), node.leftovers());
}

BOOST_AUTO_TEST_CASE(traffic_never_stops_while_a_killed_corchd_restarts_and_adopts_its_graphs) {
  DemoNode node("r", "adopt-node", {}, 4);
  node.setComputeDrivers(R"({"native": {}})");
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
  BOOST_REQUIRE_EQUAL(node.request("PUT", "/graphs/one", bridgeGraph("one", 0, 1)).status, 201);
  BOOST_REQUIRE_EQUAL(node.request("PUT", "/graphs/two", bridgeGraph("two", 2, 3)).status, 201);
  BOOST_REQUIRE(node.ping("h0", "10.0.0.2"));
  BOOST_REQUIRE(node.ping("h2", "10.0.0.4"));
  auto& sb = node.sandbox();
  // Flows the earlier run did not want any more (as a crash in the middle of an update leaves):
  // the adoption takes them out.
  BOOST_REQUIRE(sb.run("ovs-ofctl -O OpenFlow13 add-flow " + node.prefix() +
                       "0 cookie=0x0000000100000077,priority=9,udp,actions=drop")
                    .ok());

  plantMarker(node, node.prefix() + "-one-br", "6003");
  plantMarker(node, node.prefix() + "-two-br", "6004");
  BackgroundPing ping(node, "h0", "10.0.0.2", 6);
  std::this_thread::sleep_for(300ms);  // a few pings pass before the kill
  node.corchd().kill();
  auto restarted = node.corchd().restart();
  BOOST_REQUIRE_MESSAGE(restarted.ok(), (restarted.ok() ? "" : restarted.error().message()));
  const int lost = ping.lost();
  std::cout << "pings lost while corchd was killed and restarted: " << lost << " of 120"
            << std::endl;
  BOOST_TEST(lost == 0, lost << " pings lost; corchd log: " << node.log());
  BOOST_TEST(deployed(node, "one"));
  BOOST_TEST(deployed(node, "two"));
  BOOST_TEST(node.log().find("graph one adopted") != std::string::npos);
  BOOST_TEST(node.log().find("graph two adopted") != std::string::npos);
  BOOST_TEST(markerAlive(node, "6003"));
  BOOST_TEST(markerAlive(node, "6004"));
  auto flows = sb.run("ovs-ofctl -O OpenFlow13 dump-flows " + node.prefix() + "0");
  BOOST_TEST(flows.output.find("0x100000077") == std::string::npos, flows.output);
  BOOST_TEST(node.ping("h2", "10.0.0.4"));

  // What is no longer whole is built anew: a port of graph two's graph-LSI deleted behind corchd's
  // back while it was down.
  node.corchd().kill();
  auto ports = sb.run("ovs-vsctl list-ports " + node.prefix() + "-g2");
  BOOST_REQUIRE(ports.ok());
  const std::string port = ports.output.substr(0, ports.output.find('\n'));
  BOOST_REQUIRE(sb.run("ovs-vsctl del-port " + port).ok());
  BOOST_REQUIRE(node.corchd().restart().ok());
  BOOST_TEST(deployed(node, "two"));
  BOOST_TEST(node.log().find("graph two is deployed anew") != std::string::npos, node.log());
  BOOST_TEST(markerAlive(node, "6003"), "graph one was rebuilt too");
  BOOST_TEST(!markerAlive(node, "6004"), "graph two's function was not rebuilt");
  BOOST_TEST(node.ping("h2", "10.0.0.4"));
  BOOST_TEST(node.ping("h0", "10.0.0.2"));

  for (const char* id : {"one", "two"}) {
    BOOST_TEST(node.request("DELETE", std::string("/graphs/") + id).status == 204);
  }
  BOOST_TEST(node.leftovers().empty(), node.leftovers());
}

BOOST_AUTO_TEST_CASE(a_stopped_corchd_removes_its_graphs_and_brings_them_back_at_start) {
  DemoNode node("r", "stop-node");
  node.setComputeDrivers(R"({"native": {}})");
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
  BOOST_REQUIRE_EQUAL(node.request("PUT", "/graphs/svc", bridgeGraph("svc", 0, 1)).status, 201);
  BOOST_REQUIRE(node.ping("h0", "10.0.0.2"));

  node.corchd().stop();
  // SIGTERM: the node's service stops with it, and nothing is left behind ...
  BOOST_TEST(node.leftovers().empty(), node.leftovers());
  // ... but the graph is kept, and deployed again by the next start.
  BOOST_REQUIRE(node.corchd().restart().ok());
  BOOST_TEST(deployed(node, "svc"));
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
}

BOOST_AUTO_TEST_CASE(initial_graphs_are_deployed_at_boot_and_managed_through_the_api) {
  DemoNode node("r", "initial-node");
  const std::string file = node.sandbox().dir() + "/initial-boot.json";
  std::ofstream(file) << bridgeGraph("boot", 0, 1);
  const std::string missing = node.sandbox().dir() + "/no-such-graph.json";
  node.setExtraConfig(R"("initial-graphs": [ { "id": "boot", "file": ")" + file +
                      R"(" }, { "id": "lost", "file": ")" + missing + R"(" } ])");
  node.setComputeDrivers(R"({"native": {}})");
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
  BOOST_TEST(deployed(node, "boot"));
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  auto list = node.request("GET", "/graphs");
  BOOST_TEST(list.body.find("\"boot\"") != std::string::npos, list.body);
  // An initial graph that cannot be read shows as failed, saying why, and can be deleted.
  auto lost = node.request("GET", "/graphs/lost/status");
  BOOST_TEST(lost.status == 200);
  BOOST_TEST(lost.body.find("\"failed\"") != std::string::npos, lost.body);
  BOOST_TEST(lost.body.find("no-such-graph.json") != std::string::npos, lost.body);
  BOOST_TEST(node.request("DELETE", "/graphs/lost").status == 204);

  // Changed through the API, the stored version wins over the file at the next start.
  BOOST_REQUIRE_EQUAL(node.request("PUT", "/graphs/boot", bridgeGraph("boot", 1, 0)).status, 200);
  node.corchd().kill();
  BOOST_REQUIRE(node.corchd().restart().ok());
  auto got = node.request("GET", "/graphs/boot");
  BOOST_TEST(got.body.find("\"demo1\"") < got.body.find("\"demo0\""), got.body);
  BOOST_TEST(deployed(node, "boot"));
  BOOST_TEST(node.ping("h1", "10.0.0.1"));
  BOOST_TEST(node.request("DELETE", "/graphs/boot").status == 204);
  BOOST_TEST(node.leftovers().empty(), node.leftovers());
}
