// The CPU scheduler (paper 5.3): which logical CPUs each function of a graph is pinned to.
//
// DPDK and VM functions get CPUs of their own ("dedicated": no other function is pinned there and
// the node's reserved CPUs are never given away); native and docker functions float on the shared
// CPUs unless their request asks for dedicated ones. Functions joined by a point-to-point link
// are put on SMT siblings of their neighbour (the same physical core, so they share its L1/L2
// caches) or at least on its NUMA node. When there are not enough free CPUs, a best-effort request
// leaves the function unpinned and says so in its note; a strict one is refused.
//
// CPU pools, from the topology:
//   reserved  CPUs for the node itself (corchd, the vSwitch, the kernel): never dedicated.
//             Default: the first core (CPU 0 and its SMT siblings) when the node has more than
//             two physical cores, none otherwise.
//   isolated  CPUs the administrator removed from the kernel's scheduler (isolcpus=): preferred
//             for dedicated functions, never shared (the kernel does not balance load onto them).
//   shared    online - dedicated - isolated: where unpinned functions float (sharedCpus()).
//             Dedicating never leaves fewer than `min_shared` of them, so the node and its
//             unpinned functions always have somewhere to run.
//
// Algorithm of place(), greedy and deterministic (no randomness, no unordered containers):
//  1. Order: the request's functions in graph order, but each function is followed by its not yet
//     ordered neighbours (a breadth-first walk of the adjacency, neighbours in graph order), so
//     a neighbour is placed right after the function it should sit next to.
//  2. Cores wanted: dpdk and kvm always, others only when `dedicated`; max(1, cores) of them.
//  3. NUMA node: the node of the first already-placed neighbour if it has enough free CPUs;
//     otherwise the node with the most free CPUs that has enough (lowest id on ties); otherwise
//     CPUs are taken across nodes.
//  4. CPUs within it, best first: SMT siblings of a neighbour's CPUs; then CPUs whose core holds
//     no other function's (or the node's reserved) threads; then isolated before shared; then
//     lowest id.
//  5. Not enough free CPUs: best effort -> unpinned, note "shared: no free core (...)"; strict
//     -> ResourceExhausted ("function fwd needs 2 dedicated cores, 1 free") and nothing of the
//     request is kept.
// Functions of the graph already placed by an earlier place() keep their CPUs (a running function
// is not moved; an update passes the whole new graph) and count as neighbours.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compute/cpu_topology.h"
#include "corch/error.h"

namespace corch::compute {

struct SchedulerOptions {
  // CPUs kept for the node itself; unset: the default described above.
  std::optional<std::vector<unsigned>> reserved;
  // Shared CPUs that dedication always leaves (see above); 0 lets functions take every CPU.
  unsigned min_shared = 1;
};

// One function of a graph to place.
struct FunctionRequest {
  std::string sf_id;
  std::string type;        // template type: "native", "docker", "kvm", "dpdk"
  unsigned cores = 0;      // ceil of the template's cpu-cores; 0 counts as 1 when pinned
  bool dedicated = false;  // native or docker asking for dedicated CPUs (dpdk and kvm always are)
};

struct PlacementRequest {
  std::string graph_id;
  std::vector<FunctionRequest> functions;  // in graph order
  // Pairs of sf ids joined by a point-to-point link (two SF ports on one flow-rule path), in
  // either order. May name functions of the graph placed by an earlier place().
  std::vector<std::pair<std::string, std::string>> adjacency;
  bool best_effort = true;  // false: strict, ResourceExhausted instead of unpinned
};

struct SfPlacement {
  std::vector<unsigned> cpus;  // sorted; empty: unpinned, floats on sharedCpus()
  // Why: "dedicated 2-3 (NUMA 0, sibling of fw's 1)", "shared: no free core (...)".
  std::string note;
  bool operator==(const SfPlacement&) const = default;
};

struct Placement {
  std::map<std::string, SfPlacement> functions;  // by sf id
  // The CPUs of one function; empty when unpinned or unknown.
  std::vector<unsigned> cpusOf(const std::string& sf_id) const;
  bool operator==(const Placement&) const = default;
};

// Thread-safe: every member may be called from any thread.
class CpuScheduler {
 public:
  // InvalidArgument when a reserved CPU is not online ("reserved CPU 9 is not online").
  static Result<std::unique_ptr<CpuScheduler>> create(CpuTopology topology,
                                                      SchedulerOptions options = {});

  // Places the request's functions not yet placed for its graph and records them; returns the
  // graph's whole placement (earlier functions included). InvalidArgument for a request that
  // names a function twice or an adjacency with an unknown function; ResourceExhausted for a
  // strict request that cannot be met (then nothing is recorded).
  Result<Placement> place(const PlacementRequest& request);

  // Records a placement found again after a restart (the functions still run where they were
  // pinned). Conflict when a CPU is reserved, not online, or dedicated to another function.
  Result<void> restore(const std::string& graph_id, const Placement& placement);

  // Forgets a graph's functions, or one of them; their CPUs become free. Unknown ids are ignored.
  void release(const std::string& graph_id);
  void release(const std::string& graph_id, const std::string& sf_id);

  // The graph's placement; empty when unknown.
  Placement current(const std::string& graph_id) const;
  // Online CPUs minus dedicated and isolated ones, sorted: where unpinned functions float.
  std::vector<unsigned> sharedCpus() const;
  const std::vector<unsigned>& reservedCpus() const { return reserved_; }
  const CpuTopology& topology() const { return topology_; }

 private:
  CpuScheduler(CpuTopology topology, std::vector<unsigned> reserved, unsigned min_shared);

  CpuTopology topology_;
  std::vector<unsigned> reserved_;
  unsigned min_shared_;

  mutable std::mutex mutex_;
  std::map<std::string, Placement> graphs_;  // guarded by mutex_
};

}  // namespace corch::compute
