// The 'native' compute driver (paper 6.1, DESIGN section 9): a function is a package of scripts
// (nsf/<name>/: manifest.json, start, stop, optional update and status) run on the host inside a
// network namespace of its own, named after the instance ("corch-<graph>-<sf>").
//
//   createSf  : checks the package, creates the namespace, brings lo up, moves each port's veth end
//               into it as eth0..ethN-1 (port order), up, TX checksum offload off.
//   startSf   : writes the configuration next to the log (<log>.config.json) and runs
//               `start <graph-id> <sf-id> <config-file> eth0 ... ethN-1` inside the namespace, with
//               the configuration also as CORCH_CFG_* variables, output appended to the log, killed
//               with its process group at SfSpec::timeout. Exit 0 is success: the driver then
//               writes the start marker (below); on failure the processes it left in the
//               namespace are killed (the function is back to created).
//   stopSf    : removes the start marker, runs `stop` the same way, then kills whatever process
//               the function left behind. Ok when the namespace is gone (nothing can be running).
//   updateSf  : runs `update` with the new configuration (ports must not change).
//   destroySf : kills every process of the namespace, deletes its links and the namespace, removes
//               the configuration file and the start marker (the log stays). Ok when there is
//               nothing left.
//   adoptSf   : reads only. NotFound when there is no namespace of that name; Conflict when the
//               function is not running (no start marker, or one written for an earlier
//               namespace of the same name), when a port is not in the namespace as eth<i> or
//               the namespace has an eth<k> the spec has not, or when its package cannot be
//               loaded (stopSf would need it).
//
// Running. A native function need not leave any process behind (the bridge NSF only configures
// its namespace), so "running" cannot be read off the namespace: it is "start exited 0 and no
// stop or destroy began since". startSf records it in the start marker
// <run-dir>/<instance>.started; stopSf removes it before its script runs, destroySf with the
// namespace, and createSf before it makes one, so no marker outlives what it vouches for, even
// across kills. It holds the identity of the namespace it was written for (device and inode),
// which adoptSf compares as a second guard. A corchd killed between the end of start and the
// marker leaves a function that adoptSf calls stopped: the node then rebuilds it, which is safe.
//
// Options (DriverOptions): "run-dir" (default /run/corch/native: logs when SfSpec::log_path is
// empty, unpacked .tar.gz packages), "node-netns" (the named namespace where the vSwitch leaves
// the functions' veth ends; default corchd's own), "path" (PATH for scripts and dependency
// checks; default corchd's PATH plus the sbin folders), "capabilities" ("reduced", the default:
// scripts keep only kNsfCapabilities; "full": every capability root has).
//
// The driver keeps no state in memory between calls: everything is found again from the SfSpec
// (the namespace by name, the marker by instance), so a restarted corchd can adopt, stop and
// destroy what an earlier one made, and adoptSf has nothing to pick up.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "compute/common/config_env.h"
#include "compute/common/function_log.h"
#include "compute/common/function_netns.h"
#include "compute/common/search_path.h"
#include "compute/common/undo_log.h"
#include "corch/driver_registry.h"
#include "corch/log.h"
#include "manifest.h"
#include "platform/netns.h"
#include "platform/process.h"

namespace corch::drivers::native {
namespace {

namespace fs = std::filesystem;
using common::ifnameInside;
using platform::UniqueFd;

log::Logger lg("native");

constexpr std::chrono::milliseconds kDefaultTimeout{10000};
constexpr size_t kTailLines = 10;  // of a failed script's output, in the error message
constexpr size_t kTailChars = 2000;

bool isArchive(const std::string& image) {
  auto ends = [&](const std::string& s) {
    return image.size() >= s.size() && image.compare(image.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".tar.gz") || ends(".tgz");
}

// Writes a file atomically (temporary file + rename), mode 0600: a configuration may hold secrets.
Result<void> writeFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return errnoError("cannot write " + tmp, errno);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      return errnoError("cannot write " + tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errnoError("cannot rename " + tmp + " to " + path, err);
  }
  return Ok();
}

// Reads a file of at most a few hundred bytes into *out; false when it cannot be read.
bool readSmallFile(const std::string& path, std::string* out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buf[256];
  out->clear();
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > 4096) return false;
  }
}

// What an NSF's scripts (and the daemons they start) may do as root inside their namespace:
// configure its network (links, addresses, routes, bridges, iptables/nftables, sysctls under
// /proc/sys/net), open raw sockets and low ports, manage their own files and processes, change
// user. Everything else is out of their bounding set: no mount or namespace change (SYS_ADMIN,
// so no way back to the node's namespace through setns), no module loading, ptrace, raw I/O,
// time, reboot, BPF or perf, no capability changes (nsf/README.md, "Isolation").
constexpr uint64_t kNsfCapabilities =
    (1ULL << CAP_NET_ADMIN) | (1ULL << CAP_NET_RAW) | (1ULL << CAP_NET_BIND_SERVICE) |
    (1ULL << CAP_NET_BROADCAST) | (1ULL << CAP_KILL) | (1ULL << CAP_SETUID) | (1ULL << CAP_SETGID) |
    (1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FOWNER) | (1ULL << CAP_FSETID);

class NativeDriver final : public ComputeDriver {
 public:
  NativeDriver(std::string run_dir, std::string node_netns, std::string path_var,
               bool full_capabilities)
      : run_dir_(std::move(run_dir)),
        node_netns_(std::move(node_netns)),
        path_var_(std::move(path_var)),
        full_capabilities_(full_capabilities) {}

  std::string_view name() const override { return "native"; }

  Result<void> probe() override {
    if (::geteuid() != 0) {
      return Error(ErrorCode::Unavailable,
                   "the native driver needs root to create network namespaces, and corchd runs "
                   "as uid " +
                       std::to_string(::geteuid()));
    }
    struct stat st;
    if (::stat("/proc/self/ns/net", &st) != 0) {
      return Error(ErrorCode::Unavailable, "this kernel has no network namespaces");
    }
    CORCH_TRY(common::probeNetns("native", node_netns_));
    std::error_code ec;
    fs::create_directories(run_dir_, ec);
    if (ec) {
      return Error(ErrorCode::Unavailable, "the native driver cannot create its run folder " +
                                               run_dir_ + ": " + ec.message());
    }
    return Ok();
  }

  Result<void> createSf(const SfSpec& sf) override {
    const std::string doing = "cannot create function " + sf.instance;
    if (auto r = platform::checkNetnsName(sf.instance); !r) return r.error().context(doing);
    common::UndoLog undo;

    if (isArchive(sf.image)) {
      CORCH_TRY(unpack(sf, doing));
      undo.add([this, &sf] { removeUnpacked(sf); });
    }
    auto pkg = package(sf);
    if (!pkg.ok()) return pkg.error().context(doing);
    CORCH_TRY(checkPorts(sf, *pkg, doing));

    // A marker a destroy interrupted by a kill left goes before there is a namespace it could
    // be taken for (one of a namespace that exists is left alone: creating fails then).
    if (!platform::netnsExists(sf.instance)) {
      if (auto r = removeStartMarker(sf); !r) return r.error().context(doing);
    }
    // Declared after the undo log: on failure the ports go back and the namespace goes first.
    auto netns = common::FunctionNetns::createWithPorts(sf.instance, node_netns_, sf.ports);
    if (!netns.ok()) return netns.error().context(doing);
    netns->commit();
    undo.commit();
    CORCH_LOG(lg, Info) << "created function " << sf.instance << " (" << sf.ports.size()
                        << " ports, package " << pkg->manifest.name << " " << pkg->manifest.version
                        << ")";
    return Ok();
  }

  Result<void> startSf(const SfSpec& sf) override {
    const std::string doing = "cannot start function " + sf.instance;
    auto pkg = package(sf);
    if (!pkg.ok()) return pkg.error().context(doing);
    auto ns_fd = platform::openNetns(sf.instance);
    if (!ns_fd.ok()) {
      return Error(ns_fd.error().code(),
                   doing + ": it was not created (" + ns_fd.error().message() + ")");
    }
    auto r = runScript(sf, *pkg, "start", pkg->start, ns_fd->get(), doing);
    if (!r.ok()) {
      // Back to "created": no half-started daemon may keep running.
      (void)platform::killProcessesInNetns(ns_fd->get());
      return r;
    }
    // Without the marker the function runs all the same; only a restarted corchd would rebuild
    // it instead of adopting it, so a failure is no reason to fail the start.
    if (auto marked = writeStartMarker(sf, ns_fd->get()); !marked) {
      CORCH_LOG(lg, Warn) << "started function " << sf.instance
                          << ", but a restarted corchd will not adopt it: "
                          << marked.error().message();
    }
    CORCH_LOG(lg, Info) << "started function " << sf.instance;
    return Ok();
  }

  Result<void> stopSf(const SfSpec& sf) override {
    const std::string doing = "cannot stop function " + sf.instance;
    if (!platform::netnsExists(sf.instance)) {
      (void)removeStartMarker(sf);
      return Ok();
    }
    auto pkg = package(sf);
    if (!pkg.ok()) return pkg.error().context(doing);
    auto ns_fd = platform::openNetns(sf.instance);
    if (!ns_fd.ok()) return ns_fd.error().context(doing);
    // First: a stop that fails half-way leaves a function no restarted corchd may adopt.
    if (auto r = removeStartMarker(sf); !r) return r.error().context(doing);
    auto r = runScript(sf, *pkg, "stop", pkg->stop, ns_fd->get(), doing);
    auto killed = platform::killProcessesInNetns(ns_fd->get());
    if (!r.ok()) return r;
    if (!killed.ok()) return killed.error().context(doing);
    if (*killed > 0) {
      CORCH_LOG(lg, Info) << "stop of " << sf.instance << " left " << *killed
                          << " processes behind; killed them";
    }
    CORCH_LOG(lg, Info) << "stopped function " << sf.instance;
    return Ok();
  }

  Result<void> updateSf(const SfSpec& before, const SfSpec& after) override {
    const std::string doing = "cannot update function " + after.instance;
    auto pkg = package(after);
    if (!pkg.ok()) return pkg.error().context(doing);
    if (pkg->update.empty()) {
      return Error(ErrorCode::Unsupported,
                   doing + ": its package " + pkg->manifest.name + " has no update script");
    }
    bool same_ports = before.ports.size() == after.ports.size();
    for (size_t i = 0; same_ports && i < before.ports.size(); ++i) {
      same_ports = before.ports[i].port_id == after.ports[i].port_id;
    }
    if (!same_ports) {
      return Error(ErrorCode::Unsupported,
                   doing + ": the native driver cannot change the ports of a running function");
    }
    auto ns_fd = platform::openNetns(after.instance);
    if (!ns_fd.ok()) return ns_fd.error().context(doing);
    return runScript(after, *pkg, "update", pkg->update, ns_fd->get(), doing);
  }

  Result<std::vector<std::string>> listInstances(std::string_view prefix) override {
    return common::functionNetnsNames(prefix);
  }

  Result<void> adoptSf(const SfSpec& sf) override {
    const std::string doing = "cannot adopt function " + sf.instance;
    auto ns_fd = common::openFunctionNetnsToAdopt(sf.instance, doing);
    if (!ns_fd.ok()) return std::move(ns_fd).error();
    auto identity = common::netnsIdentity(ns_fd->get());
    if (!identity.ok()) return identity.error().context(doing);
    const std::string marker = startMarker(sf);
    std::string marked;
    if (!readSmallFile(marker, &marked)) {
      return Error(ErrorCode::Conflict,
                   doing + ": it is not running (never started, or stopped: no " + marker + ")");
    }
    if (marked != *identity) {
      return Error(ErrorCode::Conflict, doing + ": it is not running (" + marker +
                                            " was written for an earlier namespace " + sf.instance +
                                            ")");
    }
    if (auto r = common::checkPortsInside(ns_fd->get(), sf.instance, sf.ports); !r) {
      return r.error().context(doing);
    }
    // Its stop script must still be there for stopSf.
    if (auto pkg = package(sf); !pkg.ok()) {
      return Error(ErrorCode::Conflict,
                   doing + ": its package cannot be loaded: " + pkg.error().message());
    }
    CORCH_LOG(lg, Info) << "adopted running function " << sf.instance;
    return Ok();
  }

  Result<void> destroySf(const SfSpec& sf) override {
    const std::string doing = "cannot destroy function " + sf.instance;
    if (auto r = platform::checkNetnsName(sf.instance); !r) return r.error().context(doing);
    auto existed = common::destroyFunctionNetns(sf.instance, lg);
    if (!existed.ok()) return existed.error().context(doing);
    const std::string config = configPath(sf);
    if (::unlink(config.c_str()) != 0 && errno != ENOENT) {
      return errnoError(doing + ": cannot remove " + config, errno);
    }
    if (auto r = removeStartMarker(sf); !r) return r.error().context(doing);
    removeUnpacked(sf);
    if (*existed) CORCH_LOG(lg, Info) << "destroyed function " << sf.instance;
    return Ok();
  }

 private:
  std::string logPath(const SfSpec& sf) const {
    return sf.log_path.empty() ? run_dir_ + "/" + sf.instance + ".log" : sf.log_path;
  }
  std::string configPath(const SfSpec& sf) const { return logPath(sf) + ".config.json"; }
  std::string unpackDir(const SfSpec& sf) const { return run_dir_ + "/" + sf.instance + ".pkg"; }
  std::string startMarker(const SfSpec& sf) const {
    return run_dir_ + "/" + sf.instance + ".started";
  }

  // The start marker (see the top of this file): the identity of the namespace the function was
  // started in.
  Result<void> writeStartMarker(const SfSpec& sf, int ns_fd) const {
    auto identity = common::netnsIdentity(ns_fd);
    if (!identity.ok()) return std::move(identity).error();
    std::error_code ec;
    fs::create_directories(run_dir_, ec);
    if (ec) return Error(ErrorCode::Internal, "cannot create " + run_dir_ + ": " + ec.message());
    return writeFileAtomically(startMarker(sf), *identity);
  }

  Result<void> removeStartMarker(const SfSpec& sf) const {
    const std::string marker = startMarker(sf);
    if (::unlink(marker.c_str()) != 0 && errno != ENOENT) {
      return errnoError("cannot remove " + marker, errno);
    }
    return Ok();
  }

  // The package folder: SfSpec::image, or where createSf unpacked an archive.
  Result<Package> package(const SfSpec& sf) const {
    if (!isArchive(sf.image)) return loadPackage(sf.image, path_var_);
    const std::string dir = unpackDir(sf);
    // The archive may hold the package at its root or in one top folder.
    if (!fs::exists(dir + "/manifest.json")) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.is_directory() && fs::exists(entry.path() / "manifest.json")) {
          return loadPackage(entry.path().string(), path_var_);
        }
      }
    }
    return loadPackage(dir, path_var_);
  }

  Result<void> unpack(const SfSpec& sf, const std::string& doing) {
    const std::string dir = unpackDir(sf);
    removeUnpacked(sf);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
      return Error(ErrorCode::Internal, doing + ": cannot create " + dir + ": " + ec.message());
    platform::ProcessSpec tar;
    tar.argv = {"tar", "-xzf", sf.image, "-C", dir, "--no-same-owner"};
    tar.env = {{"PATH", path_var_}};
    tar.log_path = logPath(sf);
    tar.timeout = sf.timeout.count() > 0 ? sf.timeout : kDefaultTimeout;
    auto r = platform::runProcess(tar);
    if (!r.ok() || !r->success()) {
      removeUnpacked(sf);
      return Error(ErrorCode::InvalidArgument, doing + ": cannot unpack " + sf.image + ": tar " +
                                                   (r.ok() ? r->describe() : r.error().message()));
    }
    return Ok();
  }

  void removeUnpacked(const SfSpec& sf) const {
    if (!isArchive(sf.image)) return;
    std::error_code ec;
    fs::remove_all(unpackDir(sf), ec);
  }

  Result<void> checkPorts(const SfSpec& sf, const Package& pkg, const std::string& doing) const {
    const Manifest& m = pkg.manifest;
    const size_t n = sf.ports.size();
    if ((m.ports_min && n < *m.ports_min) || (m.ports_max && n > *m.ports_max)) {
      return Error(ErrorCode::InvalidArgument,
                   doing + ": package " + m.name + " takes " +
                       (m.ports_min ? std::to_string(*m.ports_min) : "0") + " to " +
                       (m.ports_max ? std::to_string(*m.ports_max) : "any number of") +
                       " ports, not " + std::to_string(n));
    }
    if (auto r = common::checkVethPorts("native", sf.ports); !r) return r.error().context(doing);
    return Ok();
  }

  // Runs one script of the package inside the function's namespace, as the script contract of
  // nsf/README.md says; an Error for a script that cannot run, fails or times out.
  Result<void> runScript(const SfSpec& sf, const Package& pkg, const std::string& role,
                         const std::string& script, int ns_fd, const std::string& doing) {
    const std::string log = logPath(sf);
    const std::string config = configPath(sf);
    const std::chrono::milliseconds timeout = sf.timeout.count() > 0 ? sf.timeout : kDefaultTimeout;
    // A header line in the log separates runs (and makes the log's folder, which also holds the
    // configuration file); the error message quotes only this run's lines.
    auto from = common::appendLogHeader(
        log, role + " " + sf.instance + " (timeout " + std::to_string(timeout.count()) + " ms)");
    if (!from.ok()) return from.error().context(doing);
    if (auto r = writeFileAtomically(config, sf.config_json.empty() ? "{}" : sf.config_json); !r) {
      return r.error().context(doing);
    }
    auto cfg_env = common::configToEnv(sf.config_json);
    if (!cfg_env.ok()) return cfg_env.error().context(doing);

    platform::ProcessSpec spec;
    spec.argv = {script, sf.graph_id, sf.sf_id, config};
    std::string interfaces, port_ids;
    for (size_t i = 0; i < sf.ports.size(); ++i) {
      spec.argv.push_back(ifnameInside(i));
      interfaces += (i == 0 ? "" : " ") + ifnameInside(i);
      port_ids += (i == 0 ? "" : " ") + sf.ports[i].port_id;
    }
    spec.env = {{"PATH", path_var_},
                {"CORCH_GRAPH_ID", sf.graph_id},
                {"CORCH_SF_ID", sf.sf_id},
                {"CORCH_INSTANCE", sf.instance},
                {"CORCH_NETNS", sf.instance},
                {"CORCH_NSF_DIR", pkg.dir},
                {"CORCH_CONFIG_FILE", config},
                {"CORCH_LOG_FILE", log},
                {"CORCH_INTERFACES", interfaces},
                {"CORCH_PORT_IDS", port_ids}};
    for (auto& kv : *cfg_env) spec.env.push_back(std::move(kv));
    spec.netns_fd = ns_fd;
    spec.cwd = pkg.dir;
    spec.log_path = log;
    spec.timeout = timeout;
    if (!full_capabilities_) spec.capabilities = kNsfCapabilities;
    auto status = platform::runProcess(spec);
    if (!status.ok()) return status.error().context(doing);
    if (status->success()) return Ok();

    std::string tail = common::lastLines(common::readFrom(log, *from), kTailLines, kTailChars);
    std::string message = doing + ": its " + role + " script " + status->describe() +
                          (tail.empty() ? "; it wrote nothing to its log " + log
                                        : "; the last lines of its log " + log + ": " + tail);
    CORCH_LOG(lg, Warn) << message;
    return Error(status->timed_out ? ErrorCode::Timeout : ErrorCode::Internal, message);
  }

  const std::string run_dir_;
  const std::string node_netns_;
  const std::string path_var_;
  const bool full_capabilities_;  // option "capabilities": "full" (default "reduced")
};

}  // namespace

void registerDriver(DriverRegistry& registry) {
  (void)registry.addCompute(
      "native", [](const DriverOptions& options) -> Result<std::unique_ptr<ComputeDriver>> {
        const std::string caps = options.getOr("capabilities", "reduced");
        if (caps != "reduced" && caps != "full") {
          return Error(ErrorCode::InvalidArgument, "native driver option capabilities: '" + caps +
                                                       "' is neither \"reduced\" nor \"full\"");
        }
        return std::unique_ptr<ComputeDriver>(new NativeDriver(
            options.getOr("run-dir", "/run/corch/native"), options.getOr("node-netns", ""),
            options.getOr("path", common::pathWithSbin()), caps == "full"));
      });
}

}  // namespace corch::drivers::native
