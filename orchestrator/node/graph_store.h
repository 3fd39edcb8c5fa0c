// The durable half of the node's state: every deployed graph, as its client sent it, in a folder
// (<state-dir>/graphs), one file per graph written atomically (security/atomic_file.h: a crash
// leaves the old file or the new one, never a part) before the API answers. A restarted corchd
// deploys them again (node_manager.h, "Restart"). What was built for a graph is not stored: it is
// derived again from the graph, and whatever an earlier run left is found by its corch name.
//
// A file holds the canonical SF-FG document (graph/sffg_codec.h) of the graph, whatever API it
// came through (the NF-FG API shares the model), with the few fields of the model the SF-FG has
// no place for (an NF-FG's descriptions and domain). Its name is the graph id with every character
// other than [A-Za-z0-9_.-] written as %XX, so any id the API accepts is a safe, distinct file
// name.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "corch/error.h"
#include "graph/model.h"

namespace corch::node {

class GraphStore {
 public:
  // `dir` is made (0700) on first save().
  explicit GraphStore(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }

  // Stores (or replaces) a graph, durably when it returns.
  Result<void> save(const std::string& id, const graph::Graph& graph) const;
  // Forgets a graph, durably when it returns; Ok when there was none.
  Result<void> remove(const std::string& id) const;

  struct Loaded {
    std::string id;
    Result<graph::Graph> graph;  // the parse error when the file is damaged
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
