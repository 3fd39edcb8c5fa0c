// The 'native' compute driver (paper 6.1, DESIGN section 9): a function is a package of scripts
// (nsf/<name>/: manifest.json, start, stop, optional update and status) run on the host inside a
// network namespace of its own, named after the instance ("corch-<graph>-<sf>").
//
//   createSf  : checks the package, creates the namespace, brings lo up, moves each port's veth end
//               into it as eth0..ethN-1 (port order), up, TX checksum offload off.
//   startSf   : writes the configuration next to the log (<log>.config.json) and runs
//               `start <graph-id> <sf-id> <config-file> eth0 ... ethN-1` inside the namespace, with
//               the configuration also as CORCH_CFG_* variables, output appended to the log, killed
//               with its process group at SfSpec::timeout. Exit 0 is success; on failure the
//               processes it left in the namespace are killed (the function is back to created).
//   stopSf    : runs `stop` the same way, then kills whatever process the function left behind.
//               Ok when the namespace is gone (nothing can be running).
//   updateSf  : runs `update` with the new configuration (ports must not change).
//   destroySf : kills every process of the namespace, deletes its links and the namespace, removes
//               the configuration file (the log stays). Ok when there is nothing left.
//
// Options (DriverOptions): "run-dir" (default /run/corch/native: logs when SfSpec::log_path is
// empty, unpacked .tar.gz packages), "node-netns" (the named namespace where the vSwitch leaves
// the functions' veth ends; default corchd's own), "path" (PATH for scripts and dependency
// checks; default corchd's PATH plus the sbin folders).
//
// The driver keeps no state between calls: everything is found again from the SfSpec (the
// namespace by name), so a restarted corchd can stop and destroy what an earlier one made.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "compute/common/config_env.h"
#include "corch/driver_registry.h"
#include "corch/log.h"
#include "manifest.h"
#include "platform/netlink.h"
#include "platform/netns.h"
#include "platform/process.h"

namespace corch::drivers::native {
namespace {

namespace fs = std::filesystem;
using platform::RouteSocket;
using platform::UniqueFd;

log::Logger lg("native");

constexpr std::chrono::milliseconds kDefaultTimeout{10000};
constexpr size_t kTailLines = 10;
constexpr size_t kTailChars = 2000;

// Undo steps of a call that builds several things, run in reverse unless the call succeeded.
class UndoLog {
 public:
  UndoLog() = default;
  UndoLog(const UndoLog&) = delete;
  UndoLog& operator=(const UndoLog&) = delete;
  ~UndoLog() {
    if (committed_) return;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }
  void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
  void commit() { committed_ = true; }

 private:
  std::vector<std::function<void()>> steps_;
  bool committed_ = false;
};

// corchd's PATH with the sbin folders appended when missing: iptables, ip and sysctl live there
// and a daemon's PATH often lacks them.
std::string defaultPath() {
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  for (const char* dir : {"/usr/local/sbin", "/usr/sbin", "/sbin"}) {
    if ((":" + path + ":").find(":" + std::string(dir) + ":") == std::string::npos) {
      path += ":";
      path += dir;
    }
  }
  return path;
}

bool isArchive(const std::string& image) {
  auto ends = [&](const std::string& s) {
    return image.size() >= s.size() && image.compare(image.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".tar.gz") || ends(".tgz");
}

std::string ifnameInside(size_t i) { return "eth" + std::to_string(i); }

std::string nowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The last lines written to `path` after byte `from`, joined with " | " (for error messages).
std::string logTail(const std::string& path, std::streamoff from) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(from);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  std::istringstream split(text);
  std::string line;
  while (std::getline(split, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    lines.push_back(line);
    if (lines.size() > kTailLines) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : " | ") + l;
  if (out.size() > kTailChars) out = "..." + out.substr(out.size() - kTailChars);
  return out;
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

class NativeDriver final : public ComputeDriver {
 public:
  NativeDriver(std::string run_dir, std::string node_netns, std::string path_var)
      : run_dir_(std::move(run_dir)),
        node_netns_(std::move(node_netns)),
        path_var_(std::move(path_var)) {}

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
    if (auto r = platform::prepareNetnsDir(); !r) {
      return Error(ErrorCode::Unavailable,
                   "named network namespaces are not usable here: " + r.error().message());
    }
    if (!node_netns_.empty()) {
      if (auto fd = platform::openNetns(node_netns_); !fd) {
        return Error(ErrorCode::Unavailable,
                     "the node namespace of the native driver is not "
                     "usable: " +
                         fd.error().message());
      }
    }
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
    // Everything the undo steps use is declared before the log, so it outlives them.
    UniqueFd node_fd;
    UniqueFd ns_fd;
    std::optional<RouteSocket> node;
    std::optional<RouteSocket> inner;
    UndoLog undo;

    if (isArchive(sf.image)) {
      CORCH_TRY(unpack(sf, doing));
      undo.add([this, &sf] { removeUnpacked(sf); });
    }
    auto pkg = package(sf);
    if (!pkg.ok()) return pkg.error().context(doing);
    CORCH_TRY(checkPorts(sf, *pkg, doing));

    auto opened_node = openNodeNetns();
    if (!opened_node.ok()) return opened_node.error().context(doing);
    node_fd = std::move(opened_node).value();
    auto node_sock = RouteSocket::openIn(node_fd.get());
    if (!node_sock.ok()) return node_sock.error().context(doing);
    node.emplace(std::move(node_sock).value());
    for (const auto& port : sf.ports) {
      auto exists = node->linkExists(port.ifname);
      if (!exists.ok()) return exists.error().context(doing);
      if (!*exists) {
        return Error(ErrorCode::NotFound, doing + ": the interface " + port.ifname + " of port " +
                                              port.port_id + " does not exist");
      }
    }

    if (auto r = platform::createNetns(sf.instance); !r) return r.error().context(doing);
    undo.add([&sf] { (void)platform::deleteNetns(sf.instance); });
    auto opened_ns = platform::openNetns(sf.instance);
    if (!opened_ns.ok()) return opened_ns.error().context(doing);
    ns_fd = std::move(opened_ns).value();
    auto inner_sock = RouteSocket::openIn(ns_fd.get());
    if (!inner_sock.ok()) return inner_sock.error().context(doing);
    inner.emplace(std::move(inner_sock).value());
    if (auto r = inner->setLinkUp("lo"); !r) return r.error().context(doing);

    for (size_t i = 0; i < sf.ports.size(); ++i) {
      const std::string& outside = sf.ports[i].ifname;
      if (auto r = node->moveLinkToNetns(outside, ns_fd.get(), ifnameInside(i)); !r) {
        return r.error().context(doing);
      }
      // On failure, hand the end back to the vSwitch's namespace rather than let it die with
      // ours: the vSwitch driver undoes its own port.
      undo.add([&inner, &node_fd, i, outside] {
        (void)inner->moveLinkToNetns(ifnameInside(i), node_fd.get(), outside);
      });
    }
    for (size_t i = 0; i < sf.ports.size(); ++i) {
      if (auto r = inner->setLinkUp(ifnameInside(i)); !r) return r.error().context(doing);
      if (auto r = platform::disableTxChecksum(ns_fd.get(), ifnameInside(i)); !r) {
        return r.error().context(doing);
      }
    }
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
    CORCH_LOG(lg, Info) << "started function " << sf.instance;
    return Ok();
  }

  Result<void> stopSf(const SfSpec& sf) override {
    const std::string doing = "cannot stop function " + sf.instance;
    if (!platform::netnsExists(sf.instance)) return Ok();
    auto pkg = package(sf);
    if (!pkg.ok()) return pkg.error().context(doing);
    auto ns_fd = platform::openNetns(sf.instance);
    if (!ns_fd.ok()) return ns_fd.error().context(doing);
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

  Result<void> destroySf(const SfSpec& sf) override {
    const std::string doing = "cannot destroy function " + sf.instance;
    if (auto r = platform::checkNetnsName(sf.instance); !r) return r.error().context(doing);
    const bool existed = platform::netnsExists(sf.instance);
    if (existed) {
      auto ns_fd = platform::openNetns(sf.instance);
      if (ns_fd.ok()) {
        auto killed = platform::killProcessesInNetns(ns_fd->get());
        if (!killed.ok()) return killed.error().context(doing);
        // Delete the links now rather than when the kernel gets round to freeing the namespace,
        // so that the vSwitch's veth ends are gone when this call returns.
        deleteLinksIn(ns_fd->get(), sf.instance);
      }
      if (auto r = platform::deleteNetns(sf.instance); !r) return r.error().context(doing);
    }
    const std::string config = configPath(sf);
    if (::unlink(config.c_str()) != 0 && errno != ENOENT) {
      return errnoError(doing + ": cannot remove " + config, errno);
    }
    removeUnpacked(sf);
    if (existed) CORCH_LOG(lg, Info) << "destroyed function " << sf.instance;
    return Ok();
  }

 private:
  std::string logPath(const SfSpec& sf) const {
    return sf.log_path.empty() ? run_dir_ + "/" + sf.instance + ".log" : sf.log_path;
  }
  std::string configPath(const SfSpec& sf) const { return logPath(sf) + ".config.json"; }
  std::string unpackDir(const SfSpec& sf) const { return run_dir_ + "/" + sf.instance + ".pkg"; }

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
    for (const auto& port : sf.ports) {
      if (port.technology != PortTechnology::Veth) {
        return Error(ErrorCode::Unsupported, doing + ": port " + port.port_id + " is a " +
                                                 std::string(toString(port.technology)) +
                                                 " port; the native driver takes veth ends only");
      }
      if (auto r = platform::checkIfname(port.ifname); !r) return r.error().context(doing);
    }
    return Ok();
  }

  Result<UniqueFd> openNodeNetns() const {
    if (!node_netns_.empty()) return platform::openNetns(node_netns_);
    UniqueFd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!fd) return errnoError("cannot open corchd's own network namespace", errno);
    return fd;
  }

  void deleteLinksIn(int ns_fd, const std::string& instance) const {
    auto inner = RouteSocket::openIn(ns_fd);
    if (!inner.ok()) {
      CORCH_LOG(lg, Warn) << "destroying " << instance << ": " << inner.error().message();
      return;
    }
    auto links = inner->listLinks();
    if (!links.ok()) {
      CORCH_LOG(lg, Warn) << "destroying " << instance << ": " << links.error().message();
      return;
    }
    for (const auto& link : *links) {
      if (link.name == "lo") continue;
      if (auto r = inner->deleteLink(link.name); !r) {
        CORCH_LOG(lg, Warn) << "destroying " << instance << ": " << r.error().message();
      }
    }
  }

  // Runs one script of the package inside the function's namespace, as the script contract of
  // nsf/README.md says; an Error for a script that cannot run, fails or times out.
  Result<void> runScript(const SfSpec& sf, const Package& pkg, const std::string& role,
                         const std::string& script, int ns_fd, const std::string& doing) {
    const std::string log = logPath(sf);
    const std::string config = configPath(sf);
    std::error_code ec;
    fs::create_directories(fs::path(log).parent_path(), ec);
    if (ec) {
      return Error(ErrorCode::Internal,
                   doing + ": cannot create the folder of its log " + log + ": " + ec.message());
    }
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
    spec.timeout = sf.timeout.count() > 0 ? sf.timeout : kDefaultTimeout;

    // A header line in the log separates runs; the error message quotes only this run's lines.
    {
      std::ofstream out(log, std::ios::app);
      out << "==== corch " << nowUtc() << ": " << role << " " << sf.instance << " (timeout "
          << spec.timeout.count() << " ms) ====\n";
      if (!out.flush()) {
        return Error(ErrorCode::Internal, doing + ": cannot append to its log " + log);
      }
    }
    auto from = static_cast<std::streamoff>(fs::file_size(log, ec));
    auto status = platform::runProcess(spec);
    if (!status.ok()) return status.error().context(doing);
    if (status->success()) return Ok();

    std::string tail = logTail(log, from);
    std::string message = doing + ": its " + role + " script " + status->describe() +
                          (tail.empty() ? "; it wrote nothing to its log " + log
                                        : "; the last lines of its log " + log + ": " + tail);
    CORCH_LOG(lg, Warn) << message;
    return Error(status->timed_out ? ErrorCode::Timeout : ErrorCode::Internal, message);
  }

  const std::string run_dir_;
  const std::string node_netns_;
  const std::string path_var_;
};

}  // namespace

void registerDriver(DriverRegistry& registry) {
  (void)registry.addCompute(
      "native", [](const DriverOptions& options) -> Result<std::unique_ptr<ComputeDriver>> {
        return std::unique_ptr<ComputeDriver>(new NativeDriver(
            options.getOr("run-dir", "/run/corch/native"), options.getOr("node-netns", ""),
            options.getOr("path", defaultPath())));
      });
}

}  // namespace corch::drivers::native
