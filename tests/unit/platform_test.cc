// Unit tests of orchestrator/platform: child processes (exit codes, signals, timeouts that kill the
// whole process group, log capture, environment, descriptors) and interface-name checks. Needs no
// privileges and touches no namespace.
#define BOOST_TEST_MODULE platform
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "platform/netlink.h"
#include "platform/netns.h"
#include "platform/process.h"
#include "util/files.h"

namespace corch {
// Lets Boost.Test print error codes in failed comparisons.
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

namespace fs = std::filesystem;
using corch::ErrorCode;
using corch::platform::Child;
using corch::platform::ProcessSpec;
using corch::platform::runProcess;
using namespace std::chrono_literals;

using corch::test::readFile;
using corch::test::TempDir;

namespace {

// A temporary directory removed with everything in it, even when a test fails.

// Waits until process `pid` (not necessarily our child) has exited, at most `deadline`.
bool exitsWithin(pid_t pid, std::chrono::milliseconds deadline) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;  // already gone (and reaped)
  pollfd p{pidfd, POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(deadline.count()));
  ::close(pidfd);
  return n > 0;
}

ProcessSpec shell(const std::string& script, const fs::path& log = {}) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.log_path = log.string();
  return spec;
}

}  // namespace

BOOST_AUTO_TEST_CASE(exit_codes_are_reported) {
  auto ok = runProcess(shell("exit 0"));
  BOOST_REQUIRE(ok.ok());
  BOOST_TEST(ok->success());
  BOOST_TEST(ok->exit_code == 0);

  auto three = runProcess(shell("exit 3"));
  BOOST_REQUIRE(three.ok());
  BOOST_TEST(!three->success());
  BOOST_TEST(three->exit_code == 3);
  BOOST_TEST(three->describe() == "exited with status 3");
}

BOOST_AUTO_TEST_CASE(death_by_signal_is_reported) {
  auto r = runProcess(shell("kill -TERM $$"));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->success());
  BOOST_TEST(r->signal == SIGTERM);
  BOOST_TEST(r->exit_code == -1);
  BOOST_TEST(r->describe().find("signal 15") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(stdout_and_stderr_are_appended_to_the_log) {
  TempDir dir;
  fs::path log = dir.path() / "out.log";
  auto first = runProcess(shell("echo one; echo two >&2", log));
  BOOST_REQUIRE(first.ok());
  auto second = runProcess(shell("echo three", log));
  BOOST_REQUIRE(second.ok());
  BOOST_TEST(readFile(log) == "one\ntwo\nthree\n");
}

BOOST_AUTO_TEST_CASE(a_child_keeps_only_the_capabilities_it_is_given) {
  TempDir dir;
  fs::path log = dir.path() / "caps.log";
  // CAP_NET_ADMIN is 12, CAP_NET_RAW 13: bits 0x3000 of the bounding set; NoNewPrivs set.
  ProcessSpec spec = shell("grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status", log);
  spec.capabilities = (1ULL << 12) | (1ULL << 13);
  auto r = runProcess(spec);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->success());
  const std::string out = readFile(log);
  BOOST_TEST(out.find("CapBnd:\t0000000000003000") != std::string::npos, out);
  BOOST_TEST(out.find("NoNewPrivs:\t1") != std::string::npos, out);
  // Without the setting the bounding set is inherited as it is.
  fs::path all = dir.path() / "all.log";
  auto full = runProcess(shell("grep -E '^NoNewPrivs' /proc/self/status", all));
  BOOST_REQUIRE(full.ok());
  BOOST_TEST(readFile(all) == "NoNewPrivs:\t0\n");
}

BOOST_AUTO_TEST_CASE(environment_working_dir_and_stdin) {
  TempDir dir;
  fs::path log = dir.path() / "out.log";
  ProcessSpec spec = shell("echo \"$CORCH_A-$CORCH_B\"; pwd; cat; echo \"cat=$?\"", log);
  spec.env = {{"CORCH_A", "first"}, {"CORCH_B", "x"}, {"CORCH_B", "second"}};
  spec.cwd = dir.path().string();
  auto r = runProcess(spec);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->success());
  // stdin is /dev/null: cat returns at once.
  BOOST_TEST(readFile(log) == "first-second\n" + dir.path().string() + "\ncat=0\n");
}

BOOST_AUTO_TEST_CASE(no_descriptor_leaks_into_the_child) {
  TempDir dir;
  fs::path log = dir.path() / "fds.log";
  // Opened without O_CLOEXEC, as a careless thread elsewhere in corchd might.
  // A high number, so it cannot be confused with a descriptor ls itself opens.
  int opened = ::open("/dev/null", O_RDONLY);
  BOOST_REQUIRE(opened >= 0);
  int leaky = ::dup2(opened, 200);
  ::close(opened);
  BOOST_REQUIRE(leaky == 200);
  auto r = runProcess(shell("ls /proc/self/fd", log));
  ::close(leaky);
  BOOST_REQUIRE(r.ok());
  // 0, 1, 2 and the fd ls itself opens on /proc/self/fd; never ours.
  std::istringstream fds(readFile(log));
  std::string fd;
  while (fds >> fd) BOOST_TEST(fd != std::to_string(leaky));
}

BOOST_AUTO_TEST_CASE(timeout_kills_the_whole_group) {
  TempDir dir;
  fs::path pidfile = dir.path() / "bg.pid";
  // A background grandchild in the same group, then a foreground sleep that outlives the timeout.
  ProcessSpec spec = shell("sleep 100 & echo $! > " + pidfile.string() + "; sleep 100");
  spec.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  auto r = runProcess(spec);
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->timed_out);
  BOOST_TEST(!r->success());
  BOOST_TEST(r->describe() == "did not finish within 300 ms and was killed");
  BOOST_TEST(took < 5s);
  pid_t bg = std::atoi(readFile(pidfile).c_str());
  BOOST_REQUIRE(bg > 0);
  BOOST_TEST(exitsWithin(bg, 5s));
}

BOOST_AUTO_TEST_CASE(a_process_that_finishes_in_time_is_not_timed_out) {
  ProcessSpec spec = shell("exit 7");
  spec.timeout = 10s;
  auto r = runProcess(spec);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->timed_out);
  BOOST_TEST(r->exit_code == 7);
}

BOOST_AUTO_TEST_CASE(destroying_a_child_kills_it) {
  pid_t pid;
  {
    auto child = Child::spawn(shell("exec sleep 100"));
    BOOST_REQUIRE(child.ok());
    pid = child->pid();
    auto still = child->waitFor(50ms);
    BOOST_REQUIRE(still.ok());
    BOOST_TEST(!still->has_value());
  }
  // The destructor reaped it: the pid is gone.
  BOOST_TEST(::kill(pid, 0) != 0);
}

BOOST_AUTO_TEST_CASE(missing_or_unexecutable_programs_are_errors) {
  ProcessSpec missing;
  missing.argv = {"/nonexistent/corch-program"};
  auto r = runProcess(missing);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::NotFound);
  BOOST_TEST(r.error().message().find("/nonexistent/corch-program") != std::string::npos);

  ProcessSpec unknown;
  unknown.argv = {"corch-no-such-program-anywhere"};
  BOOST_TEST(!runProcess(unknown).ok());

  ProcessSpec bad_dir = shell("true");
  bad_dir.cwd = "/nonexistent/dir";
  auto d = runProcess(bad_dir);
  BOOST_REQUIRE(!d.ok());
  BOOST_TEST(d.error().message().find("working directory") != std::string::npos);

  ProcessSpec bad_log = shell("true", "/nonexistent/dir/log");
  BOOST_TEST(!runProcess(bad_log).ok());
}

BOOST_AUTO_TEST_CASE(find_executable_searches_path) {
  auto sh = corch::platform::findExecutable("sh", "/nonexistent:/bin:/usr/bin");
  BOOST_REQUIRE(sh.has_value());
  BOOST_TEST(*sh == "/bin/sh");
  BOOST_TEST(!corch::platform::findExecutable("sh", "/nonexistent").has_value());
}

BOOST_AUTO_TEST_CASE(interface_and_namespace_names_are_checked) {
  using corch::platform::checkIfname;
  using corch::platform::checkNetnsName;
  BOOST_TEST(checkIfname("eth0").ok());
  BOOST_TEST(checkIfname("fifteen-chars-x").ok());
  auto too_long = checkIfname("sixteen-chars-xx");
  BOOST_REQUIRE(!too_long.ok());
  BOOST_TEST(too_long.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(!checkIfname("").ok());
  BOOST_TEST(!checkIfname("a/b").ok());
  BOOST_TEST(!checkIfname("a b").ok());
  BOOST_TEST(checkNetnsName("corch-g1-fw").ok());
  BOOST_TEST(!checkNetnsName("..").ok());
  BOOST_TEST(!checkNetnsName("a/b").ok());
  BOOST_TEST(!checkNetnsName("").ok());
}
