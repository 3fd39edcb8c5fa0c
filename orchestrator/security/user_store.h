// The users of corchd's REST API (DESIGN section 5, "Security"): names, roles and password hashes,
// kept in one JSON file that only corchd (and `corchd --add-user`) writes:
//
//   {"version": 1,
//    "users": [{"name": "admin", "role": "admin",
//               "password": {"algorithm": "pbkdf2-sha256", "iterations": 310000,
//                            "salt": "<32 hex digits>", "hash": "<64 hex digits>"}}]}
//
// The file is replaced atomically (security/atomic_file.h) with mode 0600; unknown keys are
// refused, so that a file written by a later corchd (groups, permissions) is not half-read.
// Roles are stored and reported, not yet enforced: every authenticated user may do everything.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "security/password.h"

namespace corch::security {

// admin: everything, users included; operator: creates and changes graphs; user: reads the graphs
// granted to them (DESIGN section 5). Not enforced yet.
enum class Role { Admin, Operator, User };
std::string_view toString(Role role);                  // "admin", "operator", "user"
std::optional<Role> parseRole(std::string_view name);  // the inverse; nullopt if unknown

struct User {
  std::string name;
  Role role = Role::User;
  PasswordHash password;
};

// User names are 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-' and '@'. InvalidArgument
// naming the rule otherwise.
Result<void> checkUserName(std::string_view name);

// Thread-safe. Every call first re-reads the file if it changed on disk since it was read (a user
// added by `corchd --add-user` while corchd runs is known at its next login); a file that has
// become unreadable or invalid keeps the users last read, with a warning in the log.
class UserStore {
 public:
  // Reads the users file at `path`. A file that does not exist is an empty store (the first
  // addUser() creates it); one that cannot be read or is invalid is an error naming it and, for a
  // wrong value, its JSON pointer. New passwords are hashed with `iterations` (password.h).
  static Result<std::unique_ptr<UserStore>> open(std::string path,
                                                 uint32_t iterations = kDefaultIterations);

  // The user `name`, if `password` is theirs. Otherwise Unauthenticated with the same message
  // whether the user is unknown or the password wrong, after about the same time (the hash is
  // computed either way). The hash is computed outside the store's lock: logins run in parallel.
  Result<User> authenticate(std::string_view name, std::string_view password);

  // Adds a user and writes the file, creating it (and its folder) if needed. InvalidArgument for a
  // bad name or password (checkUserName, checkNewPassword), AlreadyExists for a known name. The
  // file is re-read under an exclusive lock (`<path>.lock`, flock) before it is changed, so that
  // two processes adding users at once both succeed.
  Result<void> addUser(const std::string& name, std::string_view password, Role role);

  std::optional<User> find(std::string_view name);
  std::vector<std::string> names();  // sorted
  size_t size();

  const std::string& path() const { return path_; }

 private:
  // Identity of the file as last read: a rename() over it changes the inode.
  struct Stamp {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };

  UserStore(std::string path, uint32_t iterations)
      : path_(std::move(path)), iterations_(iterations) {}

  // Reads the file into users_ if its stamp changed. Holds mu_.
  Result<void> loadLocked(bool force);
  void refreshLocked();

  const std::string path_;
  const uint32_t iterations_;
  std::mutex mu_;
  std::map<std::string, User, std::less<>> users_;
  Stamp stamp_;
};

// The users file's text for a set of users (what addUser() writes), and back. Exposed for tests
// and for the later users API.
std::string printUsers(const std::map<std::string, User, std::less<>>& users);
Result<std::map<std::string, User, std::less<>>> parseUsers(std::string_view text);

}  // namespace corch::security
