// The gate: corchd's public HTTP(S) listener, in front of cpprest's (rest/server.h).
//
// cpprest's listener sets no deadline on reading a request and no cap on connections: a client
// sending its head one byte per second holds a connection (and its descriptor and buffers)
// forever, and enough of them exhaust the descriptors, after which nobody is served. The gate
// owns the public address and lets through only complete requests, with
//  - deadlines on what the client sends: the TLS handshake, the request head (from the
//    connection, or from the first byte of a request on a kept-alive connection), the body, and
//    the time an idle kept-alive connection is kept; a request that misses its deadline is
//    answered 408 when the connection can still be written, else the connection is closed;
//  - limits: a head over `max_head_bytes` is a 431, a body over `max_body_bytes` a 413 (before
//    any of it is read when Content-Length announces it); both close the connection;
//  - caps on connections, in total and per client address: beyond them a new connection is
//    closed at once (and logged, at most every 10 s).
// The answer is not under a deadline while the API prepares it (a PUT deploys for seconds); only
// its writing to the client is (`idle_timeout`).
//
// A complete request is forwarded to cpprest's listener, plain HTTP on 127.0.0.1 (one backend
// connection per client connection, opened at its first request), with the hop-by-hop headers
// removed, the body re-framed by Content-Length, and the header kGateSecretHeader set to the
// secret, which the backend requires (a local process connecting to the backend port directly is
// refused); a client's own kGateSecretHeader is removed. Answers are relayed back as they come,
// re-framed the same way.
//
// Everything runs asynchronously on the gate's own small thread pool (Boost.Beast on Boost.Asio,
// OpenSSL through asio::ssl): no thread per connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "corch/error.h"

namespace boost::asio::ssl {
class context;
}

namespace corch::rest {

// The header carrying the gate's secret to the backend.
inline constexpr std::string_view kGateSecretHeader = "X-Corch-Gate";

struct GateOptions {
  std::string host;           // an IPv4 address or a host name; "0.0.0.0": every address
  uint16_t port = 0;          // 0: any free port (Gate::port() tells which)
  uint16_t backend_port = 0;  // cpprest's listener, on 127.0.0.1, plain HTTP
  std::string secret;         // the value of kGateSecretHeader on every forwarded request
  // Sets the server TLS context up (certificate, versions, ciphers); null: plain HTTP. Called
  // once, by start(); may throw.
  std::function<void(boost::asio::ssl::context&)> configure_tls;

  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds head_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds body_timeout{30'000};
  size_t max_head_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;

  size_t max_connections = 1024;
  size_t max_connections_per_address = 128;
  // Whether the per-address cap also applies to loopback clients (local processes).
  bool limit_loopback = false;

  size_t threads = 2;
};

class Gate {
 public:
  // Listens on host:port and serves until stop(). The error says why it cannot listen (the
  // system's words: "Address already in use"); `in_use` is then set if the port was taken.
  static Result<std::unique_ptr<Gate>> start(GateOptions options, bool& in_use);
  ~Gate();  // stop()s
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // Stops listening, closes every connection (the requests forwarded are abandoned: the backend
  // finishes them) and joins the gate's threads. Idempotent.
  void stop();

  uint16_t port() const;
  // Connections open now (for tests and figures).
  size_t connections() const;
  // The total cap in effect: max_connections, or less if the descriptor limit cannot hold it.
  size_t maxConnections() const;

  class Impl;

 private:
  explicit Gate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace corch::rest
