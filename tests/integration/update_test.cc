// Update by diff on the real thing: corchd on the sandbox's Open vSwitch with native functions.
// A chain demo0 - bridge br1 - demo1 carries a continuous ping while a PUT adds a second bridge
// on a path of its own (UDP only): no ping packet may be lost and br1 must be the same function
// (same network namespace) afterwards. A failing update then leaves the previous graph working.
#define BOOST_TEST_MODULE update
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

#include "harness/corchd.h"
#include "harness/demo_node.h"
#include "harness/sandbox.h"

using namespace corch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

// One bridge SF, and the four rules of a chain through it (priority 1, any traffic).
std::string bridgeSf(const std::string& id, const std::string& name = "bridge") {
  return R"({ "id": ")" + id + R"(", "name": ")" + name +
         R"(", "ports": [ { "id": "1" }, { "id": "2" } ] })";
}

std::string flowrule(const std::string& id, const std::string& priority, const std::string& in,
                     const std::string& match, const std::string& out) {
  return R"({ "id": ")" + id + R"(", "priority": ")" + priority + R"(", "match": { "port_in": ")" +
         in + "\"" + match + R"( }, "actions": { "output_to_port": ")" + out + R"(" } })";
}

// Rules steering traffic demo0 <-> demo1 through SF `sf`, at `priority`, with `match` (JSON
// members to add after port_in, e.g. `, "ether_type": "0x0800"`).
std::vector<std::string> chainRules(const std::string& sf, const std::string& priority,
                                    const std::string& match = "") {
  const std::string d0 = "service-access-point:demo0";
  const std::string d1 = "service-access-point:demo1";
  return {flowrule(sf + "-in0", priority, d0, match, "sf:" + sf + ":1"),
          flowrule(sf + "-out1", priority, "sf:" + sf + ":2", "", d1),
          flowrule(sf + "-in1", priority, d1, match, "sf:" + sf + ":2"),
          flowrule(sf + "-out0", priority, "sf:" + sf + ":1", "", d0)};
}

std::string graphJson(const std::vector<std::string>& sfs, const std::vector<std::string>& rules) {
  auto join = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ",\n") + i;
    return out;
  };
  return R"({ "sffg": { "id": "update", "name": "update", "SFs": [)" + join(sfs) +
         R"(], "saps": [
      { "id": "demo0", "type": "interface", "interface": { "if-name": "demo0" } },
      { "id": "demo1", "type": "interface", "interface": { "if-name": "demo1" } } ],
    "flowrules": [)" +
         join(rules) + "] } }";
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::string kUdp = R"(, "ether_type": "0x0800", "protocol": "17")";

// The version with one bridge, the version with a second one for UDP, and a third that adds a
// function whose start fails.
std::string oneBridge() { return graphJson({bridgeSf("br1")}, chainRules("br1", "1")); }
std::string twoBridges() {
  return graphJson({bridgeSf("br1"), bridgeSf("br2")},
                   chainRules("br1", "1") + chainRules("br2", "10", kUdp));
}
std::string withFailing() {
  return graphJson({bridgeSf("br1"), bridgeSf("br2"), bridgeSf("bad", "failing")},
                   chainRules("br1", "1") + chainRules("br2", "10", kUdp) +
                       chainRules("bad", "20", R"(, "ether_type": "0x0800", "protocol": "6")"));
}

// The demo node with a function whose start script fails, plus what these tests ask of it.
class Node : public DemoNode {
 public:
  Node() : DemoNode("u", "update-node", {{"failing", "echo 'no luck' >&2\nexit 1\n"}}) {
    auto started = start();
    BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? std::string() : started.error().message()));
  }

  // The namespace of a function, and its identity (the inode of its nsfs file): the same
  // function keeps the same namespace; a restarted one gets a new one.
  std::string netns(const std::string& sf) const { return prefix() + "-update-" + sf; }
  std::string netnsInode(const std::string& sf) {
    auto r = sandbox().run("stat -L -c %i /run/netns/" + netns(sf));
    return r.ok() ? r.output : "";
  }

  // Packets a function's first port received.
  long rxPackets(const std::string& sf) {
    auto r = sandbox().run("ip netns exec " + netns(sf) +
                           " cat /sys/class/net/eth0/statistics/rx_packets");
    return r.ok() ? std::stol(r.output) : -1;
  }

  void expectNothingLeft() {
    std::string left = leftovers();
    BOOST_TEST(left.empty(), "left behind: " << left);
  }
};

// A ping from h0 to h1 every 50 ms, `count` packets, in the background.
class ContinuousPing {
 public:
  ContinuousPing(Sandbox& sb, int count) : sb_(sb) {
    out_ = sb.dir() + "/ping.out";
    pid_file_ = sb.dir() + "/ping.pid";
    auto started = sb.runIn("h0", "ping -n -i 0.05 -W 1 -c " + std::to_string(count) +
                                      " 10.0.0.2 >" + out_ + " 2>&1 & echo $! >" + pid_file_);
    BOOST_REQUIRE_MESSAGE(started.ok(), started.output);
    std::ifstream(pid_file_) >> pid_;
    BOOST_REQUIRE(pid_ > 0);
  }
  bool running() const { return ::kill(pid_, 0) == 0 && !zombie(); }
  // Waits for the last packet; returns (transmitted, received).
  std::pair<int, int> finish() {
    BOOST_REQUIRE(waitUntil([&] { return !running(); }, 60s, 50ms));
    std::ifstream in(out_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::smatch m;
    static const std::regex summary(R"((\d+) packets transmitted, (\d+) received)");
    if (!std::regex_search(text, m, summary)) {
      BOOST_TEST_MESSAGE("ping output: " << text);
      return {0, -1};
    }
    return {std::stoi(m[1]), std::stoi(m[2])};
  }

 private:
  bool zombie() const {
    std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
    std::string pid, comm, state;
    stat >> pid >> comm >> state;
    return !stat || state == "Z";
  }

  Sandbox& sb_;
  std::string out_;
  std::string pid_file_;
  pid_t pid_ = -1;
};

}  // namespace

BOOST_AUTO_TEST_CASE(adding_an_sf_loses_no_packet_and_a_failed_update_changes_nothing) {
  Node node;
  auto put = node.request("PUT", "/graphs/update", oneBridge());
  BOOST_REQUIRE_MESSAGE(put.status == 201, put.status << " " << put.body << node.log());
  BOOST_REQUIRE(node.ping("h0", "10.0.0.2"));
  const std::string br1 = node.netnsInode("br1");
  BOOST_REQUIRE(!br1.empty());

  // 200 packets (10 s) around the update.
  {
    ContinuousPing ping(node.sandbox(), 200);
    BOOST_REQUIRE(waitUntil([&] { return node.rxPackets("br1") > 0; }, 5s));
    auto update = node.request("PUT", "/graphs/update", twoBridges());
    BOOST_TEST_MESSAGE("update: " << update.status << " " << update.body);
    BOOST_REQUIRE_MESSAGE(update.status == 200, update.body << node.log());
    BOOST_TEST(update.body.find("sf br2 added") != std::string::npos, update.body);
    BOOST_TEST(ping.running(), "the update took longer than the ping: nothing was measured");
    auto [sent, received] = ping.finish();
    BOOST_TEST(sent == 200);
    BOOST_TEST(received == sent, "lost " << sent - received << " of " << sent << " packets");
  }
  BOOST_TEST(node.netnsInode("br1") == br1, "br1 was restarted");
  const std::string br2 = node.netnsInode("br2");
  BOOST_REQUIRE(!br2.empty());

  // The new SF runs and its path works: UDP from h0 to h1 goes through br2, ping still br1.
  long br2_before = node.rxPackets("br2");
  BOOST_TEST(node.sandbox()
                 .runIn("h0", "for i in 1 2 3; do echo hi | nc -u -w 1 10.0.0.2 9999; done")
                 .exit_code >= 0);
  BOOST_TEST(waitUntil([&] { return node.rxPackets("br2") >= br2_before + 3; }, 5s),
             "br2 received " << node.rxPackets("br2") - br2_before << " packets");
  BOOST_TEST(node.ping("h0", "10.0.0.2"));

  // A template that does not exist: refused before anything is touched.
  std::string pinned = twoBridges();
  pinned.replace(pinned.find(R"("id": "br2", "name": "bridge")"),
                 std::string(R"("id": "br2", "name": "bridge")").size(),
                 R"("id": "br2", "name": "bridge", "template": "no-such-template")");
  auto refused = node.request("PUT", "/graphs/update", pinned);
  BOOST_TEST(refused.status == 422, refused.body);

  // A function whose start fails: the update is undone, the previous graph keeps working.
  auto failed = node.request("PUT", "/graphs/update", withFailing());
  BOOST_TEST(failed.status == 500, failed.body);
  BOOST_TEST(failed.body.find("no luck") != std::string::npos, failed.body);
  auto status = node.request("GET", "/graphs/update/status");
  BOOST_TEST(status.body.find("\"deployed\"") != std::string::npos, status.body);
  auto shown = node.request("GET", "/graphs/update");
  BOOST_TEST(shown.body.find("br2") != std::string::npos);
  BOOST_TEST(shown.body.find("\"bad\"") == std::string::npos, shown.body);
  BOOST_TEST(node.netnsInode("bad").empty());
  BOOST_TEST(node.netnsInode("br1") == br1);
  BOOST_TEST(node.netnsInode("br2") == br2);
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h1", "10.0.0.1"));

  // Back to one bridge: br2 goes, br1 stays; DELETE then leaves nothing.
  auto back = node.request("PUT", "/graphs/update", oneBridge());
  BOOST_TEST(back.status == 200, back.body);
  BOOST_TEST(node.netnsInode("br2").empty());
  BOOST_TEST(node.netnsInode("br1") == br1);
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.request("DELETE", "/graphs/update").status == 204);
  node.expectNothingLeft();
}
