// The network namespace of a function, shared by the compute drivers whose functions live in one
// (native, dpdk, docker): the function's veth ports move from the node namespace (where the
// vSwitch driver leaves their ends) into it as eth0..ethN-1, by port index.
//
//   auto ns = FunctionNetns::create("corch-g1-fw", std::move(node_fd));  // named, lo up
//   CORCH_TRY(ns->attachPorts(sf.ports));   // eth<i> in, up, TX checksum offload off
//   ns->commit();                            // keep it all
//
// Until commit(), destroying a FunctionNetns undoes what it did, in reverse: every moved end goes
// back to the node namespace under its own name (the vSwitch driver undoes its own ports; it must
// find them rather than have them die with our namespace), and a namespace it created is deleted.
// destroyFunctionNetns() is the teardown of a committed one, found again by its name.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "corch/compute.h"
#include "corch/error.h"
#include "corch/log.h"
#include "platform/fd.h"

namespace corch::drivers::common {

// The name a function's port of index `port_index` has inside its namespace: "eth<index>".
std::string ifnameInside(size_t port_index);

// An fd of the namespace where the vSwitch leaves the functions' veth ends: the named namespace
// `name`, or corchd's own (its calling thread's) when `name` is empty.
Result<platform::UniqueFd> openNodeNetns(const std::string& name = "");

// Unsupported ("port <id> is a <technology> port; the <driver> driver takes veth ends only")
// unless every port is a veth, InvalidArgument when an end's name is not an interface name.
Result<void> checkVethPorts(std::string_view driver, const std::vector<SfPortBinding>& ports);

// NotFound ("the interface <ifname> of port <id> does not exist") unless the end of every veth
// port is in the namespace of `node_fd`; other technologies are not looked at.
Result<void> checkVethEnds(int node_fd, const std::vector<SfPortBinding>& ports);

// For adoptSf(): Conflict, naming the port, unless the end of every veth port of `ports` is in
// the namespace of `ns_fd` as a veth called ifnameInside(i) ("port <id> is not attached to
// function <instance>: its namespace has no veth eth<i>"), or when that namespace has a veth
// eth<k> that no veth port of `ports` accounts for (a port the function has and the spec has
// not). Other technologies are not looked at. Reads only.
Result<void> checkPortsInside(int ns_fd, const std::string& instance,
                              const std::vector<SfPortBinding>& ports);

// An identity of the namespace of `ns_fd` ("<dev>:<inode>"): the same for as long as the
// namespace lives. A namespace made again under the same name usually has another, but not
// always: the kernel reuses the inode numbers of namespaces that are gone.
Result<std::string> netnsIdentity(int ns_fd);

// The namespace of a function being adopted (ComputeDriver::adoptSf), open: NotFound when it has
// none; errors start with `doing`.
Result<platform::UniqueFd> openFunctionNetnsToAdopt(const std::string& instance,
                                                    const std::string& doing);

// For probe(): Unavailable unless named namespaces work here and the node namespace `node_netns`
// (empty: corchd's own) can be opened. `driver` names the driver in the message.
Result<void> probeNetns(std::string_view driver, const std::string& node_netns);

class FunctionNetns {
 public:
  // Creates the named namespace `name` (AlreadyExists when it exists) and brings its lo up.
  // `node_fd`: the node namespace, where attached ports go back on rollback.
  static Result<FunctionNetns> create(const std::string& name, platform::UniqueFd node_fd);
  // What createSf needs in one call: opens the node namespace `node_netns` (empty: corchd's
  // own), checks that every veth end is there (checkVethEnds), creates the namespace `name` and
  // attaches the ports. Uncommitted: the caller commits once the rest of its work succeeded.
  static Result<FunctionNetns> createWithPorts(const std::string& name,
                                               const std::string& node_netns,
                                               const std::vector<SfPortBinding>& ports);
  // An existing namespace (a container's /proc/<pid>/ns/net), not deleted on rollback.
  static Result<FunctionNetns> adopt(platform::UniqueFd ns_fd, platform::UniqueFd node_fd);

  FunctionNetns(FunctionNetns&&) noexcept;
  FunctionNetns& operator=(FunctionNetns&&) noexcept = delete;
  FunctionNetns(const FunctionNetns&) = delete;
  FunctionNetns& operator=(const FunctionNetns&) = delete;
  ~FunctionNetns();

  // Moves the end of each veth port (other technologies are skipped: a vhost-user socket needs
  // nothing here) from the node namespace in as ifnameInside(i), then brings each up with TX
  // checksum offload off (TCP through the OVS netdev datapath needs it; MACHINE-NOTES).
  Result<void> attachPorts(const std::vector<SfPortBinding>& ports);
  // Keeps the namespace and the moved ports.
  void commit();

 private:
  struct State;
  explicit FunctionNetns(std::unique_ptr<State> state);
  void rollback();

  std::unique_ptr<State> state_;  // null once moved from
};

// Deletes the named namespace of a function: kills every process left in it, deletes its links
// now rather than when the kernel gets round to freeing it (so the vSwitch's veth ends are gone
// when this returns; a link that cannot be deleted is a warning in `lg`), then the name. Returns
// whether the namespace existed; Ok(false) when there is nothing to do.
Result<bool> destroyFunctionNetns(const std::string& name, const log::Logger& lg);

// The named namespaces whose name starts with `prefix` (ComputeDriver::listInstances of the
// drivers whose functions live in one).
Result<std::vector<std::string>> functionNetnsNames(std::string_view prefix);

}  // namespace corch::drivers::common
