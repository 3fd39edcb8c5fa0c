// The log file of a function, as the compute drivers write and quote it: a header line before
// each run ("==== corch 2026-11-23T14:00:00Z: start corch-g1-fw ... ===="), so that runs stay
// apart and an error message can quote only the current run's output, one line long ("a | b").
#pragma once

#include <cstddef>
#include <ios>
#include <string>
#include <vector>

#include "corch/error.h"

namespace corch::drivers::common {

// The current time in UTC, "2026-11-23T14:00:00Z".
std::string nowUtc();

// Appends "==== corch <nowUtc()>: <what> ====" to the log at `path`, creating its folder, and
// returns the log's size after it: where this run's output starts (for readFrom). Internal when
// the folder cannot be made ("cannot create the folder of its log ...") or the line not written
// ("cannot append to its log ...").
Result<std::streamoff> appendLogHeader(const std::string& path, const std::string& what);

// What the file at `path` holds after byte `from`; empty when it cannot be read.
std::string readFrom(const std::string& path, std::streamoff from);

// The lines of `text` that hold more than white space, without a trailing '\r'.
std::vector<std::string> nonBlankLines(const std::string& text);

// `lines` from index `first` on, joined with " | ": several lines of output in a one-line message.
std::string joinLines(const std::vector<std::string>& lines, size_t first = 0);

// The last `count` non-blank lines of `text` joined with " | ", shortened to their last
// `max_chars` characters (with "..." in front) when longer.
std::string lastLines(const std::string& text, size_t count, size_t max_chars = std::string::npos);

}  // namespace corch::drivers::common
