// bench_compute: how long each compute driver takes to start and to stop one function, and how
// long 50 native functions take started in parallel (the compute manager's bounded pool) against
// one after another. A benchmark, not a test: it prints figures and asserts nothing about time.
// What it measures and how to read it: bench/README.md.
//
// Each driver runs the two-port pass-through function of its kind (the bridge NSF, the bridge
// container, the bridge VM, testpmd in io mode) on two veth pairs (taps for the VM) made by this
// program, which stands in for the vSwitch. Engines are started privately, as the integration
// tests do: podman's Docker API service and libvirtd with their own sockets and storage, inside
// the sandbox's private network namespace. A driver whose engine is missing is reported as such
// (with the reason) and skipped; the others still run.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compute/compute_manager.h"
#include "corch/compute.h"
#include "corch/driver_registry.h"
#include "corch/log.h"
#include "harness/sandbox.h"
#include "platform/netlink.h"

namespace {

using namespace std::chrono_literals;
using corch::ComputeDriver;
using corch::DriverOptions;
using corch::PortTechnology;
using corch::Result;
using corch::SfSpec;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kSource = CORCH_SOURCE_DIR;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A driver to measure: how to make it and one function of its kind.
struct Engine {
  std::string label;  // as printed
  std::string type;   // the driver's name
  DriverOptions options;
  PortTechnology technology = PortTechnology::Veth;
  std::string image;
  std::string engine_json;
  uint64_t memory_mb = 0;
  std::string skipped;  // why it cannot run here, if it cannot
};

// The function's two ports: veth pairs (the function's end handed to the driver) or taps.
class Ports {
 public:
  Ports(const std::string& tag, PortTechnology technology) {
    for (int i = 0; i < 2; ++i) {
      std::string name = "bc" + tag + "p" + std::to_string(i);
      Result<void> made = technology == PortTechnology::Tap
                              ? corch::platform::createTap(name)
                              : corch::platform::createVethPair(name, name + "f");
      if (!made.ok()) {
        error = made.error().message();
        return;
      }
      names_.push_back(name);
      (void)corch::platform::setLinkUp(name);
      ifnames.push_back(technology == PortTechnology::Tap ? name : name + "f");
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

SfSpec specOf(const Engine& e, const std::string& tag, const Ports& ports, const fs::path& dir) {
  SfSpec s;
  s.graph_id = "bench";
  s.sf_id = tag;
  s.instance = "corch-bc-" + tag;
  s.template_id = e.type + "-bench";
  s.image = e.image;
  s.config_json = "{}";
  s.engine_json = e.engine_json;
  s.memory_mb = e.memory_mb;
  s.timeout = 60s;
  s.log_path = (dir / "logs" / (tag + ".log")).string();
  s.run_dir = (dir / "run" / s.instance).string();
  fs::create_directories(dir / "logs");
  fs::create_directories(s.run_dir);
  for (size_t i = 0; i < ports.ifnames.size(); ++i) {
    corch::SfPortBinding b;
    b.port_id = std::to_string(i);
    b.ifname = ports.ifnames[i];
    b.technology = e.technology;
    s.ports.push_back(b);
  }
  return s;
}

struct OneFunction {
  std::vector<double> start_ms, stop_ms;
  std::string error;
};

// createSf + startSf, then stopSf + destroySf, `reps` times.
OneFunction measureOne(ComputeDriver& driver, const Engine& e, int reps, const fs::path& dir) {
  OneFunction out;
  for (int r = 0; r < reps && out.error.empty(); ++r) {
    std::string tag = e.type.substr(0, 3) + std::to_string(r);
    Ports ports(tag, e.technology);
    if (!ports.error.empty()) {
      out.error = ports.error;
      break;
    }
    SfSpec spec = specOf(e, tag, ports, dir);
    auto t0 = Clock::now();
    auto created = driver.createSf(spec);
    auto started = created.ok() ? driver.startSf(spec) : created;
    double start = msSince(t0);
    if (!started.ok()) out.error = started.error().message();
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
    ports.push_back(std::make_unique<Ports>(tag, PortTechnology::Veth));
    if (!ports.back()->error.empty()) {
      out.error = ports.back()->error;
      return out;
    }
    functions.push_back({native.type, specOf(native, tag, *ports.back(), dir)});
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
  corch::log::setLevel(corch::log::Level::Warn);
  auto& sb = corch::test::Sandbox::get();
  fs::path dir = fs::path(sb.dir()) / "bench-compute";
  fs::create_directories(dir);

  std::vector<Engine> engines;
  Engine native{"native (bridge NSF)",   "native", {}, PortTechnology::Veth,
                kSource + "/nsf/bridge", "",       0,  ""};
  native.options.values["run-dir"] = (dir / "native-run").string();
  engines.push_back(native);

  std::printf("bench_compute: one two-port pass-through function per driver, %d repetitions\n\n",
              reps);
  std::printf("| driver | start (create+start), median ms | stop (stop+destroy), median ms |\n");
  std::printf("|---|---|---|\n");
  for (const auto& e : engines) {
    if (!e.skipped.empty()) {
      std::printf("| %s | not run: %s | |\n", e.label.c_str(), e.skipped.c_str());
      continue;
    }
    corch::DriverRegistry registry;
    corch::registerBuiltinDrivers(registry);
    auto driver = registry.makeCompute(e.type, e.options);
    if (!driver.ok()) {
      std::printf("| %s | not run: %s | |\n", e.label.c_str(), driver.error().message().c_str());
      continue;
    }
    if (auto probe = (*driver)->probe(); !probe.ok()) {
      std::printf("| %s | not run: %s | |\n", e.label.c_str(), probe.error().message().c_str());
      continue;
    }
    auto one = measureOne(**driver, e, reps, dir);
    if (!one.error.empty()) {
      std::printf("| %s | failed: %s | |\n", e.label.c_str(), one.error.c_str());
      continue;
    }
    std::printf("| %s | %.1f | %.1f |\n", e.label.c_str(), median(one.start_ms),
                median(one.stop_ms));
    std::fflush(stdout);
  }

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
