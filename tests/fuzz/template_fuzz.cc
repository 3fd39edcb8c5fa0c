// libFuzzer target: the template parser (resolver/repository.h, parseTemplate()), what every file
// of the SF repository meets, and, through a graph template, the SF-FG parser once more.
#include <cstddef>
#include <cstdint>
#include <string>

#include "corch/error.h"
#include "fuzz_check.h"
#include "graph_checks.h"
#include "resolver/repository.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source = "fuzz.json";
  auto t = corch::resolver::parseTemplate(corch::fuzz::asText(data, size), source);
  if (!t.ok()) {
    const corch::Error& e = t.error();
    FUZZ_CHECK(e.code() == corch::ErrorCode::InvalidArgument,
               "parseTemplate() failed with a code other than InvalidArgument");
    FUZZ_CHECK(e.message().rfind("invalid template " + source + ": ", 0) == 0,
               "parseTemplate()'s message does not name the template");
    FUZZ_CHECK(!e.fields().empty(), "parseTemplate() failed without naming a field");
    for (const corch::FieldError& f : e.fields()) {
      FUZZ_CHECK(f.pointer.empty() || f.pointer[0] == '/', "a field error's pointer is not one");
    }
    return 0;
  }
  FUZZ_CHECK(t->source == source, "Template::source is not the source given");
  FUZZ_CHECK(t->ports_min <= t->ports_max, "a template with ports.min > ports.max");
  if (t->isSubGraph()) {
    // repository.h: SAPs all internal-port, indexes exactly 0..ports_min-1, no measure.
    FUZZ_CHECK(t->type.empty(), "a graph template with a type");
    FUZZ_CHECK(t->ports_min == t->ports_max, "a graph template whose port range is not one number");
    FUZZ_CHECK(t->graph->saps.size() == t->ports_min, "a graph template with too few SAPs");
    std::vector<bool> seen(t->ports_min, false);
    for (const auto& sap : t->graph->saps) {
      FUZZ_CHECK(sap.type == corch::graph::SapType::InternalPort, "a graph template's SAP type");
      FUZZ_CHECK(sap.port_index < t->ports_min && !seen[sap.port_index],
                 "a graph template's SAP port indexes are not 0..n-1");
      seen[sap.port_index] = true;
    }
    FUZZ_CHECK(t->graph->measure.empty(), "a graph template with a measure");
    corch::fuzz::checkRoundTrips(*t->graph);
  } else {
    FUZZ_CHECK(!t->type.empty(), "an image template without a type");
  }
  return 0;
}
