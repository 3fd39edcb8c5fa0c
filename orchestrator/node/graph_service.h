// The node resource manager's face towards the northbound API (paper 5.3): what the REST layer
// (and later the NF-FG compatibility layer and the bus) may ask of the node. Implemented by
// NodeManager; REST tests may implement it with a stub.
//
// Every call is synchronous: putGraph() returns when the graph is deployed (or has been rolled
// back). Calls for different graphs run in parallel; a second change of a graph while one is in
// progress is refused at once with Conflict (HTTP 409), never queued.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "corch/error.h"
#include "graph/model.h"

namespace corch::node {

enum class GraphState { Deploying, Deployed, Updating, Failed, Deleting };
std::string_view toString(GraphState state);  // "deploying", "deployed", ...

// A deployed function: what runs it and where (paper 5.3: the scheduler's choice).
struct FunctionStatus {
  std::string sf_id;
  std::string template_id;
  std::string type;            // the compute driver: "native", "docker", "kvm", "dpdk"
  std::vector<unsigned> cpus;  // dedicated logical CPUs; empty: floats on the shared ones
  std::string placement;       // why: "dedicated 1 (NUMA 0)", "shared: no free core (...)"
};

struct GraphStatus {
  GraphState state = GraphState::Deploying;
  int progress = 0;                       // 0-100
  std::optional<Error> error;             // why the last change failed, if it did
  std::vector<FunctionStatus> functions;  // of the deployed version, in graph order
};

struct GraphSummary {
  std::string id;
  std::string name;
  GraphStatus status;
};

// What a PUT did: created or updated, and the changes applied ("sf 0x1 created", ...).
struct PutOutcome {
  bool created = false;
  std::vector<std::string> changes;
};

class GraphService {
 public:
  virtual ~GraphService() = default;

  // Deploys (created == true) or updates a graph. The graph's id is `id` (the URL's).
  virtual Result<PutOutcome> putGraph(const std::string& id, graph::Graph graph) = 0;
  // The graph as deployed. NotFound if there is none.
  virtual Result<graph::Graph> getGraph(const std::string& id) = 0;
  virtual Result<std::vector<GraphSummary>> listGraphs() = 0;
  // Status of a graph, also of one whose deploy failed (state Failed, with the error) until it is
  // deleted or put again. NotFound if the id was never seen.
  virtual Result<GraphStatus> graphStatus(const std::string& id) = 0;
  // Undoes everything the graph created. NotFound if there is none.
  virtual Result<void> deleteGraph(const std::string& id) = 0;
  // The output of one function's scripts/engine (its log), NotFound if unknown.
  virtual Result<std::string> functionLog(const std::string& graph_id,
                                          const std::string& sf_id) = 0;
};

}  // namespace corch::node
