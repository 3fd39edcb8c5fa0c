// corchd as a process under test: started with a repository, state folder and flags of the
// test's choosing inside the sandbox's network namespace, spoken to over HTTPS with a token,
// stopped with SIGTERM (SIGKILL after a deadline), or killed outright and started again on the
// same folder (crash tests).
//
// corchd serves HTTPS and needs a token by default; the harness makes both transparent:
// - TLS: corchd is given --tls-cert/--tls-key in the test's folder (generated, self-signed, by
//   corchd at its first start there, reused after), and requests verify against that certificate
//   (curl --cacert). A test passing --no-tls gets plain HTTP.
// - Users: corchd is given --initial-admin with a random password kept in the test's folder
//   (0600), so the first start creates the admin and later starts on the same folder reuse it;
//   the harness logs in once corchd answers and sends the token with every request().
// - corchctl run by a test: start() also sets $CORCH_TOKEN and $CORCH_CACERT in this process
//   (inherited by the commands it runs), for the corchd started last.
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
// `scratch` is a folder for the request and response bodies; `curl_args` are added to curl's
// command line as they are (each one argument, e.g. {"-H", "X-Auth-Token: ..."}).
HttpResponse httpRequest(const std::string& method, const std::string& url,
                         const std::string& scratch, const std::string& body = "",
                         const std::string& content_type = "application/json",
                         const std::vector<std::string>& curl_args = {});

// A free TCP port on 127.0.0.1.
uint16_t freeTcpPort();

class Corchd {
 public:
  // The admin the harness creates in every corchd it starts.
  static constexpr const char* kAdmin = "corch-test-admin";

  // Starts build/orchestrator/corchd with `args` (after --listen and the harness's flags),
  // logging to <dir>/corchd.log, waits until its REST API answers and logs in as kAdmin. Fails
  // with the log's tail if it does not come up. Called again with the same `dir` (after kill()
  // or stop()), it reuses the certificate, the users and the admin's password found there.
  static Result<Corchd> start(const std::string& dir, const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout = std::chrono::seconds(20));
  Corchd(Corchd&& other) noexcept;
  Corchd& operator=(Corchd&&) = delete;
  ~Corchd();  // stop()

  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  // A request as kAdmin (the token and, with TLS, the certificate to verify added).
  HttpResponse request(const std::string& method, const std::string& path,
                       const std::string& body = "") const;
  // A request with another token (empty: none), for permission tests.
  HttpResponse requestAs(const std::string& token, const std::string& method,
                         const std::string& path, const std::string& body = "") const;
  // SIGTERM, then SIGKILL after the deadline. Idempotent.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL and reap, nothing else (no clean-up of what corchd made): a crash.
  void kill();
  // Starts corchd again, after stop() or kill(), with the same folder, arguments and port, and
  // logs in again (tokens do not survive a restart).
  Result<void> restart(std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // The admin's token, the certificate clients verify corchd with (empty without TLS), and the
  // admin's password.
  const std::string& token() const { return token_; }
  const std::string& caCert() const { return ca_cert_; }
  const std::string& adminPassword() const { return password_; }
  // POST /login as `user`; the token, or the HTTP status and body as an error.
  Result<std::string> login(const std::string& user, const std::string& password) const;

 private:
  Corchd() = default;
  // Forks and execs corchd, waits until it answers, logs in.
  Result<void> launch(std::chrono::milliseconds timeout);
  std::vector<std::string> curlArgs(const std::string& token) const;

  std::string dir_;
  std::vector<std::string> args_;  // the whole argv, corchd's path first
  uint16_t port_ = 0;
  std::string url_;
  std::string token_;
  std::string ca_cert_;
  std::string password_;
  pid_t pid_ = -1;
};

}  // namespace corch::test
