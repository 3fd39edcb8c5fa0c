// Child processes: run a program with its output appended to a log file, optionally inside a
// network namespace, in a process group of its own, with a deadline after which the whole group
// is killed.
//
// Safe in a multithreaded program: everything (argv, environment, files, the executable's path)
// is prepared before fork(); the child only makes async-signal-safe system calls until execve().
// The child starts with default signal dispositions, an empty signal mask, stdin on /dev/null,
// stdout and stderr on the log, and no other inherited descriptor. Waiting uses a pidfd and
// poll(), never sleeps.
//
// Nothing else in the process may reap our children (SIGCHLD set to SIG_IGN, or waitpid(-1)):
// Child waits for its own pid.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "corch/error.h"
#include "platform/fd.h"

namespace corch::platform {

struct ProcessSpec {
  // argv[0] is the program: a path, or a bare name looked up in the PATH of the child's
  // environment.
  std::vector<std::string> argv;
  // Variables set for the child on top of the inherited environment (or of an empty one when
  // inherit_env is false); a later entry wins over an earlier one with the same name.
  std::vector<std::pair<std::string, std::string>> env;
  bool inherit_env = true;
  int netns_fd = -1;                     // >= 0: the child setns()es into this network namespace
  std::string cwd;                       // empty: the parent's working directory
  std::string log_path;                  // stdout+stderr appended (created 0640); empty: /dev/null
  std::chrono::milliseconds timeout{0};  // for runProcess(); 0: no deadline
  // Set: the child keeps only these capabilities (a bitmask of 1 << CAP_*): every other one is
  // dropped from its bounding set, so that even as root the program never holds it, and
  // no_new_privs is set, so that no set-uid or file-capability program gets it back.
  std::optional<uint64_t> capabilities;
};

// How a child ended.
struct ExitStatus {
  bool timed_out = false;  // still running at the deadline: its process group was SIGKILLed
  int exit_code = -1;      // its exit status when it exited (0..255), else -1
  int signal = 0;          // the signal that killed it, else 0
  std::chrono::milliseconds timeout{0};

  bool success() const { return !timed_out && signal == 0 && exit_code == 0; }
  // "exited with status 1", "was killed by signal 9 (Killed)",
  // "did not finish within 500 ms and was killed".
  std::string describe() const;
};

// A running child: the leader of its own process group. Destroying a Child that has not been
// waited for kills its whole group (SIGKILL) and reaps it, so no process outlives its owner by
// accident. Processes it left in its group after it exited normally are not touched.
class Child {
 public:
  static Result<Child> spawn(const ProcessSpec& spec);

  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Waits at most `timeout` for the child to exit; std::nullopt if it is still running.
  Result<std::optional<ExitStatus>> waitFor(std::chrono::milliseconds timeout);
  // Waits for the exit, however long it takes.
  Result<ExitStatus> wait();
  // Sends `sig` to the child's whole process group.
  Result<void> signalGroup(int sig);
  // SIGKILLs the whole group and reaps the child.
  ExitStatus kill();

 private:
  Child(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  ExitStatus reap();

  pid_t pid_ = -1;  // -1 once reaped
  UniqueFd pidfd_;
};

// Runs a child to the end or to spec.timeout (then kills its group; ExitStatus::timed_out).
// An Error means it could not be started at all (program not found, log not writable, setns
// refused...); a child that ran and failed is an ExitStatus.
Result<ExitStatus> runProcess(const ProcessSpec& spec);

// Searches `name` in the colon-separated directories of `path_var`; the first executable file.
std::optional<std::string> findExecutable(const std::string& name, const std::string& path_var);

}  // namespace corch::platform
