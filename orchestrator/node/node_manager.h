// The node resource manager (paper 5.3, Figure 7): handles the graphs received over the
// northbound API. A PUT validates and resolves the graph, admits it (resources), plans its
// network, and only then builds, each step recorded in the graph's undo log: graph-LSI with its
// vlinks and SF ports, functions (in parallel), rules on the graph-LSI, rules on LSI-0. Any
// failure rolls the log back, so nothing half-built remains; DELETE rolls back the same log.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "compute/compute_manager.h"
#include "network/network_manager.h"
#include "node/graph_service.h"
#include "resolver/resolver.h"
#include "state/undo_log.h"

namespace corch::node {

struct NodeOptions {
  std::string image_root;        // where relative image URIs point
  resolver::Resources capacity;  // what the node offers to functions
};

// The node's total resources as the kernel reports them (cores, MemTotal, disk of `path`).
resolver::Resources probeCapacity(const std::string& path);

class NodeManager final : public GraphService, public resolver::NodeView {
 public:
  NodeManager(network::NetworkManager& network, compute::ComputeManager& compute,
              resolver::Repository& repository, NodeOptions options);
  ~NodeManager() override;

  // Brings LSI-0 up and probes the compute drivers.
  Result<void> start();
  // Removes every graph (their undo logs), newest first.
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
  std::shared_ptr<Record> claim(const std::string& id, GraphState state, Result<void>& refused);
  void release(const std::shared_ptr<Record>& record);
  void setProgress(Record& record, int progress);
  uint32_t allocateIndexLocked() const;

  network::NetworkManager& network_;
  compute::ComputeManager& compute_;
  resolver::Repository& repository_;
  resolver::Resolver resolver_;
  NodeOptions options_;

  mutable std::mutex mu_;                                  // guards graphs_ and each Record
  std::map<std::string, std::shared_ptr<Record>> graphs_;  // also failed ones (tombstones)
  std::mutex admission_mu_;  // resolve + reserve resources, one graph at a time
};

}  // namespace corch::node
