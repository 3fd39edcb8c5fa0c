// The command line of a DPDK function: EAL arguments (cores, memory, one virtual device per port,
// runtime files), then the program's own after "--". Pure functions of their inputs, apart from
// the two that read the machine (hugepagesFree, allowedCpus), so the choices are testable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "corch/compute.h"
#include "engine.h"

namespace corch::drivers::dpdk {

// What the command depends on besides the SfSpec and the engine settings.
struct Machine {
  bool hugepages = false;      // a mounted hugetlbfs with enough free pages for the function
  std::vector<unsigned> cpus;  // the CPUs corchd may use: where a function without cores floats
};

// The memory given to EAL (-m): the template's memory-mb, else kDefaultMemoryMb, at least
// kMinMemoryMb.
inline constexpr uint64_t kDefaultMemoryMb = 256;
inline constexpr uint64_t kMinMemoryMb = 64;
uint64_t memoryMb(const SfSpec& sf);

// The name of the function's DPDK runtime folder (--file-prefix): /var/run/dpdk/<prefix> for
// root, whatever the environment says (EAL hard-codes it), so destroySf removes it.
std::string filePrefix(const SfSpec& sf);
std::string runtimeDir(const SfSpec& sf);

// The --lcores value. Lcore 0 is EAL's main lcore; it only starts the others and then sleeps (in
// testpmd, in its statistics loop), so it shares a core rather than take one of its own. With
// dedicated cores c0..cn-1: "0@c0,1@c0,2@c1,...,n@cn-1" (lcores 1..n forward, one per core).
// Without: "(0,1)@(<machine cpus>)", both floating on every CPU corchd may use.
std::string lcores(const std::vector<unsigned>& dedicated, const std::vector<unsigned>& machine);

// The whole argv: program, EAL arguments, "--", then (testpmd) the driver's testpmd arguments and
// engine/args. Unsupported ports (not veth or vhost-user) are the caller's to refuse.
std::vector<std::string> commandLine(const SfSpec& sf, const Engine& engine,
                                     const std::string& program, const Machine& machine);

// Whether a hugetlbfs is mounted and HugePages_Free (of the default size) covers `mb`.
bool hugepagesFree(uint64_t mb);
// The CPUs this process may run on (sched_getaffinity).
std::vector<unsigned> allowedCpus();

}  // namespace corch::drivers::dpdk
