// The undo log of one driver call that builds several things (unpacked files, a namespace, moved
// links...): each step that made something records how to unmake it, and the log runs those
// steps in reverse order when it is destroyed, unless the call succeeded and committed it. Early
// returns on error then roll back by themselves (DESIGN, "Resources are objects").
//
// Steps may refer to locals of the caller: declare those before the log, so they outlive it.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace corch::drivers::common {

class UndoLog {
 public:
  UndoLog() = default;
  UndoLog(const UndoLog&) = delete;
  UndoLog& operator=(const UndoLog&) = delete;
  ~UndoLog() {
    if (committed_) return;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }

  void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
  // Keeps what the call made: the destructor then runs nothing.
  void commit() { committed_ = true; }

 private:
  std::vector<std::function<void()>> steps_;
  bool committed_ = false;
};

}  // namespace corch::drivers::common
