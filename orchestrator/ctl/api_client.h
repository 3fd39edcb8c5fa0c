// corchctl's side of the northbound REST API (DESIGN section 5): one HTTP exchange at a time,
// and the rendering of RFC 9457 problem documents for a human.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "corch/error.h"

namespace corch::ctl {

// What the server answered, whatever its status.
struct Response {
  int status = 0;
  std::string reason;  // the status line's reason phrase
  std::string content_type;
  std::string body;
};

// How an https URL's server is verified: against the system's certificate authorities plus
// `ca_file` (a PEM file: corchd's self-signed certificate, say), its name or address checked
// against the certificate (RFC 2818); `insecure` verifies nothing (testing only).
struct TlsClientOptions {
  std::string ca_file;
  bool insecure = false;
};

class ApiClient {
 public:
  // `base_url` is "https://host:port" or "http://..." (a path prefix is kept). InvalidArgument
  // if it is not an http or https URL, or if `tls.ca_file` cannot be read.
  static Result<std::unique_ptr<ApiClient>> create(const std::string& base_url,
                                                   std::chrono::seconds timeout,
                                                   const TlsClientOptions& tls = {});
  ~ApiClient();

  // Sends one request; `path` is already percent-encoded ("/graphs/g1"). A body is sent as
  // application/json; a non-empty `accept` becomes the Accept header. Any HTTP answer is a
  // Response (also 4xx and 5xx); an error means no answer: Unavailable "cannot reach <url>:
  // Connection refused", or Timeout.
  Result<Response> call(std::string_view method, const std::string& path,
                        const std::string* json_body = nullptr, std::string_view accept = {});

  // A token from POST /login, sent as X-Auth-Token with every later request (empty: none).
  void setToken(std::string token) { token_ = std::move(token); }

  const std::string& baseUrl() const { return base_url_; }

 private:
  struct Impl;
  ApiClient(std::string base_url, std::unique_ptr<Impl> impl);
  std::string base_url_;
  std::string token_;
  std::unique_ptr<Impl> impl_;
};

// One path segment, percent-encoded ("a/b" -> "a%2Fb").
std::string encodeSegment(std::string_view segment);
// "/graphs/<id>" with the id percent-encoded, plus `suffix` ("/status"), which is not encoded.
std::string graphPath(std::string_view id, std::string_view suffix = "");

// A server's error answer for a human, one item a line, no trailing newline:
//   422 Unprocessable Content
//   detail: /sffg/id: ...
//   type: https://corch.dev/problems/invalid-argument
//   /sffg/id: the graph id 'a' differs from the id in the URL, 'b'
// The title and status come from the problem document when it is one, else from the status line
// (and the body is shown as text).
std::string describeError(const Response& response);

}  // namespace corch::ctl
