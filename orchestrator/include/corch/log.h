// Logging: one Logger per module, levels changeable at run time (globally or per module).
//
//   static corch::log::Logger lg("ovsdb");
//   CORCH_LOG(lg, Info) << "connected to " << path;
//
// A line is built only when its level is enabled. Lines go to stderr as
// "2026-11-23T14:00:00.123Z INFO ovsdb: connected to /run/db.sock". Thread-safe.
#pragma once

#include <atomic>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace corch::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

std::optional<Level> parseLevel(std::string_view name);
std::string_view levelName(Level level);

// Sets the level of every module, or of one module (by name).
void setLevel(Level level);
void setLevel(std::string_view module, Level level);

class Logger {
 public:
  explicit Logger(std::string module);
  bool enabled(Level level) const;
  void write(Level level, std::string_view message) const;
  const std::string& module() const { return module_; }

 private:
  std::string module_;
};

class Line {
 public:
  Line(const Logger& logger, Level level) : logger_(logger), level_(level) {}
  ~Line() { logger_.write(level_, stream_.str()); }
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  std::ostringstream& stream() { return stream_; }

 private:
  const Logger& logger_;
  Level level_;
  std::ostringstream stream_;
};

}  // namespace corch::log

// A for-statement rather than if/else, so that an unbraced `if (x) CORCH_LOG(...) << ...;` has no
// dangling else.
#define CORCH_LOG(logger, level)                                                             \
  for (bool corch_log_once_ = (logger).enabled(::corch::log::Level::level); corch_log_once_; \
       corch_log_once_ = false)                                                              \
  ::corch::log::Line((logger), ::corch::log::Level::level).stream()
