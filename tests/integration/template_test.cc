// Graph templates on the real thing (paper 5.6, DESIGN section 4): an SF asked for by the
// capability "security" is implemented by the shipped graph template security-graph (a firewall
// then a bridge), spliced into the graph and joined to it by junctions on the graph-LSI. Traffic
// crosses it both ways as the firewall allows; the client still sees its own graph.
#define BOOST_TEST_MODULE template
#include <boost/test/unit_test.hpp>

#include "harness/demo_node.h"
#include "harness/sandbox.h"

using namespace corch::test;
using namespace std::chrono_literals;

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

const char* kSecurity = R"({ "sffg": { "id": "sec", "name": "sec",
  "SFs": [ { "id": "guard", "name": "security", "ports": [ { "id": "lan" }, { "id": "wan" } ] } ],
  "saps": [ { "id": "d0", "type": "interface", "interface": { "if-name": "demo0" } },
            { "id": "d1", "type": "interface", "interface": { "if-name": "demo1" } } ],
  "flowrules": [
    { "id": "in", "priority": "1", "match": { "port_in": "service-access-point:d0" },
      "actions": { "output_to_port": "sf:guard:lan" } },
    { "id": "back", "priority": "1", "match": { "port_in": "sf:guard:lan" },
      "actions": { "output_to_port": "service-access-point:d0" } },
    { "id": "out", "priority": "1", "match": { "port_in": "sf:guard:wan" },
      "actions": { "output_to_port": "service-access-point:d1" } },
    { "id": "from", "priority": "1", "match": { "port_in": "service-access-point:d1" },
      "actions": { "output_to_port": "sf:guard:wan" } } ] } })";

}  // namespace

BOOST_AUTO_TEST_CASE(security_capability_by_a_graph_template) {
  DemoNode node("t", "template");
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? std::string() : started.error().message()));
  Sandbox& sb = node.sandbox();

  auto put = node.request("PUT", "/graphs/sec", kSecurity);
  BOOST_REQUIRE_MESSAGE(put.status == 201, put.status << " " << put.body << "\n" << node.log());
  // Both functions of the template run, each in its own namespace.
  for (const char* sf : {"guard.fw", "guard.br"}) {
    BOOST_TEST(sb.run("test -e /run/netns/" + node.prefix() + "-sec-" + sf).ok(), sf);
  }
  // h0 is inside the firewall: it reaches h1 (and its answers come back); from outside only
  // replies pass, so h1 cannot open a connection to h0.
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  (void)sb.runIn("h0", "nc -l -p 8080 >/dev/null 2>&1 & sleep 0.2");
  BOOST_TEST(!sb.runIn("h1", "nc -z -w 2 10.0.0.1 8080").ok());
  (void)sb.runIn("h0", "pkill -f 'nc -l -p 8080' || true");
  (void)sb.runIn("h1", "nc -l -p 8081 >/dev/null 2>&1 & sleep 0.2");
  BOOST_TEST(sb.runIn("h0", "nc -z -w 2 10.0.0.2 8081").ok());
  (void)sb.runIn("h1", "pkill -f 'nc -l -p 8081' || true");

  // corchd killed and started again adopts the graph, junctions included; the firewall still
  // lets only replies in.
  node.corchd().kill();
  BOOST_REQUIRE(node.corchd().restart().ok());
  BOOST_TEST(node.log().find("graph sec adopted") != std::string::npos, node.log());
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  (void)sb.runIn("h0", "nc -l -p 8082 >/dev/null 2>&1 & sleep 0.2");
  BOOST_TEST(!sb.runIn("h1", "nc -z -w 2 10.0.0.1 8082").ok());
  (void)sb.runIn("h0", "pkill -f 'nc -l -p 8082' || true");

  // The client's graph is the one it sent: one SF, no junction.
  auto got = node.request("GET", "/graphs/sec");
  BOOST_TEST(got.status == 200);
  const size_t status_at = got.body.find(",\"status\":");
  const std::string sffg = got.body.substr(0, status_at);
  BOOST_TEST(sffg.find("\"guard\"") != std::string::npos, got.body);
  BOOST_TEST(sffg.find("junction") == std::string::npos, got.body);
  BOOST_TEST(sffg.find("guard.fw") == std::string::npos, got.body);
  // Beside it, read-only, the functions that run it: those of the template's graph.
  BOOST_REQUIRE(status_at != std::string::npos);
  BOOST_TEST(got.body.find("\"sf\":\"guard.fw\",\"template\":\"firewall-nsf\"", status_at) !=
                 std::string::npos,
             got.body);
  // The functions' logs are reachable by their spliced ids.
  BOOST_TEST(node.request("GET", "/graphs/sec/sfs/guard.fw/log").status == 200);

  BOOST_TEST(node.request("DELETE", "/graphs/sec").status == 204);
  std::string left = node.leftovers();
  BOOST_TEST(left.empty(), "left behind: " << left);
}
