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

std::string printUsers(const std::map<std::string, User, std::less<>>& users) {
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
  for (const auto& [name, user] : users) {
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
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Result<std::map<std::string, User, std::less<>>> parseUsers(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) {
    return Error(ErrorCode::Malformed,
                 "not JSON: " + std::string(rapidjson::GetParseError_En(doc.GetParseError())) +
                     " at offset " + std::to_string(doc.GetErrorOffset()));
  }
  CORCH_TRY(onlyKeys(doc, "", {"version", "users"}));
  if (!doc["version"].IsInt() || doc["version"].GetInt() != kFileVersion) {
    return fieldError("/version", "must be " + std::to_string(kFileVersion) +
                                      " (a users file of another corch version)");
  }
  const Value& list = doc["users"];
  if (!list.IsArray()) return fieldError("/users", "must be a list of users");
  std::map<std::string, User, std::less<>> users;
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    std::string pointer = "/users/" + std::to_string(i);
    auto user = parseUser(list[i], pointer);
    if (!user) return std::move(user).error();
    std::string name = user->name;
    if (!users.emplace(name, std::move(*user)).second) {
      return fieldError(pointer + "/name", "user '" + name + "' appears twice");
    }
  }
  return users;
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
    users_.clear();
    stamp_ = now;
    return Ok();
  }
  std::ifstream in(path_, std::ios::binary);
  if (!in) return errnoError("cannot read users file " + path_, errno);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return errnoError("cannot read users file " + path_, errno);
  auto users = parseUsers(text.str());
  if (!users) return std::move(users).error().context("users file " + path_);
  if ((st.st_mode & 077) != 0) {
    CORCH_LOG(lg, Warn) << "users file " << path_ << " can be read by other users (mode "
                        << std::oct << (st.st_mode & 0777) << std::dec
                        << "): its password hashes can be attacked offline; chmod 600 it";
  }
  users_ = std::move(*users);
  stamp_ = now;
  return Ok();
}

void UserStore::refreshLocked() {
  if (auto loaded = loadLocked(false); !loaded) {
    CORCH_LOG(lg, Warn) << loaded.error().message() << "; keeping the " << users_.size()
                        << " user(s) read before";
  }
}

Result<User> UserStore::authenticate(std::string_view name, std::string_view password) {
  std::optional<User> user;
  {
    std::lock_guard lock(mu_);
    refreshLocked();
    if (auto it = users_.find(name); it != users_.end()) user = it->second;
  }
  bool ok =
      user ? verifyPassword(password, user->password) : verifyNoPassword(password, iterations_);
  if (!ok) return Error(ErrorCode::Unauthenticated, "wrong user name or password");
  return std::move(*user);
}

Result<void> UserStore::addUser(const std::string& name, std::string_view password, Role role) {
  CORCH_TRY(checkUserName(name));
  CORCH_TRY(checkNewPassword(password));
  auto hash = hashPassword(password, iterations_);
  if (!hash) return std::move(hash).error();
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
  if (users_.count(name)) {
    return Error(ErrorCode::AlreadyExists, "user '" + name + "' already exists in " + path_);
  }
  auto users = users_;
  users.emplace(name, User{name, role, std::move(*hash)});
  CORCH_TRY(writeFileAtomically(path_, printUsers(users), kFileMode));
  CORCH_TRY(loadLocked(true));
  return Ok();
}

std::optional<User> UserStore::find(std::string_view name) {
  std::lock_guard lock(mu_);
  refreshLocked();
  auto it = users_.find(name);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> UserStore::names() {
  std::lock_guard lock(mu_);
  refreshLocked();
  std::vector<std::string> out;
  for (const auto& entry : users_) out.push_back(entry.first);
  return out;
}

size_t UserStore::size() {
  std::lock_guard lock(mu_);
  refreshLocked();
  return users_.size();
}

}  // namespace corch::security
