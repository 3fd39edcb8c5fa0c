// An Open vSwitch with DPDK for integration tests: ovsdb-server and ovs-vswitchd-dpdk (package
// openvswitch-switch-dpdk) in a network namespace of their own, on 2 MB hugepages that the
// harness allocates for the test and gives back afterwards.
//
//   auto& sb = corch::test::Sandbox::get();
//   corch::test::OvsDpdk ovs;
//   auto started = ovs.start();                   // Error: the exact reason (binary, hugepages)
//   auto phys = sb.addHost("cv0", "10.72.0.1/24");
//   (void)ovs.adoptInterface(*phys);              // the host's veth end joins the switch's
//   namespace
//   {
//     corch::test::EnterNetns inside(ovs.netns());  // drivers run where the switch runs
//     ... makeVSwitch("ovs", ovs.ovsDriverOptions()), makeCompute("dpdk", ...) ...
//   }
//
// Why a namespace of its own: only one userspace ovs-vswitchd works per network namespace (each
// makes the tap "ovs-netdev"; MACHINE-NOTES) and the sandbox already runs one. The namespace is
// named "cv-<pid>"; the daemons enter it with setns() alone (no `ip netns exec`, whose private
// mount namespace would keep a copy of the hugetlbfs mount, and its pages, alive after the
// unmount).
//
// Hugepages. OVS 3.1 always starts EAL with --in-memory, so ovs-vswitchd-dpdk cannot run without
// hugepages. start() raises vm.nr_hugepages by what the switch (dpdk-socket-mem) and the test's
// DPDK functions need, and mounts a private hugetlbfs (passed as --huge-dir). The pool is a
// node-wide setting that others may change meanwhile, so the destructor lowers it by what was
// added rather than writing the old value back blindly (the same thing when nobody else touched
// it). Pages are not reserved per mount: EAL's --in-memory mode takes them from the pool through
// memfd, not from the mount (a mount's min_size reservation makes EAL fail with ENOMEM).
//
// Clean-up: the destructor (which runs on a failed test too: it is an ordinary object) stops
// ovs-vswitchd then ovsdb-server (SIGTERM, then SIGKILL), kills whatever else still runs in the
// namespace, deletes it, unmounts the hugetlbfs, gives the pages back, removes EAL's runtime
// folder /var/run/dpdk/cv-<pid> and the temporary folder (kept with CORCH_KEEP_SANDBOX=1). A
// test process killed outright leaves them behind: the next start() removes what dead processes
// left (namespaces "cv-<pid>", folders /tmp/cv-<pid>-*, their mounts and pages).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "corch/driver_options.h"
#include "corch/error.h"
#include "harness/sandbox.h"
#include "platform/fd.h"
#include "platform/netns.h"
#include "platform/process.h"

namespace corch::test {

struct OvsDpdkConfig {
  // dpdk-socket-mem (and -limit) of ovs-vswitchd-dpdk: its mbuf pools for the vhost-user ports.
  unsigned switch_memory_mb = 256;
  // Hugepage memory added on top for the test's own DPDK processes (testpmd --in-memory).
  unsigned function_memory_mb = 0;
  // How long ovs-vswitchd-dpdk may take to initialise DPDK and apply the database.
  std::chrono::milliseconds start_timeout{30000};
};

// Adds hugepages of the default size to the node's pool (vm.nr_hugepages) and takes them away
// again when destroyed (see "Hugepages" above).
class HugepageGrant {
 public:
  HugepageGrant() = default;
  // Fails with the number of pages actually obtained when the kernel gives fewer than `pages`.
  static Result<HugepageGrant> add(unsigned pages);
  ~HugepageGrant();
  HugepageGrant(HugepageGrant&& other) noexcept;
  HugepageGrant& operator=(HugepageGrant&& other) noexcept;
  HugepageGrant(const HugepageGrant&) = delete;
  HugepageGrant& operator=(const HugepageGrant&) = delete;

  unsigned added() const { return added_; }
  unsigned before() const { return before_; }

 private:
  unsigned added_ = 0;
  unsigned before_ = 0;
};

// Moves the calling thread into a named network namespace and back to the one it was in when
// destroyed. A network namespace is per thread: threads started meanwhile (a driver's socket
// readers) stay in the namespace they were born in, which is what a driver made here wants.
class EnterNetns {
 public:
  explicit EnterNetns(const std::string& name);
  ~EnterNetns();
  EnterNetns(const EnterNetns&) = delete;
  EnterNetns& operator=(const EnterNetns&) = delete;

  // Whether the thread is inside; error() says why not.
  bool ok() const { return !error_; }
  const std::string& error() const { return *error_; }

 private:
  platform::UniqueFd home_;
  std::optional<std::string> error_;
};

class OvsDpdk {
 public:
  explicit OvsDpdk(OvsDpdkConfig config = {});
  // Stops and removes everything start() made, whether it succeeded or not.
  ~OvsDpdk();
  OvsDpdk(const OvsDpdk&) = delete;
  OvsDpdk& operator=(const OvsDpdk&) = delete;

  // Hugepages, namespace, ovsdb-server, ovs-vswitchd-dpdk; returns once DPDK is initialised
  // (dpdk_initialized=true), dpdkvhostuserclient is among the iface_types and ovs-vswitchd has
  // applied the database. Errors say exactly what is missing or what failed (with the last lines
  // of the log of the daemon that failed).
  Result<void> start();
  // How long start() took from spawning ovs-vswitchd-dpdk to its readiness.
  std::chrono::milliseconds vswitchdStartTime() const { return vswitchd_start_time_; }

  // The namespace of the daemons ("cv-<pid>").
  const std::string& netns() const { return netns_.name(); }
  const std::string& dir() const { return dir_; }
  // $OVS_RUNDIR of the daemons: db.sock, <bridge>.mgmt, and the vhost-user sockets of the ovs
  // driver (it puts them in its option "rundir").
  std::string rundir() const { return dir_ + "/run"; }
  std::string ovsdbEndpoint() const { return "unix:" + rundir() + "/db.sock"; }
  // The DPDK runtime folder of ovs-vswitchd-dpdk (its --file-prefix).
  std::string dpdkRuntimeDir() const { return "/var/run/dpdk/" + filePrefix(); }
  // The options of the ovs vSwitch driver for this switch: ovsdb, rundir, datapath netdev.
  DriverOptions ovsDriverOptions() const;
  // The pids of ovsdb-server and ovs-vswitchd-dpdk (-1 when not running).
  pid_t ovsdbPid() const { return ovsdb_ ? ovsdb_->pid() : -1; }
  pid_t vswitchdPid() const { return vswitchd_ ? vswitchd_->pid() : -1; }

  // Runs `ovs-vsctl --db=<this switch> <args>` (args as shell text).
  CommandResult vsctl(const std::string& args, std::chrono::milliseconds timeout = 10s) const;
  // Moves a network interface of the caller's namespace into the switch's namespace, up (a host
  // veth end from Sandbox::addHost, to be one of an LSI's interfaces).
  Result<void> adoptInterface(const std::string& ifname) const;

 private:
  std::string filePrefix() const { return netns_.name(); }
  Result<void> checkPrograms() const;
  Result<void> makeFolders();
  Result<void> mountHugetlbfs();
  Result<void> startOvsdbServer();
  Result<void> configureDpdk();
  Result<void> startVswitchd();
  Result<platform::Child> spawn(const std::string& program, std::vector<std::string> args,
                                const std::string& log) const;
  std::string logTail(const std::string& log) const;
  void stopDaemon(std::optional<platform::Child>& child, const char* name);
  void stop();

  OvsDpdkConfig config_;
  HugepageGrant hugepages_;
  std::string dir_;
  bool mounted_ = false;
  platform::ScopedNetns netns_;
  platform::UniqueFd netns_fd_;
  std::optional<platform::Child> ovsdb_;
  std::optional<platform::Child> vswitchd_;
  std::chrono::milliseconds vswitchd_start_time_{0};
};

}  // namespace corch::test
