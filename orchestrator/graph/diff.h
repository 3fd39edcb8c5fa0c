// The difference between two versions of a graph (DESIGN 2: a PUT on an existing graph applies
// only what changed). A pure function of the two graphs, by id: SFs, their ports, SAPs and
// flowrules are matched by their ids, so that a reordered list is no change at all.
#pragma once

#include <string>
#include <vector>

#include "graph/model.h"

namespace corch::graph {

// How one SF present in both versions changed.
struct SfChange {
  std::string id;
  std::vector<std::string> ports_added;    // port ids, in the new graph's order
  std::vector<std::string> ports_removed;  // port ids, in the old graph's order
  bool ports_reordered = false;  // same port ids (and names) in another order, or renamed ports
  bool config_changed = false;
  bool implementation_changed = false;  // capability (name) or pinned template
  bool operator==(const SfChange&) const = default;
};

struct GraphDiff {
  // Ids, in the order of the graph they come from (new graph for added/changed/kept, old graph
  // for removed).
  std::vector<std::string> sfs_added;
  std::vector<std::string> sfs_removed;
  std::vector<SfChange> sfs_changed;
  std::vector<std::string> sfs_kept;  // identical in both
  std::vector<std::string> saps_added;
  std::vector<std::string> saps_removed;
  std::vector<std::string> saps_changed;
  std::vector<std::string> rules_added;
  std::vector<std::string> rules_removed;
  std::vector<std::string> rules_changed;  // same id, another priority, match, action or output
  bool name_changed = false;
  bool measure_changed = false;

  // Whether anything that is deployed (SFs, SAPs, flowrules) differs; name and measure aside.
  bool deploymentChanged() const;
  // One human-readable line per change ("sf fw2 added", "flowrule 3 changed", ...).
  std::vector<std::string> describe() const;
};

// What changed from `before` to `after`. Ids are unique within each list of a valid graph.
GraphDiff diff(const Graph& before, const Graph& after);

}  // namespace corch::graph
