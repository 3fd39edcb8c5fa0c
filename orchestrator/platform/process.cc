#include "platform/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

extern char** environ;

namespace corch::platform {
namespace {

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// What the child reports through the exec-status pipe when it cannot exec.
struct ChildFailure {
  int stage;  // index into kStages
  int err;
};
constexpr const char* kStages[] = {"cannot create its process group",
                                   "cannot enter its network namespace",
                                   "cannot change to its working directory",
                                   "cannot redirect its standard streams",
                                   "cannot execute it",
                                   "cannot drop its capabilities"};

// Keeps the descriptors the child needs away from 0..2, which dup2() will overwrite (a daemon
// may run with those closed, so open() can return them).
Result<UniqueFd> aboveStdio(UniqueFd fd, const std::string& what) {
  if (fd.get() > 2) return fd;
  UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
  if (!moved) return errnoError(what, errno);
  return moved;
}

std::string envValue(const std::vector<std::string>& env, const std::string& name) {
  const std::string prefix = name + "=";
  for (const auto& kv : env) {
    if (kv.compare(0, prefix.size(), prefix) == 0) return kv.substr(prefix.size());
  }
  return "";
}

ExitStatus fromWaitStatus(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) s.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

// The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap), read before
// fork(); 63 when it cannot be read (dropping an unknown one fails with EINVAL, which is fine).
int lastCapability() {
  static const int last = [] {
    UniqueFd fd(::open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC));
    char buf[16] = {};
    if (!fd || ::read(fd.get(), buf, sizeof(buf) - 1) <= 0) return 63;
    int n = std::atoi(buf);
    return n > 0 && n < 64 ? n : 63;
  }();
  return last;
}

[[noreturn]] void childFail(int pipe_fd, int stage) {
  ChildFailure f{stage, errno};
  ssize_t ignored = ::write(pipe_fd, &f, sizeof(f));
  (void)ignored;
  ::_exit(127);
}

}  // namespace

std::string ExitStatus::describe() const {
  if (timed_out) {
    return "did not finish within " + std::to_string(timeout.count()) + " ms and was killed";
  }
  if (signal != 0) {
    const char* name = ::strsignal(signal);
    return "was killed by signal " + std::to_string(signal) +
           (name != nullptr ? " (" + std::string(name) + ")" : std::string());
  }
  return "exited with status " + std::to_string(exit_code);
}

std::optional<std::string> findExecutable(const std::string& name, const std::string& path_var) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  size_t start = 0;
  while (start <= path_var.size()) {
    size_t end = path_var.find(':', start);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

Result<Child> Child::spawn(const ProcessSpec& spec) {
  if (spec.argv.empty()) return Error(ErrorCode::InvalidArgument, "cannot run a process: no argv");
  const std::string doing = "cannot run " + spec.argv[0];

  // Environment: the inherited one, then the overrides, in a map so a name appears once.
  std::map<std::string, std::string> env_map;
  if (spec.inherit_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (const auto& [k, v] : spec.env) env_map[k] = v;
  std::vector<std::string> env_strings;
  env_strings.reserve(env_map.size());
  for (const auto& [k, v] : env_map) env_strings.push_back(k + "=" + v);

  std::string path_var = envValue(env_strings, "PATH");
  if (path_var.empty()) path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  auto program = findExecutable(spec.argv[0], path_var);
  if (!program) {
    return Error(ErrorCode::NotFound, doing + ": " +
                                          (spec.argv[0].find('/') != std::string::npos
                                               ? std::string("no such executable file")
                                               : "not found in PATH " + path_var));
  }

  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  auto devnull = aboveStdio(UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)),
                            doing + ": cannot open /dev/null");
  if (!devnull.ok()) return std::move(devnull).error();
  Result<UniqueFd> log = UniqueFd();
  if (spec.log_path.empty()) {
    log = UniqueFd(::fcntl(devnull->get(), F_DUPFD_CLOEXEC, 3));
  } else {
    log = aboveStdio(
        UniqueFd(::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)),
        doing + ": cannot open its log " + spec.log_path);
  }
  if (!log.ok()) return std::move(log).error();
  if (!*log) return errnoError(doing + ": cannot open its log " + spec.log_path, errno);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return errnoError(doing + ": cannot create a pipe", errno);
  UniqueFd status_read(pipe_fds[0]);
  auto status_write_r = aboveStdio(UniqueFd(pipe_fds[1]), doing + ": cannot create a pipe");
  if (!status_write_r.ok()) return std::move(status_write_r).error();
  UniqueFd status_write = std::move(status_write_r).value();

  const char* exe = program->c_str();
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const int netns_fd = spec.netns_fd;
  const int in_fd = devnull->get();
  const int out_fd = log->get();
  const int pipe_w = status_write.get();
  const bool drop_caps = spec.capabilities.has_value();
  const uint64_t keep_caps = spec.capabilities.value_or(0);
  const int last_cap = lastCapability();

  pid_t pid = ::fork();
  if (pid < 0) return errnoError(doing + ": cannot fork", errno);
  if (pid == 0) {
    // The child: async-signal-safe system calls only, until execve().
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
    if (setpgid(0, 0) != 0) childFail(pipe_w, 0);
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) childFail(pipe_w, 1);
    if (cwd != nullptr && chdir(cwd) != 0) childFail(pipe_w, 2);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) childFail(pipe_w, 3);
    if (drop_caps) {
      for (int cap = 0; cap <= last_cap; ++cap) {
        if ((keep_caps >> cap) & 1) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) childFail(pipe_w, 5);
      }
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) childFail(pipe_w, 5);
    }
    // Descriptors other threads opened without O_CLOEXEC must not leak into the program.
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    execve(exe, argv.data(), envp.data());
    childFail(pipe_w, 4);
  }

  // Also from the parent, so the group exists before we might signal it.
  ::setpgid(pid, pid);
  status_write.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  Child child(pid, std::move(pidfd));
  if (!child.pidfd_) {
    int err = errno;
    child.kill();
    return errnoError(doing + ": cannot open a pidfd for it", err);
  }

  ChildFailure failure{};
  ssize_t got;
  do {
    got = ::read(status_read.get(), &failure, sizeof(failure));
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof(failure))) {
    child.reap();
    int stage = failure.stage >= 0 && failure.stage < 6 ? failure.stage : 4;
    return errnoError(doing + ": " + kStages[stage], failure.err);
  }
  return child;
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (running()) kill();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
  }
  return *this;
}

Child::~Child() {
  if (running()) kill();
}

ExitStatus Child::reap() {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  pid_ = -1;
  pidfd_.reset();
  if (r < 0) return ExitStatus{};  // reaped by someone else: the status is lost
  return fromWaitStatus(status);
}

Result<std::optional<ExitStatus>> Child::waitFor(std::chrono::milliseconds timeout) {
  if (!running()) {
    return Error(ErrorCode::InvalidArgument, "cannot wait for a process that was already reaped");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left < 0) left = 0;
    pollfd p{pidfd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return std::optional<ExitStatus>(reap());
    if (n == 0) return std::optional<ExitStatus>();
    if (errno != EINTR) return errnoError("cannot wait for process " + std::to_string(pid_), errno);
  }
}

Result<ExitStatus> Child::wait() {
  if (!running()) {
    return Error(ErrorCode::InvalidArgument, "cannot wait for a process that was already reaped");
  }
  return reap();
}

Result<void> Child::signalGroup(int sig) {
  if (!running()) {
    return Error(ErrorCode::NotFound, "cannot signal a process that was already reaped");
  }
  // The leader is not reaped yet, so its pid (= the group id) cannot have been reused.
  if (::killpg(pid_, sig) != 0) {
    return errnoError("cannot signal process group " + std::to_string(pid_), errno);
  }
  return Ok();
}

ExitStatus Child::kill() {
  if (!running()) return ExitStatus{};
  ::killpg(pid_, SIGKILL);
  ::kill(pid_, SIGKILL);  // in case it left its group before we could kill it
  return reap();
}

Result<ExitStatus> runProcess(const ProcessSpec& spec) {
  auto child = Child::spawn(spec);
  if (!child.ok()) return std::move(child).error();
  if (spec.timeout.count() <= 0) return child->wait();
  auto done = child->waitFor(spec.timeout);
  if (!done.ok()) return std::move(done).error();
  if (done->has_value()) return **done;
  ExitStatus status = child->kill();
  status.timed_out = true;
  status.timeout = spec.timeout;
  return status;
}

}  // namespace corch::platform
