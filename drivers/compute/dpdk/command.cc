// The command line of a DPDK function (command.h).
#include "command.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "compute/common/function_netns.h"

namespace corch::drivers::dpdk {
namespace {

std::string joined(const std::vector<unsigned>& cpus) {
  std::string out;
  for (unsigned c : cpus) out += (out.empty() ? "" : ",") + std::to_string(c);
  return out;
}

// The EAL device of port i: af_packet on the veth end inside the namespace, or virtio-user as
// the vhost-user server of the switch's socket (the switch is the client and reconnects).
std::string vdev(const SfPortBinding& port, size_t i) {
  const std::string n = std::to_string(i);
  if (port.technology == PortTechnology::VhostUser) {
    return "--vdev=net_virtio_user" + n + ",path=" + port.ifname + ",server=1,queues=1";
  }
  return "--vdev=net_af_packet" + n + ",iface=" + common::ifnameInside(i);
}

// One value of /proc/meminfo ("HugePages_Free:  12"), 0 when absent.
uint64_t meminfo(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream value(line.substr(key.size() + 1));
    uint64_t n = 0;
    value >> n;
    return n;
  }
  return 0;
}

bool hugetlbfsMounted() {
  std::ifstream in("/proc/mounts");
  std::string device, dir, type;
  std::string rest;
  while (in >> device >> dir >> type && std::getline(in, rest)) {
    if (type == "hugetlbfs") return true;
  }
  return false;
}

}  // namespace

uint64_t memoryMb(const SfSpec& sf) {
  return std::max(sf.memory_mb == 0 ? kDefaultMemoryMb : sf.memory_mb, kMinMemoryMb);
}

std::string filePrefix(const SfSpec& sf) { return sf.instance; }
std::string runtimeDir(const SfSpec& sf) { return "/var/run/dpdk/" + filePrefix(sf); }

std::string lcores(const std::vector<unsigned>& dedicated, const std::vector<unsigned>& machine) {
  if (dedicated.empty())
    return "(0,1)@(" + joined(machine.empty() ? std::vector{0u} : machine) + ")";
  std::string out = "0@" + std::to_string(dedicated.front());
  for (size_t i = 0; i < dedicated.size(); ++i) {
    out += "," + std::to_string(i + 1) + "@" + std::to_string(dedicated[i]);
  }
  return out;
}

std::vector<std::string> commandLine(const SfSpec& sf, const Engine& engine,
                                     const std::string& program, const Machine& machine) {
  std::vector<std::string> argv = {program,    "--lcores=" + lcores(sf.cpus, machine.cpus),
                                   "-m",       std::to_string(memoryMb(sf)),
                                   "--no-pci", "--file-prefix=" + filePrefix(sf)};
  // Without hugepages EAL backs its memory with a memfd (legacy mode, which --in-memory refuses),
  // still shareable with a vhost-user switch; --no-shconf keeps its runtime folder empty.
  if (machine.hugepages) {
    argv.push_back("--in-memory");
    // vhost-user shares at most 8 memory regions with the switch, and EAL makes one file per
    // hugepage unless asked for one per segment list.
    bool vhost = std::any_of(sf.ports.begin(), sf.ports.end(), [](const SfPortBinding& p) {
      return p.technology == PortTechnology::VhostUser;
    });
    if (vhost) argv.push_back("--single-file-segments");
  } else {
    argv.insert(argv.end(), {"--no-huge", "--no-shconf"});
  }
  for (size_t i = 0; i < sf.ports.size(); ++i) argv.push_back(vdev(sf.ports[i], i));
  argv.insert(argv.end(), engine.extra_eal.begin(), engine.extra_eal.end());
  argv.push_back("--");
  if (engine.isTestpmd()) {
    // Without -i testpmd forwards at once; --stats-period keeps it running (it would otherwise
    // wait for "enter" on stdin, which is /dev/null, and quit) until SIGINT or SIGTERM.
    argv.insert(argv.end(), {"--forward-mode=" + engine.forward_mode,
                             "--total-num-mbufs=" + std::to_string(engine.mbufs),
                             "--stats-period=" + std::to_string(engine.stats_period)});
    // One forwarding lcore per dedicated core, as long as there are streams (one per port) for
    // them.
    size_t forwarders = std::min(sf.cpus.size(), sf.ports.size());
    if (forwarders > 1) argv.push_back("--nb-cores=" + std::to_string(forwarders));
  }
  argv.insert(argv.end(), engine.args.begin(), engine.args.end());
  return argv;
}

bool hugepagesFree(uint64_t mb) {
  const uint64_t page_kb = meminfo("Hugepagesize");
  if (page_kb == 0 || !hugetlbfsMounted()) return false;
  // Pages reserved for a mapping (a hugetlbfs mount's min_size, another DPDK process) are counted
  // as free but cannot be had.
  const uint64_t free = meminfo("HugePages_Free"), reserved = meminfo("HugePages_Rsvd");
  return (free > reserved ? free - reserved : 0) * page_kb >= mb * 1024;
}

std::vector<unsigned> allowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<unsigned> cpus;
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

}  // namespace corch::drivers::dpdk
