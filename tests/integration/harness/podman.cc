// The private podman API service of podman.h: a forked `podman system service`, its own
// configuration files, and a cleanup that leaves no container, mount or file behind.
#include "harness/podman.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace corch::test {

namespace fs = std::filesystem;

namespace {

const std::string kBuildScript =
    std::string(CORCH_SOURCE_DIR) + "/sf-repository/images/bridge-container/build.sh";

std::string tail(const std::string& text, size_t chars = 2000) {
  return text.size() <= chars ? text : "..." + text.substr(text.size() - chars);
}

}  // namespace

Result<std::unique_ptr<PodmanService>> PodmanService::start(const std::string& prefix) {
  std::unique_ptr<PodmanService> svc(new PodmanService());
  std::string tmpl = (fs::temp_directory_path() / (prefix + "-podman-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Error(ErrorCode::Internal, "cannot create " + tmpl + ": " + std::strerror(errno));
  }
  svc->dir_ = tmpl;
  svc->socket_ = svc->dir_ + "/api.sock";
  if (auto r = svc->writeConfiguration(); !r) return std::move(r).error();
  if (auto r = svc->launch(); !r) return std::move(r).error();
  bool up = waitUntil([&] { return svc->api("GET", "/_ping").output == "OK"; }, 20s, 50ms);
  if (!up) {
    return Error(ErrorCode::Unavailable, "podman system service did not answer /_ping on " +
                                             svc->socket_ +
                                             " within 20 s; its log: " + tail(svc->log()));
  }
  return svc;
}

PodmanService::~PodmanService() { stop(); }

Result<void> PodmanService::writeConfiguration() const {
  for (const char* sub : {"tmp", "root", "run"}) fs::create_directories(dir_ + "/" + sub);
  std::ofstream conf(dir_ + "/containers.conf");
  // Without the ulimits a start fails with 500 "error setting rlimit"; crun fails on this
  // machine's hybrid cgroups, runc works (MACHINE-NOTES).
  conf << "[containers]\n"
       << "default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n"
       << "[engine]\n"
       << "runtime = \"runc\"\n"
       << "cgroup_manager = \"cgroupfs\"\n"
       << "events_logger = \"file\"\n"
       << "lock_type = \"file\"\n"
       << "tmp_dir = \"" << dir_ << "/tmp\"\n";
  std::ofstream storage(dir_ + "/storage.conf");
  storage << "[storage]\n"
          << "driver = \"overlay\"\n"
          << "graphroot = \"" << dir_ << "/root\"\n"
          << "runroot = \"" << dir_ << "/run\"\n";
  if (!conf.flush() || !storage.flush()) {
    return Error(ErrorCode::Internal, "cannot write the podman configuration in " + dir_);
  }
  return Ok();
}

std::string PodmanService::envPrefix() const {
  return "CONTAINERS_CONF=" + shellQuote(dir_ + "/containers.conf") +
         " CONTAINERS_STORAGE_CONF=" + shellQuote(dir_ + "/storage.conf") + " ";
}

Result<void> PodmanService::launch() {
  DaemonSpec spec;
  spec.argv = {"podman", "system", "service", "--time=0", "unix://" + socket_};
  // Our configuration, and none of the test environment's CONTAINERS_* settings.
  spec.env = {"CONTAINERS_CONF=" + dir_ + "/containers.conf",
              "CONTAINERS_STORAGE_CONF=" + dir_ + "/storage.conf"};
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "CONTAINERS_", 11) != 0) spec.env->emplace_back(*e);
  }
  spec.log = dir_ + "/podman.log";
  spec.cwd = dir_;
  spec.own_process_group = true;  // its conmon and runc children go with it
  auto pid = spawnDaemon(spec);
  if (!pid.ok()) return pid.error().context("cannot start podman system service");
  pid_ = *pid;
  return Ok();
}

void PodmanService::stop() {
  if (dir_.empty()) return;
  if (pid_ > 0) {
    // Containers first, while the service's storage is whole.
    (void)podman("rm -af -t 0");
    (void)stopDaemon(pid_, 10s);
  }
  // Overlay and shm mounts podman left under the folder, deepest first.
  (void)runCommand("grep -F " + shellQuote(" " + dir_ + "/") +
                   " /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l");
  std::error_code ec;
  fs::remove_all(dir_, ec);
  dir_.clear();
}

std::string PodmanService::log() const {
  std::ifstream in(dir_ + "/podman.log");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Result<void> PodmanService::importBridgeImage(const std::string& reference) const {
  auto r = runCommand("TMPDIR=" + shellQuote(dir_ + "/tmp") + " " + kBuildScript + " " +
                          shellQuote(socket_) + " " + shellQuote(reference),
                      120s);
  if (!r.ok()) {
    return Error(ErrorCode::Internal, "cannot build and import " + reference + " with " +
                                          kBuildScript + ": " + tail(r.output));
  }
  return Ok();
}

CommandResult PodmanService::podman(const std::string& args) const {
  return runCommand(envPrefix() + "podman " + args, 60s);
}

CommandResult PodmanService::api(const std::string& method, const std::string& path,
                                 const std::string& body) const {
  std::string cmd =
      "curl -sS --fail-with-body --unix-socket " + shellQuote(socket_) + " -X " + method + " ";
  if (!body.empty())
    cmd += "-H 'Content-Type: application/json' --data-binary " + shellQuote(body) + " ";
  return runCommand(cmd + shellQuote("http://docker" + path), 30s);
}

}  // namespace corch::test
