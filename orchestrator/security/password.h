// Password hashing for the user store: PBKDF2-HMAC-SHA256 (OpenSSL), a random 16-byte salt per
// password, a 32-byte key, and an iteration count stored with each hash so that it can be raised
// later without invalidating stored passwords. Verification compares in constant time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "corch/error.h"

namespace corch::security {

// The algorithm name stored with every hash; the only one there is.
inline constexpr std::string_view kPbkdf2Sha256 = "pbkdf2-sha256";
// Iterations of new hashes: OWASP's 2021 figure for PBKDF2-HMAC-SHA256 (about 0.1-0.3 s on a
// server core, more on a gateway's), a cost paid once per login.
inline constexpr uint32_t kDefaultIterations = 310000;
// Fewer than this is refused, for new hashes and in a users file; more than kMaxIterations too
// (a login would hold a thread for minutes).
inline constexpr uint32_t kMinIterations = 100000;
inline constexpr uint32_t kMaxIterations = 10000000;

struct PasswordHash {
  std::string algorithm{kPbkdf2Sha256};
  uint32_t iterations = kDefaultIterations;
  std::string salt;  // raw bytes
  std::string hash;  // raw bytes: the derived key
  bool operator==(const PasswordHash&) const = default;
};

// Hashes a password under a fresh random salt (RAND_bytes). InvalidArgument if `iterations` is
// outside [kMinIterations, kMaxIterations]; Internal if OpenSSL fails.
Result<PasswordHash> hashPassword(std::string_view password,
                                  uint32_t iterations = kDefaultIterations);

// Whether `password` is the one `stored` was made from. The derived keys are compared with
// CRYPTO_memcmp, so the time taken does not tell how much of a guess was right. False for a hash
// of another algorithm or with an out-of-range iteration count.
bool verifyPassword(std::string_view password, const PasswordHash& stored);

// Spends the time of one verifyPassword() of a hash with `iterations` and returns false: for a
// login naming an unknown user, so that its answer does not come sooner than a wrong password's.
bool verifyNoPassword(std::string_view password, uint32_t iterations = kDefaultIterations);

// Whether a password is acceptable for a new user: 8 to 1024 bytes. InvalidArgument saying why.
Result<void> checkNewPassword(std::string_view password);

}  // namespace corch::security
