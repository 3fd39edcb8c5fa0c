// The users of corchd's REST API (DESIGN section 5, "Security"): names, roles, password hashes,
// the groups users belong to, and which graphs are granted to which users and groups, kept in one
// JSON file that only corchd (and `corchd --add-user`) writes:
//
//   {"version": 1,
//    "users": [{"name": "admin", "role": "admin",
//               "password": {"algorithm": "pbkdf2-sha256", "iterations": 310000,
//                            "salt": "<32 hex digits>", "hash": "<64 hex digits>"}}],
//    "groups": [{"name": "tenants", "members": ["alice", "bob"]}],
//    "grants": [{"graph": "g1", "users": ["alice"], "groups": ["tenants"]}]}
//
// "groups" and "grants" may be absent (a file of an earlier corchd). The file is replaced
// atomically (security/atomic_file.h) with mode 0600; unknown keys are refused, so that a file
// written by a later corchd is not half-read. One file rather than three, so that a change that
// touches several (deleting a user removes it from its groups and grants) is one atomic write.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "security/password.h"

namespace corch::security {

// admin: everything, users and groups included; operator: creates, changes and deletes graphs and
// reads them all; user: reads the graphs granted to them, to them or to a group of theirs (DESIGN
// section 5). Enforced by the REST server (rest/server.h).
enum class Role { Admin, Operator, User };
std::string_view toString(Role role);                  // "admin", "operator", "user"
std::optional<Role> parseRole(std::string_view name);  // the inverse; nullopt if unknown

struct User {
  std::string name;
  Role role = Role::User;
  PasswordHash password;
};

struct Group {
  std::string name;
  std::set<std::string> members;  // user names
};

// Who may read a graph besides admins and operators.
struct Grant {
  std::set<std::string> users;
  std::set<std::string> groups;
  bool empty() const { return users.empty() && groups.empty(); }
};

// Everything the users file holds.
struct Directory {
  std::map<std::string, User, std::less<>> users;
  std::map<std::string, Group, std::less<>> groups;
  std::map<std::string, Grant, std::less<>> grants;  // by graph id
};

// A change of a user (PUT /users/{name}): what is not set is kept. Creating a user needs a
// password and a role.
struct UserChange {
  std::optional<std::string> password;
  std::optional<Role> role;
  std::optional<std::set<std::string>> groups;  // the groups the user is a member of, all of them
};

// Group names follow the same rule as user names.
Result<void> checkGroupName(std::string_view name);

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

  // Creates (`created` set) or changes a user. InvalidArgument naming the field ("/password",
  // "/role", "/groups/1") for a bad value or an unknown group; Conflict if the change would leave
  // no admin.
  Result<void> setUser(const std::string& name, const UserChange& change, bool& created);
  // Removes a user, from its groups and from the grants too. NotFound; Conflict for the last
  // admin.
  Result<void> deleteUser(const std::string& name);
  // Creates or replaces a group with its members (every one a known user: InvalidArgument naming
  // "/members/<i>" otherwise).
  Result<void> setGroup(const std::string& name, const std::set<std::string>& members,
                        bool& created);
  // Removes a group, from the grants too. NotFound.
  Result<void> deleteGroup(const std::string& name);
  // Replaces the grant of a graph (an empty one removes it). Unknown users or groups are
  // InvalidArgument naming "/users/<i>" or "/groups/<i>".
  Result<void> setGrant(const std::string& graph_id, const Grant& grant);
  // Forgets a graph's grant (the graph was deleted); nothing to do is not an error.
  Result<void> removeGrant(const std::string& graph_id);

  // Whether `user` is granted `graph_id`, directly or through one of their groups.
  bool granted(std::string_view user, std::string_view graph_id);
  // The graph's grant (empty if none).
  Grant grant(std::string_view graph_id);

  std::optional<User> find(std::string_view name);
  std::vector<std::string> names();  // sorted
  size_t size();
  // A copy of everything, as last read.
  Directory directory();
  // The groups of a user, sorted.
  std::set<std::string> groupsOf(std::string_view name);

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

  // Reads the file into dir_ if its stamp changed. Holds mu_.
  Result<void> loadLocked(bool force);
  void refreshLocked();
  // Under the file lock and mu_: re-reads the file, lets `change` edit a copy of the directory,
  // and writes it if `change` succeeded.
  Result<void> modify(const std::function<Result<void>(Directory&)>& change);

  const std::string path_;
  const uint32_t iterations_;
  std::mutex mu_;
  Directory dir_;
  Stamp stamp_;
};

// The users file's text for a set of users (what addUser() writes), and back. Exposed for tests.
std::string printUsers(const std::map<std::string, User, std::less<>>& users);
Result<std::map<std::string, User, std::less<>>> parseUsers(std::string_view text);
// The same for the whole file. parseDirectory() checks that members and grants name known users
// and groups.
std::string printDirectory(const Directory& directory);
Result<Directory> parseDirectory(std::string_view text);

}  // namespace corch::security
