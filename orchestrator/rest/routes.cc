#include "rest/routes.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <random>

namespace corch::rest {
namespace {

struct MethodSet {
  RouteKind kind;
  std::string_view allow;
};

// One table so that the Allow header and the 405 decision never disagree.
constexpr MethodSet kMethods[] = {
    {RouteKind::Graphs, "GET"},           {RouteKind::Graph, "GET, PUT, DELETE"},
    {RouteKind::GraphStatus, "GET"},      {RouteKind::SfLog, "GET"},
    {RouteKind::NffgGraphs, "GET, POST"}, {RouteKind::NffgGraph, "GET, PUT, DELETE"},
    {RouteKind::NffgStatus, "GET"},
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

std::optional<Route> matchRoute(const std::vector<std::string>& segments) {
  if (!segments.empty() && segments[0] == "NF-FG") return matchNffgRoute(segments);
  if (segments.empty() || segments[0] != "graphs") return std::nullopt;
  switch (segments.size()) {
    case 1:
      return Route{RouteKind::Graphs, "", ""};
    case 2:
      return Route{RouteKind::Graph, segments[1], ""};
    case 3:
      if (segments[2] == "status") return Route{RouteKind::GraphStatus, segments[1], ""};
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

}  // namespace corch::rest
