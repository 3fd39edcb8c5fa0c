// The undo log: every resource a deploy creates is recorded, as it is created, together with the
// call that undoes it (DESIGN 2). A failed deploy rolls its log back; a deployed graph keeps its
// log, and DELETE rolls it back too: one mechanism for both, so nothing a deploy made can be
// forgotten by a delete.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "corch/error.h"

namespace corch::state {

class UndoLog {
 public:
  using Undo = std::function<Result<void>()>;

  struct Entry {
    std::string what;  // "graph-LSI corch-g1", "function corch-g1-fw started"
    Undo undo;
  };

  UndoLog() = default;
  UndoLog(UndoLog&&) = default;
  UndoLog& operator=(UndoLog&&) = default;
  UndoLog(const UndoLog&) = delete;
  UndoLog& operator=(const UndoLog&) = delete;

  // Records a resource just created, with the call that removes it.
  void record(std::string what, Undo undo);

  // Undoes every entry, newest first. An undo that fails does not stop the others (each removes
  // a different resource); the result lists every failure. The log is empty afterwards.
  Result<void> rollback();

  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace corch::state
