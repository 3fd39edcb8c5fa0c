#include "corch/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>

namespace corch::log {
namespace {

struct Levels {
  std::mutex mu;
  std::atomic<int> global{static_cast<int>(Level::Info)};
  std::map<std::string, Level, std::less<>> per_module;
  std::atomic<bool> any_module{false};
};

Levels& levels() {
  static Levels* l = new Levels;  // never destroyed: loggers may run during static destruction
  return *l;
}

}  // namespace

std::optional<Level> parseLevel(std::string_view name) {
  if (name == "debug") return Level::Debug;
  if (name == "info") return Level::Info;
  if (name == "warn" || name == "warning") return Level::Warn;
  if (name == "error") return Level::Error;
  if (name == "off") return Level::Off;
  return std::nullopt;
}

std::string_view levelName(Level level) {
  switch (level) {
    case Level::Debug:
      return "DEBUG";
    case Level::Info:
      return "INFO";
    case Level::Warn:
      return "WARN";
    case Level::Error:
      return "ERROR";
    case Level::Off:
      return "OFF";
  }
  return "?";
}

void setLevel(Level level) {
  Levels& l = levels();
  std::lock_guard lock(l.mu);
  l.global = static_cast<int>(level);
  l.per_module.clear();
  l.any_module = false;
}

void setLevel(std::string_view module, Level level) {
  Levels& l = levels();
  std::lock_guard lock(l.mu);
  l.per_module[std::string(module)] = level;
  l.any_module = true;
}

Logger::Logger(std::string module) : module_(std::move(module)) {}

bool Logger::enabled(Level level) const {
  Levels& l = levels();
  if (l.any_module) {
    std::lock_guard lock(l.mu);
    auto it = l.per_module.find(module_);
    if (it != l.per_module.end()) return level >= it->second && level != Level::Off;
  }
  return static_cast<int>(level) >= l.global.load() && level != Level::Off;
}

void Logger::write(Level level, std::string_view message) const {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  // One fprintf per line keeps concurrent lines whole.
  std::fprintf(stderr, "%s.%03dZ %s %s: %.*s\n", stamp, static_cast<int>(ms.count()),
               levelName(level).data(), module_.c_str(), static_cast<int>(message.size()),
               message.data());
}

}  // namespace corch::log
