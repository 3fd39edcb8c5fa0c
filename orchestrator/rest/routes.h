// The northbound API's URL space and request rules (DESIGN section 5), free of any HTTP library so
// that the server and its tests share one definition of what is a known path, which methods each
// path allows, what a valid graph id is and which bodies a PUT accepts. Two URL spaces share these
// rules: the canonical SF-FG API under /graphs and un-orchestrator's NF-FG API under /NF-FG, plus
// POST /login, and the reading of the credentials (tokens, login bodies) requests carry.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"

namespace corch::rest {

enum class RouteKind {
  Graphs,       // /graphs
  Graph,        // /graphs/{id}
  GraphStatus,  // /graphs/{id}/status
  SfLog,        // /graphs/{id}/sfs/{sf}/log
  // un-orchestrator's NF-FG API (DESIGN section 5, "Compatibility"), with its own paths: the
  // status is /NF-FG/status/{id}, so a graph named "status" is only reachable as /NF-FG/status
  // (un-orchestrator's router read it the same way).
  NffgGraphs,  // /NF-FG and /NF-FG/
  NffgGraph,   // /NF-FG/{id}
  NffgStatus,  // /NF-FG/status/{id}
  Login,       // /login: the only path served without a token when authentication is on
  // Who may do what (admins only), and who may read a graph (admins and operators).
  Users,        // /users
  User,         // /users/{name}
  Groups,       // /groups
  Group,        // /groups/{name}
  GraphGrants,  // /graphs/{id}/grants
};

// Whether a route belongs to the NF-FG API (its bodies are NF-FG documents).
bool isNffgRoute(RouteKind kind);

struct Route {
  RouteKind kind = RouteKind::Graphs;
  std::string graph_id;  // Graph, GraphStatus, SfLog; not yet validated (see checkGraphId)
  std::string sf_id;     // SfLog
  std::string name;      // User, Group: not yet validated
};

// Whether a route names one graph (Graph, GraphStatus, SfLog, NffgGraph, NffgStatus,
// GraphGrants): its graph_id is checked, and a user needs a grant of it to read it.
bool isGraphRoute(RouteKind kind);
// Whether a route is an admin's (users and groups).
bool isAdminRoute(RouteKind kind);

// Matches the decoded, non-empty segments of a request path ("/graphs/g1" -> {"graphs", "g1"}).
// nullopt when the path is not one the API knows (404), whatever the method.
std::optional<Route> matchRoute(const std::vector<std::string>& segments);

// The methods a route answers, as an Allow header value ("GET, PUT, DELETE").
std::string_view allowedMethods(RouteKind kind);
// Whether `method` ("GET", "PUT", ...) is one of allowedMethods(kind). Anything else is a 405.
bool methodAllowed(RouteKind kind, std::string_view method);

// Graph ids are 1-64 characters of [A-Za-z0-9._-], and not "." or ".." (which clients remove from
// URLs as dot-segments, RFC 3986 5.2.4). InvalidArgument (422) naming the id otherwise.
Result<void> checkGraphId(std::string_view id);

// A new graph id for a POST /NF-FG/: a random (version 4) UUID in its 36-character text form,
// "d3c7f0cf-a9a1-4d5f-a225-d2a1c2b8d866", which checkGraphId() accepts. The bits come from
// std::random_device (the kernel's getrandom() / /dev/urandom on Linux), so that ids of graphs
// created by different corchd processes or after a restart do not repeat.
std::string newGraphUuid();

// Whether a Content-Type header names JSON: "application/json", any case, parameters such as
// "; charset=utf-8" allowed.
bool isJsonContentType(std::string_view content_type);

// The largest request body accepted (413 beyond).
inline constexpr size_t kMaxBodyBytes = 1024 * 1024;
// The largest POST /login body accepted.
inline constexpr size_t kMaxLoginBodyBytes = 16 * 1024;

// Whether an Accept header asks for JSON: one of its media ranges is "application/json" (any case,
// parameters allowed) without q=0. A wildcard ("*/*") does not count: POST /login answers JSON
// only to a client that asks for it, and un-orchestrator's plain-text token to everyone else.
bool acceptsJson(std::string_view accept);

// The token a request carries: its X-Auth-Token header (un-orchestrator's clients) or its
// Authorization header with the Bearer scheme (RFC 6750; the scheme in any case). An absent
// header is nullopt. Unauthenticated, saying why, for no token at all, an empty one, another
// Authorization scheme, or two different tokens in the two headers.
Result<std::string> requestToken(std::optional<std::string_view> x_auth_token,
                                 std::optional<std::string_view> authorization);

// The body of POST /login, as un-orchestrator defined it: {"username": "...", "password": "..."}
// (both strings, the user name not empty; nothing else). Malformed (400) otherwise, with the JSON
// pointer of the offending field ("/username", or "" for a body that is not an object).
struct LoginRequest {
  std::string username;
  std::string password;
};
Result<LoginRequest> parseLogin(std::string_view body);

// The bodies of the admin resources (JSON objects; unknown keys refused). Malformed (400) for a
// body that is not JSON or not an object, InvalidArgument (422) naming the field otherwise.
//   PUT /users/{name}           {"password"?, "role"?, "groups"?: [names]}
//   PUT /groups/{name}          {"members": [user names]}
//   PUT /graphs/{id}/grants     {"users"?: [names], "groups"?: [names]}
struct UserBody {
  std::optional<std::string> password;
  std::optional<std::string> role;
  std::optional<std::vector<std::string>> groups;
};
Result<UserBody> parseUserBody(std::string_view body);
Result<std::vector<std::string>> parseGroupBody(std::string_view body);
struct GrantBody {
  std::vector<std::string> users;
  std::vector<std::string> groups;
};
Result<GrantBody> parseGrantBody(std::string_view body);

}  // namespace corch::rest
