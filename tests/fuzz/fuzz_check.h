// What the fuzz targets share: a check that stops the run on a broken property (a crash for
// libFuzzer, which then saves the input), and helpers to look at an input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// Properties, not parse failures: an input the parser refuses is fine; a parser that returns
// something its own header says it cannot (a graph that does not survive print and re-parse, an
// error without a pointer) is a bug. abort() so that libFuzzer and the replay main both stop there
// with the message.
#define FUZZ_CHECK(cond, what)                                                                    \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "%s:%d: fuzz property broken: %s\n  (%s)\n", __FILE__, __LINE__, what, \
                   #cond);                                                                        \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)

namespace corch::fuzz {

inline std::string_view asText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace corch::fuzz
