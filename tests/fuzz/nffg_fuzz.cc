// libFuzzer target: the NF-FG parser (graph/nffg_codec.h), what every body on /NF-FG meets.
// A refusal is well formed; an accepted graph prints in both formats and reads back as itself,
// and the pointer translation of its fields never fails.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "graph_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto graph = corch::graph::parseNffg(corch::fuzz::asText(data, size));
  if (!graph.ok()) {
    corch::fuzz::checkRefusal(graph.error());
    (void)corch::graph::isSchemaError(graph.error());
    return 0;
  }
  corch::fuzz::checkRoundTrips(*graph);
  // The pointers later stages report, translated back to the NF-FG document.
  for (size_t i = 0; i < graph->rules.size(); ++i) {
    std::string p = "/sffg/flowrules/" + std::to_string(i) + "/actions/output_to_port";
    FUZZ_CHECK(!corch::graph::nffgPointer(*graph, p).empty(), "nffgPointer() lost a pointer");
  }
  for (size_t i = 0; i < graph->sfs.size(); ++i) {
    std::string p = "/sffg/SFs/" + std::to_string(i) + "/template";
    FUZZ_CHECK(!corch::graph::nffgPointer(*graph, p).empty(), "nffgPointer() lost a pointer");
  }
  return 0;
}
