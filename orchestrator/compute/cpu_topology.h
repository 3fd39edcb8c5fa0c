// The node's CPU topology as the kernel describes it in sysfs: which logical CPUs are online,
// which physical core, package and NUMA node each belongs to, which are its SMT siblings, and
// which CPUs the administrator isolated from the kernel's scheduler (isolcpus=). The CPU scheduler
// (scheduler.h) places functions on it.
//
// Files read, under a sysfs root ("/sys" on a node, a fake tree in tests):
//   devices/system/cpu/online                              CPU list, required
//   devices/system/cpu/cpuN/topology/core_id               required for each online CPU
//   devices/system/cpu/cpuN/topology/physical_package_id   required for each online CPU
//   devices/system/cpu/cpuN/topology/thread_siblings_list  CPU list, required for each online CPU
//   devices/system/node/nodeM/cpulist                      optional: without it every CPU is on
//                                                          NUMA node 0
//   devices/system/cpu/isolated                            optional: empty when absent
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"

namespace corch::compute {

// Parses the kernel's CPU list syntax: comma-separated numbers and inclusive ranges, such as
// "0-3,8,10-11" (surrounding white space and a trailing newline allowed; an empty text is an
// empty list). Returns the CPUs sorted, without duplicates. InvalidArgument says what is wrong
// and where ("bad CPU list \"0-\": range 1 has no end").
Result<std::vector<unsigned>> parseCpuList(std::string_view text);

// The inverse of parseCpuList for a sorted list: consecutive runs as ranges ("0-3,8,10-11"),
// "" for an empty list.
std::string formatCpuList(const std::vector<unsigned>& cpus);

struct Cpu {
  unsigned id = 0;       // logical CPU number (what sched_setaffinity, vCPU pinning, -l take)
  unsigned core = 0;     // core_id: unique only within a package
  unsigned package = 0;  // physical_package_id (socket)
  unsigned numa = 0;     // NUMA node
  // The online logical CPUs of the same physical core, this one included, sorted.
  std::vector<unsigned> threads;
  bool operator==(const Cpu&) const = default;
};

struct CpuTopology {
  std::vector<Cpu> cpus;           // the online CPUs, sorted by id
  std::vector<unsigned> isolated;  // online CPUs listed in cpu/isolated, sorted

  // The CPU with this id, or nullptr when it is not online.
  const Cpu* find(unsigned id) const;
  // The ids of every online CPU, sorted.
  std::vector<unsigned> ids() const;
  // The other online threads of cpu's physical core (cpu excluded); empty for an unknown cpu.
  std::vector<unsigned> siblingsOf(unsigned cpu) const;
  // The online CPUs of one NUMA node, sorted.
  std::vector<unsigned> cpusOfNuma(unsigned node) const;
  // The NUMA nodes that have online CPUs, sorted.
  std::vector<unsigned> numaNodes() const;
  // The number of physical cores (distinct package and core id pairs) with online CPUs.
  std::size_t coreCount() const;
  bool isIsolated(unsigned cpu) const;
};

// Reads the topology under `sysfs_root`. Errors name the file and what is wrong with it
// ("cannot read CPU topology: /sys/devices/system/cpu/cpu3/topology/core_id: ...").
Result<CpuTopology> readCpuTopology(const std::filesystem::path& sysfs_root = "/sys");

}  // namespace corch::compute
