// Test support for the security manager and its users (the REST server's tests, corchctl's),
// header-only: nothing in corchd uses it. A wall clock the test moves, and a SecurityManager with
// authentication on over a users file holding given users, hashed at the cheapest cost allowed
// so that logins in tests take milliseconds.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "security/security_manager.h"
#include "security/user_store.h"

namespace corch::security::testing {

// A wall clock that stands still until advance()d. Copies share the time.
class ManualClock {
 public:
  explicit ManualClock(int64_t start_seconds = 1700000000)
      : seconds_(std::make_shared<std::atomic<int64_t>>(start_seconds)) {}
  WallClock::time_point now() const {
    return WallClock::time_point(std::chrono::seconds(seconds_->load()));
  }
  ClockFn fn() const {
    auto seconds = seconds_;
    return [seconds] { return WallClock::time_point(std::chrono::seconds(seconds->load())); };
  }
  void advance(std::chrono::seconds by) { *seconds_ += by.count(); }

 private:
  std::shared_ptr<std::atomic<int64_t>> seconds_;
};

struct TestUser {
  std::string name;
  std::string password;
  Role role = Role::Admin;
};

// Adds `users` to the users file `users_file` (created if needed) and returns a SecurityManager
// with authentication on over it. Throws std::runtime_error if that fails: a broken test set-up.
inline std::unique_ptr<SecurityManager> enabledManager(const std::string& users_file,
                                                       const std::vector<TestUser>& users,
                                                       std::chrono::seconds lifetime,
                                                       ClockFn clock = WallClock::now) {
  auto store = UserStore::open(users_file, kMinIterations);
  if (!store) throw std::runtime_error(store.error().message());
  for (const auto& user : users) {
    if (auto added = (*store)->addUser(user.name, user.password, user.role); !added) {
      throw std::runtime_error(added.error().message());
    }
  }
  SecurityOptions options;
  options.enabled = true;
  options.users_file = users_file;
  options.token_lifetime = lifetime;
  options.pbkdf2_iterations = kMinIterations;
  auto manager = SecurityManager::create(options, std::move(clock));
  if (!manager) throw std::runtime_error(manager.error().message());
  return std::move(*manager);
}

}  // namespace corch::security::testing
