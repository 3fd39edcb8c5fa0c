// libFuzzer target: the SF-FG parser (graph/sffg_codec.h), what every PUT /graphs/{id} body meets.
// Beyond "no crash, no leak, no undefined behaviour": a refusal is well formed, and an accepted
// graph prints in both formats and reads back as itself.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "graph_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto graph = corch::graph::parseSffg(corch::fuzz::asText(data, size));
  if (!graph.ok()) {
    corch::fuzz::checkRefusal(graph.error());
    return 0;
  }
  corch::fuzz::checkRoundTrips(*graph);
  return 0;
}
