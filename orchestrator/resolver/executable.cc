#include "resolver/executable.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace corch::resolver {
namespace {

std::mutex cache_mu;
std::unordered_map<std::string, bool> cache;

bool isExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

bool lookUp(const std::string& name) {
  if (name.empty()) return false;
  if (name.find('/') != std::string::npos) return isExecutableFile(name);
  const char* env = std::getenv("PATH");
  std::string path = env ? env : "";
  path += ":/usr/local/sbin:/usr/sbin:/sbin";
  std::string_view rest = path;
  while (!rest.empty()) {
    size_t colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (dir.empty()) continue;  // an empty entry would mean the working directory: not for a daemon
    if (isExecutableFile(std::string(dir) + "/" + name)) return true;
  }
  return false;
}

}  // namespace

bool executableOnPath(const std::string& name) {
  {
    std::lock_guard lock(cache_mu);
    auto it = cache.find(name);
    if (it != cache.end()) return it->second;
  }
  bool found = lookUp(name);  // outside the lock: stat() may be slow on a network file system
  std::lock_guard lock(cache_mu);
  cache[name] = found;
  return found;
}

void clearExecutableCache() {
  std::lock_guard lock(cache_mu);
  cache.clear();
}

}  // namespace corch::resolver
