#include "security/atomic_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace corch::security {

Result<void> writeFileAtomically(const std::string& path, std::string_view content, mode_t mode) {
  std::string temp = path + ".tmp-XXXXXX";
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) return errnoError("cannot create a temporary file next to " + path, errno);
  auto fail = [&](const std::string& step) {
    int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return errnoError("cannot write " + path + ": " + step, err);
  };
  if (::fchmod(fd, mode) != 0) return fail("fchmod " + temp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write " + temp);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync " + temp);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return errnoError("cannot write " + path + ": close " + temp, err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return errnoError("cannot write " + path + ": rename " + temp, err);
  }
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder.assign(1, '.');  // (= "." trips GCC 12 -Wrestrict at -O2)
  int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return errnoError("cannot write " + path + ": open " + folder, errno);
  int rc = ::fsync(dir);
  int err = errno;
  ::close(dir);
  if (rc != 0) return errnoError("cannot write " + path + ": fsync " + folder, err);
  return Ok();
}

}  // namespace corch::security
