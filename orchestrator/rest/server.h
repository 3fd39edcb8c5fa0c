// The northbound REST server (DESIGN section 5): SF-FG graphs over HTTP, answered from a
// GraphService.
//
//   PUT    /graphs/{id}               201 created / 200 updated {"id", "status", "changes"}
//   GET    /graphs                    200 {"graphs": [{"id", "name", "state", "progress"}]}
//   GET    /graphs/{id}               200 the SF-FG as deployed
//   GET    /graphs/{id}/status        200 {"state", "progress", "error"?}
//   DELETE /graphs/{id}               204
//   GET    /graphs/{id}/sfs/{sf}/log  200 text/plain
//
// and un-orchestrator's NF-FG API, so that its clients (the FROG4 orchestrator) drive corch
// unchanged (DESIGN section 5, "Compatibility"); bodies are NF-FG documents (graph/nffg_codec.h):
//
//   POST   /NF-FG/  (or /NF-FG)       201 {"nffg-uuid"}: a new graph under a new random UUID;
//                                     an id in the body is replaced
//   PUT    /NF-FG/{id}                202 {"nffg-uuid", "status", "percentage_completed"}, whether
//                                     the graph was created or updated
//   GET    /NF-FG/{id}                200 the NF-FG as deployed
//   GET    /NF-FG   (or /NF-FG/)      200 {"NF-FG": [{"forwarding-graph", "nffg-uuid"}]}
//   GET    /NF-FG/status/{id}         200 {"status": "complete|in_progress|error",
//                                          "percentage_completed": 0-100}
//   DELETE /NF-FG/{id}                204
//
// Both APIs act on the same graphs: one PUT through either is read through both. An NF-FG that
// does not follow the NF-FG's structure (an unknown key, a missing one) is a 400; the pointers of
// its errors, also those of later stages (resolver, network), are NF-FG pointers.
//
// Authentication (security/security_manager.h), common to both APIs:
//
//   POST   /login  {"username", "password"}
//                  200 the token as text/plain (un-orchestrator's answer), or {"token", "expires"}
//                  as application/json to a client whose Accept names application/json;
//                  Cache-Control: no-store. 400 a malformed body (naming the field), 401 wrong
//                  user name or password, 503 too many logins at once (Retry-After).
//
// When the SecurityManager has authentication enabled, every other request needs a token from
// POST /login, in X-Auth-Token (un-orchestrator's clients) or Authorization: Bearer; without one,
// or with an unknown or expired one, it is a 401 with WWW-Authenticate: Bearer, whatever its path
// (an unknown path too: nothing is told to a client without a token). With no user at all yet,
// every request is a 503 saying how to create the first admin. Disabled, tokens are not looked
// at, and POST /login still answers a token for any well-formed body.
//
// Permissions (DESIGN section 5, "Security"), checked after the path (404) and the method (405):
// admins may do everything; operators everything but /users and /groups; users only GET the
// graphs granted to them (directly or through a group: security/user_store.h) and their status
// and logs, through either API, and GET /graphs and GET /NF-FG list only those. Anything else is
// a 403 (permission-denied). The admin resources:
//
//   GET    /users                     200 {"users": [{"name", "role", "groups"}]}
//   GET    /users/{name}              200 {"name", "role", "groups"}
//   PUT    /users/{name}              {"password"?, "role"?, "groups"?}: 201 created, 200 changed
//   DELETE /users/{name}              204 (409 for the last admin)
//   GET    /groups, /groups/{name}    200 {"groups": [{"name", "members"}]}, {"name", "members"}
//   PUT    /groups/{name}             {"members": [...]}: 201 created, 200 replaced
//   DELETE /groups/{name}             204
//   GET    /graphs/{id}/grants        200 {"graph", "users", "groups"} (operators too)
//   PUT    /graphs/{id}/grants        {"users"?, "groups"?}: 200; an empty grant removes it
//
// A DELETE of a graph also forgets its grant. A new password or a deleted user ends that user's
// sessions; a changed role or group applies to the tokens they hold (read at each request).
//
// Every error is an RFC 9457 problem document (application/problem+json, see rest/responses.h).
// Unknown paths are 404 whatever the method; known paths with another method are 405 with Allow.
// The graph id rules (routes.h) are the same for both APIs.
//
// Slow and hostile clients (rest/gate.h): the public address is the gate's, which serves only
// complete requests to cpprest's listener (plain HTTP on 127.0.0.1, an ephemeral port, refusing
// requests that do not carry the gate's secret): the request head must arrive within
// `head_timeout` of the connection or of its first byte (at most `max_head_bytes`, else 431), the
// body within `body_timeout` (at most 1 MiB, else 413), a TLS handshake within
// `handshake_timeout`; 408 otherwise. A kept-alive connection idle for `idle_timeout` is closed,
// and connections beyond `max_connections`, or `max_connections_per_address` from one address,
// are closed at once. The answer itself is under no deadline (a PUT deploys for seconds).
//
// Threads: requests are served on cpprest's shared thread pool, and a PUT, POST or DELETE holds
// one of its threads until the GraphService returns (seconds, for a deploy), a login while its
// password is hashed (a fraction of a second). So that reads and changes of other graphs are
// still served meanwhile, at most `max_concurrent_changes` changes and `max_concurrent_logins`
// logins run at once (more are answered 503 with Retry-After), and the pool must have more threads
// than both together. The GraphService and SecurityManager must be safe to call from several
// threads at once and must outlive the Server. This header deliberately does not include cpprest
// (it is slow to compile).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "corch/error.h"
#include "node/graph_service.h"

namespace corch::security {
class SecurityManager;
}

namespace corch::rest {

// HTTPS (DESIGN section 5, "Security"), served by the gate with OpenSSL: TLS 1.2 at
// least, TLS 1.2 ciphers limited to ECDHE with AES-GCM or ChaCha20-Poly1305, no compression,
// renegotiation or session tickets. The files are read and checked (the key matching the
// certificate) by start(), which fails naming them; the URL is then https://.
struct TlsOptions {
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
};

struct ServerOptions {
  // Address to listen on: an IPv4 address ("0.0.0.0" for all) or a host name; not an IPv6
  // literal, which cpprest's listener cannot parse.
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port; Server::port() tells which
  std::optional<TlsOptions> tls;
  // Size of cpprest's shared thread pool (which also runs every cpprest client in the process).
  // 0 keeps cpprest's default of 40. The pool can only be sized before its first use: a non-zero
  // value makes start() fail if something already started the pool with another size.
  size_t threads = 0;
  // PUTs and DELETEs served at once, and POST /login; together less than the pool's threads.
  size_t max_concurrent_changes = 16;
  size_t max_concurrent_logins = 4;

  // The gate (rest/gate.h): deadlines on what clients send, and connection caps.
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds head_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds body_timeout{30'000};
  size_t max_head_bytes = 16 * 1024;
  size_t max_connections = 1024;
  size_t max_connections_per_address = 128;
  // Whether the per-address cap applies to loopback clients too (local processes: corchctl, a
  // co-located orchestrator, the load bench). Off by default; every connection counts in
  // max_connections whatever its address.
  bool limit_loopback_connections = false;
};

class Server {
 public:
  // `security` decides who may call (see above); null: authentication disabled, with a
  // SecurityManager of the Server's own that issues the tokens of POST /login.
  Server(ServerOptions options, node::GraphService& service,
         security::SecurityManager* security = nullptr);
  ~Server();  // stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts listening. Fails (naming the address) if the address cannot be listened on, if the
  // options are inconsistent, or if the server is already started.
  Result<void> start();
  // Stops listening, closes every connection and waits for the requests in progress (a PUT in
  // progress is waited for: the GraphService is never called after stop() returns). Idempotent.
  void stop();

  // The port listened on (the chosen one when options.port was 0); 0 before start().
  uint16_t port() const;
  // The base URL clients use, "https://127.0.0.1:8080" (http:// without TLS); empty before
  // start().
  std::string url() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corch::rest
