// The CPU scheduler: the greedy placement described in scheduler.h. One request is planned on a
// snapshot of who owns which CPU (an OwnerMap) and committed only when every function of it has
// an answer, so that a strict request that fails leaves nothing behind.
#include "compute/scheduler.h"

#include <algorithm>
#include <deque>
#include <set>
#include <tuple>

namespace corch::compute {

namespace {

struct Owner {
  std::string graph_id;
  std::string sf_id;
};
using OwnerMap = std::map<unsigned, Owner>;  // dedicated CPU -> the function pinned there

OwnerMap owners(const std::map<std::string, Placement>& graphs) {
  OwnerMap out;
  for (const auto& [graph_id, placement] : graphs) {
    for (const auto& [sf_id, sf] : placement.functions) {
      for (unsigned cpu : sf.cpus) out[cpu] = Owner{graph_id, sf_id};
    }
  }
  return out;
}

bool contains(const std::vector<unsigned>& sorted, unsigned cpu) {
  return std::binary_search(sorted.begin(), sorted.end(), cpu);
}

bool pinnedType(const FunctionRequest& f) {
  return f.type == "dpdk" || f.type == "kvm" || f.dedicated;
}

// One function's neighbours in the order they are looked at: those of the request in graph order,
// then those placed earlier, by id.
using Neighbours = std::map<std::string, std::vector<std::string>>;

Neighbours neighboursOf(const PlacementRequest& request) {
  std::map<std::string, std::size_t> rank;
  for (std::size_t i = 0; i < request.functions.size(); ++i) rank[request.functions[i].sf_id] = i;
  auto key = [&](const std::string& id) {
    auto it = rank.find(id);
    return std::make_pair(it == rank.end() ? request.functions.size() : it->second, id);
  };
  std::map<std::string, std::set<std::string>> sets;
  for (const auto& [a, b] : request.adjacency) {
    if (a == b) continue;
    sets[a].insert(b);
    sets[b].insert(a);
  }
  Neighbours out;
  for (auto& [id, set] : sets) {
    std::vector<std::string> list(set.begin(), set.end());
    std::sort(list.begin(), list.end(),
              [&](const std::string& x, const std::string& y) { return key(x) < key(y); });
    out[id] = std::move(list);
  }
  return out;
}

// Step 1: graph order, each function followed by its not yet ordered neighbours (breadth first).
std::vector<const FunctionRequest*> placementOrder(const PlacementRequest& request,
                                                   const Neighbours& neighbours) {
  std::map<std::string, const FunctionRequest*> by_id;
  for (const FunctionRequest& f : request.functions) by_id[f.sf_id] = &f;
  std::vector<const FunctionRequest*> order;
  std::set<std::string> seen;
  for (const FunctionRequest& start : request.functions) {
    if (!seen.insert(start.sf_id).second) continue;
    std::deque<const FunctionRequest*> queue{&start};
    while (!queue.empty()) {
      const FunctionRequest* f = queue.front();
      queue.pop_front();
      order.push_back(f);
      auto it = neighbours.find(f->sf_id);
      if (it == neighbours.end()) continue;
      for (const std::string& n : it->second) {
        auto req = by_id.find(n);
        if (req != by_id.end() && seen.insert(n).second) queue.push_back(req->second);
      }
    }
  }
  return order;
}

Result<void> validate(const PlacementRequest& request, const Placement& existing) {
  std::set<std::string> ids;
  for (const FunctionRequest& f : request.functions) {
    if (!ids.insert(f.sf_id).second) {
      return Error(ErrorCode::InvalidArgument, "cannot place graph " + request.graph_id +
                                                   ": function " + f.sf_id + " is listed twice");
    }
  }
  for (const auto& [a, b] : request.adjacency) {
    for (const std::string& id : {a, b}) {
      if (ids.count(id) == 0 && existing.functions.count(id) == 0) {
        return Error(ErrorCode::InvalidArgument, "cannot place graph " + request.graph_id +
                                                     ": adjacency names unknown function " + id);
      }
    }
  }
  return Ok();
}

// Plans one function of one request against the CPUs still free.
class FunctionPlanner {
 public:
  FunctionPlanner(const CpuTopology& topology, const std::vector<unsigned>& reserved,
                  unsigned min_shared, const OwnerMap& owned, const std::string& graph_id)
      : topology_(topology),
        reserved_(reserved),
        min_shared_(min_shared),
        owned_(owned),
        graph_id_(graph_id) {}

  // The function's placement, or ResourceExhausted when strict and short of CPUs.
  Result<SfPlacement> plan(const FunctionRequest& f, const std::vector<std::string>& neighbours,
                           const Placement& placed, bool best_effort);

 private:
  struct Anchor {  // a placed neighbour
    std::string sf_id;
    std::vector<unsigned> cpus;
  };

  std::vector<unsigned> freeCpus() const;
  std::size_t plainBudget(const std::vector<unsigned>& free) const;
  unsigned chooseNuma(const std::vector<unsigned>& free, const std::vector<Anchor>& anchors,
                      unsigned wanted, bool& fits) const;
  std::vector<unsigned> pick(std::vector<unsigned> candidates, std::size_t plain_budget,
                             unsigned wanted, const std::vector<Anchor>& anchors) const;
  bool foreignOnCore(unsigned cpu, const std::vector<Anchor>& anchors) const;
  std::string note(const std::vector<unsigned>& cpus, const std::vector<Anchor>& anchors) const;

  const CpuTopology& topology_;
  const std::vector<unsigned>& reserved_;
  unsigned min_shared_;
  const OwnerMap& owned_;
  const std::string& graph_id_;
};

// Online CPUs neither reserved nor dedicated.
std::vector<unsigned> FunctionPlanner::freeCpus() const {
  std::vector<unsigned> out;
  for (const Cpu& cpu : topology_.cpus) {
    if (!contains(reserved_, cpu.id) && owned_.count(cpu.id) == 0) out.push_back(cpu.id);
  }
  return out;
}

// How many non-isolated CPUs of `free` may be dedicated and still leave min_shared shared ones.
std::size_t FunctionPlanner::plainBudget(const std::vector<unsigned>& free) const {
  std::size_t shared = 0;
  for (const Cpu& cpu : topology_.cpus) {
    if (owned_.count(cpu.id) == 0 && !topology_.isIsolated(cpu.id)) ++shared;
  }
  std::size_t plain =
      std::count_if(free.begin(), free.end(), [&](unsigned c) { return !topology_.isIsolated(c); });
  std::size_t spare = shared > min_shared_ ? shared - min_shared_ : 0;
  return std::min(plain, spare);
}

// Step 3. `fits` is false when no single node has room (then CPUs come from every node).
unsigned FunctionPlanner::chooseNuma(const std::vector<unsigned>& free,
                                     const std::vector<Anchor>& anchors, unsigned wanted,
                                     bool& fits) const {
  std::map<unsigned, unsigned> free_per_node;
  for (unsigned c : free) ++free_per_node[topology_.find(c)->numa];
  fits = true;
  if (!anchors.empty()) {
    unsigned node = topology_.find(anchors.front().cpus.front())->numa;
    if (free_per_node[node] >= wanted) return node;
  }
  unsigned best = 0;
  unsigned best_free = 0;
  for (const auto& [node, count] : free_per_node) {
    if (count > best_free) std::tie(best, best_free) = std::tie(node, count);
  }
  fits = best_free >= wanted;
  return best;
}

// True when another thread of cpu's core is reserved or dedicated to a function that is not a
// neighbour: sharing a core with it would make the two slow each other down.
bool FunctionPlanner::foreignOnCore(unsigned cpu, const std::vector<Anchor>& anchors) const {
  for (unsigned t : topology_.siblingsOf(cpu)) {
    if (contains(reserved_, t)) return true;
    auto owner = owned_.find(t);
    if (owner == owned_.end()) continue;
    bool neighbour = owner->second.graph_id == graph_id_ &&
                     std::any_of(anchors.begin(), anchors.end(),
                                 [&](const Anchor& a) { return a.sf_id == owner->second.sf_id; });
    if (!neighbour) return true;
  }
  return false;
}

// Step 4, one CPU at a time: the ranking changes as the function's own CPUs are picked (a sibling
// of a CPU already picked keeps the function on as few cores as possible).
std::vector<unsigned> FunctionPlanner::pick(std::vector<unsigned> candidates,
                                            std::size_t plain_budget, unsigned wanted,
                                            const std::vector<Anchor>& anchors) const {
  std::vector<unsigned> near;  // CPUs whose siblings rank first
  for (const Anchor& a : anchors) near.insert(near.end(), a.cpus.begin(), a.cpus.end());
  auto rank = [&](unsigned c) {
    std::vector<unsigned> sib = topology_.siblingsOf(c);
    bool is_near = std::any_of(sib.begin(), sib.end(), [&](unsigned s) {
      return std::find(near.begin(), near.end(), s) != near.end();
    });
    return std::make_tuple(!is_near, foreignOnCore(c, anchors), !topology_.isIsolated(c), c);
  };
  std::vector<unsigned> chosen;
  while (chosen.size() < wanted) {
    auto usable = [&](unsigned c) { return topology_.isIsolated(c) || plain_budget > 0; };
    auto best = candidates.end();
    for (auto it = candidates.begin(); it != candidates.end(); ++it) {
      if (usable(*it) && (best == candidates.end() || rank(*it) < rank(*best))) best = it;
    }
    if (best == candidates.end()) break;
    if (!topology_.isIsolated(*best)) --plain_budget;
    chosen.push_back(*best);
    near.push_back(*best);
    candidates.erase(best);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

std::string FunctionPlanner::note(const std::vector<unsigned>& cpus,
                                  const std::vector<Anchor>& anchors) const {
  std::set<unsigned> nodes;
  for (unsigned c : cpus) nodes.insert(topology_.find(c)->numa);
  std::string out = "dedicated " + formatCpuList(cpus) + " (NUMA " +
                    formatCpuList(std::vector<unsigned>(nodes.begin(), nodes.end()));
  if (std::all_of(cpus.begin(), cpus.end(), [&](unsigned c) { return topology_.isIsolated(c); })) {
    out += ", isolated";
  }
  for (const Anchor& a : anchors) {
    std::string relation;
    for (unsigned c : cpus) {
      for (unsigned s : topology_.siblingsOf(c)) {
        if (relation.empty() && contains(a.cpus, s)) {
          relation = "sibling of " + a.sf_id + "'s " + std::to_string(s);
        }
      }
    }
    if (relation.empty()) {
      bool same = nodes.size() == 1 && topology_.find(a.cpus.front())->numa == *nodes.begin();
      relation = same ? "same NUMA node as " + a.sf_id : "not near " + a.sf_id + ": no room";
    }
    out += ", " + relation;
  }
  return out + ")";
}

Result<SfPlacement> FunctionPlanner::plan(const FunctionRequest& f,
                                          const std::vector<std::string>& neighbours,
                                          const Placement& placed, bool best_effort) {
  if (!pinnedType(f)) return SfPlacement{{}, "shared: " + f.type + " functions are not pinned"};
  const unsigned wanted = std::max(1u, f.cores);

  std::vector<unsigned> free = freeCpus();
  const std::size_t budget = plainBudget(free);
  const std::size_t isolated =
      std::count_if(free.begin(), free.end(), [&](unsigned c) { return topology_.isIsolated(c); });
  const std::size_t available = isolated + budget;
  if (available < wanted) {
    std::string needs = std::to_string(wanted) + " dedicated core" + (wanted > 1 ? "s" : "") +
                        ", " + std::to_string(available) + " free";
    if (!best_effort) {
      return Error(ErrorCode::ResourceExhausted,
                   "cannot place graph " + graph_id_ + ": function " + f.sf_id + " needs " + needs);
    }
    return SfPlacement{{}, "shared: no free core (needs " + needs + ")"};
  }

  std::vector<Anchor> anchors;
  for (const std::string& n : neighbours) {
    auto it = placed.functions.find(n);
    if (it != placed.functions.end() && !it->second.cpus.empty()) {
      anchors.push_back({n, it->second.cpus});
    }
  }
  bool fits = false;
  unsigned node = chooseNuma(free, anchors, wanted, fits);
  std::vector<unsigned> cpus;
  if (fits) {
    std::vector<unsigned> local;
    for (unsigned c : free) {
      if (topology_.find(c)->numa == node) local.push_back(c);
    }
    cpus = pick(local, budget, wanted, anchors);
  }
  // The node had room but not within the shared-CPU budget, or no node had room alone.
  if (cpus.size() < wanted) cpus = pick(free, budget, wanted, anchors);
  return SfPlacement{cpus, note(cpus, anchors)};
}

}  // namespace

std::vector<unsigned> Placement::cpusOf(const std::string& sf_id) const {
  auto it = functions.find(sf_id);
  return it == functions.end() ? std::vector<unsigned>{} : it->second.cpus;
}

CpuScheduler::CpuScheduler(CpuTopology topology, std::vector<unsigned> reserved,
                           unsigned min_shared)
    : topology_(std::move(topology)), reserved_(std::move(reserved)), min_shared_(min_shared) {}

Result<std::unique_ptr<CpuScheduler>> CpuScheduler::create(CpuTopology topology,
                                                           SchedulerOptions options) {
  if (topology.cpus.empty()) {
    return Error(ErrorCode::InvalidArgument, "cannot create the CPU scheduler: no online CPU");
  }
  std::vector<unsigned> reserved;
  if (options.reserved) {
    std::set<unsigned> set(options.reserved->begin(), options.reserved->end());
    for (unsigned cpu : set) {
      if (topology.find(cpu) == nullptr) {
        return Error(ErrorCode::InvalidArgument, "cannot create the CPU scheduler: reserved CPU " +
                                                     std::to_string(cpu) + " is not online");
      }
    }
    reserved.assign(set.begin(), set.end());
  } else if (topology.coreCount() > 2) {
    reserved = topology.cpus.front().threads;
  }
  return std::unique_ptr<CpuScheduler>(
      new CpuScheduler(std::move(topology), std::move(reserved), options.min_shared));
}

Result<Placement> CpuScheduler::place(const PlacementRequest& request) {
  std::lock_guard lock(mutex_);
  Placement placement;
  if (auto it = graphs_.find(request.graph_id); it != graphs_.end()) placement = it->second;
  CORCH_TRY(validate(request, placement));

  const Neighbours neighbours = neighboursOf(request);
  OwnerMap owned = owners(graphs_);
  FunctionPlanner planner(topology_, reserved_, min_shared_, owned, request.graph_id);
  for (const FunctionRequest* f : placementOrder(request, neighbours)) {
    if (placement.functions.count(f->sf_id) != 0) continue;  // running: not moved
    auto n = neighbours.find(f->sf_id);
    Result<SfPlacement> sf =
        planner.plan(*f, n == neighbours.end() ? std::vector<std::string>{} : n->second, placement,
                     request.best_effort);
    if (!sf) return std::move(sf).error();
    for (unsigned cpu : sf->cpus) owned[cpu] = Owner{request.graph_id, f->sf_id};
    placement.functions[f->sf_id] = std::move(*sf);
  }
  graphs_[request.graph_id] = placement;
  return placement;
}

Result<void> CpuScheduler::restore(const std::string& graph_id, const Placement& placement) {
  std::lock_guard lock(mutex_);
  const OwnerMap owned = owners(graphs_);
  for (const auto& [sf_id, sf] : placement.functions) {
    auto fail = [&, &sf_id = sf_id](unsigned cpu, const std::string& why) {
      return Error(ErrorCode::Conflict, "cannot restore the placement of function " + sf_id +
                                            " of graph " + graph_id + ": CPU " +
                                            std::to_string(cpu) + " " + why);
    };
    for (unsigned cpu : sf.cpus) {
      if (topology_.find(cpu) == nullptr) return fail(cpu, "is not online");
      if (contains(reserved_, cpu)) return fail(cpu, "is reserved for the node");
      auto owner = owned.find(cpu);
      if (owner != owned.end() &&
          (owner->second.graph_id != graph_id || owner->second.sf_id != sf_id)) {
        return fail(cpu, "is dedicated to function " + owner->second.sf_id + " of graph " +
                             owner->second.graph_id);
      }
    }
  }
  Placement& current = graphs_[graph_id];
  for (const auto& [sf_id, sf] : placement.functions) {
    SfPlacement copy = sf;
    std::sort(copy.cpus.begin(), copy.cpus.end());
    current.functions[sf_id] = std::move(copy);
  }
  return Ok();
}

void CpuScheduler::release(const std::string& graph_id) {
  std::lock_guard lock(mutex_);
  graphs_.erase(graph_id);
}

void CpuScheduler::release(const std::string& graph_id, const std::string& sf_id) {
  std::lock_guard lock(mutex_);
  auto it = graphs_.find(graph_id);
  if (it == graphs_.end()) return;
  it->second.functions.erase(sf_id);
  if (it->second.functions.empty()) graphs_.erase(it);
}

Placement CpuScheduler::current(const std::string& graph_id) const {
  std::lock_guard lock(mutex_);
  auto it = graphs_.find(graph_id);
  return it == graphs_.end() ? Placement{} : it->second;
}

std::vector<unsigned> CpuScheduler::sharedCpus() const {
  std::lock_guard lock(mutex_);
  const OwnerMap owned = owners(graphs_);
  std::vector<unsigned> out;
  for (const Cpu& cpu : topology_.cpus) {
    if (owned.count(cpu.id) == 0 && !topology_.isIsolated(cpu.id)) out.push_back(cpu.id);
  }
  return out;
}

}  // namespace corch::compute
