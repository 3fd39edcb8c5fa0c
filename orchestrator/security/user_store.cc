#include "security/user_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "corch/log.h"
#include "security/atomic_file.h"
#include "security/hex.h"

namespace corch::security {
namespace {

namespace fs = std::filesystem;
using rapidjson::Value;

const log::Logger lg("security");

constexpr int kFileVersion = 1;
constexpr mode_t kFileMode = 0600;

Error fieldError(const std::string& pointer, const std::string& message) {
  return Error::field(ErrorCode::InvalidArgument, pointer, message);
}

Result<void> onlyKeys(const Value& object, const std::string& pointer,
                      std::initializer_list<std::string_view> known) {
  if (!object.IsObject()) return fieldError(pointer, "must be an object");
  for (const auto& member : object.GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return fieldError(pointer + "/" + std::string(key),
                        "unknown field '" + std::string(key) + "'");
    }
  }
  for (std::string_view key : known) {
    if (!object.HasMember(std::string(key).c_str())) {
      return fieldError(pointer + "/" + std::string(key), "is missing");
    }
  }
  return Ok();
}

// A list of distinct names, each valid by `check`.
Result<std::set<std::string>> getNames(const Value& v, const std::string& pointer,
                                       Result<void> (*check)(std::string_view)) {
  if (!v.IsArray()) return fieldError(pointer, "must be a list of names");
  std::set<std::string> out;
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    const std::string at = pointer + "/" + std::to_string(i);
    if (!v[i].IsString()) return fieldError(at, "must be a string");
    std::string name(v[i].GetString(), v[i].GetStringLength());
    if (auto valid = check(name); !valid) return fieldError(at, valid.error().message());
    if (!out.insert(name).second) return fieldError(at, "'" + name + "' appears twice");
  }
  return out;
}

Result<std::string> getString(const Value& object, const char* key, const std::string& pointer) {
  const Value& v = object[key];
  if (!v.IsString()) return fieldError(pointer + "/" + key, "must be a string");
  return std::string(v.GetString(), v.GetStringLength());
}

Result<std::string> getHex(const Value& object, const char* key, const std::string& pointer) {
  auto text = getString(object, key, pointer);
  if (!text) return std::move(text).error();
  auto bytes = fromHex(*text);
  if (!bytes || bytes->empty()) {
    return fieldError(pointer + "/" + key, "must be a non-empty string of hex digits");
  }
  return std::move(*bytes);
}

Result<User> parseUser(const Value& v, const std::string& pointer) {
  CORCH_TRY(onlyKeys(v, pointer, {"name", "role", "password"}));
  User user;
  auto name = getString(v, "name", pointer);
  if (!name) return std::move(name).error();
  if (auto valid = checkUserName(*name); !valid) {
    return fieldError(pointer + "/name", valid.error().message());
  }
  user.name = std::move(*name);
  auto role_name = getString(v, "role", pointer);
  if (!role_name) return std::move(role_name).error();
  auto role = parseRole(*role_name);
  if (!role) {
    return fieldError(pointer + "/role",
                      "unknown role '" + *role_name + "' (admin, operator or user)");
  }
  user.role = *role;
  const Value& pw = v["password"];
  const std::string pw_pointer = pointer + "/password";
  CORCH_TRY(onlyKeys(pw, pw_pointer, {"algorithm", "iterations", "salt", "hash"}));
  auto algorithm = getString(pw, "algorithm", pw_pointer);
  if (!algorithm) return std::move(algorithm).error();
  if (*algorithm != kPbkdf2Sha256) {
    return fieldError(pw_pointer + "/algorithm", "unknown algorithm '" + *algorithm + "' (" +
                                                     std::string(kPbkdf2Sha256) + ")");
  }
  user.password.algorithm = *algorithm;
  const Value& iterations = pw["iterations"];
  if (!iterations.IsUint() || iterations.GetUint() < kMinIterations ||
      iterations.GetUint() > kMaxIterations) {
    return fieldError(pw_pointer + "/iterations", "must be an integer from " +
                                                      std::to_string(kMinIterations) + " to " +
                                                      std::to_string(kMaxIterations));
  }
  user.password.iterations = iterations.GetUint();
  auto salt = getHex(pw, "salt", pw_pointer);
  if (!salt) return std::move(salt).error();
  user.password.salt = std::move(*salt);
  auto hash = getHex(pw, "hash", pw_pointer);
  if (!hash) return std::move(hash).error();
  user.password.hash = std::move(*hash);
  return user;
}

// Holds an exclusive flock on `<path>.lock` for its lifetime.
class FileLock {
 public:
  static Result<FileLock> take(const std::string& path) {
    std::string lock_path = path + ".lock";
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode);
    if (fd < 0) return errnoError("cannot open lock file " + lock_path, errno);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return errnoError("cannot lock " + lock_path, err);
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

std::string_view toString(Role role) {
  switch (role) {
    case Role::Admin:
      return "admin";
    case Role::Operator:
      return "operator";
    case Role::User:
      return "user";
  }
  return "user";
}

std::optional<Role> parseRole(std::string_view name) {
  for (Role role : {Role::Admin, Role::Operator, Role::User}) {
    if (toString(role) == name) return role;
  }
  return std::nullopt;
}

Result<void> checkGroupName(std::string_view name) {
  if (checkUserName(name)) return Ok();
  return Error(ErrorCode::InvalidArgument,
               "invalid group name: a group name is 1 to 64 characters of A-Z, a-z, 0-9, '.', "
               "'_', '-' and '@'");
}

Result<void> checkUserName(std::string_view name) {
  auto allowed = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
           c == '@';
  };
  if (!name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), allowed)) {
    return Ok();
  }
  return Error(ErrorCode::InvalidArgument,
               "invalid user name: a user name is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', "
               "'-' and '@'");
}

namespace {

void writeNames(rapidjson::PrettyWriter<rapidjson::StringBuffer>& w, const char* key,
                const std::set<std::string>& names) {
  w.Key(key);
  w.StartArray();
  for (const auto& name : names)
    w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.EndArray();
}

// A graph id as the REST API accepts it (rest/routes.h checkGraphId): 1 to 64 characters of
// [A-Za-z0-9._-].
bool validGraphId(std::string_view id) {
  return !id.empty() && id.size() <= 64 && id != "." && id != ".." &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
         });
}

}  // namespace

std::string printDirectory(const Directory& directory) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  auto string = [&w](std::string_view text) {
    w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  };
  w.StartObject();
  w.Key("version");
  w.Int(kFileVersion);
  w.Key("users");
  w.StartArray();
  for (const auto& [name, user] : directory.users) {
    w.StartObject();
    w.Key("name");
    string(user.name);
    w.Key("role");
    string(toString(user.role));
    w.Key("password");
    w.StartObject();
    w.Key("algorithm");
    string(user.password.algorithm);
    w.Key("iterations");
    w.Uint(user.password.iterations);
    w.Key("salt");
    string(toHex(user.password.salt));
    w.Key("hash");
    string(toHex(user.password.hash));
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  if (!directory.groups.empty()) {
    w.Key("groups");
    w.StartArray();
    for (const auto& [name, group] : directory.groups) {
      w.StartObject();
      w.Key("name");
      string(name);
      writeNames(w, "members", group.members);
      w.EndObject();
    }
    w.EndArray();
  }
  if (!directory.grants.empty()) {
    w.Key("grants");
    w.StartArray();
    for (const auto& [graph, grant] : directory.grants) {
      w.StartObject();
      w.Key("graph");
      string(graph);
      writeNames(w, "users", grant.users);
      writeNames(w, "groups", grant.groups);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string printUsers(const std::map<std::string, User, std::less<>>& users) {
  Directory directory;
  directory.users = users;
  return printDirectory(directory);
}

Result<Directory> parseDirectory(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) {
    return Error(ErrorCode::Malformed,
                 "not JSON: " + std::string(rapidjson::GetParseError_En(doc.GetParseError())) +
                     " at offset " + std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return fieldError("", "must be an object");
  for (const auto& member : doc.GetObject()) {
    std::string_view key(member.name.GetString(), member.name.GetStringLength());
    if (key != "version" && key != "users" && key != "groups" && key != "grants") {
      return fieldError("/" + std::string(key), "unknown field '" + std::string(key) + "'");
    }
  }
  for (const char* key : {"version", "users"}) {
    if (!doc.HasMember(key)) return fieldError(std::string("/") + key, "is missing");
  }
  if (!doc["version"].IsInt() || doc["version"].GetInt() != kFileVersion) {
    return fieldError("/version", "must be " + std::to_string(kFileVersion) +
                                      " (a users file of another corch version)");
  }
  Directory out;
  const Value& list = doc["users"];
  if (!list.IsArray()) return fieldError("/users", "must be a list of users");
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    std::string pointer = "/users/" + std::to_string(i);
    auto user = parseUser(list[i], pointer);
    if (!user) return std::move(user).error();
    std::string name = user->name;
    if (!out.users.emplace(name, std::move(*user)).second) {
      return fieldError(pointer + "/name", "user '" + name + "' appears twice");
    }
  }
  auto knownUsers = [&out](const std::set<std::string>& names,
                           const std::string& pointer) -> Result<void> {
    size_t i = 0;
    for (const auto& name : names) {
      if (!out.users.count(name)) {
        return fieldError(pointer + "/" + std::to_string(i), "unknown user '" + name + "'");
      }
      ++i;
    }
    return Ok();
  };
  if (doc.HasMember("groups")) {
    const Value& groups = doc["groups"];
    if (!groups.IsArray()) return fieldError("/groups", "must be a list of groups");
    for (rapidjson::SizeType i = 0; i < groups.Size(); ++i) {
      std::string pointer = "/groups/" + std::to_string(i);
      CORCH_TRY(onlyKeys(groups[i], pointer, {"name", "members"}));
      auto name = getString(groups[i], "name", pointer);
      if (!name) return std::move(name).error();
      if (auto valid = checkGroupName(*name); !valid) {
        return fieldError(pointer + "/name", valid.error().message());
      }
      auto members = getNames(groups[i]["members"], pointer + "/members", checkUserName);
      if (!members) return std::move(members).error();
      CORCH_TRY(knownUsers(*members, pointer + "/members"));
      if (!out.groups.emplace(*name, Group{*name, std::move(*members)}).second) {
        return fieldError(pointer + "/name", "group '" + *name + "' appears twice");
      }
    }
  }
  if (doc.HasMember("grants")) {
    const Value& grants = doc["grants"];
    if (!grants.IsArray()) return fieldError("/grants", "must be a list of grants");
    for (rapidjson::SizeType i = 0; i < grants.Size(); ++i) {
      std::string pointer = "/grants/" + std::to_string(i);
      CORCH_TRY(onlyKeys(grants[i], pointer, {"graph", "users", "groups"}));
      auto graph = getString(grants[i], "graph", pointer);
      if (!graph) return std::move(graph).error();
      if (!validGraphId(*graph)) return fieldError(pointer + "/graph", "invalid graph id");
      Grant grant;
      auto users = getNames(grants[i]["users"], pointer + "/users", checkUserName);
      if (!users) return std::move(users).error();
      CORCH_TRY(knownUsers(*users, pointer + "/users"));
      auto group_names = getNames(grants[i]["groups"], pointer + "/groups", checkGroupName);
      if (!group_names) return std::move(group_names).error();
      size_t g = 0;
      for (const auto& name : *group_names) {
        if (!out.groups.count(name)) {
          return fieldError(pointer + "/groups/" + std::to_string(g),
                            "unknown group '" + name + "'");
        }
        ++g;
      }
      grant.users = std::move(*users);
      grant.groups = std::move(*group_names);
      if (!out.grants.emplace(*graph, std::move(grant)).second) {
        return fieldError(pointer + "/graph", "graph '" + *graph + "' appears twice");
      }
    }
  }
  return out;
}

Result<std::map<std::string, User, std::less<>>> parseUsers(std::string_view text) {
  auto directory = parseDirectory(text);
  if (!directory) return std::move(directory).error();
  return std::move(directory->users);
}

Result<std::unique_ptr<UserStore>> UserStore::open(std::string path, uint32_t iterations) {
  if (iterations < kMinIterations || iterations > kMaxIterations) {
    return Error(ErrorCode::InvalidArgument,
                 "PBKDF2 iterations must be from " + std::to_string(kMinIterations) + " to " +
                     std::to_string(kMaxIterations) + ", not " + std::to_string(iterations));
  }
  if (path.empty()) return Error(ErrorCode::InvalidArgument, "no users file given");
  std::unique_ptr<UserStore> store(new UserStore(std::move(path), iterations));
  std::lock_guard lock(store->mu_);
  CORCH_TRY(store->loadLocked(true));
  return store;
}

Result<void> UserStore::loadLocked(bool force) {
  Stamp now;
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    now = Stamp{true, st.st_dev, st.st_ino, st.st_size,
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  } else if (errno != ENOENT) {
    return errnoError("cannot read users file " + path_, errno);
  }
  if (!force && now == stamp_) return Ok();
  if (!now.exists) {
    dir_ = Directory{};
    stamp_ = now;
    return Ok();
  }
  std::ifstream in(path_, std::ios::binary);
  if (!in) return errnoError("cannot read users file " + path_, errno);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return errnoError("cannot read users file " + path_, errno);
  auto users = parseDirectory(text.str());
  if (!users) return std::move(users).error().context("users file " + path_);
  if ((st.st_mode & 077) != 0) {
    CORCH_LOG(lg, Warn) << "users file " << path_ << " can be read by other users (mode "
                        << std::oct << (st.st_mode & 0777) << std::dec
                        << "): its password hashes can be attacked offline; chmod 600 it";
  }
  dir_ = std::move(*users);
  stamp_ = now;
  return Ok();
}

void UserStore::refreshLocked() {
  if (auto loaded = loadLocked(false); !loaded) {
    CORCH_LOG(lg, Warn) << loaded.error().message() << "; keeping the " << dir_.users.size()
                        << " user(s) read before";
  }
}

Result<User> UserStore::authenticate(std::string_view name, std::string_view password) {
  std::optional<User> user;
  {
    std::lock_guard lock(mu_);
    refreshLocked();
    if (auto it = dir_.users.find(name); it != dir_.users.end()) user = it->second;
  }
  bool ok =
      user ? verifyPassword(password, user->password) : verifyNoPassword(password, iterations_);
  if (!ok) return Error(ErrorCode::Unauthenticated, "wrong user name or password");
  return std::move(*user);
}

Result<void> UserStore::modify(const std::function<Result<void>(Directory&)>& change) {
  std::error_code ec;
  fs::path folder = fs::path(path_).parent_path();
  if (!folder.empty()) {
    fs::create_directories(folder, ec);
    if (ec)
      return Error(ErrorCode::Internal, "cannot create folder " + folder.string() + " for " +
                                            path_ + ": " + ec.message());
  }
  auto lock = FileLock::take(path_);
  if (!lock) return std::move(lock).error();
  std::lock_guard guard(mu_);
  CORCH_TRY(loadLocked(true));
  Directory next = dir_;
  CORCH_TRY(change(next));
  CORCH_TRY(writeFileAtomically(path_, printDirectory(next), kFileMode));
  CORCH_TRY(loadLocked(true));
  return Ok();
}

Result<void> UserStore::addUser(const std::string& name, std::string_view password, Role role) {
  CORCH_TRY(checkUserName(name));
  CORCH_TRY(checkNewPassword(password));
  auto hash = hashPassword(password, iterations_);
  if (!hash) return std::move(hash).error();
  return modify([&](Directory& d) -> Result<void> {
    if (d.users.count(name)) {
      return Error(ErrorCode::AlreadyExists, "user '" + name + "' already exists in " + path_);
    }
    d.users.emplace(name, User{name, role, std::move(*hash)});
    return Ok();
  });
}

namespace {

size_t admins(const Directory& d) {
  return static_cast<size_t>(std::count_if(d.users.begin(), d.users.end(), [](const auto& entry) {
    return entry.second.role == Role::Admin;
  }));
}

}  // namespace

Result<void> UserStore::setUser(const std::string& name, const UserChange& change, bool& created) {
  CORCH_TRY(checkUserName(name));
  std::optional<PasswordHash> hash;
  if (change.password) {
    if (auto valid = checkNewPassword(*change.password); !valid) {
      return fieldError("/password", valid.error().message());
    }
    auto made = hashPassword(*change.password, iterations_);
    if (!made) return std::move(made).error();
    hash = std::move(*made);
  }
  return modify([&](Directory& d) -> Result<void> {
    auto it = d.users.find(name);
    created = it == d.users.end();
    if (created) {
      if (!hash) return fieldError("/password", "is missing (a new user needs a password)");
      if (!change.role) return fieldError("/role", "is missing (a new user needs a role)");
      it = d.users.emplace(name, User{name, *change.role, *hash}).first;
    } else {
      if (hash) it->second.password = *hash;
      if (change.role) it->second.role = *change.role;
    }
    if (change.groups) {
      size_t i = 0;
      for (const auto& group : *change.groups) {
        if (!d.groups.count(group)) {
          return fieldError("/groups/" + std::to_string(i), "unknown group '" + group + "'");
        }
        ++i;
      }
      for (auto& [group_name, group] : d.groups) {
        if (change.groups->count(group_name)) {
          group.members.insert(name);
        } else {
          group.members.erase(name);
        }
      }
    }
    if (admins(d) == 0) {
      return Error::field(ErrorCode::Conflict, "/role",
                          "user '" + name + "' is the last admin: there must always be one");
    }
    return Ok();
  });
}

Result<void> UserStore::deleteUser(const std::string& name) {
  return modify([&](Directory& d) -> Result<void> {
    auto it = d.users.find(name);
    if (it == d.users.end()) return Error(ErrorCode::NotFound, "no user '" + name + "'");
    d.users.erase(it);
    if (admins(d) == 0) {
      return Error(ErrorCode::Conflict,
                   "user '" + name + "' is the last admin: there must always be one");
    }
    for (auto& [group_name, group] : d.groups) group.members.erase(name);
    for (auto grant = d.grants.begin(); grant != d.grants.end();) {
      grant->second.users.erase(name);
      grant = grant->second.empty() ? d.grants.erase(grant) : std::next(grant);
    }
    return Ok();
  });
}

Result<void> UserStore::setGroup(const std::string& name, const std::set<std::string>& members,
                                 bool& created) {
  CORCH_TRY(checkGroupName(name));
  return modify([&](Directory& d) -> Result<void> {
    size_t i = 0;
    for (const auto& member : members) {
      if (!d.users.count(member)) {
        return fieldError("/members/" + std::to_string(i), "unknown user '" + member + "'");
      }
      ++i;
    }
    created = d.groups.count(name) == 0;
    d.groups[name] = Group{name, members};
    return Ok();
  });
}

Result<void> UserStore::deleteGroup(const std::string& name) {
  return modify([&](Directory& d) -> Result<void> {
    if (d.groups.erase(name) == 0) return Error(ErrorCode::NotFound, "no group '" + name + "'");
    for (auto grant = d.grants.begin(); grant != d.grants.end();) {
      grant->second.groups.erase(name);
      grant = grant->second.empty() ? d.grants.erase(grant) : std::next(grant);
    }
    return Ok();
  });
}

Result<void> UserStore::setGrant(const std::string& graph_id, const Grant& grant) {
  if (!validGraphId(graph_id)) {
    return Error(ErrorCode::InvalidArgument, "invalid graph id '" + graph_id + "'");
  }
  return modify([&](Directory& d) -> Result<void> {
    size_t i = 0;
    for (const auto& user : grant.users) {
      if (!d.users.count(user)) {
        return fieldError("/users/" + std::to_string(i), "unknown user '" + user + "'");
      }
      ++i;
    }
    i = 0;
    for (const auto& group : grant.groups) {
      if (!d.groups.count(group)) {
        return fieldError("/groups/" + std::to_string(i), "unknown group '" + group + "'");
      }
      ++i;
    }
    if (grant.empty()) {
      d.grants.erase(graph_id);
    } else {
      d.grants[graph_id] = grant;
    }
    return Ok();
  });
}

Result<void> UserStore::removeGrant(const std::string& graph_id) {
  {
    std::lock_guard lock(mu_);
    refreshLocked();
    if (!dir_.grants.count(graph_id)) return Ok();
  }
  return modify([&](Directory& d) -> Result<void> {
    d.grants.erase(graph_id);
    return Ok();
  });
}

bool UserStore::granted(std::string_view user, std::string_view graph_id) {
  std::lock_guard lock(mu_);
  refreshLocked();
  auto it = dir_.grants.find(graph_id);
  if (it == dir_.grants.end()) return false;
  if (it->second.users.count(std::string(user))) return true;
  for (const auto& group : it->second.groups) {
    auto g = dir_.groups.find(group);
    if (g != dir_.groups.end() && g->second.members.count(std::string(user))) return true;
  }
  return false;
}

Grant UserStore::grant(std::string_view graph_id) {
  std::lock_guard lock(mu_);
  refreshLocked();
  auto it = dir_.grants.find(graph_id);
  return it == dir_.grants.end() ? Grant{} : it->second;
}

Directory UserStore::directory() {
  std::lock_guard lock(mu_);
  refreshLocked();
  return dir_;
}

std::set<std::string> UserStore::groupsOf(std::string_view name) {
  std::lock_guard lock(mu_);
  refreshLocked();
  std::set<std::string> out;
  for (const auto& [group_name, group] : dir_.groups) {
    if (group.members.count(std::string(name))) out.insert(group_name);
  }
  return out;
}

std::optional<User> UserStore::find(std::string_view name) {
  std::lock_guard lock(mu_);
  refreshLocked();
  auto it = dir_.users.find(name);
  if (it == dir_.users.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> UserStore::names() {
  std::lock_guard lock(mu_);
  refreshLocked();
  std::vector<std::string> out;
  for (const auto& entry : dir_.users) out.push_back(entry.first);
  return out;
}

size_t UserStore::size() {
  std::lock_guard lock(mu_);
  refreshLocked();
  return dir_.users.size();
}

}  // namespace corch::security
