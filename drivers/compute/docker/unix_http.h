// A small HTTP/1.1 client over a unix stream socket, for the Docker Engine API (dockerd, or
// podman's Docker-compatible service). No process per call and no library beyond the kernel.
//
// Requests carry a Content-Length body; responses are read with Content-Length, chunked
// transfer encoding, or until the server closes. Connections are kept alive and reused from a
// small pool of idle ones, so parallel calls each take a connection of their own and do not
// serialise on one socket. Every call has a deadline (steady clock) covering connect, send and
// receive; when it passes, the call fails with Timeout and its connection is dropped.
//
// A reused connection that the server closed while idle fails before the first byte of the
// answer; the call is then sent once more on a fresh connection (as HTTP clients do for idle
// keep-alive connections). Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "platform/fd.h"

namespace corch::drivers::docker {

using Deadline = std::chrono::steady_clock::time_point;

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;  // de-chunked
};

class UnixHttpClient {
 public:
  // `socket_path` is a file path (no "unix://"); `max_idle` connections are kept for reuse.
  explicit UnixHttpClient(std::string socket_path, size_t max_idle = 4);

  const std::string& socketPath() const { return socket_path_; }

  // Sends one request (`target` is the path with its query, such as "/v1.41/_ping") and returns
  // the answer, whatever its status. Errors: the socket is missing (NotFound), refused
  // (Unavailable), the deadline passed (Timeout), the answer is not HTTP (Internal).
  Result<HttpResponse> request(std::string_view method, const std::string& target,
                               const std::string& body, Deadline deadline,
                               std::string_view content_type = "application/json");

 private:
  Result<platform::UniqueFd> connect(Deadline deadline) const;
  platform::UniqueFd takeIdle();
  void giveBack(platform::UniqueFd fd);

  const std::string socket_path_;
  const size_t max_idle_;
  std::mutex mu_;
  std::vector<platform::UniqueFd> idle_;
};

}  // namespace corch::drivers::docker
