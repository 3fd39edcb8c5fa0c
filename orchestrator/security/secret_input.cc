#include "security/secret_input.h"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>

namespace corch::security {
namespace {

// One line of stdin without its end of line; nullopt at end of input.
std::optional<std::string> readLine() {
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Turns the terminal's echo off for its lifetime.
class NoEcho {
 public:
  NoEcho() {
    if (tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios quiet = saved_;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
  }
  ~NoEcho() {
    if (active_) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

std::optional<std::string> ask(std::string_view prompt) {
  std::fprintf(stderr, "%.*s", static_cast<int>(prompt.size()), prompt.data());
  std::fflush(stderr);
  std::optional<std::string> line;
  {
    NoEcho quiet;
    line = readLine();
  }
  std::fputc('\n', stderr);
  return line;
}

}  // namespace

Result<std::string> readSecret(std::string_view prompt, bool confirm) {
  if (!isatty(STDIN_FILENO)) {
    auto line = readLine();
    if (!line) return Error(ErrorCode::InvalidArgument, "no password on stdin");
    return std::move(*line);
  }
  auto first = ask(prompt);
  if (!first) return Error(ErrorCode::InvalidArgument, "no password entered");
  if (confirm) {
    auto again = ask("Again: ");
    if (!again || *again != *first) {
      return Error(ErrorCode::InvalidArgument, "the two passwords differ");
    }
  }
  return std::move(*first);
}

}  // namespace corch::security
