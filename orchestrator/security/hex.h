// Hex text of byte strings, for what the security manager stores and hands out (salts, hashes,
// tokens): lower-case, two digits a byte.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace corch::security {

std::string toHex(std::string_view bytes);
// The bytes of a hex text (either case); nullopt if it is not an even number of hex digits.
std::optional<std::string> fromHex(std::string_view text);

}  // namespace corch::security
