#include "security/token_store.h"

#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <vector>

#include "security/hex.h"

namespace corch::security {
namespace {

constexpr size_t kTokenBytes = 32;  // 256 bits

// The key a token is kept under: its SHA-256, raw. Empty if OpenSSL fails (then nothing matches).
std::string tokenKey(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

}  // namespace

std::string formatTime(WallClock::time_point when) {
  time_t seconds = WallClock::to_time_t(when);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

TokenStore::TokenStore(std::chrono::seconds lifetime, ClockFn clock, size_t max_tokens)
    : lifetime_(lifetime), clock_(std::move(clock)), max_tokens_(std::max<size_t>(max_tokens, 1)) {}

Result<IssuedToken> TokenStore::issue(const std::string& user, Role role) {
  std::string bytes(kTokenBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size())) !=
      1) {
    return Error(ErrorCode::Internal, "cannot issue a token: the random generator failed");
  }
  IssuedToken out{toHex(bytes), {}};
  std::string key = tokenKey(out.token);
  if (key.empty()) return Error(ErrorCode::Internal, "cannot issue a token: SHA-256 failed");
  WallClock::time_point now = clock_();
  out.expires = now + lifetime_;
  std::lock_guard lock(mu_);
  purgeLocked(now);
  sessions_[key] = Session{user, role, out.expires};
  return out;
}

Result<Session> TokenStore::check(std::string_view token) {
  std::string key = tokenKey(token);
  WallClock::time_point now = clock_();
  std::lock_guard lock(mu_);
  auto it = sessions_.find(key);
  if (key.empty() || it == sessions_.end()) {
    return Error(ErrorCode::Unauthenticated,
                 "the token is not valid (unknown, revoked, or issued before corchd restarted); "
                 "log in again with POST /login");
  }
  if (it->second.expires <= now) {
    std::string when = formatTime(it->second.expires);
    sessions_.erase(it);
    return Error(ErrorCode::Unauthenticated,
                 "the token expired at " + when + "; log in again with POST /login");
  }
  return it->second;
}

bool TokenStore::revoke(std::string_view token) {
  std::string key = tokenKey(token);
  std::lock_guard lock(mu_);
  return sessions_.erase(key) > 0;
}

size_t TokenStore::revokeUser(std::string_view user) {
  std::lock_guard lock(mu_);
  return std::erase_if(sessions_, [user](const auto& entry) { return entry.second.user == user; });
}

size_t TokenStore::size() {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void TokenStore::purgeLocked(WallClock::time_point now) {
  std::erase_if(sessions_, [now](const auto& entry) { return entry.second.expires <= now; });
  if (sessions_.size() < max_tokens_) return;
  // Still full of live tokens: drop the ones expiring first, leaving room for the new one.
  std::vector<std::pair<WallClock::time_point, std::string>> order;
  order.reserve(sessions_.size());
  for (const auto& [key, session] : sessions_) order.emplace_back(session.expires, key);
  size_t drop = sessions_.size() - max_tokens_ + 1;
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                   order.end());
  for (size_t i = 0; i < drop; ++i) sessions_.erase(order[i].second);
}

}  // namespace corch::security
