// Replacing a file so that a reader, or a crash, sees the old content or the new, never a part:
// the new content goes to a temporary file in the same folder, is fsync()ed, renamed over the old
// one, and the folder is fsync()ed so that the rename itself is durable.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "corch/error.h"

namespace corch::security {

// Writes `content` to `path` atomically, with permissions `mode` (from the start: the temporary
// file is never readable by others). Errors name the file and the step that failed.
Result<void> writeFileAtomically(const std::string& path, std::string_view content, mode_t mode);

}  // namespace corch::security
