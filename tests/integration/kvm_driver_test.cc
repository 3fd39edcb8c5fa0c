// Integration tests of the 'kvm' compute driver against a real libvirtd and QEMU (root), in the
// sandbox's network namespace. A private libvirtd (harness/libvirtd.h) boots the tiny bridge-vm
// guest (scripts/build-guest.sh: the Debian cloud kernel and a busybox initramfs that bridges its
// NICs). The test stands in for the vSwitch: it makes persistent taps and plugs each one into a
// Linux bridge with a host behind it, so that
//
//   h0 (10.9.0.1) -- ckbr0 -- cktap0 == VM: br0 == cktap1 -- ckbr1 -- h1 (10.9.0.2)
//
// and a ping from h0 to h1 crosses the VM. Checked: probe (and the domain type it chose), define
// and start, the guest's console marker, the ping, vCPU pinning in the live XML, NIC hot-plug and
// unplug by updateSf, adoption by a fresh driver (a restarted corchd: the same QEMU, still
// forwarding; a missing or moved port, an extra NIC, a paused, shut off or unknown VM refused),
// stop (the guest ignores the power button: the driver destroys it after
// engine "shutdown-timeout"), destroy and a second destroy, refused engine keys; and end to end,
// corchd (ovs + kvm drivers) deploying h0 <-> bridge-kvm <-> h1 with traffic. Timings are
// printed for bench/compute. Every name carries "ck" and this process's id; the VM is destroyed
// even when a check fails.
#define BOOST_TEST_MODULE kvm_driver
#include <boost/test/unit_test.hpp>

#include <libvirt/libvirt.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "corch/compute.h"
#include "corch/driver_registry.h"
#include "harness/demo_node.h"
#include "harness/libvirtd.h"
#include "harness/sandbox.h"
#include "util/files.h"

namespace corch::drivers::kvm {
void registerDriver(DriverRegistry& registry);
}

namespace corch {
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

using corch::ErrorCode;
using corch::SfSpec;
using corch::test::SandboxFixture;
using namespace corch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The guest is built (downloaded) before the sandbox exists: the sandbox's namespace has no route
// to the package mirror.
BOOST_TEST_GLOBAL_FIXTURE(GuestFixture);
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

using Clock = std::chrono::steady_clock;
const std::string kPid = std::to_string(::getpid());
constexpr const char* kMarker = "corch-guest: bridge up";

std::string errorText(const corch::Result<void>& r) { return r.ok() ? "" : r.error().message(); }

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Whether this CPU has virtualisation extensions (the driver must then choose "kvm", else "qemu").
bool cpuHasVirtualisation() {
  const std::string cpuinfo = readFile("/proc/cpuinfo");
  return cpuinfo.find(" vmx") != std::string::npos || cpuinfo.find(" svm") != std::string::npos;
}

// What every test case shares: the private libvirtd, the guest, a driver on it. Made once; a
// missing engine fails the tests with the reason (CI installs everything).
struct World {
  TempDir dir{"ck-kvm"};
  std::unique_ptr<Libvirtd> daemon;
  std::string guest;
  std::unique_ptr<corch::ComputeDriver> driver;
  virConnectPtr conn = nullptr;  // the test's own look at libvirt: live XML, domain lists

  World() {
    BOOST_REQUIRE_MESSAGE(GuestFixture::error().empty(), GuestFixture::error());
    guest = GuestFixture::dir();
    auto t0 = Clock::now();
    auto d = Libvirtd::start((dir.path() / "libvirtd").string());
    BOOST_REQUIRE_MESSAGE(d.ok(), (d.ok() ? "" : d.error().message()));
    daemon = std::move(d).value();
    BOOST_TEST_MESSAGE("private libvirtd ready in " << msSince(t0) << " ms");
    driver = makeDriver();
    conn = virConnectOpen(daemon->uri().c_str());
    BOOST_REQUIRE(conn != nullptr);
  }
  ~World() {
    if (conn != nullptr) virConnectClose(conn);
  }

  // A driver on the private libvirtd; a second one stands for a restarted corchd's.
  std::unique_ptr<corch::ComputeDriver> makeDriver() const {
    corch::DriverRegistry registry;
    corch::drivers::kvm::registerDriver(registry);
    corch::DriverOptions options;
    options.values["uri"] = daemon->uri();
    auto made = registry.makeCompute("kvm", options);
    BOOST_REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.error().message()));
    return std::move(made).value();
  }

  // The live (or inactive) XML of a domain, or empty when there is none.
  std::string xml(const std::string& name, unsigned flags = 0) const {
    virDomainPtr dom = virDomainLookupByName(conn, name.c_str());
    if (dom == nullptr) return "";
    char* text = virDomainGetXMLDesc(dom, flags);
    std::string out = text != nullptr ? text : "";
    std::free(text);
    virDomainFree(dom);
    return out;
  }
  bool active(const std::string& name) const {
    virDomainPtr dom = virDomainLookupByName(conn, name.c_str());
    if (dom == nullptr) return false;
    bool yes = virDomainIsActive(dom) == 1;
    virDomainFree(dom);
    return yes;
  }
  // The id of a running domain (each start gives a new one), or 0.
  unsigned id(const std::string& name) const {
    virDomainPtr dom = virDomainLookupByName(conn, name.c_str());
    if (dom == nullptr) return 0;
    unsigned out = virDomainGetID(dom);
    virDomainFree(dom);
    return out == static_cast<unsigned>(-1) ? 0 : out;
  }
  bool defined(const std::string& name) const {
    virDomainPtr dom = virDomainLookupByName(conn, name.c_str());
    if (dom != nullptr) virDomainFree(dom);
    return dom != nullptr;
  }
};

World& world() {
  static World w;
  return w;
}

// A tap plugged into a Linux bridge of the sandbox, with a host behind the bridge (or none).
void makeTapSide(const std::string& tag, const std::string& host_cidr) {
  auto& sb = Sandbox::get();
  const std::string br = "ckbr" + tag, tap = "cktap" + tag;
  BOOST_REQUIRE(sb.run("ip link add " + br + " type bridge && ip link set " + br + " up").ok());
  BOOST_REQUIRE(sb.run("ip tuntap add dev " + tap + " mode tap && ip link set " + tap + " master " +
                       br + " up")
                    .ok());
  if (!host_cidr.empty()) {
    auto phys = sb.addHost("ck" + tag, host_cidr);
    BOOST_REQUIRE_MESSAGE(phys.ok(), (phys.ok() ? "" : phys.error().message()));
    BOOST_REQUIRE(sb.run("ip link set " + *phys + " master " + br + " up").ok());
  }
}

void removeTapSide(const std::string& tag) {
  auto& sb = Sandbox::get();
  (void)sb.run("ip link del cktap" + tag + " 2>/dev/null; ip link del ckbr" + tag + " 2>/dev/null");
  (void)sb.removeHost("ck" + tag);
}

corch::SfPortBinding tapPort(const std::string& id) {
  return corch::SfPortBinding{id, id, "cktap" + id, corch::PortTechnology::Tap, ""};
}

SfSpec bridgeSpec(const std::string& sf_id) {
  SfSpec spec;
  spec.graph_id = "g" + kPid;
  spec.sf_id = sf_id;
  spec.instance = "ck" + kPid + "-" + sf_id;
  spec.template_id = "bridge-kvm";
  spec.image = world().guest;
  spec.engine_json =
      R"({"vcpus": 1, "kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "console=ttyS0 quiet", "shutdown-timeout": 2000})";
  spec.memory_mb = 128;
  spec.cpus = {0};
  spec.log_path = (world().dir.path() / (sf_id + ".console")).string();
  spec.timeout = 30s;
  return spec;
}

// Destroys the VM and the tap sides when a test case ends, whatever happened.
struct VmGuard {
  SfSpec spec;
  std::vector<std::string> sides;
  ~VmGuard() {
    (void)world().driver->destroySf(spec);
    for (const auto& s : sides) removeTapSide(s);
  }
};

bool consoleHas(const SfSpec& spec, const std::string& text) {
  return readFile(spec.log_path).find(text) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(probe_reports_the_domain_type) {
  auto r = world().driver->probe();
  BOOST_REQUIRE_MESSAGE(r.ok(), errorText(r));
}

BOOST_AUTO_TEST_CASE(refuses_unknown_engine_keys) {
  SfSpec spec = bridgeSpec("bad");
  spec.engine_json = R"({"kernel": "vmlinuz", "bogus": 1})";
  auto r = world().driver->createSf(spec);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(r.error().message().find("engine/bogus") != std::string::npos, r.error().message());
  BOOST_TEST(!world().defined(spec.instance));
  // Nothing there: stop and destroy are done.
  BOOST_TEST(world().driver->stopSf(spec).ok());
  BOOST_TEST(world().driver->destroySf(spec).ok());
}

BOOST_AUTO_TEST_CASE(vm_bridges_two_hosts_and_takes_a_hot_plugged_nic) {
  auto& w = world();
  BOOST_REQUIRE(w.driver->probe().ok());
  VmGuard guard{bridgeSpec("br"), {"0", "1", "2"}};
  SfSpec& spec = guard.spec;
  makeTapSide("0", "10.9.0.1/24");
  makeTapSide("1", "10.9.0.2/24");
  makeTapSide("2", "");
  spec.ports = {tapPort("0"), tapPort("1")};

  auto t0 = Clock::now();
  auto created = w.driver->createSf(spec);
  BOOST_REQUIRE_MESSAGE(created.ok(), errorText(created));
  auto started = w.driver->startSf(spec);
  BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started));
  const double start_ms = msSince(t0);
  bool up = waitUntil([&] { return consoleHas(spec, kMarker); }, 90s, 50ms);
  const double marker_ms = msSince(t0);
  BOOST_REQUIRE_MESSAGE(
      up, "no \"" << kMarker << "\" on the console; it says: " << readFile(spec.log_path));
  BOOST_TEST_MESSAGE("kvm timings: define+start " << start_ms << " ms, console marker after "
                                                  << marker_ms << " ms");

  const std::string live = w.xml(spec.instance);
  BOOST_TEST(live.find(cpuHasVirtualisation() ? "type='kvm'" : "type='qemu'") != std::string::npos,
             live);
  BOOST_TEST(live.find("<vcpupin vcpu='0' cpuset='0'/>") != std::string::npos, live);
  BOOST_TEST(live.find("<emulatorpin cpuset='0'/>") != std::string::npos, live);

  auto& sb = Sandbox::get();
  bool pings = waitUntil([&] { return sb.runIn("ck0", "ping -c1 -W1 10.9.0.2", 5s).ok(); }, 30s);
  BOOST_TEST(pings, "h0 cannot ping h1 through the VM");

  // Hot-plug a third NIC, then unplug it.
  SfSpec plus = spec;
  plus.ports.push_back(tapPort("2"));
  auto t1 = Clock::now();
  auto added = w.driver->updateSf(spec, plus);
  BOOST_REQUIRE_MESSAGE(added.ok(), errorText(added));
  BOOST_TEST_MESSAGE("kvm timings: NIC hot-plug " << msSince(t1) << " ms");
  BOOST_TEST(w.xml(spec.instance).find("cktap2") != std::string::npos);
  BOOST_TEST(w.xml(spec.instance, VIR_DOMAIN_XML_INACTIVE).find("cktap2") != std::string::npos);
  BOOST_TEST(waitUntil([&] { return consoleHas(spec, "corch-guest: added eth2"); }, 30s),
             "the guest did not bridge its third NIC; console: " << readFile(spec.log_path));
  // A fresh driver (a restarted corchd) adopts the VM as it is, not as an older spec says.
  auto restarted = w.makeDriver();
  auto adopted = restarted->adoptSf(plus);
  BOOST_TEST(adopted.ok(), errorText(adopted));
  auto fewer = restarted->adoptSf(spec);
  BOOST_REQUIRE(!fewer.ok());
  BOOST_TEST(fewer.error().code() == ErrorCode::Conflict);
  BOOST_TEST(errorText(fewer).find("cktap2") != std::string::npos, errorText(fewer));
  auto t2 = Clock::now();
  auto removed = w.driver->updateSf(plus, spec);
  BOOST_REQUIRE_MESSAGE(removed.ok(), errorText(removed));
  BOOST_TEST_MESSAGE("kvm timings: NIC unplug " << msSince(t2) << " ms");
  BOOST_TEST(w.xml(spec.instance).find("cktap2") == std::string::npos);
  // Anything but ports: the caller must restart.
  SfSpec bigger = spec;
  bigger.memory_mb = 256;
  auto refused = w.driver->updateSf(spec, bigger);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(waitUntil([&] { return sb.runIn("ck0", "ping -c1 -W1 10.9.0.2", 5s).ok(); }, 30s),
             "h0 cannot ping h1 after the hot-plug");

  // Adopted by the fresh driver: the same QEMU, still forwarding. A port the VM lacks, or a tap
  // other than its NIC's, is refused by name; so is a VM that does not exist.
  const unsigned run = w.id(spec.instance);
  adopted = restarted->adoptSf(spec);
  BOOST_REQUIRE_MESSAGE(adopted.ok(), errorText(adopted));
  BOOST_TEST(w.id(spec.instance) == run);
  BOOST_TEST(sb.runIn("ck0", "ping -c1 -W2 10.9.0.2", 5s).ok());
  auto lacking = restarted->adoptSf(plus);
  BOOST_REQUIRE(!lacking.ok());
  BOOST_TEST(lacking.error().code() == ErrorCode::Conflict);
  BOOST_TEST(errorText(lacking).find("port 2") != std::string::npos, errorText(lacking));
  SfSpec moved = spec;
  moved.ports[1].ifname = "cktap2";
  auto elsewhere = restarted->adoptSf(moved);
  BOOST_REQUIRE(!elsewhere.ok());
  BOOST_TEST(elsewhere.error().code() == ErrorCode::Conflict);
  BOOST_TEST(errorText(elsewhere).find("port 1") != std::string::npos, errorText(elsewhere));
  SfSpec never = spec;
  never.instance += "-never";
  auto missing = restarted->adoptSf(never);
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error().code() == ErrorCode::NotFound, errorText(missing));

  // The adopting driver stops and destroys it. Stopped, it cannot be adopted; destroyed, it is
  // not found.
  auto t3 = Clock::now();
  auto stopped = restarted->stopSf(spec);
  BOOST_REQUIRE_MESSAGE(stopped.ok(), errorText(stopped));
  const double stop_ms = msSince(t3);
  BOOST_TEST(!w.active(spec.instance), "still running after stopSf");
  BOOST_TEST(w.defined(spec.instance), "stopSf must keep the definition");
  auto shut_off = w.makeDriver()->adoptSf(spec);
  BOOST_REQUIRE(!shut_off.ok());
  BOOST_TEST(shut_off.error().code() == ErrorCode::Conflict, errorText(shut_off));
  auto t4 = Clock::now();
  auto destroyed = restarted->destroySf(spec);
  BOOST_REQUIRE_MESSAGE(destroyed.ok(), errorText(destroyed));
  BOOST_TEST_MESSAGE("kvm timings: stop " << stop_ms << " ms (shutdown-timeout 2000), undefine "
                                          << msSince(t4) << " ms");
  BOOST_TEST(!w.defined(spec.instance));
  auto gone = restarted->adoptSf(spec);
  BOOST_REQUIRE(!gone.ok());
  BOOST_TEST(gone.error().code() == ErrorCode::NotFound, errorText(gone));
  BOOST_TEST(w.driver->destroySf(spec).ok());
  BOOST_TEST(w.driver->stopSf(spec).ok());
}

BOOST_AUTO_TEST_CASE(destroy_of_a_running_vm_and_pause) {
  auto& w = world();
  BOOST_REQUIRE(w.driver->probe().ok());
  VmGuard guard{bridgeSpec("pz"), {"p0", "p1"}};
  SfSpec& spec = guard.spec;
  makeTapSide("p0", "");
  makeTapSide("p1", "");
  spec.ports = {tapPort("p0"), tapPort("p1")};
  spec.cpus = {};
  BOOST_REQUIRE(w.driver->createSf(spec).ok());
  BOOST_REQUIRE(w.driver->startSf(spec).ok());
  BOOST_TEST(w.xml(spec.instance).find("vcpupin") == std::string::npos);
  auto paused = w.driver->pauseSf(spec);
  BOOST_TEST(paused.ok(), errorText(paused));
  auto adopt_paused = w.driver->adoptSf(spec);
  BOOST_REQUIRE(!adopt_paused.ok());
  BOOST_TEST(adopt_paused.error().code() == ErrorCode::Conflict, errorText(adopt_paused));
  BOOST_TEST(errorText(adopt_paused).find("paused") != std::string::npos, errorText(adopt_paused));
  BOOST_TEST(w.driver->startSf(spec).ok());  // resumes
  auto destroyed = w.driver->destroySf(spec);
  BOOST_TEST(destroyed.ok(), errorText(destroyed));
  BOOST_TEST(!w.defined(spec.instance));
}

// End to end: corchd with the ovs and kvm drivers deploys h0 <-> bridge-kvm <-> h1; the ovs
// driver makes the function's ports as persistent taps on the graph's bridge, the kvm driver
// plugs them into the VM, and a ping crosses it. DELETE then leaves nothing: no domain, no port.
BOOST_AUTO_TEST_CASE(corchd_deploys_a_bridge_vm_graph) {
  auto& w = world();
  DemoNode node("k", "kvm-node");
  node.setComputeDrivers(R"({"native": {}, "kvm": {"uri": ")" + w.daemon->uri() + R"("}})");
  const fs::path images = fs::path(node.dir()) / "images" / "bridge-vm";
  fs::create_directories(images);
  for (const char* file : {"vmlinuz", "initrd.img"}) {
    fs::copy_file(fs::path(w.guest) / file, images / file, fs::copy_options::overwrite_existing);
  }
  auto started = node.start();
  BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));

  auto rule = [](const std::string& id, const std::string& in, const std::string& out) {
    return R"({"id": ")" + id + R"(", "priority": "1", "match": {"port_in": ")" + in +
           R"("}, "actions": {"output_to_port": ")" + out + R"("}})";
  };
  const std::string graph = R"({"sffg": {"id": "kvmbr", "name": "kvmbr",
    "SFs": [{"id": "vm", "name": "bridge", "template": "bridge-kvm",
             "ports": [{"id": "1"}, {"id": "2"}]}],
    "saps": [{"id": "demo0", "type": "interface", "interface": {"if-name": "demo0"}},
             {"id": "demo1", "type": "interface", "interface": {"if-name": "demo1"}}],
    "flowrules": [)" + rule("in0", "service-access-point:demo0", "sf:vm:1") +
                            "," + rule("out1", "sf:vm:2", "service-access-point:demo1") + "," +
                            rule("in1", "service-access-point:demo1", "sf:vm:2") + "," +
                            rule("out0", "sf:vm:1", "service-access-point:demo0") + "]}}";
  auto t0 = Clock::now();
  auto put = node.request("PUT", "/graphs/kvmbr", graph);
  BOOST_REQUIRE_MESSAGE(put.status / 100 == 2, put.status << " " << put.body << node.log());
  BOOST_TEST_MESSAGE("kvm e2e: PUT answered after " << msSince(t0) << " ms");
  bool pings = waitUntil([&] { return node.ping("h0", "10.0.0.2"); }, 90s, 100ms);
  BOOST_TEST(pings, "h0 cannot ping h1 through the VM; corchd log: " << node.log());
  BOOST_TEST_MESSAGE("kvm e2e: first ping through the VM after " << msSince(t0) << " ms");
  BOOST_TEST(node.ping("h1", "10.0.0.1"));

  auto del = node.request("DELETE", "/graphs/kvmbr");
  BOOST_TEST(del.status / 100 == 2, del.status << " " << del.body);
  virDomainPtr* domains = nullptr;
  int n = virConnectListAllDomains(w.conn, &domains, 0);
  BOOST_TEST(n == 0, n << " domains left after DELETE");
  for (int i = 0; i < std::max(n, 0); ++i) virDomainFree(domains[i]);
  std::free(domains);
  const std::string left = node.leftovers();
  BOOST_TEST(left.empty(), "left behind: " << left);
}
