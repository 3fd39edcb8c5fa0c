// corchd as a process under test: started with a repository, state folder and flags of the
// test's choosing inside the sandbox's network namespace, spoken to over HTTP, stopped with
// SIGTERM (SIGKILL after a deadline). Used by the end-to-end tests and bench/deploy.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "corch/error.h"

namespace corch::test {

struct HttpResponse {
  int status = 0;  // 0 when the request could not be made
  std::string body;
};

// An HTTP request made with curl (a client process, as an overarching orchestrator would be).
// `scratch` is a folder for the request and response bodies.
HttpResponse httpRequest(const std::string& method, const std::string& url,
                         const std::string& scratch, const std::string& body = "",
                         const std::string& content_type = "application/json");

// A free TCP port on 127.0.0.1.
uint16_t freeTcpPort();

class Corchd {
 public:
  // Starts build/orchestrator/corchd with `args` (after --listen), logging to <dir>/corchd.log,
  // and waits until its REST API answers. Fails with the log's tail if it does not come up.
  static Result<Corchd> start(const std::string& dir, const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout = std::chrono::seconds(20));
  Corchd(Corchd&& other) noexcept;
  Corchd& operator=(Corchd&&) = delete;
  ~Corchd();  // stop()

  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  HttpResponse request(const std::string& method, const std::string& path,
                       const std::string& body = "") const;
  // SIGTERM, then SIGKILL after the deadline. Idempotent.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  Corchd() = default;
  std::string dir_;
  std::string url_;
  pid_t pid_ = -1;
};

}  // namespace corch::test
