// Integration tests of the 'dpdk' compute driver with the real dpdk-testpmd (Debian package
// dpdk-dev), as root, inside the sandbox's private network namespace:
//  - the driver directly: two host namespaces joined to testpmd's two af_packet ports by veth
//    pairs; ping crosses testpmd's io forwarding (ARP included); a fresh driver (a restarted
//    corchd) adopts it (the same process, still forwarding; a missing port, a stopped or unknown
//    function refused), stops and destroys it; stop and destroy are idempotent; nothing is left
//    (namespace, process, DPDK runtime folder); bad engine settings and a failing start are
//    reported;
//  - end to end: corchd with the native and dpdk drivers deploys h0 <-> forwarder-dpdk <-> h1 by
//    PUT /graphs/{id}; ping crosses it; DELETE leaves nothing.
// Start and stop times of the function are printed (bench/compute). Names start with "cp<pid>".
#define BOOST_TEST_MODULE dpdk_driver
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include "compute/dpdk/command.h"
#include "corch/compute.h"
#include "corch/driver_registry.h"
#include "harness/demo_node.h"
#include "harness/sandbox.h"
#include "platform/netlink.h"
#include "platform/netns.h"
#include "platform/process.h"
#include "util/files.h"

namespace corch::drivers::dpdk {
void registerDriver(DriverRegistry& registry);
}

namespace corch {
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace fs = std::filesystem;
namespace platform = corch::platform;
using corch::ErrorCode;
using corch::SfSpec;
using corch::test::readFile;
using corch::test::runCommand;
using corch::test::TempDir;
using corch::test::waitUntil;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kPid = std::to_string(::getpid() % 100000);

std::string nsName(const std::string& what) { return "cp" + kPid + "-" + what; }
std::string ifName(const std::string& tag) { return "cp" + kPid + tag; }
std::string errorText(const corch::Result<void>& r) { return r.ok() ? "" : r.error().message(); }

long msSince(Clock::time_point t) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

std::unique_ptr<corch::ComputeDriver> makeDriver() {
  corch::DriverRegistry registry;
  corch::drivers::dpdk::registerDriver(registry);
  auto driver = registry.makeCompute("dpdk", {});
  BOOST_REQUIRE_MESSAGE(driver.ok(), (driver.ok() ? "" : driver.error().message()));
  return std::move(driver).value();
}

bool pings(const std::string& ns, const std::string& addr) {
  return runCommand("ip netns exec " + ns + " ping -c 1 -W 1 " + addr, 5s).ok();
}

// A host namespace joined to a function port by a veth pair: eth0 with an address in the host,
// the other end left in our namespace for the driver.
class Host {
 public:
  Host(const std::string& tag, const std::string& cidr) : fn_end_(ifName(tag + "f")) {
    auto ns = platform::ScopedNetns::create(nsName("h" + tag));
    BOOST_REQUIRE_MESSAGE(ns.ok(), (ns.ok() ? "" : ns.error().message()));
    ns_ = std::move(ns).value();
    auto fd = ns_.open();
    BOOST_REQUIRE(fd.ok());
    const std::string host_end = ifName(tag + "h");
    BOOST_REQUIRE(platform::createVethPair(host_end, fn_end_).ok());
    BOOST_REQUIRE(platform::moveLinkToNetns(host_end, fd->get(), "eth0").ok());
    auto sock = platform::RouteSocket::openIn(fd->get());
    BOOST_REQUIRE(sock.ok());
    BOOST_REQUIRE(sock->setLinkUp("lo").ok());
    BOOST_REQUIRE(sock->setLinkUp("eth0").ok());
    BOOST_REQUIRE(sock->addAddress("eth0", cidr).ok());
    BOOST_REQUIRE(platform::disableTxChecksum(fd->get(), "eth0").ok());
  }
  ~Host() { (void)platform::deleteLink(fn_end_); }
  const std::string& name() const { return ns_.name(); }
  corch::SfPortBinding port(const std::string& id) const {
    return corch::SfPortBinding{id, id, fn_end_, corch::PortTechnology::Veth};
  }

 private:
  std::string fn_end_;
  platform::ScopedNetns ns_;
};

// Destroys a function when the test ends, whatever happened.
struct SfGuard {
  corch::ComputeDriver& driver;
  SfSpec spec;
  ~SfGuard() { (void)driver.destroySf(spec); }
};

SfSpec makeSpec(const std::string& sf_id, const fs::path& dir, const std::string& engine = "") {
  SfSpec spec;
  spec.graph_id = "g" + kPid;
  spec.sf_id = sf_id;
  spec.instance = nsName(sf_id);
  spec.template_id = "forwarder-dpdk";
  spec.image = (dir / "dpdk-testpmd").string();  // as the resolver makes it: not a file
  spec.engine_json = engine;
  spec.log_path = (dir / (sf_id + ".log")).string();
  spec.run_dir = (dir / "run").string();
  spec.memory_mb = 256;
  spec.timeout = 10s;
  return spec;
}

// No process runs with the function's DPDK file prefix, and its runtime folder is gone.
void expectNothingOf(const SfSpec& spec) {
  BOOST_TEST(!platform::netnsExists(spec.instance));
  BOOST_TEST(!runCommand("pgrep -f -- '--file-prefix=" + spec.instance + "( |$)'").ok());
  BOOST_TEST(!fs::exists(corch::drivers::dpdk::runtimeDir(spec)));
}

// The pids of the processes running with the function's DPDK file prefix, or empty.
std::string testpmdPids(const SfSpec& spec) {
  auto r = runCommand("pgrep -f -- '--file-prefix=" + spec.instance + "( |$)'");
  return r.ok() ? r.output : "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(probe_finds_testpmd) {
  auto driver = makeDriver();
  BOOST_TEST(driver->name() == "dpdk");
  auto begin = Clock::now();
  auto r = driver->probe();
  BOOST_TEST(r.ok(), "dpdk-testpmd must be installed (Debian package dpdk): " << errorText(r));
  BOOST_TEST_MESSAGE("probe took " << msSince(begin) << " ms");

  corch::DriverRegistry registry;
  corch::drivers::dpdk::registerDriver(registry);
  corch::DriverOptions missing;
  missing.values["testpmd"] = "/nonexistent/dpdk-testpmd";
  auto bad = registry.makeCompute("dpdk", missing);
  BOOST_REQUIRE(bad.ok());
  auto refused = (*bad)->probe();
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.error().message().find("/nonexistent/dpdk-testpmd") != std::string::npos,
             refused.error().message());
}

BOOST_AUTO_TEST_CASE(testpmd_forwards_between_two_hosts) {
  TempDir dir("cp-dpdk");
  auto driver = makeDriver();
  Host a("a", "10.71.0.1/24"), b("b", "10.71.0.2/24");
  SfSpec spec = makeSpec("fwd", dir.path(), R"({"forward-mode": "io"})");
  spec.ports = {a.port("p0"), b.port("p1")};
  // One dedicated core: main and forwarding lcores share it.
  const unsigned core = corch::drivers::dpdk::allowedCpus().back();
  spec.cpus = {core};
  SfGuard guard{*driver, spec};

  auto created = driver->createSf(spec);
  BOOST_REQUIRE_MESSAGE(created.ok(), errorText(created));
  BOOST_TEST(platform::netnsExists(spec.instance));
  auto begin = Clock::now();
  auto started = driver->startSf(spec);
  const long start_ms = msSince(begin);
  BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started));
  std::cout << "dpdk function start: " << start_ms << " ms" << std::endl;

  // Ready means the banner was printed; on a loaded machine the first frames may still be lost.
  BOOST_TEST(waitUntil([&] { return pings(a.name(), "10.71.0.2"); }, 10s));
  BOOST_TEST(waitUntil([&] { return pings(b.name(), "10.71.0.1"); }, 10s));
  const std::string log = readFile(spec.log_path);
  BOOST_TEST(log.find("--lcores=0@" + std::to_string(core) + ",1@" + std::to_string(core)) !=
                 std::string::npos,
             log);
  BOOST_TEST(log.find("io packet forwarding - ports=2") != std::string::npos);
  BOOST_TEST(driver->startSf(spec).ok());  // running already: nothing to do

  // A fresh driver, as after a corchd restart, finds the function by its namespace and adopts
  // it: the same testpmd keeps forwarding.
  const std::string pid_before = testpmdPids(spec);
  BOOST_REQUIRE(!pid_before.empty());
  auto restarted = makeDriver();
  begin = Clock::now();
  auto adopted = restarted->adoptSf(spec);
  BOOST_REQUIRE_MESSAGE(adopted.ok(), errorText(adopted));
  std::cout << "dpdk function adopt: " << msSince(begin) << " ms" << std::endl;
  BOOST_TEST(testpmdPids(spec) == pid_before);
  BOOST_TEST(pings(a.name(), "10.71.0.2"));
  // What it cannot adopt: a port the function lacks (veth or vhost-user), a function never made.
  SfSpec more = spec;
  more.ports.push_back({"p2", "p2", ifName("x"), corch::PortTechnology::Veth, ""});
  auto extra = restarted->adoptSf(more);
  BOOST_REQUIRE(!extra.ok());
  BOOST_TEST(extra.error().code() == ErrorCode::Conflict);
  BOOST_TEST(errorText(extra).find("port p2") != std::string::npos, errorText(extra));
  more.ports.back() = {"p3", "p3", (dir.path() / "p3.sock").string(),
                       corch::PortTechnology::VhostUser, ""};
  auto no_socket = restarted->adoptSf(more);
  BOOST_REQUIRE(!no_socket.ok());
  BOOST_TEST(no_socket.error().code() == ErrorCode::Conflict);
  BOOST_TEST(errorText(no_socket).find("port p3") != std::string::npos, errorText(no_socket));
  SfSpec never = spec;
  never.instance = nsName("never");
  auto missing = restarted->adoptSf(never);
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error().code() == ErrorCode::NotFound, errorText(missing));

  // The adopting driver stops it; stopped, it cannot be adopted.
  begin = Clock::now();
  auto stopped = restarted->stopSf(spec);
  const long stop_ms = msSince(begin);
  BOOST_REQUIRE_MESSAGE(stopped.ok(), errorText(stopped));
  std::cout << "dpdk function stop: " << stop_ms << " ms" << std::endl;
  BOOST_TEST(readFile(spec.log_path).find("Bye...") != std::string::npos);  // a clean exit
  BOOST_TEST(!pings(a.name(), "10.71.0.2"));
  BOOST_TEST(restarted->stopSf(spec).ok());
  auto stopped_adopt = makeDriver()->adoptSf(spec);
  BOOST_REQUIRE(!stopped_adopt.ok());
  BOOST_TEST(stopped_adopt.error().code() == ErrorCode::Conflict, errorText(stopped_adopt));

  // Started again, it forwards again.
  auto again = driver->startSf(spec);
  BOOST_REQUIRE_MESSAGE(again.ok(), errorText(again));
  BOOST_TEST(waitUntil([&] { return pings(a.name(), "10.71.0.2"); }, 10s));

  begin = Clock::now();
  BOOST_REQUIRE(restarted->destroySf(spec).ok());
  std::cout << "dpdk function destroy (running): " << msSince(begin) << " ms" << std::endl;
  expectNothingOf(spec);
  auto destroyed_adopt = restarted->adoptSf(spec);
  BOOST_REQUIRE(!destroyed_adopt.ok());
  BOOST_TEST(destroyed_adopt.error().code() == ErrorCode::NotFound, errorText(destroyed_adopt));
  BOOST_TEST(driver->destroySf(spec).ok());  // idempotent
  BOOST_TEST(driver->stopSf(spec).ok());     // nothing to stop
  BOOST_TEST(fs::exists(spec.log_path));     // the log stays
}

BOOST_AUTO_TEST_CASE(bad_engine_settings_are_refused) {
  TempDir dir("cp-dpdk");
  auto driver = makeDriver();
  Host a("a", "10.71.1.1/24"), b("b", "10.71.1.2/24");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"colour": "red"})", "engine/colour"},
      {R"({"forward-mode": "rxonly"})", "engine/forward-mode"},
      {R"({"mbufs": -1})", "engine/mbufs"},
      {R"({"args": "--txpkts=64"})", "engine/args"},
      {R"({"program": "/bin/true", "forward-mode": "io"})", "engine/forward-mode"},
  };
  for (const auto& [engine, key] : cases) {
    SfSpec spec = makeSpec("bad", dir.path(), engine);
    spec.ports = {a.port("p0"), b.port("p1")};
    SfGuard guard{*driver, spec};
    auto r = driver->createSf(spec);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST((r.error().code() == ErrorCode::InvalidArgument), engine);
    BOOST_TEST(r.error().message().find(key) != std::string::npos, r.error().message());
    BOOST_TEST(!platform::netnsExists(spec.instance));
  }
  // A port technology the driver cannot attach.
  SfSpec tap = makeSpec("tap", dir.path());
  tap.ports = {a.port("p0"), {"p1", "p1", "cptap0", corch::PortTechnology::Tap}};
  auto r = driver->createSf(tap);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code() == ErrorCode::Unsupported));
}

BOOST_AUTO_TEST_CASE(a_failing_start_reports_the_log_and_leaves_no_process) {
  TempDir dir("cp-dpdk");
  auto driver = makeDriver();
  Host a("a", "10.71.2.1/24"), b("b", "10.71.2.2/24");
  SfSpec spec = makeSpec("fail", dir.path(), R"({"args": ["--no-such-testpmd-option"]})");
  spec.ports = {a.port("p0"), b.port("p1")};
  SfGuard guard{*driver, spec};
  BOOST_REQUIRE(driver->createSf(spec).ok());
  auto started = driver->startSf(spec);
  BOOST_REQUIRE(!started.ok());
  const std::string& msg = started.error().message();
  BOOST_TEST(msg.find("cannot start function " + spec.instance) == 0u, msg);
  BOOST_TEST(msg.find("no-such-testpmd-option") != std::string::npos, msg);
  auto fd = platform::openNetns(spec.instance);
  BOOST_REQUIRE(fd.ok());
  auto pids = platform::processesInNetns(fd->get());
  BOOST_REQUIRE(pids.ok());
  BOOST_TEST(pids->empty());
  BOOST_REQUIRE(driver->destroySf(spec).ok());
  expectNothingOf(spec);
}

BOOST_AUTO_TEST_CASE(corchd_deploys_a_dpdk_forwarder_between_two_hosts) {
  // corchd's name prefix has at most 6 characters: "c" and the pid (DemoNode).
  corch::test::DemoNode node("c", "dpdk-node");
  node.setComputeDrivers(R"({"native": {}, "dpdk": {}})");
  auto up = node.start();
  BOOST_REQUIRE_MESSAGE(up.ok(), (up.ok() ? "" : up.error().message()));
  const std::string graph = R"({"sffg": {"id": "dpdkfwd", "name": "dpdk forwarder",
    "SFs": [{"id": "fwd", "name": "forwarder", "ports": [{"id": "a"}, {"id": "b"}]}],
    "saps": [{"id": "demo0", "type": "interface", "interface": {"if-name": "demo0"}},
             {"id": "demo1", "type": "interface", "interface": {"if-name": "demo1"}}],
    "flowrules": [
      {"id": "r1", "priority": "1", "match": {"port_in": "service-access-point:demo0"},
       "actions": {"output_to_port": "sf:fwd:a"}},
      {"id": "r2", "priority": "1", "match": {"port_in": "sf:fwd:b"},
       "actions": {"output_to_port": "service-access-point:demo1"}},
      {"id": "r3", "priority": "1", "match": {"port_in": "service-access-point:demo1"},
       "actions": {"output_to_port": "sf:fwd:b"}},
      {"id": "r4", "priority": "1", "match": {"port_in": "sf:fwd:a"},
       "actions": {"output_to_port": "service-access-point:demo0"}}]}})";
  auto begin = Clock::now();
  auto put = node.request("PUT", "/graphs/dpdkfwd", graph);
  std::cout << "PUT /graphs/dpdkfwd (dpdk forwarder): " << put.status << " in " << msSince(begin)
            << " ms" << std::endl;
  BOOST_REQUIRE_MESSAGE(put.status / 100 == 2, put.body << "\n" << node.log());
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h1", "10.0.0.1"));
  const std::string instance = node.prefix() + "-dpdkfwd-fwd";
  BOOST_TEST(runCommand("pgrep -f -- '--file-prefix=" + instance + "( |$)'").ok());

  begin = Clock::now();
  auto del = node.request("DELETE", "/graphs/dpdkfwd");
  std::cout << "DELETE /graphs/dpdkfwd: " << del.status << " in " << msSince(begin) << " ms"
            << std::endl;
  BOOST_TEST(del.status / 100 == 2, del.body);
  const std::string left = node.leftovers();
  BOOST_TEST(left.empty(), "left behind: " << left);
  BOOST_TEST(!runCommand("pgrep -f -- '--file-prefix=" + instance + "( |$)'").ok());
  BOOST_TEST(!fs::exists("/var/run/dpdk/" + instance));
}
