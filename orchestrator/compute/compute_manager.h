// The compute manager (paper 5.5): the loaded compute drivers, by template type, and the life
// cycle of a graph's functions through them. Functions of one graph are created and started in
// parallel (they are independent once their ports exist).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "corch/compute.h"
#include "graph/model.h"

namespace corch::compute {

struct ComputeOptions {
  std::string prefix = "corch";  // function instances are <prefix>-<graph>-<sf>
  std::string log_dir;           // <log_dir>/<graph>/<sf>.log
  std::chrono::milliseconds timeout{10000};
  unsigned parallelism = 8;  // functions started at once
  std::string run_dir;       // <run_dir>/<instance>/: each function's runtime files (SfSpec)
};

// A function to run: its spec and the driver (template type) that runs it.
struct Function {
  std::string type;
  SfSpec spec;
};

// What happened to each function of a batch, in the batch's order (for stopAndDestroy: which are
// still created and still running).
struct BatchOutcome {
  std::vector<bool> created;
  std::vector<bool> started;
  std::optional<Error> error;  // the first failure, if any
};

class ComputeManager {
 public:
  ComputeManager(std::map<std::string, std::unique_ptr<ComputeDriver>> drivers,
                 ComputeOptions options);

  // Probes every driver and remembers the answers (usable() reports them).
  void probeAll();
  Result<void> usable(const std::string& type) const;
  std::vector<std::string> types() const;

  // "<prefix>-<graph>-<sf>" with characters unsafe in file names replaced by '_'.
  std::string instanceName(const std::string& graph_id, const std::string& sf_id) const;
  std::string logPath(const std::string& graph_id, const std::string& sf_id) const;
  // <run_dir>/<instance>: made before createSf, removed after destroySf.
  std::string runDir(const std::string& graph_id, const std::string& sf_id) const;
  const ComputeOptions& options() const { return options_; }

  // Creates then starts every function, in parallel. The outcome says which were created and
  // which started, so the caller can record their undo whatever happened.
  BatchOutcome createAndStart(const std::vector<Function>& functions);
  // Whether the function's driver plugs and unplugs ports of a running function (update()).
  bool updatesPorts(const std::string& type) const;
  // A running function's ports changed from `before` to `after` (same type).
  Result<void> update(const Function& before, const Function& after);
  Result<void> stop(const Function& function);
  Result<void> destroy(const Function& function);
  // Stops then destroys every function, in parallel like createAndStart; each is attempted
  // whatever happens to the others. `error` is the first failure.
  BatchOutcome stopAndDestroy(const std::vector<Function>& functions);
  // Destroys every function instance of this node's prefix that a usable driver finds
  // (ComputeDriver::listInstances), with its run folder, except those `keep` says to keep: what a
  // corchd killed with SIGKILL left that no stored graph owns. In parallel like stopAndDestroy.
  // Returns the instances destroyed; a failure is logged and the others are still attempted.
  std::vector<std::string> destroyLeftovers(
      const std::function<bool(const std::string&)>& keep = nullptr);
  // Takes over a function an earlier run started from this very spec and left running
  // (ComputeDriver::adoptSf): Conflict when the spec it was started from (kept in its run_dir
  // by createAndStart and update, removed by stop) is not this one, or is unknown.
  Result<void> adopt(const Function& function);

 private:
  // Calls work(i) for i in [0, n) on at most options_.parallelism threads (this one included):
  // a bounded pool, never a thread per function. work returns false to stop handing out more.
  void forEach(size_t n, const std::function<bool(size_t)>& work) const;

  Result<ComputeDriver*> driver(const std::string& type) const;
  // The spec a running function was started from, in its run_dir (nothing without a run_dir).
  void rememberSpec(const Function& function) const;
  void forgetSpec(const Function& function) const;
  std::string runRoot() const;  // options_.run_dir, or <log_dir>/../run

  std::map<std::string, std::unique_ptr<ComputeDriver>> drivers_;
  std::map<std::string, Result<void>> probes_;
  ComputeOptions options_;
};

}  // namespace corch::compute
