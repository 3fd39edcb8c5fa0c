// The kvm driver's pure part: from a function (SfSpec and its template's "engine" object) to a
// libvirt domain description, with no libvirt call, so that unit tests check it as text.
//
// Engine keys (SfSpec::engine_json), all optional; any other key is refused:
//   "vcpus"            number of virtual CPUs (default 1)
//   "kernel", "initrd" direct kernel boot: file names relative to the image folder (SfSpec::image
//                      is then a folder)
//   "cmdline"          the kernel command line (default "console=ttyS0")
//   "disk-format"      the format of SfSpec::image when it is a disk image file: "qcow2" (default)
//                      or "raw"
//   "shutdown-timeout" milliseconds stopSf waits for a graceful shutdown before it pulls the plug
//                      (default 3000)
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "corch/compute.h"
#include "corch/error.h"

namespace corch::drivers::kvm {

struct EngineSettings {
  unsigned vcpus = 1;
  std::string kernel;
  std::string initrd;
  std::string cmdline = "console=ttyS0";
  std::string disk_format = "qcow2";
  std::chrono::milliseconds shutdown_timeout{3000};
};

// Parses a template's "engine" object (compact JSON; empty means {}). InvalidArgument naming
// "engine/<key>" for an unknown key or a bad value.
Result<EngineSettings> parseEngine(const std::string& engine_json);

// One virtual NIC. Tap: `target` is an existing tap device (libvirt opens it; managed='no').
// VhostUser: `target` is the socket path; QEMU is the server (the switch connects to it).
struct DomainNic {
  PortTechnology technology = PortTechnology::Tap;
  std::string target;
  std::string mac;
};

struct DomainConfig {
  std::string name;
  std::string type = "qemu";  // "kvm" or "qemu" (TCG)
  std::string emulator;       // empty: libvirt's default
  std::string machine;        // empty: libvirt's default
  uint64_t memory_mb = 128;
  unsigned vcpus = 1;
  std::vector<unsigned> cpus;  // host cores for the vCPUs and the emulator threads; empty: any
  std::string kernel, initrd, cmdline;  // direct kernel boot (absolute paths), or empty
  std::string disk, disk_format;        // a disk image file, or empty
  std::string console_log;              // the serial console goes to this file, or nowhere
  std::vector<DomainNic> nics;
};

// The MAC of a function's port: SfPortBinding::mac when set, else a stable locally administered
// unicast address derived from the instance and the port's id (not its index, so that a port
// keeps its MAC when an update removes the ports before it).
std::string portMac(const std::string& instance, const SfPortBinding& port);

// The NIC of a function's port; Unsupported for a technology a VM cannot attach to.
Result<DomainNic> nicFor(const std::string& instance, const SfPortBinding& port);

// The domain configuration of a function: paths resolved against SfSpec::image, NICs in port
// order. InvalidArgument when the template asks for something impossible.
Result<DomainConfig> domainConfig(const SfSpec& sf, const EngineSettings& engine,
                                  const std::string& type, const std::string& emulator,
                                  const std::string& machine);

// The libvirt XML of a domain, and of one NIC (for hot-plug: the same text as in the domain).
std::string domainXml(const DomainConfig& config);
std::string nicXml(const DomainNic& nic);

// Escapes text for an XML attribute value or element content.
std::string xmlEscape(std::string_view text);
// The reverse, for the five entities xmlEscape() writes (others are kept as they are).
std::string xmlUnescape(std::string_view text);

// The NICs of a domain XML as libvirt writes it (the live description, for adoptSf), in document
// order: per <interface>, the MAC and, for type 'ethernet', the tap (<target dev>) as a Tap; for
// type 'vhostuser', the socket (<source path>) as a VhostUser; any other type as a Tap with an
// empty target (a NIC no port of a function accounts for).
std::vector<DomainNic> nicsOfDomainXml(std::string_view xml);

}  // namespace corch::drivers::kvm
