// bench_compute: how long each compute driver (native, docker, kvm, dpdk) takes to start one
// function, until that function forwards traffic, and to stop it; and how long 50 native
// functions take started in parallel (the compute manager's bounded pool) against one after
// another. A benchmark, not a test: it prints figures and asserts nothing about time. What it
// measures and how to read it: bench/README.md.
//
// Each driver runs the two-port pass-through function of its template (sf-repository/templates:
// bridge-nsf, bridge-docker, bridge-kvm, forwarder-dpdk; the "engine" settings and resources are
// read from the template file, so the bench follows the templates). This program stands in for
// the vSwitch: each port leads to a host namespace (10.77.0.1 and 10.77.0.2), through a veth pair
// (native, docker, dpdk) or through a persistent tap bridged with the host's veth (kvm), so that a
// ping between the hosts crosses the function. Engines are started privately, as the integration
// tests do: podman's Docker API service and libvirtd with their own sockets and storage, inside
// the sandbox's private network namespace. A driver whose engine is missing is reported as
// "not run: <reason>"; the others still run.
//
// Names: ports "bc<tag>p<i>", bridges "bc<tag>b<i>", hosts "cb<tag><i>" (the sandbox adds this
// process's id to their namespaces), instances "corch-bc-<tag>", podman's folder /tmp/cb-podman-*.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "compute/compute_manager.h"
#include "corch/compute.h"
#include "corch/driver_registry.h"
#include "corch/log.h"
#include "harness/libvirtd.h"
#include "harness/podman.h"
#include "harness/sandbox.h"
#include "platform/netlink.h"
#include "platform/netns.h"
#include "platform/process.h"
#include "resolver/config.h"
#include "resolver/repository.h"

namespace {

using namespace std::chrono_literals;
using corch::ComputeDriver;
using corch::DriverOptions;
using corch::Error;
using corch::ErrorCode;
using corch::PortTechnology;
using corch::Result;
using corch::SfSpec;
using corch::test::Sandbox;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kSource = CORCH_SOURCE_DIR;
// What the bridge VM's init prints on its console once its NICs are bridged
// (sf-repository/images/bridge-vm/init).
constexpr const char* kGuestMarker = "corch-guest: bridge up";
// How long a started function may take until the first ping crosses it: a TCG guest boots in
// seconds, the others forward at once.
constexpr int kForwardDeadlineS = 60;

double msBetween(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}
double msSince(Clock::time_point t0) { return msBetween(t0, Clock::now()); }

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// "median (min-max)" in ms, or the median alone for one repetition.
std::string figures(std::vector<double> v) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  const char* format = median < 100 ? "%.1f" : "%.0f";
  char buf[96];
  std::snprintf(buf, sizeof buf, format, median);
  std::string out = buf;
  if (n > 1) {
    std::snprintf(buf, sizeof buf, median < 100 ? " (%.1f-%.1f)" : " (%.0f-%.0f)", v.front(),
                  v.back());
    out += buf;
  }
  return out;
}

bool hasHardwareVirtualisation() {
  const std::string cpuinfo = readText("/proc/cpuinfo");
  return cpuinfo.find(" vmx") != std::string::npos || cpuinfo.find(" svm") != std::string::npos;
}

// "2 CPUs (model), Linux 6.1.0-..., no vmx/svm: VMs run under TCG, load 0.42, 2026-11-24 10:00"
std::string machineLine() {
  std::string model = "unknown model";
  std::istringstream cpuinfo(readText("/proc/cpuinfo"));
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  ::uname(&u);
  std::string load = readText("/proc/loadavg");
  load = load.substr(0, load.find(' '));
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&now));
  return std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs (" + model + "), " + u.sysname +
         " " + u.release + ", " +
         (hasHardwareVirtualisation() ? "vmx/svm present: VMs may use KVM"
                                      : "no vmx/svm: VMs run under TCG") +
         ", load " + load + ", " + date;
}

// The CPU a dedicated function (dpdk, kvm) is pinned to, as the scheduler would choose: the last
// one, away from CPU 0 where the kernel and this program mostly run. None on a single-CPU machine.
std::vector<unsigned> dedicatedCpus() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 2) return {};
  return {static_cast<unsigned>(n - 1)};
}

// A driver to measure: how to make it and one function of its kind.
struct Engine {
  std::string label;  // as printed
  std::string type;   // the driver's name
  DriverOptions options;
  PortTechnology technology = PortTechnology::Veth;
  std::string image;
  std::string config_json = "{}";
  std::string engine_json;
  double cpu_cores = 0;
  uint64_t memory_mb = 0;
  std::vector<unsigned> cpus;
  bool console_marker = false;  // a VM: also time the guest's "bridge up" console line
  std::string skipped;          // why it cannot run here, if it cannot
};

// The function of template `id` as the resolver would give it to the driver: type, image (the
// driver's images resolve it further), engine settings, resources, port technology, default
// configuration.
Engine fromTemplate(const std::string& label, const std::string& id) {
  Engine e;
  e.label = label;
  const std::string path = kSource + "/sf-repository/templates/" + id + ".json";
  if (!fs::exists(path)) {
    e.skipped = "no template " + path;
    return e;
  }
  auto t = corch::resolver::parseTemplate(readText(path), path);
  if (!t.ok()) {
    e.skipped = t.error().message();
    return e;
  }
  e.type = t->type;
  e.image = t->image_uri;
  e.engine_json = t->engine_json;
  e.cpu_cores = t->cpu_cores;
  e.memory_mb = t->memory_mb;
  e.technology = t->port_technology == "tap" ? PortTechnology::Tap : PortTechnology::Veth;
  auto config = corch::resolver::mergeConfig(*t, "{}", "/config");
  if (!config.ok()) {
    e.skipped = config.error().message();
    return e;
  }
  e.config_json = *config;
  return e;
}

Engine nativeEngine(const fs::path& dir) {
  Engine e = fromTemplate("native (bridge NSF)", "bridge-nsf");
  e.image = kSource + "/nsf/bridge";
  e.options.values["run-dir"] = (dir / "native-run").string();
  return e;
}

// Starts a private podman API service (kept in `service` for the whole run) and imports the
// template's image into it.
Engine dockerEngine(std::unique_ptr<corch::test::PodmanService>& service,
                    std::vector<std::string>& notes) {
  Engine e = fromTemplate("docker (bridge container, podman API)", "bridge-docker");
  if (!e.skipped.empty()) return e;
  auto t0 = Clock::now();
  auto started = corch::test::PodmanService::start("cb");
  if (!started.ok()) {
    e.skipped = "no podman API service: " + started.error().message();
    return e;
  }
  service = std::move(started).value();
  double ready = msSince(t0);
  auto t1 = Clock::now();
  if (auto r = service->importBridgeImage(e.image); !r.ok()) {
    e.skipped = "cannot import image " + e.image + ": " + r.error().message();
    return e;
  }
  char note[160];
  std::snprintf(note, sizeof note,
                "docker: private podman API service ready in %.0f ms, image %s built and imported "
                "in %.0f ms (not counted above)",
                ready, e.image.c_str(), msSince(t1));
  notes.push_back(note);
  e.options.values["socket"] = service->socketUri();
  return e;
}

// Starts a private libvirtd (kept in `daemon`) for the guest that buildGuest() made.
Engine kvmEngine(const Result<std::string>& guest, const fs::path& dir,
                 std::unique_ptr<corch::test::Libvirtd>& daemon, std::vector<std::string>& notes) {
  Engine e = fromTemplate(
      std::string("kvm (bridge VM, ") + (hasHardwareVirtualisation() ? "KVM" : "TCG") + ")",
      "bridge-kvm");
  if (!e.skipped.empty()) return e;
  if (!guest.ok()) {
    e.skipped = "no guest image: " + guest.error().message();
    return e;
  }
  auto t0 = Clock::now();
  auto started = corch::test::Libvirtd::start((dir / "libvirtd").string());
  if (!started.ok()) {
    e.skipped = "no private libvirtd: " + started.error().message();
    return e;
  }
  daemon = std::move(started).value();
  char note[120];
  std::snprintf(note, sizeof note, "kvm: private libvirtd ready in %.0f ms (not counted above)",
                msSince(t0));
  notes.push_back(note);
  e.image = *guest;
  e.options.values["uri"] = daemon->uri();
  e.cpus = dedicatedCpus();
  e.console_marker = true;
  return e;
}

Engine dpdkEngine() {
  Engine e = fromTemplate("dpdk (testpmd io, af_packet)", "forwarder-dpdk");
  e.cpus = dedicatedCpus();
  return e;
}

// The label with the CPU the function is pinned to, if any.
std::string labelOf(const Engine& e) {
  if (e.cpus.empty()) return e.label;
  return e.label + ", pinned to CPU " + std::to_string(e.cpus.front());
}

// Two ports whose other ends lead nowhere: veth pairs (the function's end handed to the driver).
// For the batch of native functions, where only start and stop are timed.
class Ports {
 public:
  explicit Ports(const std::string& tag) {
    for (int i = 0; i < 2; ++i) {
      std::string name = "bc" + tag + "p" + std::to_string(i);
      if (auto made = corch::platform::createVethPair(name, name + "f"); !made.ok()) {
        error = made.error().message();
        return;
      }
      names_.push_back(name);
      (void)corch::platform::setLinkUp(name);
      ifnames.push_back(name + "f");
    }
  }
  ~Ports() {
    for (const auto& n : names_) (void)corch::platform::deleteLink(n);
  }
  Ports(const Ports&) = delete;
  Ports& operator=(const Ports&) = delete;

  std::vector<std::string> ifnames;
  std::string error;

 private:
  std::vector<std::string> names_;
};

// Two host namespaces, 10.77.0.1 and 10.77.0.2, each behind one of the function's two ports, so
// that a ping from the first to the second crosses the function. Veth: the hosts' veth ends in
// the sandbox namespace are the ports. Tap: each port is a persistent tap, bridged with the
// host's veth end by a Linux bridge (as the vSwitch would). The hosts know each other's MAC
// (permanent neighbour entries): with ARP, a request lost while the function was not yet
// forwarding would be repeated only a second later, and that second would be measured.
class HostPair {
 public:
  HostPair(const std::string& tag, PortTechnology technology) {
    for (int i = 0; i < 2 && error.empty(); ++i) addSide(tag, i, technology);
    for (int i = 0; i < 2 && error.empty(); ++i) knowPeer(i);
  }
  ~HostPair() {
    for (const auto& link : links_) (void)corch::platform::deleteLink(link);
    for (const auto& host : hosts_) (void)Sandbox::get().removeHost(host);
  }
  HostPair(const HostPair&) = delete;
  HostPair& operator=(const HostPair&) = delete;

  // Pings from the first host to the second every 10 ms until one answer comes back (one ping
  // process, so that the probe costs one process start, not one per try); when it came.
  Result<Clock::time_point> firstAnswer() const {
    auto ns = corch::platform::openNetns(Sandbox::get().hostNetns(hosts_[0]));
    if (!ns.ok()) return ns.error();
    corch::platform::ProcessSpec spec;
    spec.argv = {
        "ping",    "-q", "-n", "-c", "1", "-i", "0.01", "-w", std::to_string(kForwardDeadlineS),
        address(1)};
    spec.netns_fd = ns->get();
    spec.timeout = std::chrono::seconds(kForwardDeadlineS + 5);
    auto ran = corch::platform::runProcess(spec);
    auto answered = Clock::now();
    if (!ran.ok()) return ran.error();
    if (!ran->success()) {
      return Error(ErrorCode::Timeout, "no ping through within " +
                                           std::to_string(kForwardDeadlineS) + " s (ping " +
                                           ran->describe() + ")");
    }
    return answered;
  }

  std::vector<std::string> ifnames;  // the function's ports
  std::string error;

 private:
  static std::string address(int i) { return "10.77.0." + std::to_string(i + 1); }
  static std::string mac(int i) { return "02:cb:00:00:00:0" + std::to_string(i + 1); }

  void addSide(const std::string& tag, int i, PortTechnology technology) {
    Sandbox& sb = Sandbox::get();
    const std::string host = "cb" + tag + std::to_string(i);
    auto phys = sb.addHost(host, address(i) + "/24");
    if (!phys.ok()) {
      error = phys.error().message();
      return;
    }
    hosts_.push_back(host);
    if (technology != PortTechnology::Tap) {
      ifnames.push_back(*phys);
      return;
    }
    const std::string tap = "bc" + tag + "p" + std::to_string(i);
    const std::string bridge = "bc" + tag + "b" + std::to_string(i);
    if (auto made = corch::platform::createTap(tap); !made.ok()) {
      error = made.error().message();
      return;
    }
    links_.push_back(tap);
    links_.push_back(bridge);
    auto joined = sb.run("ip link add " + bridge + " type bridge && ip link set " + bridge +
                         " up && ip link set " + tap + " master " + bridge + " up && ip link set " +
                         *phys + " master " + bridge + " up");
    if (!joined.ok()) {
      error = "cannot bridge " + tap + " with host " + host + ": " + joined.output;
      return;
    }
    ifnames.push_back(tap);
  }

  void knowPeer(int i) {
    const int peer = 1 - i;
    auto r = Sandbox::get().runIn(
        hosts_[i], "ip link set eth0 address " + mac(i) + " && ip neigh replace " + address(peer) +
                       " lladdr " + mac(peer) + " dev eth0 nud permanent");
    if (!r.ok()) error = "cannot set the neighbours of host " + hosts_[i] + ": " + r.output;
  }

  std::vector<std::string> hosts_;
  std::vector<std::string> links_;  // in the sandbox namespace: taps and bridges
};

SfSpec specOf(const Engine& e, const std::string& tag, const std::vector<std::string>& ifnames,
              const fs::path& dir) {
  SfSpec s;
  s.graph_id = "bench";
  s.sf_id = tag;
  s.instance = "corch-bc-" + tag;
  s.template_id = e.type + "-bench";
  s.image = e.image;
  s.config_json = e.config_json;
  s.engine_json = e.engine_json;
  s.cpu_cores = e.cpu_cores;
  s.memory_mb = e.memory_mb;
  s.cpus = e.cpus;
  s.timeout = 60s;
  s.log_path = (dir / "logs" / (tag + ".log")).string();
  s.run_dir = (dir / "run" / s.instance).string();
  fs::create_directories(dir / "logs");
  fs::create_directories(s.run_dir);
  for (size_t i = 0; i < ifnames.size(); ++i) {
    corch::SfPortBinding b;
    b.port_id = std::to_string(i);
    b.ifname = ifnames[i];
    b.technology = e.technology;
    s.ports.push_back(b);
  }
  return s;
}

// Times of one function, from the createSf call, per repetition.
struct OneFunction {
  std::vector<double> start_ms;    // createSf + startSf returned
  std::vector<double> console_ms;  // the guest printed kGuestMarker (VMs)
  std::vector<double> forward_ms;  // the first ping between the hosts was answered
  std::vector<double> stop_ms;     // stopSf + destroySf, from the stopSf call
  std::string error;               // a driver call failed: no figures
  std::string console_error, forward_error;
};

// After a successful start: when the guest's console says it is up (VMs) and when the first ping
// crosses, both from t0. The ping runs on its own thread while this one watches the console.
void measureReadiness(const Engine& e, const SfSpec& spec, const HostPair& hosts,
                      Clock::time_point t0, OneFunction& out) {
  auto answer = std::async(std::launch::async, [&hosts] { return hosts.firstAnswer(); });
  if (e.console_marker) {
    bool up = corch::test::waitUntil(
        [&] { return readText(spec.log_path).find(kGuestMarker) != std::string::npos; },
        std::chrono::seconds(kForwardDeadlineS));
    if (up) {
      out.console_ms.push_back(msSince(t0));
    } else {
      out.console_error = std::string("no \"") + kGuestMarker + "\" on the console within " +
                          std::to_string(kForwardDeadlineS) + " s";
    }
  }
  auto answered = answer.get();
  if (answered.ok()) {
    out.forward_ms.push_back(msBetween(t0, *answered));
  } else {
    out.forward_error = answered.error().message();
  }
}

// createSf + startSf, the wait until it forwards, then stopSf + destroySf, `reps` times.
OneFunction measureOne(ComputeDriver& driver, const Engine& e, int reps, const fs::path& dir) {
  OneFunction out;
  for (int r = 0; r < reps && out.error.empty(); ++r) {
    std::string tag = e.type.substr(0, 3) + std::to_string(r);
    HostPair hosts(tag, e.technology);
    if (!hosts.error.empty()) {
      out.error = hosts.error;
      break;
    }
    SfSpec spec = specOf(e, tag, hosts.ifnames, dir);
    auto t0 = Clock::now();
    auto created = driver.createSf(spec);
    auto started = created.ok() ? driver.startSf(spec) : created;
    double start = msSince(t0);
    if (started.ok()) {
      measureReadiness(e, spec, hosts, t0, out);
    } else {
      out.error = started.error().message();
    }
    auto t1 = Clock::now();
    auto stopped = driver.stopSf(spec);
    auto destroyed = driver.destroySf(spec);
    double stop = msSince(t1);
    if (out.error.empty() && !stopped.ok()) out.error = stopped.error().message();
    if (out.error.empty() && !destroyed.ok()) out.error = destroyed.error().message();
    if (out.error.empty()) {
      out.start_ms.push_back(start);
      out.stop_ms.push_back(stop);
    }
  }
  return out;
}

// One row of the per-driver table.
void printRow(const Engine& e, const OneFunction& one) {
  std::string console =
      !e.console_marker
          ? "-"
          : (one.console_error.empty() ? figures(one.console_ms) : "failed: " + one.console_error);
  std::string forward =
      one.forward_error.empty() ? figures(one.forward_ms) : "failed: " + one.forward_error;
  std::printf("| %s | %s | %s | %s | %s |\n", labelOf(e).c_str(), figures(one.start_ms).c_str(),
              console.c_str(), forward.c_str(), figures(one.stop_ms).c_str());
}

void measureEngine(const Engine& e, int reps, const fs::path& dir) {
  if (!e.skipped.empty()) {
    std::printf("| %s | not run: %s | | | |\n", e.label.c_str(), e.skipped.c_str());
    return;
  }
  corch::DriverRegistry registry;
  corch::registerBuiltinDrivers(registry);
  auto driver = registry.makeCompute(e.type, e.options);
  if (!driver.ok()) {
    std::printf("| %s | not run: %s | | | |\n", e.label.c_str(), driver.error().message().c_str());
    return;
  }
  if (auto probe = (*driver)->probe(); !probe.ok()) {
    std::printf("| %s | not run: %s | | | |\n", e.label.c_str(), probe.error().message().c_str());
    return;
  }
  auto one = measureOne(**driver, e, reps, dir);
  if (!one.error.empty()) {
    std::printf("| %s | failed: %s | | | |\n", e.label.c_str(), one.error.c_str());
    return;
  }
  printRow(e, one);
}

// 50 native functions through the compute manager with `parallelism` workers: start, then stop.
struct Batch {
  double start_ms = 0, stop_ms = 0;
  std::string error;
};

Batch measureBatch(const Engine& native, int count, unsigned parallelism, const fs::path& dir) {
  Batch out;
  corch::DriverRegistry registry;
  corch::registerBuiltinDrivers(registry);
  auto driver = registry.makeCompute(native.type, native.options);
  if (!driver.ok()) {
    out.error = driver.error().message();
    return out;
  }
  std::map<std::string, std::unique_ptr<ComputeDriver>> drivers;
  drivers[native.type] = std::move(*driver);
  corch::compute::ComputeManager manager(
      std::move(drivers), corch::compute::ComputeOptions{"corch", (dir / "logs").string(), 60s,
                                                         parallelism, (dir / "run").string()});
  std::vector<std::unique_ptr<Ports>> ports;
  std::vector<corch::compute::Function> functions;
  for (int i = 0; i < count; ++i) {
    std::string tag = "n" + std::to_string(i);
    ports.push_back(std::make_unique<Ports>(tag));
    if (!ports.back()->error.empty()) {
      out.error = ports.back()->error;
      return out;
    }
    functions.push_back({native.type, specOf(native, tag, ports.back()->ifnames, dir)});
  }
  auto t0 = Clock::now();
  auto outcome = manager.createAndStart(functions);
  out.start_ms = msSince(t0);
  if (outcome.error) out.error = outcome.error->message();
  // Stopped the way a DELETE stops them: the compute manager's batch, same parallelism.
  auto t1 = Clock::now();
  auto stopped = manager.stopAndDestroy(functions);
  out.stop_ms = msSince(t1);
  if (out.error.empty() && stopped.error) out.error = stopped.error->message();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  int batch = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
    if (a == "--batch") batch = std::max(1, std::atoi(argv[i + 1]));
  }
  // First, while this process still has the node's network: the guest is built from downloaded
  // packages, and Sandbox::get() moves the process into a namespace with no route out.
  auto guest = corch::test::buildGuest();
  corch::log::setLevel(corch::log::Level::Warn);
  auto& sb = Sandbox::get();
  fs::path dir = fs::path(sb.dir()) / "bench-compute";
  fs::create_directories(dir);

  std::printf("bench_compute: one two-port pass-through function per driver, %d repetitions\n",
              reps);
  std::printf("machine: %s\n\n", machineLine().c_str());
  std::fflush(stdout);

  // The engines' private daemons live until the end of main, before the sandbox goes (atexit).
  std::unique_ptr<corch::test::PodmanService> podman;
  std::unique_ptr<corch::test::Libvirtd> libvirtd;
  std::vector<std::string> notes;
  const Engine native = nativeEngine(dir);
  std::vector<Engine> engines{native, dockerEngine(podman, notes),
                              kvmEngine(guest, dir, libvirtd, notes), dpdkEngine()};

  std::printf(
      "Milliseconds from the createSf call, median (min-max): started = createSf + startSf "
      "returned; guest up = the VM's console says \"%s\"; forwarding = the first ping between "
      "the two hosts answered through the function; stopped = stopSf + destroySf.\n\n",
      kGuestMarker);
  std::printf("| driver | started | guest up | forwarding | stopped |\n");
  std::printf("|---|---|---|---|---|\n");
  std::fflush(stdout);
  for (const auto& e : engines) {
    measureEngine(e, reps, dir);
    std::fflush(stdout);
  }
  if (!notes.empty()) std::printf("\n");
  for (const auto& note : notes) std::printf("%s\n", note.c_str());

  std::printf("\n%d native functions (bridge NSF) through the compute manager\n\n", batch);
  std::printf("| workers | start all, ms | stop all, ms |\n|---|---|---|\n");
  for (unsigned parallelism : {8u, 1u}) {
    auto b = measureBatch(native, batch, parallelism, dir);
    if (!b.error.empty()) {
      std::printf("| %u | failed: %s | |\n", parallelism, b.error.c_str());
      continue;
    }
    std::printf("| %u%s | %.0f | %.0f |\n", parallelism,
                parallelism == 1 ? " (one after another)" : " (parallel, bounded)", b.start_ms,
                b.stop_ms);
    std::fflush(stdout);
  }
  return 0;
}
