// A graph's DPDK function on vhost-user ports of an Open vSwitch with DPDK (OVS-DPDK), all real:
// ovs-vswitchd-dpdk on hugepages in a namespace of its own (harness/ovs_dpdk.h), the ovs vSwitch
// driver making dpdkvhostuserclient ports, the dpdk compute driver running dpdk-testpmd as the
// vhost-user server of those sockets, and a ping between two hosts that crosses testpmd:
//
//   h0 -- LSI-0 (cvl0) -- vlink 0 -- graph LSI (cvg) -- vhost-user cvvu0 == testpmd ==
//   cvvu1 vhost-user -- graph LSI -- vlink 1 -- LSI-0 -- h1
//
// as a deploy lays it out (SAPs on LSI-0, the function's ports on the graph's LSI). The proof that
// the ping crosses testpmd: its port statistics, printed when it stops, count the packets, and
// once it is stopped the ping fails. Destroying the function and the LSIs leaves no port, socket
// or process. Times printed: ovs-vswitchd-dpdk start, testpmd start on vhost-user, first ping.
//
// The test process lives in the sandbox's namespace (SandboxFixture); ovs-vswitchd-dpdk cannot
// (the sandbox's own ovs-vswitchd holds the namespace's "ovs-netdev" tap), so the drivers run on
// the main thread moved into the switch's namespace for the test body (EnterNetns): a driver
// makes its veths and taps, and the dpdk driver finds the node's links, where it is called, as in
// a corchd that runs next to its switch. The move is per thread and undone by a destructor, so
// Boost.Test's assertions stay on the main thread and a failed REQUIRE still brings the thread
// back. Names start with "cv".
#define BOOST_TEST_MODULE ovs_dpdk
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <regex>
#include <vector>

#include "compute/dpdk/engine.h"
#include "corch/compute.h"
#include "corch/driver_registry.h"
#include "harness/ovs_dpdk.h"
#include "harness/sandbox.h"
#include "platform/netns.h"
#include "resolver/repository.h"
#include "util/files.h"

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace fs = std::filesystem;
namespace platform = corch::platform;
using namespace corch;
using corch::test::OvsDpdk;
using corch::test::Sandbox;
using corch::test::waitUntil;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kTemplate =
    std::string(CORCH_SOURCE_DIR) + "/sf-repository/templates/forwarder-dpdk-vhost.json";

template <class T>
std::string why(const Result<T>& r) {
  return r.ok() ? "" : r.error().message();
}

long msSince(Clock::time_point t) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

resolver::Template loadTemplate() {
  auto parsed = resolver::parseTemplate(corch::test::readFile(kTemplate), kTemplate);
  BOOST_REQUIRE_MESSAGE(parsed.ok(), why(parsed));
  return std::move(parsed).value();
}

// The registry corchd has: every driver built in.
DriverRegistry& registry() {
  static DriverRegistry builtin = [] {
    DriverRegistry r;
    registerBuiltinDrivers(r);
    return r;
  }();
  return builtin;
}

// A driver that was made and whose probe() passed (the test stops here otherwise).
template <class Driver>
std::unique_ptr<Driver> probed(Result<std::unique_ptr<Driver>> made) {
  BOOST_REQUIRE_MESSAGE(made.ok(), why(made));
  auto usable = (*made)->probe();
  BOOST_REQUIRE_MESSAGE(usable.ok(), why(usable));
  return std::move(made).value();
}

TsRule forward(uint32_t in, uint32_t out) {
  TsRule r;
  r.cookie = 0xc7;
  r.priority = 10;
  r.in_port = in;
  r.outputs = {out};
  return r;
}

// Both directions between two ports.
std::vector<TsRule> both(uint32_t a, uint32_t b) { return {forward(a, b), forward(b, a)}; }

// Runs the registered undo steps in reverse order when the test ends, however it ends.
class Undo {
 public:
  ~Undo() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }
  void add(std::function<void()> step) { steps_.push_back(std::move(step)); }

 private:
  std::vector<std::function<void()>> steps_;
};

// The sum of testpmd's "RX-packets: N" counters in its log (its statistics at stop).
uint64_t rxPackets(const std::string& log) {
  static const std::regex counter(R"(RX-packets:\s+(\d+))");
  uint64_t total = 0;
  for (std::sregex_iterator it(log.begin(), log.end(), counter), end; it != end; ++it) {
    total += std::stoull((*it)[1].str());
  }
  return total;
}

}  // namespace

// The template of the test's function: a dpdk forwarder on vhost-user ports, which the resolver's
// parser accepts and whose engine settings the dpdk driver accepts.
BOOST_AUTO_TEST_CASE(vhost_forwarder_template_loads) {
  auto t = loadTemplate();
  BOOST_TEST(t.id == "forwarder-dpdk-vhost");
  BOOST_TEST(t.capability == "forwarder");
  BOOST_TEST(t.type == "dpdk");
  BOOST_TEST(t.port_technology == "vhost-user");
  BOOST_TEST(t.ports_min == 2u);
  BOOST_TEST(t.ports_max == 2u);
  auto engine = drivers::dpdk::parseEngine(t.engine_json);
  BOOST_REQUIRE_MESSAGE(engine.ok(), why(engine));
  BOOST_TEST(engine->forward_mode == "io");
  BOOST_TEST(engine->extra_eal.empty(), "the driver adds --single-file-segments itself");
}

BOOST_AUTO_TEST_CASE(ping_crosses_testpmd_on_vhost_user_ports_of_ovs_dpdk) {
  auto& sb = Sandbox::get();
  const auto t = loadTemplate();
  const std::string me = std::to_string(::getpid());

  // (a) the switch, on hugepages for itself and for testpmd (the template's memory).
  OvsDpdk ovs({.function_memory_mb = static_cast<unsigned>(t.memory_mb)});
  auto started = ovs.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), why(started));
  BOOST_TEST_MESSAGE("ovs-vswitchd-dpdk started in " << ovs.vswitchdStartTime().count() << " ms");

  Undo hosts;
  hosts.add([&] {
    (void)sb.removeHost("cv0");
    (void)sb.removeHost("cv1");
  });
  auto h0 = sb.addHost("cv0", "10.72.0.1/24");
  BOOST_REQUIRE_MESSAGE(h0.ok(), why(h0));
  auto h1 = sb.addHost("cv1", "10.72.0.2/24");
  BOOST_REQUIRE_MESSAGE(h1.ok(), why(h1));
  for (const auto& phys : {*h0, *h1}) {
    auto adopted = ovs.adoptInterface(phys);
    BOOST_REQUIRE_MESSAGE(adopted.ok(), why(adopted));
  }

  corch::test::EnterNetns inside(ovs.netns());
  BOOST_REQUIRE_MESSAGE(inside.ok(), inside.error());
  auto vswitch = probed(registry().makeVSwitch("ovs", ovs.ovsDriverOptions()));
  // "auto": testpmd takes the harness's hugepages (--in-memory) when enough are free.
  auto compute = probed(registry().makeCompute("dpdk", DriverOptions{{{"hugepages", "auto"}}}));
  Undo undo;  // after the drivers: it runs before they are destroyed

  // LSI-0 with the two hosts; the graph's LSI with the function's two vhost-user ports, joined
  // to LSI-0 by two vlinks.
  undo.add([&] {
    (void)vswitch->destroyLsi("cvg");
    (void)vswitch->destroyLsi("cvl0");
  });
  auto lsi0 = vswitch->createLsi(LsiSpec{"cvl0", {*h0, *h1}, {}, "", 0});
  BOOST_REQUIRE_MESSAGE(lsi0.ok(), why(lsi0));
  auto g = vswitch->createLsi(
      LsiSpec{"cvg",
              {},
              {{"cvvu0", PortTechnology::VhostUser}, {"cvvu1", PortTechnology::VhostUser}},
              "cvl0",
              2});
  BOOST_REQUIRE_MESSAGE(g.ok(), why(g));
  BOOST_REQUIRE_EQUAL(g->ports.size(), 2u);
  BOOST_REQUIRE_EQUAL(g->vlinks.size(), 2u);
  std::vector<std::string> sockets;
  for (const auto& port : g->ports) {
    BOOST_TEST(port.peer_ifname == ovs.rundir() + "/" + port.name);
    sockets.push_back(port.peer_ifname);
  }
  BOOST_TEST(ovs.vsctl("get interface cvvu0 type").output == "dpdkvhostuserclient\n");

  // Rules: h0 <-> vlink 0 <-> vhost port 0; vhost port 1 <-> vlink 1 <-> h1.
  std::vector<TsRule> on_lsi0 = both(lsi0->interfaces[0].of_port, g->vlinks[0].port_a);
  for (auto& r : both(lsi0->interfaces[1].of_port, g->vlinks[1].port_a)) on_lsi0.push_back(r);
  std::vector<TsRule> on_graph = both(g->vlinks[0].port_b, g->ports[0].of_port);
  for (auto& r : both(g->vlinks[1].port_b, g->ports[1].of_port)) on_graph.push_back(r);
  auto installed = vswitch->installRules("cvl0", on_lsi0);
  BOOST_REQUIRE_MESSAGE(installed.ok(), why(installed));
  installed = vswitch->installRules("cvg", on_graph);
  BOOST_REQUIRE_MESSAGE(installed.ok(), why(installed));

  // (b) the function: testpmd serving both sockets, as the compute manager would run it.
  SfSpec sf;
  sf.graph_id = "cv";
  sf.sf_id = "fwd";
  sf.instance = "cv-" + me + "-fwd";  // removed by a later harness if this process is killed
  sf.template_id = t.id;
  sf.engine_json = t.engine_json;
  sf.memory_mb = t.memory_mb;
  sf.cpu_cores = t.cpu_cores;
  sf.timeout = 20s;
  sf.run_dir = ovs.dir() + "/fwd";
  sf.log_path = sf.run_dir + "/fwd.log";
  fs::create_directories(sf.run_dir);
  for (size_t i = 0; i < g->ports.size(); ++i) {
    sf.ports.push_back(SfPortBinding{std::to_string(i + 1), "", g->ports[i].peer_ifname,
                                     PortTechnology::VhostUser, ""});
  }
  undo.add([&] { (void)compute->destroySf(sf); });
  auto created = compute->createSf(sf);
  BOOST_REQUIRE_MESSAGE(created.ok(), why(created));
  auto begin = Clock::now();
  auto running = compute->startSf(sf);
  BOOST_REQUIRE_MESSAGE(running.ok(), why(running));
  BOOST_TEST_MESSAGE("testpmd started on two vhost-user ports in " << msSince(begin) << " ms");
  const std::string header = corch::test::readFile(sf.log_path);
  BOOST_TEST_MESSAGE("testpmd hugepages: " << (header.find("--in-memory") != std::string::npos
                                                   ? "yes (--in-memory)"
                                                   : "no (--no-huge)"));
  BOOST_TEST(header.find("--in-memory") != std::string::npos, header);
  BOOST_TEST(header.find("--single-file-segments") != std::string::npos, header);

  // The switch, the client, reconnects to testpmd's sockets.
  BOOST_TEST(waitUntil(
      [&] {
        return ovs.vsctl("get interface cvvu0 link_state").output == "up\n" &&
               ovs.vsctl("get interface cvvu1 link_state").output == "up\n";
      },
      20s, 50ms));
  BOOST_TEST_MESSAGE("vhost-user links up " << msSince(begin) << " ms after testpmd's start");
  BOOST_TEST(
      waitUntil([&] { return sb.runIn("cv0", "ping -c 1 -W 1 10.72.0.2", 5s).ok(); }, 30s, 100ms));
  BOOST_TEST_MESSAGE("first ping h0 -> h1 " << msSince(begin) << " ms after testpmd's start");
  auto pinged = sb.runIn("cv0", "ping -c 3 -i 0.2 -W 1 10.72.0.2", 10s);
  BOOST_TEST(pinged.ok(), pinged.output);

  // The ping crossed testpmd: its statistics at stop count it, and without it there is no path.
  auto stopped = compute->stopSf(sf);
  BOOST_REQUIRE_MESSAGE(stopped.ok(), why(stopped));
  const std::string log = corch::test::readFile(sf.log_path);
  BOOST_TEST(rxPackets(log) >= 8u, "testpmd's statistics:\n" << log);
  BOOST_TEST_MESSAGE("testpmd received " << rxPackets(log) << " packets in all");
  BOOST_TEST(!sb.runIn("cv0", "ping -c 2 -i 0.3 -W 1 10.72.0.2", 10s).ok());

  // (c) destroy everything: no port, no socket, no process left.
  auto destroyed = compute->destroySf(sf);
  BOOST_TEST(destroyed.ok(), why(destroyed));
  auto gone = vswitch->destroyLsi("cvg");
  BOOST_TEST(gone.ok(), why(gone));
  gone = vswitch->destroyLsi("cvl0");
  BOOST_TEST(gone.ok(), why(gone));
  BOOST_TEST(ovs.vsctl("list-br").output == "");
  BOOST_TEST(ovs.vsctl("--columns=name find Interface type=dpdkvhostuserclient").output == "");
  for (const auto& socket : sockets) BOOST_TEST(!fs::exists(socket), socket << " is left");
  BOOST_TEST(!platform::netnsExists(sf.instance));
  BOOST_TEST(!fs::exists("/var/run/dpdk/" + sf.instance));
  BOOST_TEST(
      corch::test::runCommand("pgrep -f " + corch::test::shellQuote("[c]" + sf.instance.substr(1)))
          .output == "");
  // In the switch's namespace only its two daemons run.
  auto fd = platform::openNetns(ovs.netns());
  BOOST_REQUIRE_MESSAGE(fd.ok(), why(fd));
  auto pids = platform::processesInNetns(fd->get());
  BOOST_REQUIRE_MESSAGE(pids.ok(), why(pids));
  std::vector<int> expected = {ovs.ovsdbPid(), ovs.vswitchdPid()};
  std::sort(pids->begin(), pids->end());
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(*pids == expected, boost::test_tools::per_element());
}
