// The 'dpdk' compute driver (DESIGN section 7): a function is a DPDK process, by default
// dpdk-testpmd forwarding between its ports, run inside a network namespace of its own named
// after the instance ("corch-<graph>-<sf>"). The driver does not link DPDK: it builds the
// program's command line (command.h) and runs it.
//
//   createSf  : checks the engine settings, the program and the ports, creates the namespace
//               (lo up) and moves each veth port in as eth<i> (port order), up, TX checksum
//               offload off. Vhost-user ports need nothing here: their socket is a path.
//   startSf   : runs the program inside the namespace, detached (`setsid --fork`: it outlives
//               corchd, which finds it again by its namespace), output appended to the log, and
//               returns once it is ready: testpmd has printed its forwarding banner (its ports are
//               configured and started), or engine/ready-text appeared, or another program is
//               still running kSettleTime after its start. On failure or after SfSpec::timeout it
//               kills the program and returns the last lines of its log.
//   stopSf    : SIGINT (testpmd stops forwarding, prints its statistics and closes its ports),
//               SIGKILL for what is left after SfSpec::timeout; removes the runtime folder. Ok when
//               nothing runs.
//   destroySf : kills whatever runs in the namespace, deletes its links and the namespace, and
//               removes the DPDK runtime folder. Ok when there is nothing left.
//   adoptSf   : reads only. NotFound when there is no namespace of that name; Conflict when no
//               process of the namespace has the function's --file-prefix=<instance> among its
//               arguments (stopped, or exited: "running" is that process, found again by its
//               namespace as stopSf finds it), when a veth port is not in the namespace as eth<i>
//               (or it has an eth<k> the spec has not), or when a vhost-user port's socket is
//               missing (testpmd, the server, made it at its start).
//
// EAL arguments (command.cc): one --vdev per port, net_af_packet<i>,iface=eth<i> for a veth port
// and net_virtio_user<i>,path=<socket>,server=1,queues=1 for a vhost-user port (the function is
// the vhost-user server, the switch the client); --no-pci; -m <memory-mb of the template, 256 by
// default, at least 64>; hugepages (--in-memory) when a hugetlbfs is mounted with enough free
// pages, else --no-huge --no-shconf; --file-prefix=<instance> (root's runtime folder is always
// /var/run/dpdk/<prefix>: EAL ignores the environment for root, so destroySf removes it);
// --lcores: see lcores() in command.h (SfSpec::cpus dedicated, or floating on corchd's CPUs).
//
// Engine keys (the template's "engine" object; unknown keys are InvalidArgument "engine/<key>"):
//   "forward-mode"  testpmd's forwarding: "io" (default; passes every frame unchanged, ARP
//                   included) or "mac" (rewrites the MAC addresses: for benchmarks)
//   "mbufs"         testpmd --total-num-mbufs (default 8192; EAL's default pool does not fit
//                   without hugepages)
//   "stats-period"  seconds between testpmd's port statistics in the log (default 3600)
//   "program"       another DPDK program instead of testpmd (a path, or a name in PATH)
//   "args"          array: the program's own arguments, after "--" (for testpmd, after the
//                   driver's: a later option wins)
//   "extra-eal"     array: more EAL arguments, after the driver's
//   "ready-text"    a text of the program's output that means it is ready
//
// The program is engine/program if given; else SfSpec::image when it is an executable file (a
// template may name its own testpmd build); else the driver's testpmd. The resolver makes a bare
// image URI such as "dpdk-testpmd" relative to the image root, where nothing exists: such a
// template gets the driver's testpmd.
//
// Options (DriverOptions): "testpmd" (default: dpdk-testpmd in PATH), "node-netns" (the named
// namespace where the vSwitch leaves the functions' veth ends; default corchd's own), "path"
// (PATH for programs; default corchd's plus the sbin folders), "hugepages" ("auto", default, or
// "never").
//
// The driver keeps no state between calls: the namespace named after the instance holds the
// function's links and its process, so a restarted corchd can adopt, stop and destroy what an
// earlier one started (stopSf signals the namespace's processes through pidfds and polls them;
// it never needs to be their parent), and adoptSf has nothing to pick up.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "command.h"
#include "compute/common/function_log.h"
#include "compute/common/function_netns.h"
#include "compute/common/search_path.h"
#include "corch/driver_registry.h"
#include "corch/log.h"
#include "engine.h"
#include "platform/netlink.h"
#include "platform/netns.h"
#include "platform/process.h"

namespace corch::drivers::dpdk {
namespace {

namespace fs = std::filesystem;
using common::readFrom;
using platform::UniqueFd;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

log::Logger lg("dpdk");

constexpr milliseconds kDefaultTimeout{10000};
constexpr milliseconds kPollStep{20};
// How long a program without a ready text must keep running to count as started.
constexpr milliseconds kSettleTime{500};
// testpmd prints this when forwarding starts ("io packet forwarding - ports=2 - cores=1 ...").
constexpr const char* kTestpmdReady = "packet forwarding - ports=";
constexpr size_t kTailLines = 8;
constexpr size_t kProblemLines = 4;

milliseconds timeoutOf(const SfSpec& sf) {
  return sf.timeout.count() > 0 ? sf.timeout : kDefaultTimeout;
}

long msSince(Clock::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - t).count());
}

bool isExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Whether a line of EAL's or the program's output reports a problem.
bool complains(const std::string& line) {
  for (const char* word : {"rror", "nvalid", "nrecognized", "Cause:"}) {
    if (line.find(word) != std::string::npos) return true;
  }
  return false;
}

// For an error message: the first lines of `text` that report a problem (a usage text printed
// after them would hide them), then its last lines, joined with " | ".
std::string tailOf(const std::string& text) {
  const std::vector<std::string> lines = common::nonBlankLines(text);
  std::vector<std::string> problems;
  for (const auto& line : lines) {
    if (complains(line) && problems.size() < kProblemLines) problems.push_back(line);
  }
  std::string out = common::joinLines(problems);
  if (!out.empty()) out += " | ...";
  const std::string last = common::lastLines(text, kTailLines);
  if (!last.empty()) out += (out.empty() ? "" : " | ") + last;
  return out.empty() ? "(it wrote nothing)" : out;
}

// The arguments of process `pid` (/proc/<pid>/cmdline); empty when it is gone.
std::vector<std::string> commandLineOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(std::move(arg));
  return args;
}

int pidfdOpen(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Sends `sig` to every process of the namespace and waits, at most `deadline`, for all of them to
// exit. Whether they did.
Result<bool> signalAndWait(int ns_fd, int sig, milliseconds deadline) {
  auto pids = platform::processesInNetns(ns_fd);
  if (!pids.ok()) return std::move(pids).error();
  std::vector<UniqueFd> waiting;
  for (int pid : *pids) {
    // Through a pidfd, so that a pid reused meanwhile is never hit.
    UniqueFd fd(pidfdOpen(pid));
    if (!fd) continue;
    if (::syscall(SYS_pidfd_send_signal, fd.get(), sig, nullptr, 0) != 0) continue;
    waiting.push_back(std::move(fd));
  }
  const auto end = Clock::now() + deadline;
  for (auto& fd : waiting) {
    pollfd p{fd.get(), POLLIN, 0};
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now()).count();
      if (left <= 0) return false;
      int n = ::poll(&p, 1, static_cast<int>(left));
      if (n > 0 || (n < 0 && errno != EINTR)) break;
    }
  }
  return true;
}

class DpdkDriver final : public ComputeDriver {
 public:
  DpdkDriver(std::string testpmd, std::string node_netns, std::string path_var, bool hugepages)
      : testpmd_(std::move(testpmd)),
        node_netns_(std::move(node_netns)),
        path_var_(std::move(path_var)),
        hugepages_(hugepages) {}

  std::string_view name() const override { return "dpdk"; }

  Result<void> probe() override {
    if (::geteuid() != 0) {
      return Error(ErrorCode::Unavailable,
                   "the dpdk driver needs root (namespaces, af_packet sockets), and corchd runs as "
                   "uid " +
                       std::to_string(::geteuid()));
    }
    CORCH_TRY(common::probeNetns("dpdk", node_netns_));
    if (!platform::findExecutable("setsid", path_var_)) {
      return Error(ErrorCode::Unavailable, "setsid (util-linux) is not in PATH " + path_var_);
    }
    auto program = resolve(testpmd_);
    if (!program.ok()) return Error(ErrorCode::Unavailable, program.error().message());
    return runsEal(*program);
  }

  Result<void> createSf(const SfSpec& sf) override {
    const std::string doing = "cannot create function " + sf.instance;
    if (auto r = platform::checkNetnsName(sf.instance); !r) return r.error().context(doing);
    auto engine = parseEngine(sf.engine_json);
    if (!engine.ok()) return engine.error().context(doing);
    if (auto p = program(sf, *engine); !p) return p.error().context(doing);
    CORCH_TRY(checkPorts(sf, doing));
    // Vhost-user ports need nothing here: their socket is a path.
    auto netns = common::FunctionNetns::createWithPorts(sf.instance, node_netns_, sf.ports);
    if (!netns.ok()) return netns.error().context(doing);
    netns->commit();
    CORCH_LOG(lg, Info) << "created function " << sf.instance << " (" << sf.ports.size()
                        << " ports)";
    return Ok();
  }

  Result<void> startSf(const SfSpec& sf) override {
    const std::string doing = "cannot start function " + sf.instance;
    const auto begin = Clock::now();
    auto engine = parseEngine(sf.engine_json);
    if (!engine.ok()) return engine.error().context(doing);
    auto prog = program(sf, *engine);
    if (!prog.ok()) return prog.error().context(doing);
    auto ns_fd = platform::openNetns(sf.instance);
    if (!ns_fd.ok()) {
      return Error(ns_fd.error().code(),
                   doing + ": it was not created (" + ns_fd.error().message() + ")");
    }
    auto running = platform::processesInNetns(ns_fd->get());
    if (!running.ok()) return running.error().context(doing);
    if (!running->empty()) return Ok();  // started already (by this corchd or an earlier one)
    removeRuntimeDir(sf);                // left by a run that was killed

    const Machine machine{hugepages_ && hugepagesFree(memoryMb(sf)), allowedCpus()};
    platform::ProcessSpec spec;
    spec.argv = {"setsid", "--fork"};
    // Its output goes to a file, so stdio buffers it in 4 KiB blocks: testpmd's forwarding banner
    // (what readiness waits for) would sit in the buffer until an hour's statistics fill it.
    // stdbuf (coreutils) makes a dynamically linked program's stdout line-buffered.
    if (platform::findExecutable("stdbuf", path_var_)) {
      spec.argv.insert(spec.argv.end(), {"stdbuf", "-oL", "-eL"});
    }
    for (auto& arg : commandLine(sf, *engine, *prog, machine)) spec.argv.push_back(std::move(arg));
    spec.env = {{"PATH", path_var_}};
    spec.netns_fd = ns_fd->get();
    spec.log_path = logPath(sf);
    spec.timeout = timeoutOf(sf);
    auto from = writeHeader(sf, spec.argv);
    if (!from.ok()) return from.error().context(doing);
    auto launched = platform::runProcess(spec);
    if (!launched.ok()) return launched.error().context(doing);
    if (!launched->success()) {
      return Error(ErrorCode::Internal, doing + ": setsid " + launched->describe());
    }
    auto ready = waitReady(sf, *engine, ns_fd->get(), *from, begin);
    if (!ready.ok()) {
      (void)platform::killProcessesInNetns(ns_fd->get());
      removeRuntimeDir(sf);
      CORCH_LOG(lg, Warn) << ready.error().message();
      return ready.error().context(doing);
    }
    CORCH_LOG(lg, Info) << "started function " << sf.instance << " in " << msSince(begin) << " ms ("
                        << (machine.hugepages ? "hugepages" : "no hugepages") << ")";
    return Ok();
  }

  Result<void> stopSf(const SfSpec& sf) override {
    const std::string doing = "cannot stop function " + sf.instance;
    const auto begin = Clock::now();
    if (!platform::netnsExists(sf.instance)) return Ok();
    auto ns_fd = platform::openNetns(sf.instance);
    if (!ns_fd.ok()) return ns_fd.error().context(doing);
    auto clean = signalAndWait(ns_fd->get(), SIGINT, timeoutOf(sf));
    if (!clean.ok()) return clean.error().context(doing);
    auto killed = platform::killProcessesInNetns(ns_fd->get());
    if (!killed.ok()) return killed.error().context(doing);
    if (*killed > 0) {
      CORCH_LOG(lg, Warn) << sf.instance << " did not stop on SIGINT within "
                          << timeoutOf(sf).count() << " ms: killed " << *killed << " processes";
    }
    removeRuntimeDir(sf);
    CORCH_LOG(lg, Info) << "stopped function " << sf.instance << " in " << msSince(begin) << " ms";
    return Ok();
  }

  Result<std::vector<std::string>> listInstances(std::string_view prefix) override {
    return common::functionNetnsNames(prefix);
  }

  Result<void> adoptSf(const SfSpec& sf) override {
    const std::string doing = "cannot adopt function " + sf.instance;
    auto ns_fd = common::openFunctionNetnsToAdopt(sf.instance, doing);
    if (!ns_fd.ok()) return std::move(ns_fd).error();
    auto pids = platform::processesInNetns(ns_fd->get());
    if (!pids.ok()) return pids.error().context(doing);
    const std::string prefix_arg = "--file-prefix=" + filePrefix(sf);
    const bool runs = std::any_of(pids->begin(), pids->end(), [&](int pid) {
      auto args = commandLineOf(pid);
      return std::find(args.begin(), args.end(), prefix_arg) != args.end();
    });
    if (!runs) {
      return Error(ErrorCode::Conflict, doing + ": it is not running (no process with " +
                                            prefix_arg + " in its namespace, which has " +
                                            std::to_string(pids->size()) + ")");
    }
    if (auto r = common::checkPortsInside(ns_fd->get(), sf.instance, sf.ports); !r) {
      return r.error().context(doing);
    }
    for (const auto& port : sf.ports) {
      if (port.technology != PortTechnology::VhostUser) continue;
      struct stat st;
      if (::stat(port.ifname.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
        return Error(ErrorCode::Conflict, doing + ": port " + port.port_id +
                                              " is not attached: there is no vhost-user socket " +
                                              port.ifname);
      }
    }
    CORCH_LOG(lg, Info) << "adopted running function " << sf.instance;
    return Ok();
  }

  Result<void> destroySf(const SfSpec& sf) override {
    const std::string doing = "cannot destroy function " + sf.instance;
    if (auto r = platform::checkNetnsName(sf.instance); !r) return r.error().context(doing);
    auto existed = common::destroyFunctionNetns(sf.instance, lg);
    if (!existed.ok()) return existed.error().context(doing);
    removeRuntimeDir(sf);
    if (*existed) CORCH_LOG(lg, Info) << "destroyed function " << sf.instance;
    return Ok();
  }

 private:
  std::string logPath(const SfSpec& sf) const {
    if (!sf.log_path.empty()) return sf.log_path;
    return (sf.run_dir.empty() ? "/tmp" : sf.run_dir) + "/" + sf.instance + ".log";
  }

  // A program path: `name` itself when it has a '/', else found in PATH.
  Result<std::string> resolve(const std::string& name) const {
    if (name.find('/') != std::string::npos) {
      if (isExecutableFile(name)) return name;
      return Error(ErrorCode::NotFound, "the DPDK program " + name + " is not an executable file");
    }
    if (auto found = platform::findExecutable(name, path_var_)) return *found;
    return Error(ErrorCode::NotFound,
                 "the DPDK program " + name + " is not in PATH " + path_var_ +
                     " (Debian 12: package dpdk-dev, or dpdk before 22.11.11)");
  }

  // The program of a function (see the top of this file).
  Result<std::string> program(const SfSpec& sf, const Engine& engine) const {
    if (!engine.isTestpmd()) return resolve(engine.program);
    if (!sf.image.empty() && isExecutableFile(sf.image)) return sf.image;
    return resolve(testpmd_);
  }

  // Whether the program initialises EAL here: `-v ... -- --help` prints the version, probes no
  // device and exits 0 (testpmd); about 0.3 s.
  Result<void> runsEal(const std::string& program) const {
    const std::string prefix = "corch-dpdk-probe-" + std::to_string(::getpid());
    char log[] = "/tmp/corch-dpdk-probe-XXXXXX";
    UniqueFd fd(::mkstemp(log));
    if (!fd) return errnoError("cannot create a temporary file for the dpdk probe", errno);
    platform::ProcessSpec spec;
    spec.argv = {program,
                 "-v",
                 "--no-huge",
                 "--no-shconf",
                 "--no-pci",
                 "-m",
                 "64",
                 "--lcores=(0,1)@(" + firstCpu() + ")",
                 "--file-prefix=" + prefix,
                 "--",
                 "--help"};
    spec.log_path = log;
    spec.timeout = kDefaultTimeout;
    auto status = platform::runProcess(spec);
    std::string output = readFrom(log, 0);
    ::unlink(log);
    std::error_code ec;
    fs::remove_all("/var/run/dpdk/" + prefix, ec);
    if (!status.ok()) {
      return Error(ErrorCode::Unavailable,
                   "cannot run " + program + ": " + status.error().message());
    }
    if (!status->success() || output.find("RTE Version") == std::string::npos) {
      return Error(ErrorCode::Unavailable, program + " does not initialise DPDK here: it " +
                                               status->describe() + "; " + tailOf(output));
    }
    return Ok();
  }

  static std::string firstCpu() {
    auto cpus = allowedCpus();
    return cpus.empty() ? "0" : std::to_string(cpus.front());
  }

  Result<void> checkPorts(const SfSpec& sf, const std::string& doing) const {
    for (const auto& port : sf.ports) {
      if (port.technology == PortTechnology::Veth) {
        if (auto r = platform::checkIfname(port.ifname); !r) return r.error().context(doing);
      } else if (port.technology == PortTechnology::VhostUser) {
        if (port.ifname.empty() || port.ifname.front() != '/') {
          return Error(ErrorCode::InvalidArgument,
                       doing + ": port " + port.port_id +
                           " is a vhost-user port without an absolute socket path ('" +
                           port.ifname + "')");
        }
        if (!fs::is_directory(fs::path(port.ifname).parent_path())) {
          return Error(ErrorCode::NotFound, doing + ": the folder of the vhost-user socket " +
                                                port.ifname + " of port " + port.port_id +
                                                " does not exist");
        }
      } else {
        return Error(ErrorCode::Unsupported,
                     doing + ": port " + port.port_id + " is a " +
                         std::string(toString(port.technology)) +
                         " port; the dpdk driver takes veth and vhost-user ports");
      }
    }
    return Ok();
  }

  // Appends a header line (with the command) to the log; returns where this run's output starts.
  Result<std::streamoff> writeHeader(const SfSpec& sf, const std::vector<std::string>& argv) const {
    std::string what = "start " + sf.instance + ":";
    for (const auto& arg : argv) what += " " + arg;
    return common::appendLogHeader(logPath(sf), what);
  }

  // Waits until the program is ready (see the top of this file), has exited, or the timeout.
  Result<void> waitReady(const SfSpec& sf, const Engine& engine, int ns_fd, std::streamoff from,
                         Clock::time_point begin) const {
    const std::string log = logPath(sf);
    const std::string ready = !engine.ready_text.empty() ? engine.ready_text
                              : engine.isTestpmd()       ? std::string(kTestpmdReady)
                                                         : std::string();
    const auto deadline = begin + timeoutOf(sf);
    for (;;) {
      std::string output = readFrom(log, from);
      if (!ready.empty() && output.find(ready) != std::string::npos) return Ok();
      auto pids = platform::processesInNetns(ns_fd);
      if (!pids.ok()) return std::move(pids).error();
      if (pids->empty()) {
        return Error(ErrorCode::Internal,
                     "the program exited before it was ready; the last lines "
                     "of its log " +
                         log + ": " + tailOf(readFrom(log, from)));
      }
      if (ready.empty() && Clock::now() - begin >= kSettleTime) return Ok();
      if (Clock::now() >= deadline) {
        return Error(ErrorCode::Timeout, "the program was not ready within " +
                                             std::to_string(timeoutOf(sf).count()) +
                                             " ms and was killed; the last lines of its log " +
                                             log + ": " + tailOf(output));
      }
      std::this_thread::sleep_for(kPollStep);
    }
  }

  void removeRuntimeDir(const SfSpec& sf) const {
    std::error_code ec;
    fs::remove_all(runtimeDir(sf), ec);
    if (ec) CORCH_LOG(lg, Warn) << "cannot remove " << runtimeDir(sf) << ": " << ec.message();
  }

  const std::string testpmd_;
  const std::string node_netns_;
  const std::string path_var_;
  const bool hugepages_;
};

}  // namespace

void registerDriver(DriverRegistry& registry) {
  (void)registry.addCompute(
      "dpdk", [](const DriverOptions& options) -> Result<std::unique_ptr<ComputeDriver>> {
        const std::string hugepages = options.getOr("hugepages", "auto");
        if (hugepages != "auto" && hugepages != "never") {
          return Error(ErrorCode::InvalidArgument,
                       "invalid option hugepages of compute driver dpdk: '" + hugepages +
                           "' (auto or never)");
        }
        return std::unique_ptr<ComputeDriver>(new DpdkDriver(
            options.getOr("testpmd", "dpdk-testpmd"), options.getOr("node-netns", ""),
            options.getOr("path", common::pathWithSbin()), hugepages == "auto"));
      });
}

}  // namespace corch::drivers::dpdk
