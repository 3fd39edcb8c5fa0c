// The tokens handed out by POST /login (DESIGN section 5): 256 random bits (RAND_bytes) as 64 hex
// digits, each valid for a fixed lifetime from its issue. Kept in memory only: a restart of corchd
// logs every client out (they log in again, as un-orchestrator's clients do on a 401).
//
// Only the SHA-256 of a token is kept, so that the lookup's timing and a memory dump say nothing
// about valid tokens. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "corch/error.h"
#include "security/user_store.h"

namespace corch::security {

using WallClock = std::chrono::system_clock;
// The time source of token expiry; tests pass a clock they move.
using ClockFn = std::function<WallClock::time_point()>;

// Who a valid token belongs to.
struct Session {
  std::string user;
  Role role = Role::User;
  WallClock::time_point expires;
};

struct IssuedToken {
  std::string token;  // 64 lower-case hex digits
  WallClock::time_point expires;
};

class TokenStore {
 public:
  // Tokens live `lifetime`; at most `max_tokens` are kept (the ones expiring first make room, so
  // that a client logging in in a loop cannot fill the memory).
  explicit TokenStore(std::chrono::seconds lifetime, ClockFn clock = WallClock::now,
                      size_t max_tokens = 10000);

  // A new token for `user`. Internal if the random generator fails.
  Result<IssuedToken> issue(const std::string& user, Role role);
  // The session of a token. Unauthenticated, saying whether it is unknown or expired (and when),
  // otherwise; an expired token is forgotten.
  Result<Session> check(std::string_view token);
  // Forgets a token (logout); false if it was not known.
  bool revoke(std::string_view token);
  // Forgets every token of a user (deleted, or given a new password); how many there were.
  size_t revokeUser(std::string_view user);

  std::chrono::seconds lifetime() const { return lifetime_; }
  size_t size();

 private:
  void purgeLocked(WallClock::time_point now);

  const std::chrono::seconds lifetime_;
  const ClockFn clock_;
  const size_t max_tokens_;
  std::mutex mu_;
  std::unordered_map<std::string, Session> sessions_;  // by SHA-256 of the token (raw bytes)
};

// "2026-01-31T12:00:00Z": a time point as RFC 3339 UTC, to the second.
std::string formatTime(WallClock::time_point when);

}  // namespace corch::security
