// pathWithSbin() of search_path.h.
#include "compute/common/search_path.h"

#include <cstdlib>

namespace corch::drivers::common {

std::string pathWithSbin() {
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  for (const char* dir : {"/usr/local/sbin", "/usr/sbin", "/sbin"}) {
    if ((":" + path + ":").find(":" + std::string(dir) + ":") == std::string::npos) {
      path += ":";
      path += dir;
    }
  }
  return path;
}

}  // namespace corch::drivers::common
