// A private libvirtd + virtlogd in a mount namespace of their own (libvirtd.h).
#include "harness/libvirtd.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/sandbox.h"

namespace corch::test {
namespace {

namespace fs = std::filesystem;

// Folders of a root libvirtd that the private one must not share with the node's.
constexpr const char* kStateDirs[] = {"/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt",
                                      "/var/cache/libvirt"};

// QEMU as root, unconfined, outside cgroups: the tests' files are root's, in private folders,
// and this machine has no systemd to delegate cgroups.
constexpr const char* kQemuConf = R"(user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
)";

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool socketAnswers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// The mount namespace of a process ("mnt:[4026532...]"), or empty.
std::string mountNs(pid_t pid) {
  char buf[64] = {};
  std::string link = "/proc/" + std::to_string(pid) + "/ns/mnt";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

Result<std::unique_ptr<Libvirtd>> Libvirtd::start(const std::string& dir) {
  std::unique_ptr<Libvirtd> daemon(new Libvirtd(dir));
  if (auto r = daemon->launch(); !r) return std::move(r).error();
  return daemon;
}

Libvirtd::~Libvirtd() { stop(); }

std::string Libvirtd::log() const {
  return readText(dir_ + "/daemons.out") + readText(dir_ + "/libvirtd.log");
}

Result<void> Libvirtd::launch() {
  std::error_code ec;
  fs::create_directories(dir_ + "/sock", ec);
  fs::create_directories(dir_ + "/etc", ec);
  if (ec) return Error(ErrorCode::Internal, "cannot create " + dir_ + ": " + ec.message());
  // The node's /etc/libvirt, with our libvirtd.conf and qemu.conf on top.
  fs::copy("/etc/libvirt", dir_ + "/etc",
           fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  writeText(dir_ + "/etc/libvirtd.conf", "unix_sock_dir = \"" + dir_ +
                                             "/sock\"\n"
                                             "unix_sock_rw_perms = \"0770\"\n"
                                             "auth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n"
                                             "log_outputs = \"3:file:" +
                                             dir_ + "/libvirtd.log\"\n");
  writeText(dir_ + "/etc/qemu.conf", kQemuConf);

  std::string script = "set -e\n";
  for (const char* d : kStateDirs) {
    script += std::string("mkdir -p ") + d + "\nmount -t tmpfs tmpfs " + d + "\n";
  }
  script += "mount --bind " + shellQuote(dir_ + "/etc") + " /etc/libvirt\n";
  script += "virtlogd -d -p " + shellQuote(dir_ + "/virtlogd.pid") + "\n";
  script +=
      "exec libvirtd -f /etc/libvirt/libvirtd.conf -p " + shellQuote(dir_ + "/libvirtd.pid") + "\n";

  DaemonSpec spec;
  spec.argv = {"unshare", "-m", "--propagation", "private", "sh", "-c", script};
  spec.log = dir_ + "/daemons.out";
  auto pid = spawnDaemon(spec);
  if (!pid.ok()) return pid.error().context("cannot start libvirtd");
  pid_ = *pid;
  int status = 0;
  bool exited = false;
  bool ready = waitUntil(
      [&] {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          exited = true;
          return true;
        }
        return socketAnswers(socket());
      },
      30s, 20ms);
  if (exited) {
    pid_ = -1;
    return Error(ErrorCode::Unavailable,
                 "libvirtd exited at start (status " + std::to_string(status) + "): " + log());
  }
  if (!ready) {
    stop();
    return Error(ErrorCode::Timeout, "libvirtd did not open " + socket() + " in 30 s: " + log());
  }
  return Ok();
}

void Libvirtd::stop() {
  if (pid_ <= 0) return;
  // Everything in libvirtd's mount namespace is ours: libvirtd, virtlogd, QEMUs left running.
  const std::string ns = mountNs(pid_);
  if (!ns.empty() && ns != mountNs(::getpid())) {
    for (const auto& entry : fs::directory_iterator("/proc")) {
      pid_t p = static_cast<pid_t>(std::atol(entry.path().filename().c_str()));
      if (p > 0 && p != pid_ && mountNs(p) == ns) ::kill(p, SIGKILL);
    }
  }
  (void)stopDaemon(pid_, 5s);
}

Result<std::string> buildGuest() {
  const char* env = std::getenv("CORCH_GUEST_DIR");
  const std::string out =
      env != nullptr && *env != '\0' ? env : std::string(CORCH_SOURCE_DIR) + "/.cache/guest";
  auto r = runCommand(shellQuote(std::string(CORCH_SOURCE_DIR) + "/scripts/build-guest.sh") + " " +
                          shellQuote(out) + " 2>&1",
                      300s);
  if (!r.ok()) {
    return Error(ErrorCode::Unavailable, "scripts/build-guest.sh failed (exit " +
                                             std::to_string(r.exit_code) + "): " + r.output);
  }
  return out;
}

namespace {
std::string& guestDirStore() {
  static std::string dir;
  return dir;
}
std::string& guestErrorStore() {
  static std::string error;
  return error;
}
}  // namespace

GuestFixture::GuestFixture() {
  auto g = buildGuest();
  if (g.ok()) {
    guestDirStore() = *g;
  } else {
    guestErrorStore() = g.error().message();
  }
}
const std::string& GuestFixture::dir() { return guestDirStore(); }
const std::string& GuestFixture::error() { return guestErrorStore(); }

}  // namespace corch::test
