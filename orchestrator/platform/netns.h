// Named network namespaces, compatible with `ip netns`: namespace NAME is the bind mount
// /run/netns/NAME of a namespace file, so `ip netns exec NAME ...` and `ip netns list` see what
// corch makes and the other way round. /run/netns is made a shared mount point (bind-mounted on
// itself first when it is not a mount point), as iproute2 does, so that the bind mounts propagate
// to mount namespaces created later.
//
// Nothing here changes the namespace of the calling thread: code that must run inside a namespace
// runs on a short-lived helper thread (runInNetns), which the kernel allows in a multithreaded
// process for network namespaces. All functions may be called from any thread.
#pragma once

#include <sched.h>

#include <cerrno>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "corch/error.h"
#include "platform/fd.h"

namespace corch::platform {

inline constexpr const char* kNetnsDir = "/run/netns";

// InvalidArgument unless `name` is a usable namespace name (a file name: non-empty, no '/', not
// "." or "..", at most 255 bytes).
Result<void> checkNetnsName(const std::string& name);

// Makes /run/netns exist and be a shared mount point. Called by createNetns; exposed so a driver's
// probe() can tell early whether named namespaces will work here.
Result<void> prepareNetnsDir();

// Creates namespace `name`; AlreadyExists when it exists. Its loopback is down, as always.
Result<void> createNetns(const std::string& name);
// Deletes namespace `name` (the name; the namespace itself lives on while a process or an open fd
// holds it). Ok when it does not exist.
Result<void> deleteNetns(const std::string& name);
bool netnsExists(const std::string& name);
// The names under /run/netns, sorted.
Result<std::vector<std::string>> listNetns();
// An fd of the namespace (O_RDONLY | O_CLOEXEC), for setns() or IFLA_NET_NS_FD. NotFound when
// there is no such namespace.
Result<UniqueFd> openNetns(const std::string& name);

// Owns a named namespace: deletes it when destroyed unless release()d. For rollback and tests.
class ScopedNetns {
 public:
  ScopedNetns() = default;
  // Creates the namespace (AlreadyExists if it exists).
  static Result<ScopedNetns> create(const std::string& name);
  // Takes over an existing namespace of that name.
  static ScopedNetns adopt(const std::string& name) { return ScopedNetns(name); }
  ~ScopedNetns();
  ScopedNetns(ScopedNetns&& other) noexcept : name_(std::exchange(other.name_, {})) {}
  ScopedNetns& operator=(ScopedNetns&& other) noexcept;
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

  const std::string& name() const { return name_; }
  Result<UniqueFd> open() const { return openNetns(name_); }
  // Keeps the namespace; returns its name.
  std::string release() { return std::exchange(name_, {}); }

 private:
  explicit ScopedNetns(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// Runs `fn` (returning some Result<T>) on a fresh thread and returns its result, for calls that
// change the calling thread's namespaces (unshare, setns) and must not change ours.
template <class F>
auto runOnHelperThread(F&& fn) -> decltype(fn()) {
  std::optional<decltype(fn())> result;
  std::thread helper([&] { result.emplace(fn()); });
  helper.join();
  return std::move(*result);
}

// Runs `fn` (returning some Result<T>) on a helper thread that has entered the network namespace
// of `netns_fd`, and returns its result. The calling thread is never moved. Sockets made by `fn`
// stay in that namespace after it returns.
template <class F>
auto runInNetns(int netns_fd, F&& fn) -> decltype(fn()) {
  return runOnHelperThread([&]() -> decltype(fn()) {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      return errnoError("cannot enter a network namespace", errno);
    }
    return fn();
  });
}

// Sends SIGKILL to every process whose network namespace is the one of `netns_fd` (except this
// process), again until none is left or `deadline_ms` passes (a process may fork meanwhile).
// Returns how many were signalled; Timeout if some remain.
Result<int> killProcessesInNetns(int netns_fd, int deadline_ms = 2000);
// The pids whose network namespace is the one of `netns_fd` (this process excluded).
Result<std::vector<int>> processesInNetns(int netns_fd);

// Turns TX checksum offload off on interface `ifname` of the namespace of `netns_fd`
// (SIOCETHTOOL / ETHTOOL_STXCSUM, what `ethtool -K IF tx off` does). TCP through the OVS netdev
// datapath needs it on veth ends inside namespaces.
Result<void> disableTxChecksum(int netns_fd, const std::string& ifname);
// The same in the calling thread's namespace.
Result<void> disableTxChecksum(const std::string& ifname);

}  // namespace corch::platform
