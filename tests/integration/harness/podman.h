// podman's Docker-compatible API service, run privately for a test (MACHINE-NOTES, Containers):
// `podman system service --time=0 unix://<dir>/api.sock` with a containers.conf and a
// storage.conf of its own (runc, cgroupfs, file events, file locks, nofile/nproc ulimits, tmp_dir,
// graphroot and runroot all under one temporary folder <tmp>/<prefix>-podman-XXXXXX), so it never
// meets the node's podman storage or another test's service.
//
//   auto podman = corch::test::PodmanService::start("cd");
//   BOOST_REQUIRE_MESSAGE(podman.ok(), ...);
//   BOOST_REQUIRE((*podman)->importBridgeImage().ok());   // corch/bridge:1
//   driver options: {"socket": (*podman)->socketUri()}
//
// The destructor removes every container (podman rm -af), stops the service (SIGTERM, SIGKILL
// after a deadline), unmounts whatever overlay or shm mount is left under the folder, and deletes
// it. The service also dies with the test process (parent-death signal).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "corch/error.h"
#include "harness/sandbox.h"

namespace corch::test {

class PodmanService {
 public:
  // Starts the service and waits (at most 20 s) until GET /_ping answers OK. `prefix` starts the
  // folder's name. The error says what failed, with the service's log.
  static Result<std::unique_ptr<PodmanService>> start(const std::string& prefix);
  ~PodmanService();
  PodmanService(const PodmanService&) = delete;
  PodmanService& operator=(const PodmanService&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& socketPath() const { return socket_; }
  // "unix://<socket>", the docker driver's "socket" option.
  std::string socketUri() const { return "unix://" + socket_; }
  std::string log() const;

  // Builds the bridge image (sf-repository/images/bridge-container/build.sh) and imports it as
  // `reference` through the API.
  Result<void> importBridgeImage(const std::string& reference = "corch/bridge:1") const;

  // The podman command line on this service's storage and configuration ("ps -a --format ...").
  CommandResult podman(const std::string& args) const;
  // One API request with curl; the body of the answer (and exit code 0 when the status is 2xx).
  CommandResult api(const std::string& method, const std::string& path,
                    const std::string& body = "") const;

 private:
  PodmanService() = default;
  Result<void> writeConfiguration() const;
  Result<void> launch();
  void stop();
  std::string envPrefix() const;

  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace corch::test
