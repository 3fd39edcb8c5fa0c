// The JSON bodies the northbound API answers with (DESIGN section 5), as compact text. Kept apart
// from the HTTP server so that they can be built and tested without a listener.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "node/graph_service.h"

namespace corch::rest {

inline constexpr std::string_view kJsonType = "application/json";
inline constexpr std::string_view kProblemType = "application/problem+json";
inline constexpr std::string_view kTextType = "text/plain; charset=utf-8";

// The reason phrase of an HTTP status ("Not Found", "Unprocessable Content"); "Error" if unknown.
std::string_view reasonPhrase(int status);

// An RFC 9457 problem document:
//   {"type": "https://corch.dev/problems/<name>", "title": reasonPhrase(status), "status",
//    "detail", "errors": [{"pointer", "message"}]}
// `errors` only when there are field errors. `name` is codeName() for an Error, or a name of the
// HTTP layer's own ("method-not-allowed", "unsupported-media-type").
struct Problem {
  int status = 500;
  std::string name = "internal";
  std::string detail;
  std::vector<FieldError> fields;

  static Problem fromError(const Error& error);
};
std::string problemJson(const Problem& problem);

// {"state", "progress", "error"?}; error is the problem document of the last failure.
std::string statusJson(const node::GraphStatus& status);
// {"graphs": [{"id", "name", "state", "progress"}]}
std::string listJson(const std::vector<node::GraphSummary>& graphs);
// {"id", "status": statusJson, "changes": [...]}
std::string putJson(const std::string& id, const node::GraphStatus& status,
                    const std::vector<std::string>& changes);

// The NF-FG API's bodies (un-orchestrator's, DESIGN section 5 "Compatibility").
//
// un-orchestrator's status words, as its clients test them (FROG4 counts a graph as done when it
// is "complete"): Deployed -> "complete"; Deploying, Updating, Deleting -> "in_progress"; Failed ->
// "error". (un-orchestrator itself always answered "complete", 100.)
std::string_view nffgStatusWord(node::GraphState state);
// {"status": nffgStatusWord(state), "percentage_completed": progress}
std::string nffgStatusJson(const node::GraphStatus& status);
// {"nffg-uuid": id}: the answer to POST /NF-FG/.
std::string nffgUuidJson(const std::string& id);
// {"nffg-uuid": id, "status", "percentage_completed"}: the answer to PUT /NF-FG/{id}.
std::string nffgPutJson(const std::string& id, const node::GraphStatus& status);

// One graph of GET /NF-FG: its id and its NF-FG document (printNffg(), {"forwarding-graph": ...}).
struct NffgEntry {
  std::string id;
  std::string document;
};
// {"NF-FG": [{"forwarding-graph": {...}, "nffg-uuid": id}, ...]}, each element the graph's NF-FG
// document with its id added as un-orchestrator did. nullopt if a document is not a JSON object.
std::optional<std::string> nffgListJson(const std::vector<NffgEntry>& graphs);

// The canonical answer to POST /login (DESIGN section 5): {"token", "expires"}, `expires` as RFC
// 3339 UTC ("2026-01-31T12:00:00Z"). un-orchestrator's clients get the token alone, as text.
std::string loginJson(const std::string& token, const std::string& expires);

// Rewrites a JSON document compactly; nullopt if it is not JSON.
std::optional<std::string> compactJson(std::string_view json);

}  // namespace corch::rest
