// The canonical northbound format, SF-FG (DESIGN section 6), to and from the graph model.
#pragma once

#include <string>
#include <string_view>

#include "corch/error.h"
#include "graph/model.h"

namespace corch::graph {

// Parses a document {"sffg": {...}}. Enforces the JSON Schema in graph/sffg.schema.json (unknown
// fields are rejected, not ignored) and then the semantic rules (ids unique, references resolve,
// numbers in range, OpenFlow prerequisites). Malformed (400) when the text is not JSON;
// InvalidArgument (422) otherwise, with one FieldError per offending field, each naming its JSON
// pointer ("/sffg/flowrules/2/actions/output_to_port").
Result<Graph> parseSffg(std::string_view json);

// Prints a graph as a canonical SF-FG document; parseSffg(printSffg(g)) == g.
std::string printSffg(const Graph& graph);

}  // namespace corch::graph
