// Reading a password typed by an administrator (corchd --add-user, corchctl login), never from the
// command line, where every user of the machine could read it in the process list.
#pragma once

#include <string>
#include <string_view>

#include "corch/error.h"

namespace corch::security {

// From a terminal on stdin: shows `prompt` on stderr, reads a line with echo off, and when
// `confirm` asks again and compares. Otherwise (a pipe, a file): the first line of stdin. The end
// of line is removed. InvalidArgument if nothing was read or the two entries differ.
Result<std::string> readSecret(std::string_view prompt, bool confirm);

}  // namespace corch::security
