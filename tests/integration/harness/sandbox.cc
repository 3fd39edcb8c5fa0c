// The sandbox of sandbox.h (private network namespace, its own Open vSwitch, hosts), the shell
// commands the tests run, and the daemons the harness starts (spawnDaemon, stopDaemon).
#include "harness/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

namespace corch::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kSchema = "/usr/share/openvswitch/vswitch.ovsschema";
constexpr const char* kNetnsPrefix = "corch-t";

// What a signal handler needs to clean up, in plain memory (a handler may not allocate).
struct Emergency {
  volatile sig_atomic_t armed = 0;
  pid_t pids[2] = {-1, -1};
  bool keep_dir = false;
  char dir[512] = {};
  static constexpr int kMaxNetns = 64;
  char netns[kMaxNetns][128] = {};
  int n_netns = 0;
};
Emergency emergency;

void copyTo(char* dst, size_t size, const std::string& src) {
  std::snprintf(dst, size, "%s", src.c_str());
}

void onSignal(int sig) {
  if (emergency.armed) {
    emergency.armed = 0;
    for (pid_t pid : emergency.pids) {
      if (pid > 0) ::kill(pid, SIGKILL);
    }
    char path[160];
    for (int i = 0; i < emergency.n_netns; ++i) {
      if (!emergency.netns[i][0]) continue;
      std::snprintf(path, sizeof path, "/run/netns/%s", emergency.netns[i]);
      ::umount2(path, MNT_DETACH);
      ::unlink(path);
    }
    if (!emergency.keep_dir && emergency.dir[0]) {
      pid_t child = ::fork();
      if (child == 0) {
        ::execl("/bin/rm", "rm", "-rf", emergency.dir, static_cast<char*>(nullptr));
        ::_exit(127);
      }
      if (child > 0) ::waitpid(child, nullptr, 0);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void installSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

int threadCount() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
  }
  return n;
}

// Deletes the host namespaces of sandboxes whose process is gone ("corch-t<pid>-<name>").
void deleteStaleNamespaces() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    std::string name = entry.path().filename();
    if (!name.starts_with(kNetnsPrefix)) continue;
    pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + std::strlen(kNetnsPrefix)));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      (void)runCommand("ip netns del " + shellQuote(name) + " 2>/dev/null", 10s);
    }
  }
}

std::unique_ptr<Sandbox>& instance() {
  static std::unique_ptr<Sandbox> sandbox;
  return sandbox;
}

}  // namespace

bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               std::chrono::milliseconds step) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

std::string shellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

CommandResult runCommand(const std::string& command, std::chrono::milliseconds timeout) {
  CommandResult result;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.output = std::string("cannot create a pipe: ") + std::strerror(errno);
    return result;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    result.output = std::string("cannot fork: ") + std::strerror(errno);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return result;
  }
  if (pid == 0) {
    emergency.armed = 0;  // the sandbox is the parent's to clean up
    ::setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      timed_out = r == 0;
      break;
    }
    ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    result.output += "\n<killed after " + std::to_string(timeout.count()) + " ms>";
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    result.exit_code = 128 + WTERMSIG(status);
  return result;
}

Result<pid_t> spawnDaemon(const DaemonSpec& spec) {
  if (spec.argv.empty()) return Error(ErrorCode::InvalidArgument, "cannot start a daemon: no argv");
  std::vector<char*> args;
  for (const auto& a : spec.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (spec.env) {
    for (const auto& e : *spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return errnoError("cannot fork for " + spec.argv[0], errno);
  if (pid == 0) {
    emergency.armed = 0;  // the sandbox is the parent's to clean up
    // Dies with the test process, however that ends.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    if (spec.own_process_group) ::setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    int out = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    if (cwd != nullptr && ::chdir(cwd) != 0) ::_exit(126);
    if (spec.env) {
      ::execvpe(args[0], args.data(), envp.data());
    } else {
      ::execvp(args[0], args.data());
    }
    ::_exit(127);
  }
  return pid;
}

bool stopDaemon(pid_t& pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return true;
  ::kill(pid, SIGTERM);
  int status = 0;
  const bool stopped = waitUntil([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, grace);
  if (!stopped) {
    // Its group too when it leads one (a group's id is its leader's pid, and the kernel does not
    // reuse the pid of a live group, so -pid hits nothing else).
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  pid = -1;
  return stopped;
}

// ---------------------------------------------------------------------------------------------
// Sandbox

Sandbox& Sandbox::get() {
  auto& sandbox = instance();
  if (!sandbox) {
    sandbox.reset(new Sandbox());
    auto started = sandbox->start();
    if (!started.ok()) {
      std::fprintf(stderr, "cannot create the test sandbox: %s\n",
                   started.error().message().c_str());
      sandbox->stop();
      sandbox.reset();
      std::exit(2);
    }
    static bool registered = false;
    if (!registered) {
      registered = true;
      std::atexit([] { Sandbox::shutdown(); });
    }
  }
  return *sandbox;
}

void Sandbox::shutdown() { instance().reset(); }

Sandbox::~Sandbox() { stop(); }

DriverOptions Sandbox::ovsDriverOptions() const {
  DriverOptions options;
  options.values = {{"ovsdb", ovsdbEndpoint()}, {"rundir", rundir_}, {"datapath", "netdev"}};
  return options;
}

CommandResult Sandbox::run(const std::string& command, std::chrono::milliseconds timeout) const {
  return runCommand(command, timeout);
}

CommandResult Sandbox::runIn(const std::string& host, const std::string& command,
                             std::chrono::milliseconds timeout) const {
  return runCommand(
      "ip netns exec " + shellQuote(hostNetns(host)) + " sh -c " + shellQuote(command), timeout);
}

std::string Sandbox::hostNetns(const std::string& name) const {
  return kNetnsPrefix + std::to_string(::getpid()) + "-" + name;
}

void Sandbox::stopOvsDaemon(pid_t& pid, const char* name) {
  const pid_t was = pid;
  if (!stopDaemon(pid, 5s)) {
    std::fprintf(stderr, "sandbox: %s (pid %d) did not stop on SIGTERM; killed it\n", name,
                 static_cast<int>(was));
  }
}

Result<void> Sandbox::start() {
  if (int n = threadCount(); n != 1) {
    return Error(ErrorCode::Internal,
                 "the sandbox must be created before any other thread starts (this process has " +
                     std::to_string(n) + " threads); create it in a global fixture");
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    return Error(ErrorCode::PermissionDenied,
                 std::string("cannot create a private network namespace (root needed): ") +
                     std::strerror(errno));
  }
  if (auto r = run("ip link set lo up"); !r.ok()) {
    return Error(ErrorCode::Internal, "cannot bring lo up: " + r.output);
  }
  // glibc's getaddrinfo(AI_ADDRCONFIG), which cpprest uses, finds no IPv4 address for
  // "127.0.0.1" in a namespace where veths have IPv6 link-local addresses but no interface
  // besides lo has an IPv4 one. Every real node has one; give the sandbox one too.
  if (auto r = run("ip link add cfgaddr type veth peer name cfgaddr1 && "
                   "ip addr add 192.0.2.1/32 dev cfgaddr && ip link set cfgaddr up");
      !r.ok()) {
    return Error(ErrorCode::Internal, "cannot give the sandbox an IPv4 address: " + r.output);
  }
  deleteStaleNamespaces();

  char tmpl[] = "/tmp/corch-sandbox-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    return Error(ErrorCode::Internal,
                 std::string("cannot create a temporary folder: ") + std::strerror(errno));
  }
  dir_ = tmpl;
  rundir_ = dir_ + "/run";
  std::filesystem::create_directories(rundir_);
  const char* keep = std::getenv("CORCH_KEEP_SANDBOX");
  emergency.keep_dir = keep && std::string(keep) == "1";
  copyTo(emergency.dir, sizeof emergency.dir, dir_);
  emergency.armed = 1;
  installSignalHandlers();

  // Every OVS tool started from here on (ours and the tests') finds this OVS.
  ::setenv("OVS_RUNDIR", rundir_.c_str(), 1);
  ::setenv("OVS_DBDIR", dir_.c_str(), 1);
  ::setenv("OVS_LOGDIR", dir_.c_str(), 1);

  std::string db = dir_ + "/conf.db";
  if (auto r = run("ovsdb-tool create " + shellQuote(db) + " " + kSchema); !r.ok()) {
    return Error(ErrorCode::Internal, "cannot create the OVS database: " + r.output);
  }
  CORCH_TRY(startOvsdbServer());
  return startVswitchd();
}

Result<void> Sandbox::startOvsdbServer() {
  DaemonSpec spec;
  spec.argv = {"ovsdb-server",
               dir_ + "/conf.db",
               "--remote=punix:" + dbSocket(),
               "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
               "--pidfile",
               "--log-file=" + dir_ + "/ovsdb-server.log"};
  spec.log = dir_ + "/ovsdb-server.out";
  auto ovsdb = spawnDaemon(spec);
  if (!ovsdb.ok()) return std::move(ovsdb).error();
  ovsdb_pid_ = *ovsdb;
  emergency.pids[0] = ovsdb_pid_;
  CommandResult last;
  bool ready = waitUntil(
      [&] {
        last = run("ovs-vsctl --no-wait --timeout=2 init", 5s);
        return last.ok();
      },
      20s, 20ms);
  if (!ready) return Error(ErrorCode::Timeout, "ovsdb-server did not start: " + last.output);
  return Ok();
}

Result<void> Sandbox::startVswitchd() {
  DaemonSpec spec;
  spec.argv = {"ovs-vswitchd", "unix:" + dbSocket(), "--pidfile",
               "--log-file=" + dir_ + "/ovs-vswitchd.log"};
  spec.log = dir_ + "/ovs-vswitchd.out";
  auto vswitchd = spawnDaemon(spec);
  if (!vswitchd.ok()) return std::move(vswitchd).error();
  vswitchd_pid_ = *vswitchd;
  emergency.pids[1] = vswitchd_pid_;
  // Without --no-wait, ovs-vsctl waits until ovs-vswitchd has applied the change: it is up. (The
  // value must differ each time: ovs-vsctl does not wait after a transaction that changes
  // nothing.)
  static int starts = 0;
  std::string mark = "external_ids:corch-sandbox-start=" + std::to_string(++starts);
  CommandResult last;
  bool exited = false;
  bool ready = waitUntil(
      [&] {
        int status = 0;
        if (::waitpid(vswitchd_pid_, &status, WNOHANG) == vswitchd_pid_) {
          exited = true;
          return true;
        }
        last = run("ovs-vsctl --timeout=2 set Open_vSwitch . " + mark, 5s);
        return last.ok();
      },
      20s, 20ms);
  if (exited) {
    vswitchd_pid_ = -1;
    emergency.pids[1] = -1;
    return Error(ErrorCode::Internal,
                 "ovs-vswitchd exited at start; see " + dir_ + "/ovs-vswitchd.log");
  }
  if (!ready) return Error(ErrorCode::Timeout, "ovs-vswitchd did not start: " + last.output);
  return Ok();
}

void Sandbox::killOvsDaemon(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  pid = -1;
}

Result<void> Sandbox::restartVswitchd(Stop how) {
  if (how == Stop::Kill)
    killOvsDaemon(vswitchd_pid_);
  else
    stopOvsDaemon(vswitchd_pid_, "ovs-vswitchd");
  emergency.pids[1] = -1;
  return startVswitchd();
}

Result<void> Sandbox::restartOvsdbServer(Stop how) {
  if (how == Stop::Kill)
    killOvsDaemon(ovsdb_pid_);
  else
    stopOvsDaemon(ovsdb_pid_, "ovsdb-server");
  emergency.pids[0] = -1;
  return startOvsdbServer();
}

void Sandbox::stop() {
  stopOvsDaemon(vswitchd_pid_, "ovs-vswitchd");
  emergency.pids[1] = -1;
  stopOvsDaemon(ovsdb_pid_, "ovsdb-server");
  emergency.pids[0] = -1;
  auto hosts = hosts_;
  for (const auto& [name, ns] : hosts) (void)removeHost(name);
  emergency.armed = 0;
  if (!dir_.empty()) {
    if (emergency.keep_dir) {
      std::fprintf(stderr, "sandbox: kept %s (CORCH_KEEP_SANDBOX=1)\n", dir_.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
    dir_.clear();
  }
}

Result<std::string> Sandbox::addHost(const std::string& name, const std::string& cidr) {
  if (name.empty() || name.size() > 13) {
    return Error(ErrorCode::InvalidArgument,
                 "cannot add host \"" + name + "\": its name must have 1 to 13 characters");
  }
  if (hosts_.count(name))
    return Error(ErrorCode::AlreadyExists, "cannot add host " + name + ": it exists");
  std::string ns = hostNetns(name);
  std::string phys = "ph" + name;
  if (auto r = run("ip netns add " + shellQuote(ns)); !r.ok()) {
    return Error(ErrorCode::Internal, "cannot add host " + name + ": " + r.output);
  }
  hosts_[name] = ns;
  if (emergency.n_netns < Emergency::kMaxNetns) {
    copyTo(emergency.netns[emergency.n_netns++], sizeof emergency.netns[0], ns);
  }
  std::string commands =
      "ip link add " + shellQuote(phys) + " type veth peer name eth0 netns " + shellQuote(ns) +
      " && ip link set " + shellQuote(phys) + " up && ip netns exec " + shellQuote(ns) + " sh -c " +
      shellQuote("ip link set lo up && ip addr add " + cidr +
                 " dev eth0 && ip link set eth0 up && ethtool -K eth0 tx off >/dev/null");
  if (auto r = run(commands); !r.ok()) {
    (void)removeHost(name);
    return Error(ErrorCode::Internal, "cannot set up host " + name + ": " + r.output);
  }
  return phys;
}

Result<void> Sandbox::removeHost(const std::string& name) {
  auto it = hosts_.find(name);
  if (it == hosts_.end()) return Ok();
  std::string ns = it->second;
  hosts_.erase(it);
  for (int i = 0; i < emergency.n_netns; ++i) {
    if (ns == emergency.netns[i]) emergency.netns[i][0] = '\0';
  }
  // Processes left in the namespace (a ping in the background) would keep it alive.
  (void)run("ip netns pids " + shellQuote(ns) + " 2>/dev/null | xargs -r kill -9", 10s);
  auto r = run("ip netns del " + shellQuote(ns));
  if (!r.ok()) return Error(ErrorCode::Internal, "cannot delete host " + name + ": " + r.output);
  return Ok();
}

SandboxFixture::SandboxFixture() { Sandbox::get(); }
SandboxFixture::~SandboxFixture() { Sandbox::shutdown(); }

}  // namespace corch::test
