// The security manager (COMPOSER paper, Figure 3): who may use corchd's northbound API. It logs
// users in against the user store and checks the tokens it issued; the REST server asks it about
// every request (rest/server.h).
//
// Authentication is on in corchd unless its configuration turns it off. Disabled, requests need no
// token and no users file is read; login() still issues a valid token for any user name and
// password, so that clients which always log in first (un-orchestrator's, FROG4's) work either
// way. Enabled, it reads the users file; an empty or missing one does not stop corchd (its graphs
// keep being served to the switch), but no request can be served until the first admin exists:
// needsFirstUser() tells the REST server so, which answers 503 saying how to create one
// (`corchd --add-user NAME --role admin`, reading the password from stdin, or the configuration's
// initial-admin). There is never a default password.
//
// A token carries its user's name; the role and groups are looked up in the users file at each
// request, so that a change of role, or the removal of a user, applies at once.
//
// Thread-safe; a login spends one password hash (about 0.1-0.3 s) on the calling thread. login()
// and authenticate() free the calling thread's OpenSSL state before they return, so that nothing
// of it outlives a call on a thread that never exits (the REST server's pool).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "corch/error.h"
#include "security/token_store.h"
#include "security/user_store.h"

namespace corch::security {

struct SecurityOptions {
  bool enabled = false;
  std::string users_file;                     // needed when enabled
  std::chrono::seconds token_lifetime{3600};  // from 60 s to 7 days
  uint32_t pbkdf2_iterations = kDefaultIterations;
};

// The bounds of SecurityOptions::token_lifetime.
inline constexpr std::chrono::seconds kMinTokenLifetime{60};
inline constexpr std::chrono::seconds kMaxTokenLifetime{7 * 24 * 3600};

class SecurityManager {
 public:
  // InvalidArgument for options out of range; when enabled, the user store's errors (an empty or
  // missing users file is not one).
  static Result<std::unique_ptr<SecurityManager>> create(SecurityOptions options,
                                                         ClockFn clock = WallClock::now);

  bool enabled() const { return options_.enabled; }
  const SecurityOptions& options() const { return options_; }

  // A token for `user` if `password` is theirs (Unauthenticated otherwise); any user name and
  // password get one when authentication is disabled.
  Result<IssuedToken> login(std::string_view user, std::string_view password);
  // The session of a token: Unauthenticated if it is unknown or expired, or if its user no
  // longer exists; its role is the user's current one. Also answers when authentication is
  // disabled (for a token login() issued), but nobody needs to ask then.
  Result<Session> authenticate(std::string_view token);
  // Whether authentication is on and no user exists yet: nothing can be served but a message
  // saying how to create the first admin.
  bool needsFirstUser();
  // The text of that message.
  static std::string firstUserHint(const std::string& users_file);
  // Forgets every token of a user (deleted, or given a new password).
  void logOut(std::string_view user) { tokens_.revokeUser(user); }

  // The user store, when authentication is enabled; null otherwise.
  UserStore* users() { return users_.get(); }

 private:
  SecurityManager(SecurityOptions options, std::unique_ptr<UserStore> users, ClockFn clock);

  const SecurityOptions options_;
  std::unique_ptr<UserStore> users_;
  TokenStore tokens_;
};

}  // namespace corch::security
