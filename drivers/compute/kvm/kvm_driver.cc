// The 'kvm' compute driver (paper Table 5): a function is a virtual machine run by QEMU through
// the libvirt C API (one persistent connection; no virsh). The domain's name is the instance
// name; its description comes from the template's "engine" object (domain_xml.h).
//
//   probe     : connects, reads libvirt's and the hypervisor's versions, and decides the domain
//               type: "kvm" when KVM acceleration works, else "qemu" (TCG software emulation).
//   createSf  : defines the domain (virDomainDefineXML): one virtio NIC per port (tap devices the
//               vSwitch made, or vhost-user sockets on which QEMU is the server), vCPUs pinned to
//               SfSpec::cpus, serial console to SfSpec::log_path.
//   startSf   : starts it (virDomainCreate) and waits until it is running.
//   stopSf    : asks the guest to shut down (ACPI) and pulls the plug (virDomainDestroy) when
//               engine "shutdown-timeout" passes; Ok when it is not running or not defined.
//   pauseSf   : suspends the vCPUs (virDomainSuspend).
//   updateSf  : hot-plugs the NICs of new ports and unplugs those of removed ports (matched by
//               MAC); any other change is Unsupported (the caller restarts the function).
//   destroySf : destroys the domain if running and undefines it; Ok when there is none.
//   adoptSf   : reads only. NotFound when libvirt has no domain of that name; Conflict when it is
//               not running (shut off, paused, crashed...), when a port has no NIC in the live
//               domain (matched by MAC, as updateSf does) or its NIC is on another tap or socket,
//               or when the live domain has a NIC that no port accounts for.
//
// Options (DriverOptions): "uri" (default qemu:///system; tests use
// qemu:///system?socket=PATH), "domain-type" ("auto" (default), "kvm" or "qemu"), "emulator"
// (the QEMU binary; default libvirt's), "machine" (default libvirt's, pc: PCI hot-plug by ACPI).
//
// The driver keeps no state about functions: libvirt finds each domain by name, so a restarted
// corchd can adopt, stop and destroy what an earlier one made, and adoptSf has nothing to pick
// up (the connection is the driver's, shared by all domains).
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "corch/driver_registry.h"
#include "corch/log.h"
#include "domain_xml.h"
#include "libvirt_conn.h"
#include "platform/fd.h"

namespace corch::drivers::kvm {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using platform::UniqueFd;

log::Logger lg("kvm");

constexpr auto kPollStep = 20ms;

std::string versionText(unsigned long v) {
  return std::to_string(v / 1000000) + "." + std::to_string(v / 1000 % 1000) + "." +
         std::to_string(v % 1000);
}

// Whether this machine can run a KVM guest; empty when it can, else why not. /dev/kvm may exist,
// open, create VMs and vCPUs and even run a few instructions where a real guest hangs in its
// first steps (measured here: a /dev/kvm on a CPU without VT-x: SeaBIOS runs, Linux never
// prints a line). So: the CPU must announce VT-x or AMD-V (a nested hypervisor shows them too),
// and a one-instruction guest (`hlt` in real mode) must come back as KVM_EXIT_HLT.
std::string kvmUnusableReason() {
  auto fail = [](const char* step) { return std::string(step) + ": " + std::strerror(errno); };
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    bool virt = false;
    while (!virt && std::getline(in, line)) {
      virt = line.starts_with("flags") &&
             (line.find(" vmx") != std::string::npos || line.find(" svm") != std::string::npos);
    }
    if (!virt) return "the CPU has no virtualisation extensions (no vmx or svm in /proc/cpuinfo)";
  }
  UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm) return fail("cannot open /dev/kvm");
  UniqueFd vm(::ioctl(kvm.get(), KVM_CREATE_VM, 0));
  if (!vm) return fail("/dev/kvm cannot create a VM");
  constexpr size_t kPage = 4096;
  void* mem = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return fail("cannot map guest memory");
  std::unique_ptr<void, std::function<void(void*)>> mem_owner(mem,
                                                              [](void* p) { ::munmap(p, kPage); });
  static_cast<unsigned char*>(mem)[0] = 0xf4;  // hlt
  kvm_userspace_memory_region region{};
  region.guest_phys_addr = 0x1000;
  region.memory_size = kPage;
  region.userspace_addr = reinterpret_cast<uint64_t>(mem);
  if (::ioctl(vm.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    return fail("KVM cannot map guest memory");
  }
  UniqueFd vcpu(::ioctl(vm.get(), KVM_CREATE_VCPU, 0));
  if (!vcpu) return fail("KVM cannot create a vCPU");
  int run_size = ::ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return fail("KVM gives no vCPU state");
  void* run_mem = ::mmap(nullptr, static_cast<size_t>(run_size), PROT_READ | PROT_WRITE, MAP_SHARED,
                         vcpu.get(), 0);
  if (run_mem == MAP_FAILED) return fail("cannot map the vCPU state");
  std::unique_ptr<void, std::function<void(void*)>> run_owner(
      run_mem, [run_size](void* p) { ::munmap(p, static_cast<size_t>(run_size)); });
  kvm_sregs sregs{};
  if (::ioctl(vcpu.get(), KVM_GET_SREGS, &sregs) != 0) return fail("KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (::ioctl(vcpu.get(), KVM_SET_SREGS, &sregs) != 0) return fail("KVM_SET_SREGS");
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rflags = 0x2;
  if (::ioctl(vcpu.get(), KVM_SET_REGS, &regs) != 0) return fail("KVM_SET_REGS");
  if (::ioctl(vcpu.get(), KVM_RUN, 0) != 0) return fail("KVM cannot run a vCPU (KVM_RUN)");
  auto* run = static_cast<kvm_run*>(run_mem);
  if (run->exit_reason != KVM_EXIT_HLT) {
    return "a KVM test guest stopped for reason " + std::to_string(run->exit_reason) +
           " instead of its hlt";
  }
  return "";
}

// A URI naming a hypervisor on this host (no host part), where /dev/kvm is ours to check.
bool isLocalUri(const std::string& uri) {
  auto pos = uri.find("://");
  return pos != std::string::npos && uri.compare(pos, 4, ":///") == 0;
}

// Waits until `done` says yes or `timeout` passes.
template <class F>
Result<bool> pollUntil(F done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto r = done();
    if (!r.ok() || *r) return r;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollStep);
  }
}

// A domain state in words, for messages.
std::string stateName(int state) {
  switch (state) {
    case VIR_DOMAIN_NOSTATE:
      return "in no state";
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "blocked";
    case VIR_DOMAIN_PAUSED:
      return "paused";
    case VIR_DOMAIN_SHUTDOWN:
      return "shutting down";
    case VIR_DOMAIN_SHUTOFF:
      return "shut off";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "suspended by the guest";
    default:
      return "in state " + std::to_string(state);
  }
}

bool sameExceptPorts(const SfSpec& a, const SfSpec& b) {
  return a.image == b.image && a.engine_json == b.engine_json && a.memory_mb == b.memory_mb &&
         a.cpus == b.cpus && a.config_json == b.config_json && a.log_path == b.log_path;
}

class KvmDriver final : public ComputeDriver {
 public:
  KvmDriver(std::string uri, std::string domain_type, std::string emulator, std::string machine)
      : conn_(std::move(uri)),
        forced_type_(std::move(domain_type)),
        emulator_(std::move(emulator)),
        machine_(std::move(machine)) {}

  std::string_view name() const override { return "kvm"; }
  bool updatesPorts() const override { return true; }

  Result<void> probe() override {
    auto conn = conn_.get();
    if (!conn.ok()) return std::move(conn).error();
    unsigned long hv = 0, lib = 0;
    if (virConnectGetVersion(conn->get(), &hv) != 0 ||
        virConnectGetLibVersion(conn->get(), &lib) != 0) {
      Error e = libvirtError("cannot read the versions of libvirt at " + conn_.uri());
      return Error(ErrorCode::Unavailable, e.message());
    }
    std::string why_not_kvm;
    std::string type = chooseType(conn->get(), &why_not_kvm);
    {
      std::lock_guard lock(mu_);
      type_ = type;
    }
    CORCH_LOG(lg, Info) << "libvirt " << versionText(lib) << " at " << conn_.uri()
                        << ", hypervisor " << versionText(hv) << ": "
                        << (type == "kvm" ? "KVM acceleration works; domains are type kvm"
                                          : "KVM unusable (" + why_not_kvm +
                                                "); domains are type qemu (TCG emulation)");
    return Ok();
  }

  // The domain type probe() chose ("qemu" before any probe: always works).
  std::string domainType() {
    std::lock_guard lock(mu_);
    return type_;
  }

  Result<void> createSf(const SfSpec& sf) override {
    const std::string doing = "cannot create VM " + sf.instance;
    auto engine = parseEngine(sf.engine_json);
    if (!engine.ok()) return engine.error().context(doing);
    auto config = domainConfig(sf, *engine, domainType(), emulator_, machine_);
    if (!config.ok()) return config.error().context(doing);
    CORCH_TRY(checkFiles(*config, doing));
    auto conn = conn_.get();
    if (!conn.ok()) return conn.error().context(doing);
    if (auto old = lookupDomain(conn->get(), sf.instance, doing); old.ok()) {
      auto state = domainState(old->get(), doing);
      if (state.ok() && *state != VIR_DOMAIN_SHUTOFF) {
        return Error(ErrorCode::AlreadyExists, doing + ": a VM of that name is running");
      }
    }
    const std::string xml = domainXml(*config);
    virDomainPtr raw = virDomainDefineXML(conn->get(), xml.c_str());
    if (raw == nullptr) return libvirtError(doing);
    DomainPtr dom(raw);
    CORCH_LOG(lg, Info) << "defined VM " << sf.instance << " (" << config->type << ", "
                        << config->vcpus << " vCPU, " << config->memory_mb << " MiB, "
                        << config->nics.size() << " NICs)";
    return Ok();
  }

  Result<void> startSf(const SfSpec& sf) override {
    const std::string doing = "cannot start VM " + sf.instance;
    auto dom = findDomain(sf.instance, doing);
    if (!dom.ok()) return std::move(dom).error();
    auto state = domainState(dom->get(), doing);
    if (!state.ok()) return std::move(state).error();
    if (*state == VIR_DOMAIN_PAUSED) {
      if (virDomainResume(dom->get()) != 0) return libvirtError(doing);
    } else if (*state != VIR_DOMAIN_RUNNING) {
      if (virDomainCreate(dom->get()) != 0) return libvirtError(doing);
    }
    auto running = pollUntil(
        [&]() -> Result<bool> {
          auto s = domainState(dom->get(), doing);
          if (!s.ok()) return std::move(s).error();
          return *s == VIR_DOMAIN_RUNNING;
        },
        sf.timeout);
    if (!running.ok()) return std::move(running).error();
    if (!*running) {
      (void)virDomainDestroy(dom->get());
      return Error(ErrorCode::Timeout, doing + ": it was not running after " +
                                           std::to_string(sf.timeout.count()) + " ms");
    }
    CORCH_LOG(lg, Info) << "started VM " << sf.instance;
    return Ok();
  }

  Result<void> stopSf(const SfSpec& sf) override {
    const std::string doing = "cannot stop VM " + sf.instance;
    auto engine = parseEngine(sf.engine_json);
    auto grace = engine.ok() ? engine->shutdown_timeout : EngineSettings{}.shutdown_timeout;
    auto dom = findDomain(sf.instance, doing);
    if (!dom.ok()) return dom.error().code() == ErrorCode::NotFound ? Ok() : dom.error();
    auto off = [&]() -> Result<bool> {
      auto s = domainState(dom->get(), doing);
      if (!s.ok()) return std::move(s).error();
      return *s == VIR_DOMAIN_SHUTOFF;
    };
    auto already = off();
    if (!already.ok()) return std::move(already).error();
    if (*already) return Ok();
    // A paused guest cannot see the power button.
    if (virDomainShutdown(dom->get()) == 0) {
      auto gone = pollUntil(off, std::min(grace, sf.timeout));
      if (gone.ok() && *gone) {
        CORCH_LOG(lg, Info) << "VM " << sf.instance << " shut down";
        return Ok();
      }
    }
    if (virDomainDestroy(dom->get()) != 0 && lastErrorCode() != VIR_ERR_OPERATION_INVALID) {
      return libvirtError(doing);
    }
    CORCH_LOG(lg, Info) << "VM " << sf.instance << " did not shut down within "
                        << std::min(grace, sf.timeout).count() << " ms; destroyed it";
    return Ok();
  }

  Result<void> pauseSf(const SfSpec& sf) override {
    const std::string doing = "cannot pause VM " + sf.instance;
    auto dom = findDomain(sf.instance, doing);
    if (!dom.ok()) return std::move(dom).error();
    if (virDomainSuspend(dom->get()) != 0) return libvirtError(doing);
    return Ok();
  }

  Result<void> updateSf(const SfSpec& before, const SfSpec& after) override {
    const std::string doing = "cannot update VM " + after.instance;
    if (!sameExceptPorts(before, after) || before.instance != after.instance) {
      return Error(ErrorCode::Unsupported,
                   doing + ": the kvm driver changes the ports of a running VM only");
    }
    auto nics = [&](const SfSpec& sf) -> Result<std::map<std::string, DomainNic>> {
      std::map<std::string, DomainNic> by_mac;
      for (const auto& port : sf.ports) {
        auto nic = nicFor(sf.instance, port);
        if (!nic.ok()) return nic.error().context(doing);
        by_mac[nic->mac] = *nic;
      }
      return by_mac;
    };
    auto old_nics = nics(before);
    if (!old_nics.ok()) return std::move(old_nics).error();
    auto new_nics = nics(after);
    if (!new_nics.ok()) return std::move(new_nics).error();
    for (const auto& [mac, nic] : *new_nics) {
      auto it = old_nics->find(mac);
      if (it != old_nics->end() &&
          (it->second.target != nic.target || it->second.technology != nic.technology)) {
        return Error(ErrorCode::Unsupported,
                     doing + ": the NIC " + mac + " changed its device; restart the VM");
      }
    }
    auto dom = findDomain(after.instance, doing);
    if (!dom.ok()) return std::move(dom).error();
    const int active = virDomainIsActive(dom->get());
    if (active < 0) return libvirtError(doing);
    const unsigned flags =
        VIR_DOMAIN_AFFECT_CONFIG | (active ? static_cast<unsigned>(VIR_DOMAIN_AFFECT_LIVE) : 0u);

    for (const auto& [mac, nic] : *old_nics) {
      if (new_nics->count(mac)) continue;
      const std::string xml = nicXml(nic);
      if (virDomainDetachDeviceFlags(dom->get(), xml.c_str(), flags) != 0) {
        return libvirtError(doing + ": cannot unplug the NIC " + mac + " (" + nic.target + ")");
      }
      if (active) CORCH_TRY(waitNicGone(dom->get(), mac, after.timeout, doing));
      CORCH_LOG(lg, Info) << "unplugged NIC " << mac << " (" << nic.target << ") from VM "
                          << after.instance;
    }
    for (const auto& [mac, nic] : *new_nics) {
      if (old_nics->count(mac)) continue;
      const std::string xml = nicXml(nic);
      if (virDomainAttachDeviceFlags(dom->get(), xml.c_str(), flags) != 0) {
        return libvirtError(doing + ": cannot plug the NIC " + mac + " (" + nic.target + ")");
      }
      CORCH_LOG(lg, Info) << "plugged NIC " << mac << " (" << nic.target << ") into VM "
                          << after.instance;
    }
    return Ok();
  }

  Result<void> adoptSf(const SfSpec& sf) override {
    const std::string doing = "cannot adopt VM " + sf.instance;
    auto dom = findDomain(sf.instance, doing);
    if (!dom.ok()) return std::move(dom).error();
    auto state = domainState(dom->get(), doing);
    if (!state.ok()) return std::move(state).error();
    if (*state != VIR_DOMAIN_RUNNING) {
      return Error(ErrorCode::Conflict, doing + ": it is " + stateName(*state) + ", not running");
    }
    auto xml = domainXmlOf(dom->get(), 0, doing);
    if (!xml.ok()) return std::move(xml).error();
    std::vector<DomainNic> live = nicsOfDomainXml(*xml);
    for (const auto& port : sf.ports) {
      auto nic = nicFor(sf.instance, port);
      if (!nic.ok()) return nic.error().context(doing);
      auto it = std::find_if(live.begin(), live.end(),
                             [&](const DomainNic& n) { return n.mac == nic->mac; });
      if (it == live.end()) {
        return Error(ErrorCode::Conflict, doing + ": port " + port.port_id +
                                              " is not attached (the VM has no NIC " + nic->mac +
                                              ")");
      }
      if (it->technology != nic->technology || it->target != nic->target) {
        return Error(ErrorCode::Conflict, doing + ": port " + port.port_id +
                                              " is not attached: its NIC " + nic->mac + " is on " +
                                              (it->target.empty() ? "something else" : it->target) +
                                              ", not " + nic->target);
      }
      live.erase(it);
    }
    if (!live.empty()) {
      return Error(ErrorCode::Conflict, doing + ": it has a NIC " + live.front().mac + " (" +
                                            live.front().target + ") that is no port of its spec");
    }
    CORCH_LOG(lg, Info) << "adopted running VM " << sf.instance;
    return Ok();
  }

  Result<std::vector<std::string>> listInstances(std::string_view prefix) override {
    const std::string doing = "cannot list the VMs";
    auto conn = conn_.get();
    if (!conn.ok()) return conn.error().context(doing);
    virDomainPtr* domains = nullptr;
    const int n = virConnectListAllDomains(conn->get(), &domains, 0);
    if (n < 0) return libvirtError(doing);
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      DomainPtr dom(domains[i]);  // frees it
      const char* name = virDomainGetName(dom.get());
      if (name != nullptr && std::string_view(name).starts_with(prefix)) out.emplace_back(name);
    }
    ::free(domains);
    return out;
  }

  Result<void> destroySf(const SfSpec& sf) override {
    const std::string doing = "cannot destroy VM " + sf.instance;
    auto dom = findDomain(sf.instance, doing);
    if (!dom.ok()) return dom.error().code() == ErrorCode::NotFound ? Ok() : dom.error();
    if (virDomainDestroy(dom->get()) != 0 && lastErrorCode() != VIR_ERR_OPERATION_INVALID) {
      return libvirtError(doing);
    }
    const unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                           VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM |
                           VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
    if (virDomainUndefineFlags(dom->get(), flags) != 0 && lastErrorCode() != VIR_ERR_NO_DOMAIN) {
      return libvirtError(doing);
    }
    CORCH_LOG(lg, Info) << "destroyed VM " << sf.instance;
    return Ok();
  }

 private:
  // The domain of a function, on the shared connection. (A domain holds a reference to its
  // connection: it stays usable if a reconnect replaces the shared one meanwhile.)
  Result<DomainPtr> findDomain(const std::string& instance, const std::string& doing) {
    auto conn = conn_.get();
    if (!conn.ok()) return conn.error().context(doing);
    return lookupDomain(conn->get(), instance, doing);
  }

  // "kvm" when asked for, or when "auto" and both libvirt and /dev/kvm say KVM works; else
  // "qemu", with the reason in *why_not.
  std::string chooseType(virConnectPtr conn, std::string* why_not) {
    if (forced_type_ == "kvm" || forced_type_ == "qemu") {
      *why_not = "domain-type set to qemu";
      return forced_type_;
    }
    char* caps = virConnectGetDomainCapabilities(conn, nullptr, nullptr, nullptr, "kvm", 0);
    if (caps == nullptr) {
      *why_not = libvirtError("libvirt has no kvm domains").message();
      return "qemu";
    }
    std::free(caps);
    if (isLocalUri(conn_.uri())) {
      *why_not = kvmUnusableReason();
      if (!why_not->empty()) return "qemu";
    }
    return "kvm";
  }

  // The files QEMU will open must exist: a clear error now rather than libvirt's at start.
  static Result<void> checkFiles(const DomainConfig& c, const std::string& doing) {
    for (const std::string* path : {&c.kernel, &c.initrd, &c.disk}) {
      struct stat st;
      if (!path->empty() && ::stat(path->c_str(), &st) != 0) {
        return errnoError(doing + ": cannot use " + *path, errno);
      }
    }
    return Ok();
  }

  // Unplugging is a request to the guest: wait until the NIC has left the live domain.
  static Result<void> waitNicGone(virDomainPtr dom, const std::string& mac,
                                  std::chrono::milliseconds timeout, const std::string& doing) {
    auto gone = pollUntil(
        [&]() -> Result<bool> {
          auto xml = domainXmlOf(dom, 0, doing);
          if (!xml.ok()) return std::move(xml).error();
          return xml->find("'" + mac + "'") == std::string::npos &&
                 xml->find("\"" + mac + "\"") == std::string::npos;
        },
        timeout);
    if (!gone.ok()) return std::move(gone).error();
    if (!*gone) {
      return Error(ErrorCode::Timeout, doing + ": the guest did not release the NIC " + mac +
                                           " within " + std::to_string(timeout.count()) + " ms");
    }
    return Ok();
  }

  Connection conn_;
  const std::string forced_type_;
  const std::string emulator_;
  const std::string machine_;
  std::mutex mu_;
  std::string type_ = "qemu";
};

}  // namespace

void registerDriver(DriverRegistry& registry) {
  (void)registry.addCompute(
      "kvm", [](const DriverOptions& options) -> Result<std::unique_ptr<ComputeDriver>> {
        for (const auto& [key, value] : options.values) {
          if (key != "uri" && key != "domain-type" && key != "emulator" && key != "machine") {
            return Error(ErrorCode::InvalidArgument,
                         "unknown option " + key +
                             " of the kvm driver (it knows uri, domain-type, emulator, machine)");
          }
        }
        std::string type = options.getOr("domain-type", "auto");
        if (type != "auto" && type != "kvm" && type != "qemu") {
          return Error(
              ErrorCode::InvalidArgument,
              "option domain-type of the kvm driver must be auto, kvm or qemu, not " + type);
        }
        return std::unique_ptr<ComputeDriver>(new KvmDriver(options.getOr("uri", "qemu:///system"),
                                                            type, options.getOr("emulator", ""),
                                                            options.getOr("machine", "")));
      });
}

}  // namespace corch::drivers::kvm
