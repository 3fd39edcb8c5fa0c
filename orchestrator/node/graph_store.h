// The durable half of the node's state: every deployed graph, as its client sent it, in a folder
// (<state-dir>/graphs), one file per graph written atomically (security/atomic_file.h: a crash
// leaves the old file or the new one, never a part) before the API answers. A restarted corchd
// adopts them again (node_manager.h, "Restart"). With the graph goes what a restarted corchd needs
// to find what was built for it under the same names and numbers (BuiltState): the graph index,
// the stable numbers of its network plan, its vlinks and its CPU placement. Everything else is
// derived again from the graph.
//
// A file holds the canonical SF-FG document (graph/sffg_codec.h) of the graph, whatever API it
// came through (the NF-FG API shares the model), with the few fields of the model the SF-FG has
// no place for (an NF-FG's descriptions and domain). Its name is the graph id with every character
// other than [A-Za-z0-9_.-] written as %XX, so any id the API accepts is a safe, distinct file
// name.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compute/scheduler.h"
#include "corch/error.h"
#include "graph/model.h"
#include "network/network_manager.h"

namespace corch::node {

// What names and numbers the build of a deployed graph used (node_manager.h, "Restart").
struct BuiltState {
  uint32_t index = 0;  // the graph index: its graph-LSI's name and its rules' cookies
  // The stable numbers and the vlink plan of its network plan (GraphNetworkPlan): a plan made with
  // them as its previous version names every port, link and cookie as the build did.
  std::map<std::string, uint32_t> sf_numbers;
  std::map<std::pair<std::string, std::string>, uint32_t> sf_port_numbers;
  std::map<std::string, uint32_t> flowrule_numbers;
  std::map<std::string, uint32_t> sap_numbers;
  network::VlinkPlan vlinks;
  // The vlinks made, by index: (the end on LSI-0, the end on the graph-LSI).
  std::vector<std::pair<std::string, std::string>> vlink_names;
  compute::Placement placement;
  bool operator==(const BuiltState&) const = default;
};

// The previous version of a plan that BuiltState describes (PlanBase::previous).
network::GraphNetworkPlan planOf(const BuiltState& built);

class GraphStore {
 public:
  // `dir` is made (0700) on first save().
  explicit GraphStore(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }

  // Stores (or replaces) a graph and what was built for it, durably when it returns.
  Result<void> save(const std::string& id, const graph::Graph& graph,
                    const BuiltState* built = nullptr) const;
  // Forgets a graph, durably when it returns; Ok when there was none.
  Result<void> remove(const std::string& id) const;

  struct Loaded {
    std::string id;
    Result<graph::Graph> graph;  // the parse error when the file is damaged
    // What was built, when the file says (a file without it, or with a damaged one, still
    // restores its graph: it is built anew).
    std::optional<BuiltState> built;
  };
  // Every stored graph in id order; nothing when the folder does not exist.
  Result<std::vector<Loaded>> load() const;

  // The file name of a graph id, and back (nullopt-like error for a name that no id gives).
  static std::string fileName(const std::string& id);
  static Result<std::string> idOf(const std::string& file_name);

 private:
  std::string path(const std::string& id) const { return dir_ + "/" + fileName(id); }

  std::string dir_;
};

}  // namespace corch::node
