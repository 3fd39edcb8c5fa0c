// Integration tests of the 'docker' compute driver against a real Docker Engine API: podman's
// Docker-compatible service, run privately by the test (harness/podman.h), with the bridge image
// (sf-repository/images/bridge-container/) imported through the API as corch/bridge:1.
//
// (a) The driver alone: probe; a container with two veth ports between two sandbox hosts, in both
//     netns modes (path: a named namespace joined by "ns:"; move: NetworkMode none and the veths
//     moved into the container's namespace), with ping through the container's bridge, adoption
//     by a fresh driver (and what it refuses), a stop and a second start, CpusetCpus checked by
//     inspect, destroy twice; a missing image; an unknown engine key; a name already in use.
// (b) corchd end to end: a demo node with the native and docker drivers, a graph h0 <-> bridge
//     (template bridge-docker) <-> h1 deployed by PUT; ping crosses the container (its bridge
//     counters grow); DELETE leaves no container and no namespace.
// Every name made here starts with "cd" (or is a sandbox host, named after this process).
#define BOOST_TEST_MODULE docker_driver
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>

#include "corch/compute.h"
#include "corch/driver_registry.h"
#include "harness/demo_node.h"
#include "harness/podman.h"
#include "harness/sandbox.h"
#include "platform/netns.h"
#include "util/files.h"

namespace corch::drivers::docker {
void registerDriver(DriverRegistry& registry);
}

namespace corch {
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

using namespace corch::test;
using namespace std::chrono_literals;
using corch::ErrorCode;
using corch::SfSpec;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kTag = std::to_string(::getpid() % 100000);
const std::string kImage = "corch/bridge:1";
const std::string kEngine =
    R"({"entrypoint": ["/bin/sh", "/corch/entrypoint"], "stop-timeout": 2})";

// One podman service and image for the whole run, made after the sandbox (global fixtures are
// set up in order and torn down in reverse).
struct PodmanFixture {
  PodmanFixture() {
    auto started = PodmanService::start("cd");
    if (!started.ok()) {
      error = started.error().message();
      return;
    }
    service = std::move(started).value();
    if (auto r = service->importBridgeImage(kImage); !r) error = r.error().message();
  }
  ~PodmanFixture() { service.reset(); }
  static inline std::unique_ptr<PodmanService> service;
  static inline std::string error;
};

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);
BOOST_TEST_GLOBAL_FIXTURE(PodmanFixture);

// The service, or a failed test saying why there is none (podman missing is a failure, not a
// skip: CI installs it).
PodmanService& podman() {
  BOOST_REQUIRE_MESSAGE(PodmanFixture::service && PodmanFixture::error.empty(),
                        "no podman API service: " << PodmanFixture::error);
  return *PodmanFixture::service;
}

std::string errorText(const corch::Result<void>& r) { return r.ok() ? "" : r.error().message(); }

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::unique_ptr<corch::ComputeDriver> makeDriver(const std::string& socket_uri,
                                                 const std::string& netns_mode = "auto") {
  corch::DriverRegistry registry;
  corch::drivers::docker::registerDriver(registry);
  corch::DriverOptions options;
  options.values["socket"] = socket_uri;
  options.values["netns-mode"] = netns_mode;
  auto driver = registry.makeCompute("docker", options);
  BOOST_REQUIRE_MESSAGE(driver.ok(), (driver.ok() ? "" : driver.error().message()));
  return std::move(driver).value();
}

// Two sandbox hosts (10.77.0.1 and .2) whose veth ends in the sandbox become a function's ports.
struct TwoHosts {
  explicit TwoHosts(const std::string& tag) : a("cda" + tag), b("cdb" + tag) {
    Sandbox& sb = Sandbox::get();
    auto pa = sb.addHost(a, "10.77.0.1/24");
    auto pb = sb.addHost(b, "10.77.0.2/24");
    BOOST_REQUIRE_MESSAGE(pa.ok() && pb.ok(), "cannot make the hosts");
    ends = {*pa, *pb};
  }
  ~TwoHosts() {
    (void)Sandbox::get().removeHost(a);
    (void)Sandbox::get().removeHost(b);
  }
  bool pings() const { return Sandbox::get().runIn(a, "ping -c 1 -W 1 10.77.0.2").ok(); }
  std::string a, b;
  std::vector<std::string> ends;
};

SfSpec bridgeSpec(const std::string& instance, const TwoHosts& hosts, const std::string& log) {
  SfSpec sf;
  sf.graph_id = "cdg";
  sf.sf_id = "br";
  sf.instance = instance;
  sf.template_id = "bridge-docker";
  sf.image = kImage;
  sf.config_json = R"({"stp": false})";
  sf.engine_json = kEngine;
  sf.timeout = 20s;
  sf.log_path = log;
  sf.cpu_cores = 0.1;
  sf.memory_mb = 16;
  sf.cpus = {0};
  for (size_t i = 0; i < hosts.ends.size(); ++i) {
    corch::SfPortBinding port;
    port.port_id = std::to_string(i + 1);
    port.ifname = hosts.ends[i];
    sf.ports.push_back(port);
  }
  return sf;
}

bool containerExists(const std::string& name) {
  return podman().api("GET", "/v1.41/containers/" + name + "/json").ok();
}

// The pid of a container's main process (State.Pid), 0 when it has none.
int containerPid(const std::string& name) {
  const std::string out = podman().api("GET", "/v1.41/containers/" + name + "/json").output;
  const std::string key = R"("Pid":)";
  auto pos = out.find(key);
  return pos == std::string::npos ? 0 : std::atoi(out.c_str() + pos + key.size());
}

// The whole life of a two-port bridge container in one netns mode, with traffic through it; a
// fresh driver (a restarted corchd) adopts it, stops it and destroys it.
void lifeCycle(const std::string& mode) {
  PodmanService& pm = podman();
  auto driver = makeDriver(pm.socketUri(), mode);
  BOOST_REQUIRE_MESSAGE(driver->probe().ok(), errorText(driver->probe()));
  TwoHosts hosts(mode.substr(0, 1));
  TempDir tmp("cd-docker");
  const std::string name = "cd" + kTag + "-" + mode;
  SfSpec sf = bridgeSpec(name, hosts, (tmp.path() / "br.log").string());
  BOOST_TEST(!hosts.pings());

  auto t0 = Clock::now();
  auto created = driver->createSf(sf);
  BOOST_REQUIRE_MESSAGE(created.ok(), errorText(created));
  auto started = driver->startSf(sf);
  double create_start_ms = msSince(t0);
  BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started) << "\n" << pm.log());
  BOOST_TEST(waitUntil([&] { return hosts.pings(); }, 10s, 100ms), "no ping through " << name);
  BOOST_TEST(corch::platform::netnsExists(name) == (mode == "path"));

  auto inspect = pm.api("GET", "/v1.41/containers/" + name + "/json");
  BOOST_TEST(inspect.output.find(R"("CpusetCpus":"0")") != std::string::npos, inspect.output);
  BOOST_TEST(inspect.output.find(R"("corch.instance":")" + name + "\"") != std::string::npos);
  const std::string network = mode == "path" ? "ns:/var/run/netns/" + name : "none";
  BOOST_TEST(inspect.output.find(R"("NetworkMode":")" + network + "\"") != std::string::npos,
             inspect.output.substr(0, 400));

  // A fresh driver (a restarted corchd) adopts the running container: the same process, still
  // forwarding. It refuses a port the container lacks and a container that does not exist.
  const int pid = containerPid(name);
  BOOST_REQUIRE(pid > 0);
  auto restarted = makeDriver(pm.socketUri(), mode);
  auto adopted = restarted->adoptSf(sf);
  BOOST_REQUIRE_MESSAGE(adopted.ok(), errorText(adopted));
  BOOST_TEST(containerPid(name) == pid);
  BOOST_TEST(hosts.pings());
  SfSpec more = sf;
  more.ports.push_back(more.ports.back());
  more.ports.back().port_id = "3";
  auto extra = restarted->adoptSf(more);
  BOOST_REQUIRE(!extra.ok());
  BOOST_TEST(extra.error().code() == ErrorCode::Conflict);
  BOOST_TEST(errorText(extra).find("port 3") != std::string::npos, errorText(extra));
  SfSpec never = sf;
  never.instance = name + "-never";
  auto missing = restarted->adoptSf(never);
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error().code() == ErrorCode::NotFound, errorText(missing));

  // The adopting driver stops it, then the first starts it again: the ports survive (path: in
  // the namespace; move: moved back out). Stopped, it cannot be adopted.
  auto t1 = Clock::now();
  auto stopped = restarted->stopSf(sf);
  double stop_ms = msSince(t1);
  BOOST_REQUIRE_MESSAGE(stopped.ok(), errorText(stopped));
  BOOST_TEST(!hosts.pings());
  auto exited = restarted->adoptSf(sf);
  BOOST_REQUIRE(!exited.ok());
  BOOST_TEST(exited.error().code() == ErrorCode::Conflict, errorText(exited));
  auto again = driver->startSf(sf);
  BOOST_REQUIRE_MESSAGE(again.ok(), errorText(again));
  BOOST_TEST(waitUntil([&] { return hosts.pings(); }, 10s, 100ms), "no ping after a restart");
  auto running = pm.api("GET", "/v1.41/containers/" + name + "/json");
  BOOST_TEST(running.output.find(R"("Running":true)") != std::string::npos,
             "not running after the restart: " << readFile(sf.log_path));

  auto t2 = Clock::now();
  BOOST_TEST(driver->stopSf(sf).ok());
  auto destroyed = driver->destroySf(sf);
  double stop_destroy_ms = msSince(t2);
  BOOST_REQUIRE_MESSAGE(destroyed.ok(), errorText(destroyed));
  BOOST_TEST(!containerExists(name));
  BOOST_TEST(!corch::platform::netnsExists(name));
  auto destroyed_adopt = restarted->adoptSf(sf);
  BOOST_REQUIRE(!destroyed_adopt.ok());
  BOOST_TEST(destroyed_adopt.error().code() == ErrorCode::NotFound, errorText(destroyed_adopt));
  BOOST_TEST(driver->destroySf(sf).ok());  // nothing left: still Ok
  BOOST_TEST(driver->stopSf(sf).ok());
  BOOST_TEST(
      readFile(sf.log_path).find("bridge: forwarding between eth0 eth1") != std::string::npos,
      readFile(sf.log_path));
  BOOST_TEST_MESSAGE("docker driver, netns mode " << mode << ": create+start " << create_start_ms
                                                  << " ms, stop " << stop_ms << " ms, stop+destroy "
                                                  << stop_destroy_ms << " ms");
}

}  // namespace

BOOST_AUTO_TEST_CASE(probe_says_why) {
  auto driver = makeDriver(podman().socketUri());
  auto ok = driver->probe();
  BOOST_TEST(ok.ok(), errorText(ok));
  auto missing = makeDriver("unix:///tmp/cd-no-such-engine.sock");
  auto r = missing->probe();
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Unavailable);
  BOOST_TEST(r.error().message().find("/tmp/cd-no-such-engine.sock") != std::string::npos,
             r.error().message());
}

BOOST_AUTO_TEST_CASE(life_cycle_netns_path) { lifeCycle("path"); }

BOOST_AUTO_TEST_CASE(life_cycle_netns_move) { lifeCycle("move"); }

BOOST_AUTO_TEST_CASE(refusals_are_clear) {
  PodmanService& pm = podman();
  auto driver = makeDriver(pm.socketUri(), "move");
  TwoHosts hosts("r");
  TempDir tmp("cd-docker");
  SfSpec sf = bridgeSpec("cd" + kTag + "-refused", hosts, (tmp.path() / "r.log").string());

  sf.image = "corch/missing:1";
  auto missing = driver->createSf(sf);
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error().code() == ErrorCode::NotFound);
  BOOST_TEST(missing.error().message().find("corch/missing:1") != std::string::npos,
             missing.error().message());
  BOOST_TEST(!containerExists(sf.instance));

  sf.image = kImage;
  sf.engine_json = R"({"bogus": 1})";
  auto unknown = driver->createSf(sf);
  BOOST_REQUIRE(!unknown.ok());
  BOOST_TEST(unknown.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(unknown.error().message().find("engine/bogus") != std::string::npos,
             unknown.error().message());

  sf.engine_json = kEngine;
  BOOST_REQUIRE_MESSAGE(driver->createSf(sf).ok(), "first create");
  auto twice = driver->createSf(sf);
  BOOST_REQUIRE(!twice.ok());
  BOOST_TEST(twice.error().code() == ErrorCode::AlreadyExists, twice.error().message());
  BOOST_TEST(driver->destroySf(sf).ok());
  BOOST_TEST(!containerExists(sf.instance));
}

BOOST_AUTO_TEST_CASE(corchd_deploys_a_bridge_container) {
  PodmanService& pm = podman();
  DemoNode node("c", "docker-e2e");  // corchd takes at most 6 characters
  node.setComputeDrivers(R"({"native": {}, "docker": {"socket": ")" + pm.socketUri() + R"("}})");
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? std::string() : started.error().message()));
  Sandbox& sb = node.sandbox();
  BOOST_TEST(!sb.runIn("h0", "ping -c 1 -W 1 10.0.0.2").ok());

  const std::string graph = R"({ "sffg": { "id": "cdg", "name": "docker bridge",
    "SFs": [ { "id": "br", "name": "bridge", "template": "bridge-docker",
               "ports": [ { "id": "1" }, { "id": "2" } ] } ],
    "saps": [ { "id": "demo0", "type": "interface", "interface": { "if-name": "demo0" } },
              { "id": "demo1", "type": "interface", "interface": { "if-name": "demo1" } } ],
    "flowrules": [
      { "id": "a", "priority": "1", "match": { "port_in": "service-access-point:demo0" },
        "actions": { "output_to_port": "sf:br:1" } },
      { "id": "b", "priority": "1", "match": { "port_in": "sf:br:2" },
        "actions": { "output_to_port": "service-access-point:demo1" } },
      { "id": "c", "priority": "1", "match": { "port_in": "service-access-point:demo1" },
        "actions": { "output_to_port": "sf:br:2" } },
      { "id": "d", "priority": "1", "match": { "port_in": "sf:br:1" },
        "actions": { "output_to_port": "service-access-point:demo0" } } ] } })";
  auto t0 = Clock::now();
  auto put = node.request("PUT", "/graphs/cdg", graph);
  double deploy_ms = msSince(t0);
  BOOST_REQUIRE_MESSAGE(put.status / 100 == 2, put.status << " " << put.body << "\n" << node.log());
  BOOST_TEST(node.ping("h0", "10.0.0.2"), node.log());

  // The container is corchd's (labels), and its bridge carried the ping.
  auto ps = pm.podman("ps --filter label=corch.graph=cdg --format '{{.Names}}'");
  BOOST_REQUIRE_MESSAGE(ps.ok() && !ps.output.empty(), "no container of graph cdg: " << ps.output);
  const std::string name = ps.output.substr(0, ps.output.find('\n'));
  BOOST_TEST(name.rfind(node.prefix() + "-", 0) == 0, name);
  auto counters = sb.run("ip netns exec " + name + " cat /sys/class/net/br0/statistics/rx_packets");
  BOOST_TEST(counters.ok(), counters.output);
  BOOST_TEST(std::atoi(counters.output.c_str()) > 0, counters.output);

  auto t1 = Clock::now();
  auto del = node.request("DELETE", "/graphs/cdg");
  double delete_ms = msSince(t1);
  BOOST_REQUIRE_MESSAGE(del.status / 100 == 2, del.status << " " << del.body);
  BOOST_TEST(!sb.runIn("h0", "ping -c 2 -W 1 10.0.0.2").ok());
  std::string left = node.leftovers();
  BOOST_TEST(left.empty(), "left behind: " << left);
  auto all = pm.podman("ps -a --filter label=corch.graph=cdg --format '{{.Names}}'");
  BOOST_TEST(all.ok());
  BOOST_TEST(all.output.empty(), "containers left: " << all.output);
  BOOST_TEST_MESSAGE("corchd with the docker driver: PUT " << deploy_ms << " ms, DELETE "
                                                           << delete_ms << " ms");
}
