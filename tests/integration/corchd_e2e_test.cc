// corchd end to end, on the real thing: a private Open vSwitch (the sandbox), two host namespaces
// joined to the "physical" ports demo0 and demo1, corchd started as a process, graphs deployed
// over REST (and with corchctl) from examples/, and traffic between the hosts.
#define BOOST_TEST_MODULE corchd_e2e
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include "harness/corchd.h"
#include "harness/demo_node.h"
#include "harness/sandbox.h"
#include "util/files.h"

using namespace corch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

const std::string kSource = CORCH_SOURCE_DIR;
const std::string kCorchctl = std::string(CORCH_BINARY_DIR) + "/orchestrator/corchctl";

// The node under test: the demo node with two broken functions (one whose start script fails,
// one whose start script hangs), plus what these tests ask of it.
class Node : public DemoNode {
 public:
  Node()
      : DemoNode(
            "t", "node-" + std::to_string(++count_),
            {{"failing", "echo starting failing\necho 'no luck' >&2\nexit 1\n"},
             {"hanging",
              "echo starting hanging\nexec sh -c 'sleep 1000; echo corch-hanging-marker'\n"}}) {
    auto started = start();
    BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? std::string() : started.error().message()));
  }

  CommandResult corchctl(const std::string& args) {
    return runCommand(kCorchctl + " --url " + url() + " " + args, 120s);
  }

  bool pingFails(const std::string& from, const std::string& to_ip) {
    return !sandbox().runIn(from, "ping -c 2 -W 1 " + to_ip).ok();
  }

  // A TCP connection from one host to a listener on the other host's port opens.
  bool tcpConnects(const std::string& from, const std::string& server, const std::string& ip,
                   int port) {
    // A listener that accepts one connection, in the background, for at most 10 s.
    (void)sandbox().runIn(
        server, "(timeout 10 nc -l -p " + std::to_string(port) + " >/dev/null 2>&1 &) ; sleep 0.2");
    bool ok = sandbox().runIn(from, "nc -z -w 2 " + ip + " " + std::to_string(port)).ok();
    (void)sandbox().runIn(server, "pkill -f 'nc -l -p " + std::to_string(port) + "' || true");
    return ok;
  }

  // Nothing of any graph is left: no bridge but LSI-0, no flow on it, no SF port, no namespace.
  void expectNothingLeft() {
    std::string left = leftovers();
    BOOST_TEST(left.empty(), "left behind: " << left);
  }

  std::string corchdLog() const { return log(); }

 private:
  static inline int count_ = 0;
};

std::string example(const std::string& name) { return kSource + "/examples/" + name + ".json"; }

}  // namespace

BOOST_AUTO_TEST_CASE(passthrough_graph_passes_ping_and_delete_leaves_nothing) {
  Node node;
  BOOST_TEST(node.pingFails("h0", "10.0.0.2"));  // LSI-0 forwards nothing before a graph
  auto deploy = node.corchctl("deploy " + example("passthrough"));
  BOOST_REQUIRE_MESSAGE(deploy.ok(), deploy.output << node.corchdLog());
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h1", "10.0.0.1"));

  auto status = node.request("GET", "/graphs/passthrough/status");
  BOOST_TEST(status.status == 200);
  BOOST_TEST(status.body.find("\"deployed\"") != std::string::npos, status.body);
  BOOST_TEST(node.corchctl("list").output.find("passthrough") != std::string::npos);

  BOOST_REQUIRE(node.corchctl("delete passthrough").ok());
  BOOST_TEST(node.pingFails("h0", "10.0.0.2"));
  node.expectNothingLeft();
  BOOST_TEST(node.request("GET", "/graphs/passthrough").status == 404);
}

BOOST_AUTO_TEST_CASE(firewall_graph_filters_traffic) {
  Node node;
  auto deploy = node.corchctl("deploy " + example("firewall"));
  BOOST_REQUIRE_MESSAGE(deploy.ok(), deploy.output << node.corchdLog());
  // h0 is inside (the firewall's first port), h1 outside.
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h1", "10.0.0.1"));                     // allow-icmp is true
  BOOST_TEST(node.tcpConnects("h0", "h1", "10.0.0.2", 5555));  // inside -> outside: anything
  BOOST_TEST(node.tcpConnects("h1", "h0", "10.0.0.1", 80));    // allowed-tcp-ports
  BOOST_TEST(node.tcpConnects("h1", "h0", "10.0.0.1", 22));
  BOOST_TEST(!node.tcpConnects("h1", "h0", "10.0.0.1", 23));  // blocked
  BOOST_TEST(!node.tcpConnects("h1", "h0", "10.0.0.1", 8080));

  auto log = node.request("GET", "/graphs/firewall/sfs/fw/log");
  BOOST_TEST(log.status == 200);

  BOOST_REQUIRE(node.corchctl("delete firewall").ok());
  node.expectNothingLeft();
}

BOOST_AUTO_TEST_CASE(bridge_firewall_bridge_chain) {
  Node node;
  auto deploy = node.corchctl("deploy " + example("bridge-firewall-bridge"));
  BOOST_REQUIRE_MESSAGE(deploy.ok(), deploy.output << node.corchdLog());
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.tcpConnects("h1", "h0", "10.0.0.1", 80));
  BOOST_TEST(!node.tcpConnects("h1", "h0", "10.0.0.1", 23));
  BOOST_REQUIRE(node.corchctl("delete bridge-firewall-bridge").ok());
  node.expectNothingLeft();
}

// A graph whose function cannot start: the PUT answers with the cause, nothing is left, and the
// status says why.
BOOST_AUTO_TEST_CASE(failed_start_leaves_nothing) {
  Node node;
  std::string graph = readFile(example("firewall"));
  auto at = graph.find("\"name\": \"firewall\",\n        \"ports\"");
  BOOST_REQUIRE(at != std::string::npos);
  for (std::string broken : {"failing", "hanging"}) {
    std::string g = graph;
    g.replace(at, std::string("\"name\": \"firewall\"").size(), "\"name\": \"" + broken + "\"");
    g.replace(
        g.find("\"config\": { \"allowed-tcp-ports\": [22, 80], \"allow-icmp\": true }"),
        std::string("\"config\": { \"allowed-tcp-ports\": [22, 80], \"allow-icmp\": true }").size(),
        "\"config\": {}");
    auto put = node.request("PUT", "/graphs/firewall", g);
    BOOST_TEST_MESSAGE(broken << ": " << put.status << " " << put.body);
    if (broken == "failing") {
      BOOST_TEST(put.status == 500);
      BOOST_TEST(put.body.find("no luck") != std::string::npos, put.body);
    } else {
      BOOST_TEST(put.status == 504);
      BOOST_TEST(!node.sandbox().run("pgrep -f 'corch-hanging-marke[r]'").ok());
    }
    auto status = node.request("GET", "/graphs/firewall/status");
    BOOST_TEST(status.body.find("\"failed\"") != std::string::npos, status.body);
    BOOST_TEST(node.request("GET", "/graphs/firewall").status == 404);
    node.expectNothingLeft();
  }
  // The same id then deploys fine.
  BOOST_REQUIRE(node.corchctl("deploy " + example("firewall")).ok());
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_REQUIRE(node.corchctl("delete firewall").ok());
  node.expectNothingLeft();
}

BOOST_AUTO_TEST_CASE(bad_graphs_are_refused_before_anything_is_built) {
  Node node;
  std::string graph = readFile(example("passthrough"));
  // Unknown interface on this node.
  std::string wrong_if = graph;
  wrong_if.replace(wrong_if.find("\"if-name\": \"demo1\""), 18, "\"if-name\": \"eth9\"");
  auto put = node.request("PUT", "/graphs/passthrough", wrong_if);
  BOOST_TEST(put.status == 422);
  BOOST_TEST(put.body.find("/sffg/saps/1/interface/if-name") != std::string::npos, put.body);
  // No implementation of a capability.
  std::string fw = readFile(example("firewall"));
  fw.replace(fw.find("\"name\": \"firewall\",\n        \"ports\""), 18, "\"name\": \"dpi\"");
  put = node.request("PUT", "/graphs/firewall", fw);
  BOOST_TEST(put.status == 422);
  BOOST_TEST(put.body.find("/sffg/SFs/0") != std::string::npos, put.body);
  // corchctl shows the server's error in full and exits non-zero.
  std::string file = node.sandbox().dir() + "/bad-graph.json";
  std::ofstream(file) << wrong_if;
  auto ctl = node.corchctl("deploy " + file);
  BOOST_TEST(!ctl.ok());
  BOOST_TEST(ctl.output.find("/sffg/saps/1/interface/if-name") != std::string::npos, ctl.output);
  node.expectNothingLeft();
}
