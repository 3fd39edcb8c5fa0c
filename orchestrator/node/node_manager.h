// The node resource manager (paper 5.3, Figure 7): handles the graphs received over the
// northbound API. A PUT validates and resolves the graph, admits it (resources), plans its
// network, and only then builds, each step recorded in the PUT's undo log (its transaction):
// graph-LSI with its vlinks and SF ports, functions (in parallel), rules on the graph-LSI, rules
// on LSI-0. Any failure rolls the log back, so nothing half-built remains.
//
// What a deployed graph owns is kept as state, not as a log: its graph, its network plan (with
// the stable numbers of network_manager.h), what was built on the switch (port numbers, vlinks)
// and its functions. DELETE (and shutdown) rebuild the undo log from that state -- the same
// entries a deploy would have recorded, with the same undo calls -- and roll it back. This is
// what keeps DELETE complete after any number of updates: there is no per-step log to keep in
// step with the changes, only the state, which an update replaces when it commits.
//
// A PUT on a deployed graph (an update) applies only the difference (graph/diff.h, and the rule
// diff of steering.h), as a transaction of its own:
//   1. vlinks added if Algorithm 1 needs more (existing ones keep their index);
//   2. ports made for added SFs and for changed SFs (which take a new SF number, so new names);
//   3. changed SFs stopped and destroyed (their undo rebuilds the old function on its old ports);
//   4. added and changed SFs created and started, in parallel;
//   5. new and changed rules installed, graph-LSI then LSI-0 (an OpenFlow add replaces a rule of
//      the same key in place); 6. rules no longer wanted removed strictly, LSI-0 first.
// Unchanged SFs are not touched (same process) and unchanged rules are not reinstalled. A failure
// in 1-6 rolls the transaction back: the previous version runs as before (a changed SF is
// restarted on its old ports). Then the update commits, and only removals remain: removed SFs
// (and the old ports of changed ones) are stopped and destroyed. Those cannot break the new
// version; one that fails is kept in the state as a leftover that DELETE retries.
//
// Restart (issue 6): every deployed graph is stored (graph_store.h) with the names and numbers
// its build used, before the API answers, and forgotten before a DELETE tears it down. A corchd
// that stops (SIGTERM) tears its graphs down and keeps them stored; one that is killed (SIGKILL,
// a crash) or upgraded in place leaves them running. start():
//   1. removes every function and LSI of this node's prefix that no stored graph owns (what a
//      killed corchd left, half-built graphs included), keeping LSI-0 and the stored graphs'
//      graph-LSIs and functions;
//   2. adopts each stored graph: resolves it again, plans it with the stored numbers (so every
//      name and cookie is the one built), finds its graph-LSI whole (every port and vlink, nothing
//      more: network_manager.h adoptGraphLsi), finds each function running from the very same
//      spec (compute_manager.h adopt), puts its CPUs back in the scheduler, installs its rules
//      again (an OpenFlow add of an installed rule changes nothing: no packet is lost) and makes
//      its graph-LSI's flow table exactly that. Traffic through an adopted graph never stops;
//   3. a graph that cannot be adopted (something missing or changed, a half-finished update, a
//      stopped function) has what the earlier run left of it destroyed and is deployed anew;
//   4. deploys the initial graphs of the configuration that no stored graph has the id of;
//   5. removes what was kept but is owned by no graph now, and makes LSI-0's flow table exactly
//      what the graphs installed (stale rules of graphs that are gone leave).
// A stored graph that no longer deploys (or a damaged file) shows as failed, with the reason,
// until it is put again or deleted.
//
// An SF "changes" when its ports, config, capability or template, or its resolution changes: the
// compute manager has no way to change a running function yet, so it is restarted (stop,
// destroy, create, start on new ports) and the PUT's changes say so.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compute/compute_manager.h"
#include "compute/scheduler.h"
#include "network/network_manager.h"
#include "node/graph_service.h"
#include "node/graph_store.h"
#include "resolver/resolver.h"
#include "state/undo_log.h"

namespace corch::node {

struct NodeOptions {
  std::string image_root;        // where relative image URIs point
  resolver::Resources capacity;  // what the node offers to functions
  // Pins functions to CPUs (dedicated cores for DPDK and VM functions); none: nothing is pinned.
  compute::CpuScheduler* scheduler = nullptr;
  // A function that wants dedicated cores and finds none: refused (409) instead of unpinned.
  bool strict_pinning = false;
  // Where deployed graphs are stored (GraphStore); empty: nowhere, nothing survives a restart.
  std::string graphs_dir;
  // Deployed by start() unless a stored graph has the id: {graph id, SF-FG file}.
  std::vector<std::pair<std::string, std::string>> initial_graphs;
};

// The node's total resources as the kernel reports them (cores, MemTotal, disk of `path`).
resolver::Resources probeCapacity(const std::string& path);

class NodeManager final : public GraphService, public resolver::NodeView {
 public:
  NodeManager(network::NetworkManager& network, compute::ComputeManager& compute,
              resolver::Repository& repository, NodeOptions options);
  ~NodeManager() override;

  // Probes the compute drivers, removes what an earlier run left, brings LSI-0 up, then deploys
  // the stored graphs and the initial ones (see the top). A graph that fails to deploy does not
  // fail start(): it shows as failed.
  Result<void> start();
  // Removes every graph (their undo logs), newest first. They stay stored.
  void shutdown();

  // GraphService
  Result<PutOutcome> putGraph(const std::string& id, graph::Graph graph) override;
  Result<graph::Graph> getGraph(const std::string& id) override;
  Result<std::vector<GraphSummary>> listGraphs() override;
  Result<GraphStatus> graphStatus(const std::string& id) override;
  Result<void> deleteGraph(const std::string& id) override;
  Result<std::string> functionLog(const std::string& graph_id, const std::string& sf_id) override;

  // NodeView (for the resolver)
  Result<void> driverUsable(const std::string& type) const override;
  bool dependencyPresent(const std::string& dependency) const override;
  resolver::Resources freeResources() const override;

 private:
  struct Record;
  struct Deployed;

  // Builds a graph from nothing; on failure nothing of it remains.
  Result<std::unique_ptr<Deployed>> deploy(const std::string& id, const graph::Graph& graph,
                                           Record& record, std::vector<std::string>& changes);
  // Changes the deployed `old` into `graph` (see the top); on failure `old` runs as before.
  Result<std::unique_ptr<Deployed>> update(const std::string& id, const graph::Graph& graph,
                                           Record& record, Deployed& old,
                                           std::vector<std::string>& changes);
  // The undo log of everything a deployed graph owns (rolled back by DELETE and shutdown).
  state::UndoLog teardownLog(const Deployed& deployed);
  // The function of one SF as the resolution and the built ports say.
  // Records the undo of a batch of functions (what was created, what started) and one change
  // line per started function ("sf <id> <verb> as <template> (<type>)").
  void recordFunctions(state::UndoLog& undo, const std::vector<compute::Function>& functions,
                       const compute::BatchOutcome& outcome, std::vector<std::string>& changes,
                       const std::string& verb);
  // Places the graph's functions on CPUs (NodeOptions::scheduler); functions of the graph placed
  // before keep their CPUs. Nothing is pinned without a scheduler.
  Result<compute::Placement> place(const std::string& id, const graph::Graph& graph,
                                   const std::map<std::string, const resolver::Resolution*>& by_sf);
  void releaseCpus(const std::string& id, const std::vector<std::string>& sf_ids = {});
  compute::Function functionOf(const std::string& id, const graph::Sf& sf,
                               const resolver::Resolution& resolution,
                               const network::GraphNetwork& network) const;
  std::shared_ptr<Record> claim(const std::string& id, GraphState state, Result<void>& refused);
  void release(const std::shared_ptr<Record>& record);
  void setProgress(Record& record, int progress);
  uint32_t allocateIndexLocked() const;
  // Adopts or deploys the stored graphs, then deploys the initial ones (start()).
  void restore(std::vector<GraphStore::Loaded> stored, bool adopting);
  // Takes over what an earlier run built for a stored graph and left running (see the top).
  // On failure, whatever the earlier run left for the graph is destroyed: it can be deployed
  // anew.
  Result<void> adoptGraph(const std::string& id, graph::Graph graph, const BuiltState& built);
  Result<std::unique_ptr<Deployed>> adopt(const std::string& id, const graph::Graph& graph,
                                          const BuiltState& built, Record& record);
  // The names and numbers its build used, to store with the graph.
  static BuiltState builtOf(const Deployed& deployed);
  // A failed tombstone for a graph that could not even be read (GET .../status tells why).
  void markFailed(const std::string& id, Error error);

  network::NetworkManager& network_;
  compute::ComputeManager& compute_;
  resolver::Repository& repository_;
  resolver::Resolver resolver_;
  NodeOptions options_;
  std::optional<GraphStore> store_;  // when options_.graphs_dir is set

  mutable std::mutex mu_;                                  // guards graphs_ and each Record
  std::map<std::string, std::shared_ptr<Record>> graphs_;  // also failed ones (tombstones)
  std::mutex admission_mu_;  // resolve + reserve resources, one graph at a time
};

}  // namespace corch::node
