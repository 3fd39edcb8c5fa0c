#include "rest/routes.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <random>
#include <set>
#include <tuple>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace corch::rest {
namespace {

struct MethodSet {
  RouteKind kind;
  std::string_view allow;
};

// One table so that the Allow header and the 405 decision never disagree.
constexpr MethodSet kMethods[] = {
    {RouteKind::Graphs, "GET"},
    {RouteKind::Graph, "GET, PUT, DELETE"},
    {RouteKind::GraphStatus, "GET"},
    {RouteKind::SfLog, "GET"},
    {RouteKind::NffgGraphs, "GET, POST"},
    {RouteKind::NffgGraph, "GET, PUT, DELETE"},
    {RouteKind::NffgStatus, "GET"},
    {RouteKind::Login, "POST"},
    {RouteKind::Users, "GET"},
    {RouteKind::User, "GET, PUT, DELETE"},
    {RouteKind::Groups, "GET"},
    {RouteKind::Group, "GET, PUT, DELETE"},
    {RouteKind::GraphGrants, "GET, PUT"},
};

bool idChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::optional<Route> matchNffgRoute(const std::vector<std::string>& segments) {
  switch (segments.size()) {
    case 1:
      return Route{RouteKind::NffgGraphs, "", ""};
    case 2:
      return Route{RouteKind::NffgGraph, segments[1], ""};
    case 3:
      if (segments[1] == "status") return Route{RouteKind::NffgStatus, segments[2], ""};
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace

bool isNffgRoute(RouteKind kind) {
  return kind == RouteKind::NffgGraphs || kind == RouteKind::NffgGraph ||
         kind == RouteKind::NffgStatus;
}

bool isGraphRoute(RouteKind kind) {
  switch (kind) {
    case RouteKind::Graph:
    case RouteKind::GraphStatus:
    case RouteKind::SfLog:
    case RouteKind::NffgGraph:
    case RouteKind::NffgStatus:
    case RouteKind::GraphGrants:
      return true;
    default:
      return false;
  }
}

bool isAdminRoute(RouteKind kind) {
  return kind == RouteKind::Users || kind == RouteKind::User || kind == RouteKind::Groups ||
         kind == RouteKind::Group;
}

std::optional<Route> matchRoute(const std::vector<std::string>& segments) {
  if (!segments.empty() && segments[0] == "NF-FG") return matchNffgRoute(segments);
  if (segments.size() == 1 && segments[0] == "login") return Route{RouteKind::Login, "", ""};
  for (auto [word, many, one] : {std::tuple{"users", RouteKind::Users, RouteKind::User},
                                 std::tuple{"groups", RouteKind::Groups, RouteKind::Group}}) {
    if (segments.empty() || segments[0] != word) continue;
    if (segments.size() == 1) return Route{many, "", "", ""};
    if (segments.size() == 2) return Route{one, "", "", segments[1]};
    return std::nullopt;
  }
  if (segments.empty() || segments[0] != "graphs") return std::nullopt;
  switch (segments.size()) {
    case 1:
      return Route{RouteKind::Graphs, "", ""};
    case 2:
      return Route{RouteKind::Graph, segments[1], ""};
    case 3:
      if (segments[2] == "status") return Route{RouteKind::GraphStatus, segments[1], ""};
      if (segments[2] == "grants") return Route{RouteKind::GraphGrants, segments[1], ""};
      return std::nullopt;
    case 5:
      if (segments[2] == "sfs" && segments[4] == "log") {
        return Route{RouteKind::SfLog, segments[1], segments[3]};
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::string_view allowedMethods(RouteKind kind) {
  for (const auto& m : kMethods) {
    if (m.kind == kind) return m.allow;
  }
  return "";
}

bool methodAllowed(RouteKind kind, std::string_view method) {
  std::string_view allow = allowedMethods(kind);
  while (!allow.empty()) {
    size_t comma = allow.find(',');
    if (trim(allow.substr(0, comma)) == method) return true;
    if (comma == std::string_view::npos) break;
    allow.remove_prefix(comma + 1);
  }
  return false;
}

Result<void> checkGraphId(std::string_view id) {
  constexpr std::string_view kRule =
      "a graph id is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', and not '.' or '..'";
  bool ok = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), idChar) &&
            id != "." && id != "..";
  if (ok) return Ok();
  // The id may hold anything a URL can carry; show at most a readable prefix of it.
  std::string shown;
  for (char c : id.substr(0, 80)) {
    shown += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  if (id.size() > 80) shown += "...";
  return Error(ErrorCode::InvalidArgument, "invalid graph id '" + shown + "' (" +
                                               std::to_string(id.size()) +
                                               " characters): " + std::string(kRule));
}

std::string newGraphUuid() {
  // One random_device per call: ids are made once per POST, and a shared one would need a lock.
  std::random_device device;
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < bytes.size(); i += 4) {
    uint32_t word = device();
    for (size_t k = 0; k < 4; ++k) bytes[i + k] = static_cast<uint8_t>(word >> (8 * k));
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4 (RFC 9562 5.4)
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // variant 10xx
  constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0x0f];
  }
  return out;
}

bool isJsonContentType(std::string_view content_type) {
  std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  return lower(media) == "application/json";
}

bool acceptsJson(std::string_view accept) {
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    size_t semicolon = range.find(';');
    if (lower(trim(range.substr(0, semicolon))) != "application/json") continue;
    bool refused = false;
    // Parameters: "; q=0" (or 0.0, 0.000) refuses the type.
    while (semicolon != std::string_view::npos) {
      range.remove_prefix(semicolon + 1);
      semicolon = range.find(';');
      std::string param = lower(trim(range.substr(0, semicolon)));
      if (param.rfind("q=", 0) == 0) {
        std::string_view q = std::string_view(param).substr(2);
        refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    if (!refused) return true;
  }
  return false;
}

Result<std::string> requestToken(std::optional<std::string_view> x_auth_token,
                                 std::optional<std::string_view> authorization) {
  std::optional<std::string> bearer;
  if (authorization) {
    std::string_view value = trim(*authorization);
    size_t space = value.find_first_of(" \t");
    std::string scheme = lower(value.substr(0, space));
    if (scheme != "bearer") {
      // Named back only if it looks like a scheme (RFC 9110 token characters, short).
      bool shown = !scheme.empty() && scheme.size() <= 32 &&
                   std::all_of(scheme.begin(), scheme.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
                   });
      return Error(ErrorCode::Unauthenticated,
                   "the Authorization header uses " +
                       (shown ? "the scheme '" + std::string(value.substr(0, space)) + "'"
                              : std::string("another scheme")) +
                       "; corchd accepts only 'Bearer <token>' (or the token as X-Auth-Token)");
    }
    bearer = std::string(space == std::string_view::npos ? "" : trim(value.substr(space)));
    if (bearer->empty()) {
      return Error(ErrorCode::Unauthenticated,
                   "the Authorization header has no token after Bearer");
    }
  }
  if (x_auth_token) {
    std::string token(trim(*x_auth_token));
    if (token.empty()) return Error(ErrorCode::Unauthenticated, "the X-Auth-Token header is empty");
    if (bearer && *bearer != token) {
      return Error(ErrorCode::Unauthenticated,
                   "the X-Auth-Token and Authorization headers carry different tokens");
    }
    return token;
  }
  if (bearer) return std::move(*bearer);
  return Error(ErrorCode::Unauthenticated,
               "this request needs a token: log in with POST /login, then send the token as "
               "X-Auth-Token or Authorization: Bearer");
}

Result<LoginRequest> parseLogin(std::string_view body) {
  auto malformed = [](std::string pointer, std::string message) {
    return Error::field(ErrorCode::Malformed, std::move(pointer), std::move(message));
  };
  rapidjson::Document doc;
  // Iterative: a body of nested brackets must not exhaust the stack (what reads it afterwards
  // looks at the top-level members only).
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return Error(ErrorCode::Malformed,
                 "the login body is not JSON: " +
                     std::string(rapidjson::GetParseError_En(doc.GetParseError())) + " at offset " +
                     std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) {
    return malformed("", "the login body must be an object {\"username\", \"password\"}");
  }
  for (const auto& member : doc.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    if (key != "username" && key != "password") {
      return malformed("/" + key, "unknown field '" + key +
                                      "' (a login has only \"username\" "
                                      "and \"password\")");
    }
  }
  LoginRequest out;
  const std::pair<const char*, std::string*> fields[] = {{"username", &out.username},
                                                         {"password", &out.password}};
  for (auto [key, target] : fields) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd()) return malformed(std::string("/") + key, "is missing");
    if (!it->value.IsString()) return malformed(std::string("/") + key, "must be a string");
    target->assign(it->value.GetString(), it->value.GetStringLength());
  }
  if (out.username.empty()) return malformed("/username", "must not be empty");
  return out;
}

namespace {

Result<rapidjson::Document> parseObject(std::string_view body, const std::string& what,
                                        std::initializer_list<std::string_view> known) {
  rapidjson::Document doc;
  // Iterative: a body of nested brackets must not exhaust the stack (what reads it afterwards
  // looks at the top-level members only).
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return Error(ErrorCode::Malformed,
                 "the " + what + " is not JSON: " +
                     std::string(rapidjson::GetParseError_En(doc.GetParseError())) + " at offset " +
                     std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject())
    return Error::field(ErrorCode::Malformed, "", "the " + what + " must be an object");
  for (const auto& member : doc.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Error::field(ErrorCode::InvalidArgument, "/" + key, "unknown field '" + key + "'");
    }
  }
  return doc;
}

Result<std::vector<std::string>> nameList(const rapidjson::Document& doc, const char* key) {
  const std::string pointer = std::string("/") + key;
  const auto& v = doc[key];
  if (!v.IsArray())
    return Error::field(ErrorCode::InvalidArgument, pointer, "must be a list of names");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    const std::string at = pointer + "/" + std::to_string(i);
    if (!v[i].IsString()) return Error::field(ErrorCode::InvalidArgument, at, "must be a string");
    std::string name(v[i].GetString(), v[i].GetStringLength());
    if (!seen.insert(name).second) {
      return Error::field(ErrorCode::InvalidArgument, at, "'" + name + "' appears twice");
    }
    out.push_back(std::move(name));
  }
  return out;
}

}  // namespace

Result<UserBody> parseUserBody(std::string_view body) {
  auto doc = parseObject(body, "user", {"password", "role", "groups"});
  if (!doc) return std::move(doc).error();
  UserBody out;
  for (auto [key, target] : {std::pair{"password", &out.password}, {"role", &out.role}}) {
    if (!doc->HasMember(key)) continue;
    const auto& v = (*doc)[key];
    if (!v.IsString()) {
      return Error::field(ErrorCode::InvalidArgument, std::string("/") + key, "must be a string");
    }
    *target = std::string(v.GetString(), v.GetStringLength());
  }
  if (doc->HasMember("groups")) {
    auto groups = nameList(*doc, "groups");
    if (!groups) return std::move(groups).error();
    out.groups = std::move(*groups);
  }
  return out;
}

Result<std::vector<std::string>> parseGroupBody(std::string_view body) {
  auto doc = parseObject(body, "group", {"members"});
  if (!doc) return std::move(doc).error();
  if (!doc->HasMember("members")) {
    return Error::field(ErrorCode::InvalidArgument, "/members", "is missing");
  }
  return nameList(*doc, "members");
}

Result<GrantBody> parseGrantBody(std::string_view body) {
  auto doc = parseObject(body, "grant", {"users", "groups"});
  if (!doc) return std::move(doc).error();
  GrantBody out;
  for (auto [key, target] : {std::pair{"users", &out.users}, {"groups", &out.groups}}) {
    if (!doc->HasMember(key)) continue;
    auto names = nameList(*doc, key);
    if (!names) return std::move(names).error();
    *target = std::move(*names);
  }
  return out;
}

}  // namespace corch::rest
