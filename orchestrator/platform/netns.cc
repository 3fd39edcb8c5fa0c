#include "platform/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/magic.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "corch/log.h"

namespace corch::platform {
namespace {

log::Logger lg("netns");

std::string netnsPath(const std::string& name) { return std::string(kNetnsDir) + "/" + name; }

int pidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Whether /proc/<pid>/ns/net is the namespace (dev, ino).
bool inNamespace(const std::string& pid, dev_t dev, ino_t ino) {
  struct stat st;
  if (::stat(("/proc/" + pid + "/ns/net").c_str(), &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

}  // namespace

Result<void> checkNetnsName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || name.size() > 255) {
    return Error(ErrorCode::InvalidArgument, "\"" + name + "\" is not a valid namespace name");
  }
  return Ok();
}

Result<void> prepareNetnsDir() {
  if (::mkdir(kNetnsDir, 0755) != 0 && errno != EEXIST) {
    return errnoError(std::string("cannot create ") + kNetnsDir, errno);
  }
  // Serialise the mount dance between processes (two corchd, parallel tests, `ip netns add`
  // does not lock, but we at least do not stack mounts among ourselves). A bind mount of the
  // directory on itself keeps its inode, so every process locks the same one.
  UniqueFd dir(::open(kNetnsDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return errnoError(std::string("cannot open ") + kNetnsDir, errno);
  if (::flock(dir.get(), LOCK_EX) != 0) {
    return errnoError(std::string("cannot lock ") + kNetnsDir, errno);
  }
  bool bound = false;
  while (::mount("", kNetnsDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
    // EINVAL: not a mount point yet. Make it one by binding it on itself, then retry once.
    if (errno != EINVAL || bound) {
      return errnoError(std::string("cannot make ") + kNetnsDir + " a shared mount point", errno);
    }
    if (::mount(kNetnsDir, kNetnsDir, "none", MS_BIND | MS_REC, nullptr) != 0) {
      return errnoError(std::string("cannot bind-mount ") + kNetnsDir + " on itself", errno);
    }
    bound = true;
  }
  return Ok();
}

Result<void> createNetns(const std::string& name) {
  const std::string doing = "cannot create namespace " + name;
  if (auto r = checkNetnsName(name); !r) return std::move(r).error().context(doing);
  if (auto r = prepareNetnsDir(); !r) return std::move(r).error().context(doing);
  const std::string path = netnsPath(name);
  {
    UniqueFd file(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
    if (!file) return errnoError(doing, errno);
  }
  // unshare() moves only the calling thread, so a throw-away thread makes the namespace and
  // pins it with a bind mount before it exits.
  Result<void> made = runOnHelperThread([&]() -> Result<void> {
    if (::unshare(CLONE_NEWNET) != 0) return errnoError(doing, errno);
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      return errnoError(doing + ": cannot bind-mount it on " + path, errno);
    }
    return Ok();
  });
  if (!made.ok()) {
    ::unlink(path.c_str());
    return made;
  }
  CORCH_LOG(lg, Debug) << "created namespace " << name;
  return Ok();
}

Result<void> deleteNetns(const std::string& name) {
  const std::string doing = "cannot delete namespace " + name;
  if (auto r = checkNetnsName(name); !r) return std::move(r).error().context(doing);
  const std::string path = netnsPath(name);
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return errnoError(doing + ": cannot unmount " + path, errno);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return errnoError(doing + ": cannot remove " + path, errno);
  }
  CORCH_LOG(lg, Debug) << "deleted namespace " << name;
  return Ok();
}

bool netnsExists(const std::string& name) {
  if (!checkNetnsName(name).ok()) return false;
  struct stat st;
  return ::stat(netnsPath(name).c_str(), &st) == 0;
}

Result<std::vector<std::string>> listNetns() {
  std::vector<std::string> names;
  DIR* dir = ::opendir(kNetnsDir);
  if (dir == nullptr) {
    if (errno == ENOENT) return names;
    return errnoError(std::string("cannot list ") + kNetnsDir, errno);
  }
  while (dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

Result<UniqueFd> openNetns(const std::string& name) {
  const std::string doing = "cannot open namespace " + name;
  if (auto r = checkNetnsName(name); !r) return std::move(r).error().context(doing);
  UniqueFd fd(::open(netnsPath(name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errnoError(doing, errno);
  // A file left behind by a crash in the middle of createNetns is not a namespace.
  struct statfs fs;
  if (::fstatfs(fd.get(), &fs) != 0) return errnoError(doing, errno);
  if (fs.f_type != NSFS_MAGIC) {
    return Error(ErrorCode::NotFound,
                 doing + ": " + netnsPath(name) + " is not a mounted namespace");
  }
  return fd;
}

Result<ScopedNetns> ScopedNetns::create(const std::string& name) {
  CORCH_TRY(createNetns(name));
  return ScopedNetns(name);
}

ScopedNetns::~ScopedNetns() {
  if (name_.empty()) return;
  if (auto r = deleteNetns(name_); !r) CORCH_LOG(lg, Warn) << r.error().message();
}

ScopedNetns& ScopedNetns::operator=(ScopedNetns&& other) noexcept {
  if (this != &other) {
    ScopedNetns old(std::move(*this));
    name_ = std::exchange(other.name_, {});
  }
  return *this;
}

Result<std::vector<int>> processesInNetns(int netns_fd) {
  struct stat ns;
  if (::fstat(netns_fd, &ns) != 0) return errnoError("cannot stat a namespace fd", errno);
  std::vector<int> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return errnoError("cannot list /proc", errno);
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int pid = std::atoi(e->d_name);
    if (pid == self) continue;
    if (inNamespace(e->d_name, ns.st_dev, ns.st_ino)) pids.push_back(pid);
  }
  ::closedir(proc);
  return pids;
}

Result<int> killProcessesInNetns(int netns_fd, int deadline_ms) {
  struct stat ns;
  if (::fstat(netns_fd, &ns) != 0) return errnoError("cannot stat a namespace fd", errno);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  std::set<int> signalled;
  for (;;) {
    auto pids = processesInNetns(netns_fd);
    if (!pids.ok()) return std::move(pids).error();
    // A pidfd pins the process: signal through it after re-checking the namespace, so a pid
    // reused between the scan and the kill is never hit, and wait on it for the exit.
    std::vector<UniqueFd> waiting;
    for (int pid : *pids) {
      UniqueFd pidfd(pidfdOpen(pid));
      if (!pidfd) continue;  // already gone
      if (!inNamespace(std::to_string(pid), ns.st_dev, ns.st_ino)) continue;
      if (pidfdSendSignal(pidfd.get(), SIGKILL) != 0) continue;
      signalled.insert(pid);
      waiting.push_back(std::move(pidfd));
    }
    if (waiting.empty()) return static_cast<int>(signalled.size());
    for (auto& pidfd : waiting) {
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0) {
          return Error(ErrorCode::Timeout,
                       "cannot kill the processes of a network namespace: some still run after " +
                           std::to_string(deadline_ms) + " ms");
        }
        pollfd p{pidfd.get(), POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(left));
        if (n > 0 || (n < 0 && errno != EINTR)) break;
      }
    }
  }
}

namespace {

Result<void> setTxChecksumOff(const std::string& ifname) {
  const std::string doing = "cannot turn off TX checksum offload on " + ifname;
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    return Error(ErrorCode::InvalidArgument, doing + ": bad interface name");
  }
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return errnoError(doing, errno);
  ethtool_value value{};
  value.cmd = ETHTOOL_STXCSUM;
  value.data = 0;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
  ifr.ifr_data = reinterpret_cast<char*>(&value);
  if (::ioctl(sock.get(), SIOCETHTOOL, &ifr) != 0) return errnoError(doing, errno);
  return Ok();
}

}  // namespace

Result<void> disableTxChecksum(int netns_fd, const std::string& ifname) {
  return runInNetns(netns_fd, [&] { return setTxChecksumOff(ifname); });
}

Result<void> disableTxChecksum(const std::string& ifname) { return setTxChecksumOff(ifname); }

}  // namespace corch::platform
