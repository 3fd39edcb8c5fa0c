// SHA-256 of an SF image, to check that it is the one its template names (OpenSSL EVP).
#pragma once

#include <string>

#include "corch/error.h"

namespace corch::resolver {

// The SHA-256 of a file's content, as 64 lower-case hex digits. Errors name the file.
Result<std::string> sha256File(const std::string& path);

}  // namespace corch::resolver
