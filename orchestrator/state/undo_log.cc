#include "state/undo_log.h"

#include "corch/log.h"
#include "state/kill_point.h"

namespace corch::state {
namespace {
log::Logger lg("undo");
}

void UndoLog::record(std::string what, Undo undo) {
  CORCH_LOG(lg, Debug) << "recorded: " << what;
  killPoint("recorded " + what);
  entries_.push_back(Entry{std::move(what), std::move(undo)});
}

Result<void> UndoLog::rollback() {
  std::vector<Entry> entries = std::move(entries_);
  entries_.clear();
  std::string failures;
  ErrorCode code = ErrorCode::Internal;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    killPoint("undoing " + it->what);
    auto done = it->undo();
    if (done) {
      CORCH_LOG(lg, Debug) << "undone: " << it->what;
      continue;
    }
    CORCH_LOG(lg, Error) << "cannot undo " << it->what << ": " << done.error().message();
    if (failures.empty()) code = done.error().code();
    failures += (failures.empty() ? "" : "; ") + it->what + ": " + done.error().message();
  }
  if (!failures.empty()) return Error(code, "rollback incomplete: " + failures);
  return Ok();
}

}  // namespace corch::state
