// One graph whose functions run in four execution environments at once (paper 4.3, 5.5): h0 ->
// a native bridge -> a container (podman's Docker API) -> a VM (libvirt, TCG) -> a DPDK forwarder
// (testpmd) -> h1, deployed by corchd with every compute driver loaded. Traffic crosses all four
// (each function's ports on the graph-LSI counted packets in both directions), the scheduler
// dedicates a CPU to one of the two functions that want one and says why the other shares, an
// update plugs a third port into the running VM and later unplugs it (the same QEMU process all
// along), and DELETE leaves nothing of any engine.
#define BOOST_TEST_MODULE mixed_chain
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>

#include "harness/demo_node.h"
#include "harness/libvirtd.h"
#include "harness/podman.h"
#include "harness/sandbox.h"

namespace fs = std::filesystem;
using corch::test::DemoNode;
using corch::test::GuestFixture;
using corch::test::Libvirtd;
using corch::test::PodmanService;
using corch::test::Sandbox;
using corch::test::SandboxFixture;
using corch::test::waitUntil;
using namespace std::chrono_literals;

// The guest is built (downloaded) before the sandbox exists: the sandbox's namespace has no route
// to the package mirror.
BOOST_TEST_GLOBAL_FIXTURE(GuestFixture);
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

std::string rule(const std::string& id, const std::string& in, const std::string& out) {
  return R"({"id": ")" + id + R"(", "priority": "1", "match": {"port_in": ")" + in +
         R"("}, "actions": {"output_to_port": ")" + out + R"("}})";
}

// h0 -> nat (native) -> ctr (docker) -> vm (kvm) -> fwd (dpdk) -> h1, and back; with `mgmt`, the
// VM has a third port joined to h2.
std::string chain(bool mgmt) {
  std::string rules;
  auto both = [&](const std::string& id, const std::string& a, const std::string& b) {
    rules += (rules.empty() ? "" : ",") + rule(id + "f", a, b) + "," + rule(id + "b", b, a);
  };
  both("h0", "service-access-point:d0", "sf:nat:a");
  both("nc", "sf:nat:b", "sf:ctr:a");
  both("cv", "sf:ctr:b", "sf:vm:a");
  both("vf", "sf:vm:b", "sf:fwd:a");
  both("h1", "sf:fwd:b", "service-access-point:d1");
  if (mgmt) both("h2", "service-access-point:d2", "sf:vm:m");
  return R"({"sffg": {"id": "mixed", "name": "four engines in one chain",
    "SFs": [{"id": "nat", "name": "bridge", "template": "bridge-nsf",
             "ports": [{"id": "a"}, {"id": "b"}]},
            {"id": "ctr", "name": "bridge", "template": "bridge-docker",
             "ports": [{"id": "a"}, {"id": "b"}]},
            {"id": "vm", "name": "bridge", "template": "bridge-kvm",
             "ports": [{"id": "a"}, {"id": "b"})" +
         std::string(mgmt ? R"(, {"id": "m"})" : "") + R"(]},
            {"id": "fwd", "name": "forwarder", "template": "forwarder-dpdk",
             "ports": [{"id": "a"}, {"id": "b"}]}],
    "saps": [{"id": "d0", "type": "interface", "interface": {"if-name": "demo0"}},
             {"id": "d1", "type": "interface", "interface": {"if-name": "demo1"}},
             {"id": "d2", "type": "interface", "interface": {"if-name": "demo2"}}],
    "flowrules": [)" +
         rules + "]}}";
}

// The QEMU process of the graph's VM (its pid), or "" when none runs.
std::string qemuPid(const std::string& prefix) {
  // "[g]uest": the pattern must not match the shell that runs pgrep.
  auto r = Sandbox::get().run("pgrep -f '[g]uest=" + prefix + "-mixed-vm' | head -1");
  std::string pid = r.output;
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid;
}

// Packets each SF port of the graph sent into the switch (rx of the switch's end), by port name.
// (Read with ip: the sandbox's /sys shows the host's namespace.)
std::map<std::string, long> portCounters() {
  std::map<std::string, long> out;
  auto links = Sandbox::get().run("ip -o -s link show");
  static const std::regex port(R"(^\d+: (cg\d+s\d+p\d+)[@:].*?RX:[^\\]*\\\s+\d+\s+(\d+))");
  std::istringstream in(links.output);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, port)) out[m[1]] = std::atol(m[2].str().c_str());
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(native_container_vm_and_dpdk_functions_in_one_chain) {
  BOOST_REQUIRE_MESSAGE(GuestFixture::error().empty(),
                        "cannot build the guest: " + GuestFixture::error());
  auto& sb = Sandbox::get();
  auto podman = PodmanService::start("cm");
  BOOST_REQUIRE_MESSAGE(podman.ok(), (podman.ok() ? "" : podman.error().message()));
  auto imported = (*podman)->importBridgeImage();
  BOOST_REQUIRE_MESSAGE(imported.ok(), (imported.ok() ? "" : imported.error().message()));
  auto libvirtd = Libvirtd::start(sb.dir() + "/cm-libvirt");
  BOOST_REQUIRE_MESSAGE(libvirtd.ok(), (libvirtd.ok() ? "" : libvirtd.error().message()));

  DemoNode node("m", "mixed-node", {}, 3);
  node.setComputeDrivers(R"({"native": {}, "docker": {"socket": ")" + (*podman)->socketUri() +
                         R"("}, "kvm": {"uri": ")" + (*libvirtd)->uri() +
                         R"("}, "dpdk": {"hugepages": "never"}})");
  // Four functions want 2.15 cores; the operator of this 2-CPU node lets them share (without
  // this, the PUT is a 409 naming what is missing). The scheduler still has 2 real CPUs to pin.
  node.setExtraConfig(R"("resources": {"cpu-cores": 4})");
  const fs::path images = fs::path(node.dir()) / "images" / "bridge-vm";
  fs::create_directories(images);
  for (const char* file : {"vmlinuz", "initrd.img"}) {
    fs::copy_file(fs::path(GuestFixture::dir()) / file, images / file,
                  fs::copy_options::overwrite_existing);
  }
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));

  auto t0 = std::chrono::steady_clock::now();
  auto put = node.request("PUT", "/graphs/mixed", chain(false));
  BOOST_REQUIRE_MESSAGE(put.status == 201, put.status << " " << put.body << "\n" << node.log());
  for (const char* type : {"(native)", "(docker)", "(kvm)", "(dpdk)"}) {
    BOOST_TEST(put.body.find(type) != std::string::npos, put.body);
  }
  // The VM boots under emulation: its bridge is up some seconds after the PUT.
  BOOST_REQUIRE_MESSAGE(
      waitUntil([&] { return sb.runIn("h0", "ping -c 1 -W 1 10.0.0.2").ok(); }, 90s, 200ms),
      "h0 cannot reach h1 through the four functions\n" + node.log());
  BOOST_TEST_MESSAGE(
      "mixed chain: first ping through native, container, VM and DPDK functions after "
      << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
             .count()
      << " ms");
  BOOST_TEST(node.ping("h1", "10.0.0.1"));
  // Each of the four functions sent packets out of both its ports (8 SF ports in all).
  auto counters = portCounters();
  BOOST_TEST(counters.size() == 8u);
  for (const auto& [name, rx] : counters) BOOST_TEST(rx > 0, name << " sent nothing");

  // Placement: the VM and the DPDK function each want a dedicated core; on a node with two CPUs
  // one CPU stays shared (for corchd and the other functions), so one of them gets CPU 1 and the
  // other is told why it shares.
  auto status = node.request("GET", "/graphs/mixed/status");
  BOOST_TEST(status.status == 200);
  BOOST_TEST_MESSAGE("mixed chain status: " << status.body);
  BOOST_TEST(status.body.find("\"type\":\"kvm\"") != std::string::npos, status.body);
  BOOST_TEST(status.body.find("\"type\":\"docker\"") != std::string::npos, status.body);
  BOOST_TEST(status.body.find("\"type\":\"dpdk\"") != std::string::npos, status.body);
  BOOST_TEST(std::regex_search(status.body, std::regex("\"cpus\":\\[[0-9]+\\],\"placement\":"
                                                       "\"dedicated")),
             status.body);

  // Hot-plug: a third port on the running VM, joined to h2; the VM bridges it with the others.
  const std::string qemu = qemuPid(node.prefix());
  BOOST_REQUIRE(!qemu.empty());
  auto plugged = node.request("PUT", "/graphs/mixed", chain(true));
  BOOST_REQUIRE_MESSAGE(plugged.status == 200, plugged.status << " " << plugged.body);
  BOOST_TEST(plugged.body.find("hot-plug") != std::string::npos, plugged.body);
  BOOST_TEST(waitUntil([&] { return sb.runIn("h2", "ping -c 1 -W 1 10.0.0.1").ok(); }, 30s, 200ms),
             "h2 cannot reach h0 through the VM's new port\n" + node.log());
  BOOST_TEST(node.ping("h2", "10.0.0.2"));
  BOOST_TEST(node.ping("h0", "10.0.0.2"), "the chain still works");
  BOOST_TEST(qemuPid(node.prefix()) == qemu, "the VM kept running");

  // And unplugged again.
  auto unplugged = node.request("PUT", "/graphs/mixed", chain(false));
  BOOST_REQUIRE_MESSAGE(unplugged.status == 200, unplugged.status << " " << unplugged.body);
  BOOST_TEST(!sb.runIn("h2", "ping -c 1 -W 1 10.0.0.1").ok());
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(qemuPid(node.prefix()) == qemu, "the VM kept running");
  BOOST_TEST(portCounters().size() == 8u, "the unplugged port is gone");

  // corchd killed (kill -9) and started again: it adopts the whole chain, updates included; the
  // VM is not booted again and the container, the DPDK process and the namespace stay.
  const std::string container = (*podman)->podman("ps -q").output;
  node.corchd().kill();
  auto restarted = node.corchd().restart();
  BOOST_REQUIRE_MESSAGE(restarted.ok(), (restarted.ok() ? "" : restarted.error().message()));
  BOOST_TEST(node.log().find("graph mixed adopted") != std::string::npos, node.log());
  BOOST_TEST(qemuPid(node.prefix()) == qemu, "the VM was started again");
  BOOST_TEST((*podman)->podman("ps -q").output == container, "the container was started again");
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h1", "10.0.0.1"));
  BOOST_TEST(!sb.runIn("h2", "ping -c 1 -W 1 10.0.0.1").ok(), "the unplugged port came back");

  auto del = node.request("DELETE", "/graphs/mixed");
  BOOST_TEST(del.status == 204, del.body);
  BOOST_TEST(waitUntil([&] { return qemuPid(node.prefix()).empty(); }, 10s), "QEMU is gone");
  auto containers = (*podman)->podman("ps -aq");
  BOOST_TEST(containers.output.empty(), containers.output);
  BOOST_TEST(node.leftovers().empty(), node.leftovers());
  BOOST_TEST(portCounters().empty());
}
