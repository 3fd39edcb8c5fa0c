// An Open vSwitch with DPDK in a namespace of its own, on hugepages given back afterwards (see
// ovs_dpdk.h for the why; here is the how).
#include "harness/ovs_dpdk.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace corch::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kVswitchdDpdk = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";
constexpr const char* kSchema = "/usr/share/openvswitch/vswitch.ovsschema";
constexpr const char* kNrHugepages = "/proc/sys/vm/nr_hugepages";
constexpr const char* kPrefix = "cv-";
// Where a harness records the pages it added, so that the next one can give back what a killed
// test process left.
constexpr const char* kGrantFile = "hugepages-added";
constexpr unsigned kHugepageKb = 2048;

long msSince(Clock::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - t).count());
}

Result<unsigned> readCounter(const char* path) {
  std::ifstream in(path);
  unsigned value = 0;
  if (!(in >> value)) return Error(ErrorCode::Internal, std::string("cannot read ") + path);
  return value;
}

Result<void> writeCounter(const char* path, unsigned value) {
  std::ofstream out(path);
  out << value << "\n";
  out.flush();
  if (!out) {
    return Error(ErrorCode::Internal,
                 std::string("cannot write ") + std::to_string(value) + " to " + path);
  }
  return Ok();
}

// A value of /proc/meminfo ("HugePages_Free"), 0 when absent.
unsigned meminfo(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream value(line.substr(key.size() + 1));
    unsigned n = 0;
    value >> n;
    return n;
  }
  return 0;
}

// Lowers the pool by `pages` (never below zero): the other half of HugepageGrant::add.
void giveBack(unsigned pages) {
  if (pages == 0) return;
  auto now = readCounter(kNrHugepages);
  if (!now.ok()) return;
  (void)writeCounter(kNrHugepages, *now > pages ? *now - pages : 0);
}

bool processAlive(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// The pid in "cv-<pid>" or "cv-<pid>-<anything>", or 0.
pid_t pidOf(const std::string& name) {
  if (!name.starts_with(kPrefix)) return 0;
  return static_cast<pid_t>(std::atol(name.c_str() + std::strlen(kPrefix)));
}

// Removes what harnesses of test processes that no longer exist left behind: their namespaces
// (and the daemons in them), hugetlbfs mounts, hugepages, DPDK runtime folders, temporary folders.
void removeStale() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(platform::kNetnsDir, ec)) {
    std::string name = entry.path().filename();
    pid_t pid = pidOf(name);
    if (pid <= 0 || pid == ::getpid() || processAlive(pid)) continue;
    if (auto fd = platform::openNetns(name); fd.ok()) {
      (void)platform::killProcessesInNetns(fd->get());
    }
    (void)platform::deleteNetns(name);
    fs::remove_all("/var/run/dpdk/" + name, ec);
  }
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    std::string name = entry.path().filename();
    pid_t pid = pidOf(name);
    if (pid <= 0 || pid == ::getpid() || processAlive(pid)) continue;
    const std::string huge = entry.path() / "huge";
    ::umount2(huge.c_str(), MNT_DETACH);
    std::ifstream grant(entry.path() / kGrantFile);
    unsigned pages = 0;
    if (grant >> pages) giveBack(pages);
    fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// HugepageGrant

Result<HugepageGrant> HugepageGrant::add(unsigned pages) {
  if (meminfo("Hugepagesize") != kHugepageKb) {
    return Error(ErrorCode::Unavailable,
                 "the default hugepage size here is " + std::to_string(meminfo("Hugepagesize")) +
                     " kB; the harness needs " + std::to_string(kHugepageKb) + " kB pages");
  }
  auto before = readCounter(kNrHugepages);
  if (!before.ok()) return std::move(before).error();
  HugepageGrant grant;
  grant.before_ = *before;
  CORCH_TRY(writeCounter(kNrHugepages, *before + pages));
  auto after = readCounter(kNrHugepages);
  if (!after.ok()) return std::move(after).error();
  // The kernel gives what it can find (memory fragmentation): whatever it gave goes back when
  // `grant` is destroyed, on success or not.
  grant.added_ = *after > *before ? *after - *before : 0;
  if (grant.added_ < pages) {
    return Error(ErrorCode::Unavailable, "cannot allocate " + std::to_string(pages) +
                                             " hugepages of 2 MB: vm.nr_hugepages " +
                                             std::to_string(*before) + " -> " +
                                             std::to_string(*after) + ", only " +
                                             std::to_string(grant.added_) + " obtained");
  }
  return grant;
}

HugepageGrant::~HugepageGrant() { giveBack(added_); }

HugepageGrant::HugepageGrant(HugepageGrant&& other) noexcept
    : added_(std::exchange(other.added_, 0)), before_(other.before_) {}

HugepageGrant& HugepageGrant::operator=(HugepageGrant&& other) noexcept {
  if (this != &other) {
    giveBack(added_);
    added_ = std::exchange(other.added_, 0);
    before_ = other.before_;
  }
  return *this;
}

// ---------------------------------------------------------------------------------------------
// EnterNetns

EnterNetns::EnterNetns(const std::string& name)
    : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
  if (!home_) {
    error_ = std::string("cannot open this thread's network namespace: ") + std::strerror(errno);
    return;
  }
  auto target = platform::openNetns(name);
  if (!target.ok()) {
    error_ = target.error().message();
    return;
  }
  if (::setns(target->get(), CLONE_NEWNET) != 0) {
    error_ = "cannot enter network namespace " + name + ": " + std::strerror(errno);
  }
}

EnterNetns::~EnterNetns() {
  if (!error_ && ::setns(home_.get(), CLONE_NEWNET) != 0) {
    // The thread would go on in the wrong namespace: nothing after this would mean anything.
    std::fprintf(stderr, "cannot return to the test's network namespace: %s\n",
                 std::strerror(errno));
    std::abort();
  }
}

// ---------------------------------------------------------------------------------------------
// OvsDpdk

OvsDpdk::OvsDpdk(OvsDpdkConfig config) : config_(config) {}

OvsDpdk::~OvsDpdk() { stop(); }

DriverOptions OvsDpdk::ovsDriverOptions() const {
  DriverOptions options;
  options.values = {{"ovsdb", ovsdbEndpoint()}, {"rundir", rundir()}, {"datapath", "netdev"}};
  return options;
}

CommandResult OvsDpdk::vsctl(const std::string& args, milliseconds timeout) const {
  return runCommand("ovs-vsctl --db=" + shellQuote(ovsdbEndpoint()) + " " + args, timeout);
}

Result<void> OvsDpdk::adoptInterface(const std::string& ifname) const {
  auto r =
      runCommand("ip link set " + shellQuote(ifname) + " netns " + shellQuote(netns()) +
                 " && ip -n " + shellQuote(netns()) + " link set " + shellQuote(ifname) + " up");
  if (!r.ok()) {
    return Error(ErrorCode::Internal,
                 "cannot move " + ifname + " into namespace " + netns() + ": " + r.output);
  }
  return Ok();
}

Result<void> OvsDpdk::start() {
  CORCH_TRY(checkPrograms());
  removeStale();
  const unsigned pages =
      (config_.switch_memory_mb + config_.function_memory_mb) * 1024 / kHugepageKb;
  auto grant = HugepageGrant::add(pages);
  if (!grant.ok()) return grant.error().context("cannot start ovs-vswitchd-dpdk");
  hugepages_ = std::move(grant).value();
  CORCH_TRY(makeFolders());
  CORCH_TRY(mountHugetlbfs());
  auto ns = platform::ScopedNetns::create(kPrefix + std::to_string(::getpid()));
  if (!ns.ok()) return ns.error().context("cannot create the namespace of ovs-vswitchd-dpdk");
  netns_ = std::move(ns).value();
  auto fd = netns_.open();
  if (!fd.ok()) return std::move(fd).error();
  netns_fd_ = std::move(fd).value();
  if (auto r = runCommand("ip -n " + shellQuote(netns()) + " link set lo up"); !r.ok()) {
    return Error(ErrorCode::Internal, "cannot bring lo up in " + netns() + ": " + r.output);
  }
  CORCH_TRY(startOvsdbServer());
  CORCH_TRY(configureDpdk());
  return startVswitchd();
}

Result<void> OvsDpdk::checkPrograms() const {
  if (::access(kVswitchdDpdk, X_OK) != 0) {
    return Error(ErrorCode::NotFound, std::string("cannot start Open vSwitch with DPDK: ") +
                                          kVswitchdDpdk + " is missing (" + std::strerror(errno) +
                                          "; Debian package openvswitch-switch-dpdk)");
  }
  const char* path = std::getenv("PATH");
  for (const char* program : {"ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ip"}) {
    if (!platform::findExecutable(program, path ? path : "/usr/sbin:/usr/bin:/sbin:/bin")) {
      return Error(ErrorCode::NotFound, std::string("cannot start Open vSwitch with DPDK: ") +
                                            program + " is not in PATH");
    }
  }
  if (::access(kSchema, R_OK) != 0) {
    return Error(ErrorCode::NotFound,
                 std::string("cannot start Open vSwitch with DPDK: ") + kSchema + " is missing");
  }
  return Ok();
}

Result<void> OvsDpdk::makeFolders() {
  std::string tmpl = "/tmp/" + std::string(kPrefix) + std::to_string(::getpid()) + "-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    return errnoError("cannot create a temporary folder for ovs-vswitchd-dpdk", errno);
  }
  dir_ = tmpl;
  std::error_code ec;
  fs::create_directories(rundir(), ec);
  fs::create_directories(dir_ + "/huge", ec);
  if (ec) return Error(ErrorCode::Internal, "cannot create " + dir_ + "/huge: " + ec.message());
  // For removeStale() of a later run, should this process be killed before its destructor runs.
  std::ofstream(dir_ + "/" + kGrantFile) << hugepages_.added() << "\n";
  return Ok();
}

Result<void> OvsDpdk::mountHugetlbfs() {
  const std::string huge = dir_ + "/huge";
  if (::mount("nodev", huge.c_str(), "hugetlbfs", 0, "pagesize=2M") != 0) {
    return errnoError("cannot mount a hugetlbfs on " + huge, errno);
  }
  mounted_ = true;
  return Ok();
}

Result<platform::Child> OvsDpdk::spawn(const std::string& program, std::vector<std::string> args,
                                       const std::string& log) const {
  platform::ProcessSpec spec;
  spec.argv = {program};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {{"OVS_RUNDIR", rundir()}, {"OVS_DBDIR", dir_}, {"OVS_LOGDIR", dir_}};
  spec.netns_fd = netns_fd_.get();
  spec.log_path = dir_ + "/" + log;
  return platform::Child::spawn(spec);
}

// The last lines of a daemon's log (for an error message).
std::string OvsDpdk::logTail(const std::string& log) const {
  std::ifstream in(dir_ + "/" + log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > 6 ? lines.size() - 6 : 0; i < lines.size(); ++i) {
    out += (out.empty() ? "" : " | ") + lines[i];
  }
  return out.empty() ? "(empty log)" : out;
}

Result<void> OvsDpdk::startOvsdbServer() {
  const std::string db = dir_ + "/conf.db";
  if (auto r = runCommand("ovsdb-tool create " + shellQuote(db) + " " + kSchema); !r.ok()) {
    return Error(ErrorCode::Internal, "cannot create the OVS database " + db + ": " + r.output);
  }
  auto child =
      spawn("ovsdb-server",
            {db, "--remote=punix:" + rundir() + "/db.sock",
             "--pidfile=" + dir_ + "/ovsdb-server.pid", "--log-file=" + dir_ + "/ovsdb-server.log"},
            "ovsdb-server.out");
  if (!child.ok()) return child.error().context("cannot start ovsdb-server");
  ovsdb_.emplace(std::move(child).value());
  CommandResult last;
  if (!waitUntil(
          [&] {
            last = vsctl("--no-wait --timeout=2 init", 5s);
            return last.ok();
          },
          config_.start_timeout, 20ms)) {
    return Error(ErrorCode::Timeout, "ovsdb-server did not answer within " +
                                         std::to_string(config_.start_timeout.count()) +
                                         " ms: " + last.output);
  }
  return Ok();
}

Result<void> OvsDpdk::configureDpdk() {
  // One lcore for the main thread (cpu 0) and one PMD thread (cpu 1) on this 2-core machine;
  // memory from our own hugetlbfs, a runtime folder of our own, no PCI scan.
  const std::string mem = std::to_string(config_.switch_memory_mb);
  const std::string extra = "--no-pci --huge-dir=" + dir_ + "/huge --file-prefix=" + filePrefix();
  auto r = vsctl(
      "--no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:dpdk-socket-mem=" +
      mem + " other_config:dpdk-socket-limit=" + mem + " " +
      shellQuote("other_config:dpdk-extra=" + extra) +
      " other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2");
  if (!r.ok()) return Error(ErrorCode::Internal, "cannot configure DPDK in OVSDB: " + r.output);
  return Ok();
}

Result<void> OvsDpdk::startVswitchd() {
  const auto begin = Clock::now();
  auto child = spawn(kVswitchdDpdk,
                     {ovsdbEndpoint(), "--pidfile=" + dir_ + "/ovs-vswitchd.pid",
                      "--log-file=" + dir_ + "/ovs-vswitchd.log"},
                     "ovs-vswitchd.out");
  if (!child.ok()) return child.error().context("cannot start ovs-vswitchd-dpdk");
  vswitchd_.emplace(std::move(child).value());
  // Ready: DPDK is initialised, vhost-user client ports can be made, and ovs-vswitchd has applied
  // the database (ovs-vsctl without --no-wait waits for that).
  std::optional<platform::ExitStatus> exited;
  CommandResult last;
  bool ready = waitUntil(
      [&] {
        auto status = vswitchd_->waitFor(0ms);
        if (status.ok() && status->has_value()) {
          exited = **status;
          return true;
        }
        last = vsctl("--timeout=2 get Open_vSwitch . dpdk_initialized iface_types", 5s);
        if (!last.ok() || last.output.rfind("true", 0) != 0 ||
            last.output.find("dpdkvhostuserclient") == std::string::npos) {
          return false;
        }
        last = vsctl("--timeout=2 set Open_vSwitch . external_ids:cv-harness=started", 5s);
        return last.ok();
      },
      config_.start_timeout, 20ms);
  if (exited) {
    vswitchd_.reset();
    return Error(ErrorCode::Internal, "ovs-vswitchd-dpdk " + exited->describe() +
                                          " at start; its log " + dir_ +
                                          "/ovs-vswitchd.log ends: " + logTail("ovs-vswitchd.log"));
  }
  if (!ready) {
    return Error(ErrorCode::Timeout, "ovs-vswitchd-dpdk was not ready within " +
                                         std::to_string(config_.start_timeout.count()) +
                                         " ms (ovs-vsctl: " + last.output +
                                         "); its log ends: " + logTail("ovs-vswitchd.log"));
  }
  vswitchd_start_time_ = milliseconds(msSince(begin));
  return Ok();
}

void OvsDpdk::stopDaemon(std::optional<platform::Child>& child, const char* name) {
  if (!child || !child->running()) return;
  (void)child->signalGroup(SIGTERM);
  auto status = child->waitFor(5s);
  if (!status.ok() || !status->has_value()) {
    std::fprintf(stderr, "ovs-dpdk harness: %s did not stop on SIGTERM; killing it\n", name);
    child->kill();
  }
  child.reset();
}

void OvsDpdk::stop() {
  stopDaemon(vswitchd_, "ovs-vswitchd-dpdk");
  stopDaemon(ovsdb_, "ovsdb-server");
  if (netns_fd_) {
    (void)platform::killProcessesInNetns(netns_fd_.get());
    netns_fd_ = platform::UniqueFd();
  }
  // Deleted now: its taps (ovs-netdev, the bridges') and the hosts' adopted veth ends go with it.
  netns_ = platform::ScopedNetns();
  std::error_code ec;
  if (mounted_) {
    ::umount2((dir_ + "/huge").c_str(), MNT_DETACH);
    mounted_ = false;
  }
  hugepages_ = HugepageGrant();
  if (!dir_.empty()) {
    fs::remove_all("/var/run/dpdk/" + std::string(kPrefix) + std::to_string(::getpid()), ec);
    const char* keep = std::getenv("CORCH_KEEP_SANDBOX");
    if (keep && std::string(keep) == "1") {
      std::fprintf(stderr, "ovs-dpdk harness: kept %s (CORCH_KEEP_SANDBOX=1)\n", dir_.c_str());
    } else {
      fs::remove_all(dir_, ec);
    }
    dir_.clear();
  }
}

}  // namespace corch::test
