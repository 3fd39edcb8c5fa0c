#include "security/password.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace corch::security {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kKeyBytes = 32;
constexpr size_t kMinPasswordBytes = 8;
constexpr size_t kMaxPasswordBytes = 1024;

std::string opensslError() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

// PBKDF2-HMAC-SHA256 of a password; Internal if OpenSSL fails.
Result<std::string> derive(std::string_view password, std::string_view salt, uint32_t iterations,
                           size_t key_bytes) {
  std::string key(key_bytes, '\0');
  int ok =
      PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(key.size()), reinterpret_cast<unsigned char*>(key.data()));
  if (ok != 1) {
    return Error(ErrorCode::Internal, "cannot derive a password hash: " + opensslError());
  }
  return key;
}

bool inRange(uint32_t iterations) {
  return iterations >= kMinIterations && iterations <= kMaxIterations;
}

}  // namespace

Result<PasswordHash> hashPassword(std::string_view password, uint32_t iterations) {
  if (!inRange(iterations)) {
    return Error(ErrorCode::InvalidArgument,
                 "cannot hash a password with " + std::to_string(iterations) +
                     " PBKDF2 iterations: from " + std::to_string(kMinIterations) + " to " +
                     std::to_string(kMaxIterations) + " are allowed");
  }
  PasswordHash out;
  out.iterations = iterations;
  out.salt.assign(kSaltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.salt.data()),
                 static_cast<int>(out.salt.size())) != 1) {
    return Error(ErrorCode::Internal, "cannot draw a random salt: " + opensslError());
  }
  auto key = derive(password, out.salt, iterations, kKeyBytes);
  if (!key) return std::move(key).error();
  out.hash = std::move(*key);
  return out;
}

bool verifyPassword(std::string_view password, const PasswordHash& stored) {
  if (stored.algorithm != kPbkdf2Sha256 || !inRange(stored.iterations) || stored.hash.empty() ||
      stored.salt.empty()) {
    return false;
  }
  auto key = derive(password, stored.salt, stored.iterations, stored.hash.size());
  if (!key) return false;
  return CRYPTO_memcmp(key->data(), stored.hash.data(), stored.hash.size()) == 0;
}

bool verifyNoPassword(std::string_view password, uint32_t iterations) {
  static const std::string kSalt(kSaltBytes, 'x');
  if (!inRange(iterations)) iterations = kDefaultIterations;
  (void)derive(password, kSalt, iterations, kKeyBytes);
  return false;
}

Result<void> checkNewPassword(std::string_view password) {
  if (password.size() < kMinPasswordBytes) {
    return Error(ErrorCode::InvalidArgument, "the password is too short: at least " +
                                                 std::to_string(kMinPasswordBytes) +
                                                 " characters are required");
  }
  if (password.size() > kMaxPasswordBytes) {
    return Error(ErrorCode::InvalidArgument, "the password is too long: at most " +
                                                 std::to_string(kMaxPasswordBytes) +
                                                 " bytes are accepted");
  }
  return Ok();
}

}  // namespace corch::security
