// The sandbox of an integration test process: a private network namespace with its own Open
// vSwitch, named "host" namespaces joined to it by veth pairs, and shell commands run in either.
//
//   using corch::test::SandboxFixture;
//   BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);  // (the macro needs an unqualified name)
//   ...
//   auto& sb = corch::test::Sandbox::get();
//   auto phys = sb.addHost("h1", "10.0.0.1/24");     // "phh1", in the sandbox namespace
//   BOOST_TEST(sb.runIn("h1", "ping -c1 -W1 10.0.0.2").ok());
//
// Why a private namespace: only one userspace ovs-vswitchd works per network namespace (each one
// creates the tap "ovs-netdev"; MACHINE-NOTES), so a test's OVS must not meet a `make run` or
// another test's. The whole test process moves into the namespace when the sandbox is created,
// so everything it starts later (ovsdb-server, ovs-vswitchd, corchd, ip, ping...) runs there too,
// and every interface it creates (veths of the ovs driver) vanishes with the process.
//
// Life cycle: created once per process, at first use of get() or by SandboxFixture, from the main
// thread BEFORE any other thread exists (a network namespace is per thread: threads started
// earlier would stay outside). Destroyed by SandboxFixture's destructor or at exit: stops
// ovs-vswitchd and ovsdb-server, deletes every host namespace, removes the temporary folder
// (kept, and its path printed, when CORCH_KEEP_SANDBOX=1: the OVS logs are there). On SIGINT,
// SIGTERM or SIGHUP it does the same as far as a signal handler can. The OVS daemons die with
// the test process in any case (parent-death signal), and the next sandbox deletes host
// namespaces left by test processes that no longer exist.
#pragma once

#include <sys/types.h>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "corch/driver_options.h"
#include "corch/error.h"

namespace corch::test {

using namespace std::chrono_literals;

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it could not run
  std::string output;  // stdout and stderr, interleaved
  bool ok() const { return exit_code == 0; }
};

// Calls `condition` until it returns true or `timeout` passes, pausing `step` between calls.
// Returns whether it became true: the way tests wait, never a fixed sleep.
bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               std::chrono::milliseconds step = 10ms);

// Runs `sh -c command` in the calling process's network namespace with a deadline (the process
// group is killed when it passes). Background processes must redirect their output, or the call
// waits for them to close it.
CommandResult runCommand(const std::string& command, std::chrono::milliseconds timeout = 60s);

// Quotes a string for sh: 'it'\''s'.
std::string shellQuote(const std::string& text);

// How to start a daemon for a test (spawnDaemon).
struct DaemonSpec {
  std::vector<std::string> argv;  // argv[0]: a path, or a name searched in PATH
  std::string log;                // stdout and stderr are appended to it (created 0644)
  // The daemon's whole environment ("NAME=value" each); unset: the test process's.
  std::optional<std::vector<std::string>> env;
  std::string cwd;                 // empty: the test process's working directory
  bool own_process_group = false;  // a group of its own, which stopDaemon kills with it
};

// Forks and execs a daemon (ovsdb-server, libvirtd, podman's API service...) that dies with the
// test process however that ends (parent-death SIGKILL), stdin on /dev/null. Everything the child
// needs is prepared before fork(): it only makes async-signal-safe calls. Returns its pid; the
// caller may waitpid() it (to see it exit at start) and stops it with stopDaemon.
Result<pid_t> spawnDaemon(const DaemonSpec& spec);

// Stops a daemon of spawnDaemon: SIGTERM, then, when it has not exited within `grace`, SIGKILL to
// it and to its own process group if it has one; reaps it and sets `pid` to -1. Returns whether
// it exited on SIGTERM. Nothing to do (true) when `pid` <= 0.
bool stopDaemon(pid_t& pid, std::chrono::milliseconds grace);

class Sandbox {
 public:
  // The sandbox of this process, created on first call (see the life cycle above). When it cannot
  // be created, prints why and exits: no integration test means anything without it.
  static Sandbox& get();
  // Destroys the sandbox now (SandboxFixture's destructor; also registered with atexit).
  static void shutdown();

  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // The temporary folder: the OVS database and logs (ovsdb-server.log, ovs-vswitchd.log).
  const std::string& dir() const { return dir_; }
  // Where ovs-vswitchd puts db.sock and the <bridge>.mgmt OpenFlow sockets ($OVS_RUNDIR).
  const std::string& rundir() const { return rundir_; }
  std::string dbSocket() const { return rundir_ + "/db.sock"; }
  // "unix:<rundir>/db.sock"
  std::string ovsdbEndpoint() const { return "unix:" + dbSocket(); }
  // The options of the ovs driver for this sandbox: ovsdb, rundir, datapath netdev.
  DriverOptions ovsDriverOptions() const;

  // Runs a shell command in the sandbox namespace (OVS_RUNDIR set: ovs-vsctl, ovs-ofctl and
  // ovs-appctl find this sandbox's OVS).
  CommandResult run(const std::string& command, std::chrono::milliseconds timeout = 60s) const;
  // Runs a shell command inside a host's namespace.
  CommandResult runIn(const std::string& host, const std::string& command,
                      std::chrono::milliseconds timeout = 60s) const;

  // How a restart stops a daemon: SIGTERM (an orderly exit: ovs-vswitchd removes its sockets)
  // or SIGKILL (a crash: the sockets' files stay behind, refusing connections, until the new
  // daemon replaces them).
  enum class Stop { Term, Kill };
  // Stops ovs-vswitchd and starts it again, waiting until it has applied the database (it then
  // has every bridge back, and no OpenFlow rule: the case corchd must reconcile).
  Result<void> restartVswitchd(Stop how = Stop::Term);
  // Stops ovsdb-server and starts it again on the same database (clients see their connection
  // drop and must reconnect).
  Result<void> restartOvsdbServer(Stop how = Stop::Term);
  // The pid of ovs-vswitchd (-1 when it is not running), to tell a restart happened.
  pid_t vswitchdPid() const { return vswitchd_pid_; }

  // Creates a host: a named network namespace (its name carries this process's id, so that
  // concurrent runs do not collide) holding eth0 with `cidr` ("10.0.0.1/24"), up, TX checksum
  // offload off (TCP over the netdev datapath needs it), lo up; and the other end of eth0's veth,
  // up, in the sandbox namespace. Returns that end's name ("ph" + name; name at most 13
  // characters), the interface to attach to a switch.
  Result<std::string> addHost(const std::string& name, const std::string& cidr);
  // Deletes a host's namespace (its veth goes with it). Absent is Ok.
  Result<void> removeHost(const std::string& name);
  // The namespace of a host, for `ip netns exec`.
  std::string hostNetns(const std::string& name) const;

 private:
  Sandbox() = default;
  Result<void> start();
  Result<void> startOvsdbServer();
  Result<void> startVswitchd();
  void stop();
  void stopOvsDaemon(pid_t& pid, const char* name);
  void killOvsDaemon(pid_t& pid);

  std::string dir_;
  std::string rundir_;
  pid_t ovsdb_pid_ = -1;
  pid_t vswitchd_pid_ = -1;
  std::map<std::string, std::string> hosts_;  // name -> namespace
};

// A Boost.Test global fixture that creates the sandbox before the first test and destroys it
// after the last (see the example at the top).
struct SandboxFixture {
  SandboxFixture();
  ~SandboxFixture();
};

}  // namespace corch::test
