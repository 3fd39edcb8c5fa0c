#include "security/security_manager.h"

#include <openssl/crypto.h>

#include "corch/log.h"

namespace corch::security {
namespace {

const log::Logger lg("security");

// A user name as a client sent it, safe for a log line: printable characters, at most 64.
std::string shown(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (name.size() > 64) out += "...";
  return out;
}

// Frees the calling thread's OpenSSL state (error queue, random generators) at the end of its
// scope. The callers are the REST server's pool threads, which live until the process exits and
// are joined only after OpenSSL's own clean-up at exit, too late for it to free their state.
// OpenSSL makes the state again on the thread's next use, in microseconds.
class ThreadStateRelease {
 public:
  ThreadStateRelease() = default;
  ThreadStateRelease(const ThreadStateRelease&) = delete;
  ThreadStateRelease& operator=(const ThreadStateRelease&) = delete;
  ~ThreadStateRelease() { OPENSSL_thread_stop(); }
};

}  // namespace

SecurityManager::SecurityManager(SecurityOptions options, std::unique_ptr<UserStore> users,
                                 ClockFn clock)
    : options_(std::move(options)),
      users_(std::move(users)),
      tokens_(options_.token_lifetime, std::move(clock)) {}

Result<std::unique_ptr<SecurityManager>> SecurityManager::create(SecurityOptions options,
                                                                 ClockFn clock) {
  if (options.token_lifetime < kMinTokenLifetime || options.token_lifetime > kMaxTokenLifetime) {
    return Error(ErrorCode::InvalidArgument,
                 "the token lifetime must be from " + std::to_string(kMinTokenLifetime.count()) +
                     " to " + std::to_string(kMaxTokenLifetime.count()) + " seconds, not " +
                     std::to_string(options.token_lifetime.count()));
  }
  std::unique_ptr<UserStore> users;
  if (options.enabled) {
    if (options.users_file.empty()) {
      return Error(ErrorCode::InvalidArgument,
                   "authentication is enabled but no users file is configured (auth.users-file)");
    }
    auto store = UserStore::open(options.users_file, options.pbkdf2_iterations);
    if (!store) return std::move(store).error();
    users = std::move(*store);
  }
  return std::unique_ptr<SecurityManager>(
      new SecurityManager(std::move(options), std::move(users), std::move(clock)));
}

Result<IssuedToken> SecurityManager::login(std::string_view user, std::string_view password) {
  ThreadStateRelease release;
  if (!users_) return tokens_.issue(std::string(user), Role::Admin);
  if (needsFirstUser()) {
    return Error(ErrorCode::Unavailable, firstUserHint(options_.users_file));
  }
  auto found = users_->authenticate(user, password);
  if (!found) {
    CORCH_LOG(lg, Info) << "login of '" << shown(user) << "' refused: " << found.error().message();
    return std::move(found).error();
  }
  CORCH_LOG(lg, Info) << "user '" << found->name << "' (" << toString(found->role) << ") logged in";
  return tokens_.issue(found->name, found->role);
}

Result<Session> SecurityManager::authenticate(std::string_view token) {
  ThreadStateRelease release;
  auto session = tokens_.check(token);
  if (!session || !users_) return session;
  auto user = users_->find(session->user);
  if (!user) {
    tokens_.revokeUser(session->user);
    return Error(ErrorCode::Unauthenticated,
                 "the token's user '" + session->user + "' no longer exists");
  }
  session->role = user->role;
  return session;
}

bool SecurityManager::needsFirstUser() { return users_ && users_->size() == 0; }

std::string SecurityManager::firstUserHint(const std::string& users_file) {
  return "no user exists yet (users file " + users_file +
         "): create the first admin with 'corchd --config FILE --add-user NAME --role admin' "
         "(the password is read from stdin), or with the configuration's initial-admin "
         "{\"name\", \"password-file\"} and a restart";
}

}  // namespace corch::security
