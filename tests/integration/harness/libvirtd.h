// A private libvirtd (with its virtlogd) for the kvm driver's tests, and the tiny guest they boot.
//
//   auto daemon = corch::test::Libvirtd::start(dir);   // Result<std::unique_ptr<Libvirtd>>
//   options.values["uri"] = (*daemon)->uri();          // qemu:///system?socket=<dir>/sock/...
//   auto guest = corch::test::buildGuest();            // folder with vmlinuz and initrd.img
//
// Why private: a root libvirtd keeps its state in fixed places (/run/libvirt, /var/lib/libvirt,
// /etc/libvirt/qemu.conf...). The daemons run in a mount namespace of their own (unshare -m) in
// which tmpfs hides those folders and a private configuration is bound over /etc/libvirt, so
// they never meet the node's libvirtd or another test's. They share the caller's network
// namespace (the sandbox's): the taps the tests make are where QEMU looks for them. QEMU runs as
// root with no security driver and no cgroups (this machine has no systemd), reading the test's
// files wherever they are. Only the unix socket is outside the namespace, in `dir`.
//
// The destructor kills every process of that mount namespace (libvirtd, virtlogd and any QEMU
// left running) and removes nothing else: `dir` is the caller's.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "corch/error.h"

namespace corch::test {

class Libvirtd {
 public:
  // Starts virtlogd and libvirtd with their files in `dir` (created if needed) and waits until
  // libvirtd answers on its socket; the error says what failed, with the daemon's log.
  static Result<std::unique_ptr<Libvirtd>> start(const std::string& dir);
  ~Libvirtd();
  Libvirtd(const Libvirtd&) = delete;
  Libvirtd& operator=(const Libvirtd&) = delete;

  // "qemu:///system?socket=<dir>/sock/libvirt-sock"
  std::string uri() const { return "qemu:///system?socket=" + socket(); }
  std::string socket() const { return dir_ + "/sock/libvirt-sock"; }
  const std::string& dir() const { return dir_; }
  // The daemons' output and libvirtd's log (for failure messages).
  std::string log() const;

 private:
  explicit Libvirtd(std::string dir) : dir_(std::move(dir)) {}
  Result<void> launch();
  void stop();

  std::string dir_;
  pid_t pid_ = -1;  // unshare, then libvirtd (exec)
};

// Builds the guest of the bridge-vm image with scripts/build-guest.sh into $CORCH_GUEST_DIR, by
// default <source>/.cache/guest (cached there and shared by every build folder: `make build`
// already made it, and later calls return at once) and returns that folder. When it is not built
// yet it downloads packages with apt-get: call it before the sandbox moves the process into a
// namespace with no route out (a global fixture declared before SandboxFixture).
Result<std::string> buildGuest();

// A Boost.Test global fixture that builds the guest once, before the sandbox exists (global
// fixtures are set up in the order they are declared):
//   BOOST_TEST_GLOBAL_FIXTURE(GuestFixture);
//   BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);
// Tests then read dir(), or error() when the build failed.
struct GuestFixture {
  GuestFixture();
  static const std::string& dir();
  static const std::string& error();
};

}  // namespace corch::test
