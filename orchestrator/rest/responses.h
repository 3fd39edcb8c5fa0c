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

// Rewrites a JSON document compactly; nullopt if it is not JSON.
std::optional<std::string> compactJson(std::string_view json);

}  // namespace corch::rest
