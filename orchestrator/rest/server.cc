#include "rest/server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <cpprest/http_listener.h>
#include <pplx/threadpool.h>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/system_error.hpp>

#include "corch/log.h"
#include "graph/nffg_codec.h"
#include "graph/sffg_codec.h"
#include "rest/gate.h"
#include "rest/responses.h"
#include "rest/routes.h"
#include "security/security_manager.h"
#include "security/user_store.h"

namespace corch::rest {
namespace {

namespace http = web::http;
using http::http_request;
using http::http_response;
using http::experimental::listener::http_listener;
using Clock = std::chrono::steady_clock;

const log::Logger lg("rest");

// crossplat::threadpool::shared_instance() creates this many threads when nobody sized the pool.
constexpr size_t kCpprestDefaultThreads = 40;

// What this file sized cpprest's pool to (0: not sized here). The pool is process-wide and can be
// sized once, so several Servers in one process (tests) must agree.
std::mutex pool_mu;
size_t pool_threads = 0;

// Returns the number of threads of cpprest's pool, sizing it to `wanted` first if that is not 0.
Result<size_t> sizeThreadPool(size_t wanted) {
  std::lock_guard lock(pool_mu);
  if (wanted == 0) return pool_threads != 0 ? pool_threads : kCpprestDefaultThreads;
  if (pool_threads == wanted) return wanted;
  if (pool_threads == 0) {
    try {
      crossplat::threadpool::initialize_with_threads(wanted);
      pool_threads = wanted;
      return wanted;
    } catch (const std::exception&) {
      // Already started by an earlier use of cpprest: reported below.
    }
  }
  std::string running =
      pool_threads != 0 ? " with " + std::to_string(pool_threads) + " threads" : std::string();
  return Error(ErrorCode::Conflict, "cannot size cpprest's thread pool to " +
                                        std::to_string(wanted) + " threads: it is already running" +
                                        running + " (size it before any other use of cpprest)");
}

// The host:port pairs the Servers of this process listen on. cpprest keeps one acceptor per
// host:port for the whole process, and a second listener on a pair in use makes it drop the
// first's acceptor when it fails: such a start must be refused before cpprest sees it.
std::mutex listening_mu;
std::set<std::string> listening;

std::string listeningKey(const std::string& host, uint16_t port) {
  std::string key;
  for (char c : host) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key + ":" + std::to_string(port);
}

bool claimAddress(const std::string& key) {
  std::lock_guard lock(listening_mu);
  return listening.insert(key).second;
}

void releaseAddress(const std::string& key) {
  std::lock_guard lock(listening_mu);
  listening.erase(key);
}

// Finds a port that is free on `host` now, by binding port 0. Another process may take it before
// the listener binds it: start() retries then.
Result<uint16_t> pickFreePort(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), "0", &hints, &found);
  if (rc != 0) {
    return Error(ErrorCode::InvalidArgument,
                 "cannot resolve listen address '" + host + "': " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  if (fd < 0) return errnoError("cannot find a free port on " + host + ": socket", errno);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return errnoError("cannot find a free port on " + host, err);
  }
  close(fd);
  uint16_t port = addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&addr)->sin_port;
  return static_cast<uint16_t>(ntohs(port));
}

// The gate's secret: 256 random bits as 64 hex digits.
Result<std::string> newGateSecret() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    ERR_clear_error();
    return Error(ErrorCode::Internal, "cannot draw the gate's secret: no randomness");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : bytes) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

// One answer, before it becomes a cpprest response.
struct Reply {
  int status = 200;
  std::string body;          // empty: no body
  std::string content_type;  // set whenever there is a body
  std::vector<std::pair<std::string, std::string>> headers;
  std::string log_detail;  // what the log line of an error says
};

Reply jsonReply(int status, std::string body) {
  return Reply{status, std::move(body), std::string(kJsonType), {}, {}};
}

Reply problemReply(const Problem& problem) {
  return Reply{problem.status, problemJson(problem), std::string(kProblemType), {}, problem.detail};
}

Reply errorReply(const Error& error) { return problemReply(Problem::fromError(error)); }

Reply internalReply(std::string_view what) {
  return errorReply(Error(ErrorCode::Internal, "internal error: " + std::string(what)));
}

// A 401: the problem document, and the WWW-Authenticate challenge RFC 9110 11.6.1 requires, with
// RFC 6750's error="invalid_token" when a token was sent but refused.
Reply unauthenticatedReply(const Error& error, bool token_sent) {
  Reply reply = errorReply(error);
  if (reply.status == 401) {
    reply.headers.emplace_back(
        "WWW-Authenticate",
        token_sent ? R"(Bearer realm="corch", error="invalid_token")" : R"(Bearer realm="corch")");
  }
  return reply;
}

// A disabled SecurityManager, for a Server given none.
std::unique_ptr<security::SecurityManager> disabledSecurity() {
  auto made = security::SecurityManager::create(security::SecurityOptions{});
  if (!made) {
    throw std::logic_error("cannot make a disabled SecurityManager: " + made.error().message());
  }
  return std::move(*made);
}

// One request being served: what the log line needs.
struct Exchange {
  http_request request;
  std::string method;
  std::string path;
  std::string user;  // who the token belongs to, when authentication is on
  // The caller, when authentication is on (none: everything is allowed).
  std::optional<security::Session> session;
  Clock::time_point start = Clock::now();
};

// The TLS 1.2 cipher suites offered: forward-secret AEAD only (ECDHE with AES-GCM or
// ChaCha20-Poly1305), as Mozilla's "intermediate" configuration; TLS 1.3's suites are OpenSSL's
// defaults, all of them AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string readWholeFile(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  ok = static_cast<bool>(in) || in.eof();
  return text.str();
}

std::string sslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    out += (out.empty() ? "" : "; ") + std::string(text);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// Sets a server context up: TLS 1.2 at least, the ciphers above, no compression or session
// tickets, the certificate chain and key from PEM text. Throws boost::system::system_error.
void configureTls(boost::asio::ssl::context& ctx, const std::string& cert_pem,
                  const std::string& key_pem) {
  namespace ssl = boost::asio::ssl;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::no_compression | ssl::context::single_dh_use);
  SSL_CTX* native = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    throw std::runtime_error("cannot set the TLS versions and ciphers: " + sslErrors());
  }
  SSL_CTX_set_options(native,
                      SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  // A connection waiting for its client keeps no record buffers (the gate holds many such).
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  ctx.use_certificate_chain(boost::asio::buffer(cert_pem));
  ctx.use_private_key(boost::asio::buffer(key_pem), ssl::context::pem);
  if (SSL_CTX_check_private_key(native) != 1) {
    throw std::runtime_error("the private key does not match the certificate: " + sslErrors());
  }
}

// Reads a request body into memory, up to a limit. Past the limit it keeps reading but drops the
// bytes: cpprest sends no response before the whole request has arrived, and an unread body
// would pile up in memory instead (a chunked body announces no length, so this is also where
// its limit is enforced).
class BodyReader : public std::enable_shared_from_this<BodyReader> {
 public:
  enum class Outcome { Complete, TooLarge, Failed };
  struct Body {
    Outcome outcome = Outcome::Complete;
    std::string text;
    std::string error;  // Failed: why
  };

  // Completes when the body is complete, when it exceeds `limit`, or when reading it fails. The
  // task never holds an exception.
  static pplx::task<Body> read(const http_request& request, size_t limit) {
    std::shared_ptr<BodyReader> reader(new BodyReader(request, limit));
    reader->next();
    return pplx::create_task(reader->done_);
  }

  // Reads and drops a body nobody wants (most requests have none: nothing to do then).
  static void discard(const http_request& request) {
    const auto& headers = request.headers();
    auto length = headers.find(http::header_names::content_length);
    bool no_body = !headers.has(http::header_names::transfer_encoding) &&
                   (length == headers.end() || length->second == "0");
    if (!no_body) (void)read(request, 0);
  }

 private:
  BodyReader(http_request request, size_t limit) : request_(std::move(request)), limit_(limit) {}

  void next() {
    try {
      auto self = shared_from_this();
      request_.body()
          .streambuf()
          .getn(chunk_.data(), chunk_.size())
          .then([self](pplx::task<size_t> read) { self->onRead(read); });
    } catch (const std::exception& e) {
      done_.set(Body{Outcome::Failed, {}, e.what()});
    }
  }

  void onRead(pplx::task<size_t>& read) {
    size_t n = 0;
    try {
      n = read.get();
    } catch (const std::exception& e) {
      done_.set(Body{Outcome::Failed, {}, e.what()});
      return;
    }
    if (n == 0) {
      if (!over_) done_.set(Body{Outcome::Complete, std::move(text_), {}});
      return;
    }
    if (!over_) {
      if (text_.size() + n > limit_) {
        over_ = true;
        text_ = std::string();
        done_.set(Body{Outcome::TooLarge, {}, {}});
      } else {
        text_.append(reinterpret_cast<const char*>(chunk_.data()), n);
      }
    }
    next();
  }

  http_request request_;
  size_t limit_;
  std::array<uint8_t, 64 * 1024> chunk_{};
  std::string text_;
  bool over_ = false;
  pplx::task_completion_event<Body> done_;
};

// Holds one of a limited number of slots (for a change, or a login), if one is free.
class Slot {
 public:
  Slot(std::atomic<size_t>& in_use, size_t limit) : in_use_(in_use) {
    held_ = in_use_.fetch_add(1) < limit;
    if (!held_) in_use_.fetch_sub(1);
  }
  ~Slot() {
    if (held_) in_use_.fetch_sub(1);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  explicit operator bool() const { return held_; }

 private:
  std::atomic<size_t>& in_use_;
  bool held_ = false;
};

}  // namespace

class Server::Impl {
 public:
  Impl(ServerOptions options, node::GraphService& service, security::SecurityManager* security)
      : options_(std::move(options)),
        service_(service),
        own_security_(security ? nullptr : disabledSecurity()),
        security_(security ? *security : *own_security_) {}
  ~Impl() { stop(); }

  Result<void> start();
  void stop();

  uint16_t port() const {
    std::lock_guard lock(lifecycle_mu_);
    return port_;
  }
  std::string url() const {
    std::lock_guard lock(lifecycle_mu_);
    return url_;
  }

 private:
  // Starts cpprest's listener on 127.0.0.1:`port`, behind the gate; `in_use` is set when the
  // port was taken.
  Result<void> listenOn(uint16_t port, bool& in_use);
  // Closes cpprest's listener (waiting for the handlers running).
  void closeListener();
  // Whether a request came through the gate (carries its secret).
  bool fromGate(const http_request& request) const;

  // The cpprest handler of every request.
  void handle(http_request request);
  // The answer to a request; a PUT or POST instead reads its body asynchronously and answers
  // itself (`answered_later` is then set and the Reply returned is meaningless).
  Reply route(const std::shared_ptr<Exchange>& ex, bool& answered_later);
  // The session of the token a request carries; `token_sent` tells whether it carried any.
  Result<security::Session> authenticate(const http_request& request, bool& token_sent);
  // Reads a request's body, refusing one over `limit` (413), and answers what `finish` makes of
  // it; `finish` runs on a pool thread and may block. Every path ends in exactly one send().
  void readBody(const std::shared_ptr<Exchange>& ex, size_t limit,
                std::function<Reply(const std::string&)> finish);
  Reply serveGet(const Route& r, const std::optional<security::Session>& session);
  // A PUT of /graphs/{id} or /NF-FG/{id}, or a POST of /NF-FG/.
  void servePut(const std::shared_ptr<Exchange>& ex, const Route& r);
  // Parses the body read for a PUT or POST and calls the service (blocking: on a pool thread).
  Reply finishSffgPut(const std::string& id, const std::string& text);
  Reply finishNffgPut(const Route& r, const std::string& text);
  // An id that no graph has, known or failed, for a POST /NF-FG/.
  Result<std::string> freshGraphId();
  Reply listNffg(const std::optional<security::Session>& session);
  Reply serveDelete(const std::string& id);
  // POST /login: `json` answers {"token", "expires"} rather than the token as text.
  Reply finishLogin(const std::string& text, bool json);
  // 403 unless the caller may do `method` on `r` (no session: authentication off, all allowed).
  Result<void> permit(const std::optional<security::Session>& session, const Route& r,
                      const std::string& method);
  // Whether the caller may read graph `id`: admins and operators all, users those granted.
  bool mayRead(const std::optional<security::Session>& session, const std::string& id);
  // The user store, or Unavailable when authentication is off (no users, groups or grants).
  Result<security::UserStore*> userStore();
  // /users, /groups, /graphs/{id}/grants.
  Reply serveAdminGet(const Route& r);
  Reply finishAdminPut(const Route& r, const std::string& text);
  Reply serveAdminDelete(const Route& r);
  // 503 with Retry-After: more than `limit` of `what` ("graph changes") at once.
  static Reply tooMany(const std::string& what, size_t limit);

  // Every request is counted from its arrival to its answer, so that stop() can wait for it.
  // enter() says whether requests are still accepted; send() answers and leave()s.
  bool enter();
  void leave();
  void send(const Exchange& ex, Reply reply);

  const ServerOptions options_;
  // The TLS certificate chain and key (PEM), read at start().
  std::string tls_cert_pem_;
  std::string tls_key_pem_;
  node::GraphService& service_;
  const std::unique_ptr<security::SecurityManager> own_security_;  // when given none
  security::SecurityManager& security_;

  mutable std::mutex lifecycle_mu_;          // start() and stop(), and what they set
  std::unique_ptr<http_listener> listener_;  // behind the gate
  std::string listener_url_;
  uint16_t listener_port_ = 0;
  std::string listening_key_;  // in `listening` while listener_ is set
  // The secret the gate adds to every request it forwards; set before listener_ opens.
  std::string secret_;
  std::unique_ptr<Gate> gate_;
  uint16_t port_ = 0;
  std::string url_;

  std::mutex mu_;
  std::condition_variable idle_;
  size_t in_flight_ = 0;
  bool accepting_ = false;

  std::atomic<size_t> changes_{0};
  size_t max_changes_ = 0;
  std::atomic<size_t> logins_{0};
};

Result<void> Server::Impl::start() {
  std::lock_guard lock(lifecycle_mu_);
  if (gate_) return Error(ErrorCode::Conflict, "the REST server already listens on " + url_);
  if (options_.tls) {
    // Read and checked now, so that a wrong file stops start() with its name rather than failing
    // every handshake later; connections get their context from this text (no file reads).
    bool ok = false;
    tls_cert_pem_ = readWholeFile(options_.tls->cert_file, ok);
    if (!ok || tls_cert_pem_.empty()) {
      return Error(ErrorCode::InvalidArgument,
                   "cannot read the TLS certificate " + options_.tls->cert_file);
    }
    tls_key_pem_ = readWholeFile(options_.tls->key_file, ok);
    if (!ok || tls_key_pem_.empty()) {
      return Error(ErrorCode::InvalidArgument,
                   "cannot read the TLS private key " + options_.tls->key_file);
    }
    try {
      boost::asio::ssl::context probe(boost::asio::ssl::context::tls_server);
      configureTls(probe, tls_cert_pem_, tls_key_pem_);
    } catch (const std::exception& e) {
      ERR_clear_error();
      return Error(ErrorCode::InvalidArgument, "cannot use the TLS certificate " +
                                                   options_.tls->cert_file + " and key " +
                                                   options_.tls->key_file + ": " + e.what());
    }
  }
  if (options_.host.find(':') != std::string::npos) {
    // cpprest splits "host:port" at the first ':' and so cannot listen on an IPv6 literal.
    return Error(ErrorCode::InvalidArgument,
                 "cannot listen on '" + options_.host +
                     "': IPv6 addresses are not supported; use a host name that resolves to it");
  }
  auto pool = sizeThreadPool(options_.threads);
  if (!pool) return pool.error();
  max_changes_ = options_.max_concurrent_changes;
  const size_t max_logins = options_.max_concurrent_logins;
  if (max_changes_ == 0 || max_logins == 0 || max_changes_ + max_logins >= *pool) {
    return Error(ErrorCode::InvalidArgument,
                 "max_concurrent_changes (" + std::to_string(max_changes_) +
                     ") and max_concurrent_logins (" + std::to_string(max_logins) +
                     ") must each be at least 1, and together less than the " +
                     std::to_string(*pool) +
                     " threads of the HTTP thread pool, so that reads are served while graphs "
                     "change");
  }
  if (options_.handshake_timeout.count() <= 0 || options_.head_timeout.count() <= 0 ||
      options_.idle_timeout.count() <= 0 || options_.body_timeout.count() <= 0 ||
      options_.max_head_bytes == 0 || options_.max_connections == 0 ||
      options_.max_connections_per_address == 0) {
    return Error(ErrorCode::InvalidArgument,
                 "the REST server's timeouts, head size and connection caps must be positive");
  }
  auto secret = newGateSecret();
  if (!secret) return secret.error();
  secret_ = std::move(*secret);
  // cpprest's listener, behind the gate: a port picked as free may be taken before the listener
  // binds it, so pick again a few times.
  Result<void> listened = Ok();
  for (int i = 0; i < 5; ++i) {
    auto free = pickFreePort("127.0.0.1");
    if (!free) return free.error();
    bool in_use = false;
    listened = listenOn(*free, in_use);
    if (listened || !in_use) break;
  }
  if (!listened) return listened;

  GateOptions gate;
  gate.host = options_.host;
  gate.port = options_.port;
  gate.backend_port = listener_port_;
  gate.secret = secret_;
  if (options_.tls) {
    // The context is set up once, from the text read above.
    gate.configure_tls = [this](boost::asio::ssl::context& ctx) {
      configureTls(ctx, tls_cert_pem_, tls_key_pem_);
    };
  }
  gate.handshake_timeout = options_.handshake_timeout;
  gate.head_timeout = options_.head_timeout;
  gate.idle_timeout = options_.idle_timeout;
  gate.body_timeout = options_.body_timeout;
  gate.max_head_bytes = options_.max_head_bytes;
  gate.max_body_bytes = kMaxBodyBytes;
  gate.max_connections = options_.max_connections;
  gate.max_connections_per_address = options_.max_connections_per_address;
  gate.limit_loopback = options_.limit_loopback_connections;
  const std::string scheme = options_.tls ? "https://" : "http://";
  bool in_use = false;
  auto started = Gate::start(std::move(gate), in_use);
  if (!started) {
    closeListener();
    std::string url = scheme + options_.host + ":" + std::to_string(options_.port);
    return Error(started.error().code(),
                 "cannot listen on " + url + ": " + started.error().message());
  }
  gate_ = std::move(*started);
  port_ = gate_->port();
  url_ = scheme + options_.host + ":" + std::to_string(port_);
  CORCH_LOG(lg, Info) << "listening on " << url_ << " (at most " << gate_->maxConnections()
                      << " connections, " << options_.max_connections_per_address
                      << " per address)";
  return Ok();
}

Result<void> Server::Impl::listenOn(uint16_t port, bool& in_use) {
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  std::string key = listeningKey("127.0.0.1", port);
  if (!claimAddress(key)) {
    in_use = true;
    return Error(ErrorCode::Unavailable,
                 "cannot listen on " + url + ": Address already in use (by this process)");
  }
  std::unique_ptr<http_listener> listener;
  try {
    listener = std::make_unique<http_listener>(web::uri(url + "/"));
  } catch (const std::exception& e) {
    releaseAddress(key);
    return Error(ErrorCode::InvalidArgument, "cannot listen on " + url + ": " + e.what());
  }
  auto handler = [this](http_request request) { handle(std::move(request)); };
  // Without their own handlers cpprest would answer OPTIONS and TRACE itself (TRACE echoing the
  // request back), bypassing the routes.
  listener->support(handler);
  listener->support(http::methods::OPTIONS, handler);
  listener->support(http::methods::TRCE, handler);
  {
    std::lock_guard lock(mu_);
    accepting_ = true;
  }
  std::string failure;
  try {
    listener->open().wait();
  } catch (const boost::system::system_error& e) {
    in_use = e.code().value() == EADDRINUSE;
    failure = e.what();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    releaseAddress(key);
    std::lock_guard lock(mu_);
    accepting_ = false;
    return Error(ErrorCode::Unavailable, "cannot listen on " + url + ": " + failure);
  }
  listener_ = std::move(listener);
  listener_url_ = url;
  listener_port_ = port;
  listening_key_ = key;
  CORCH_LOG(lg, Debug) << "the API listens on " << url << ", behind the gate";
  return Ok();
}

void Server::Impl::closeListener() {
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
  }
  if (!listener_) return;
  // close() closes every connection and waits for the handlers running on them.
  try {
    listener_->close().wait();
  } catch (const std::exception& e) {
    CORCH_LOG(lg, Warn) << "closing the listener on " << listener_url_ << ": " << e.what();
  }
  listener_.reset();
  releaseAddress(listening_key_);
}

void Server::Impl::stop() {
  std::lock_guard lifecycle(lifecycle_mu_);
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
  }
  if (gate_) {
    // No new connection; the open ones closed (requests forwarded are finished by the handlers,
    // waited for below).
    gate_->stop();
    gate_.reset();
    CORCH_LOG(lg, Info) << "stopped listening on " << url_;
  }
  closeListener();
  // PUTs whose bodies were still arriving run after their handler returned: wait for them too.
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return in_flight_ == 0; });
  port_ = 0;
  url_.clear();
}

bool Server::Impl::fromGate(const http_request& request) const {
  const auto& headers = request.headers();
  auto it = headers.find(std::string(kGateSecretHeader));
  return it != headers.end() && it->second.size() == secret_.size() &&
         CRYPTO_memcmp(it->second.data(), secret_.data(), secret_.size()) == 0;
}

bool Server::Impl::enter() {
  std::lock_guard lock(mu_);
  ++in_flight_;
  return accepting_;
}

void Server::Impl::leave() {
  std::lock_guard lock(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

void Server::Impl::handle(http_request request) {
  auto ex = std::make_shared<Exchange>();
  ex->request = request;
  bool accepting = enter();
  Reply reply;
  bool answered_later = false;
  try {
    ex->method = request.method();
    ex->path = request.request_uri().path();
    if (!fromGate(request)) {
      // Before anything else: the port behind the gate is no way around it.
      reply = errorReply(Error(ErrorCode::PermissionDenied,
                               "requests are served on corchd's public address only"));
    } else if (!accepting) {
      reply = errorReply(Error(ErrorCode::Unavailable, "the server is shutting down"));
    } else {
      reply = route(ex, answered_later);
    }
  } catch (const std::exception& e) {
    reply = internalReply(e.what());
  }
  if (!answered_later) {
    // Only a PUT or POST reads its body (and then answers later); any other body is dropped.
    BodyReader::discard(request);
    send(*ex, std::move(reply));
  }
}

Reply Server::Impl::route(const std::shared_ptr<Exchange>& ex, bool& answered_later) {
  std::vector<std::string> segments;
  try {
    for (const auto& segment : web::uri::split_path(ex->path)) {
      if (!segment.empty()) segments.push_back(web::uri::decode(segment));
    }
  } catch (const std::exception& e) {
    return errorReply(
        Error(ErrorCode::Malformed, "malformed request path '" + ex->path + "': " + e.what()));
  }
  auto matched = matchRoute(segments);
  // With authentication on, nothing but a login is served, or even told, without a valid token.
  const bool login = matched && matched->kind == RouteKind::Login;
  if (security_.enabled() && security_.needsFirstUser()) {
    // Nobody can log in: say how to make the first admin rather than refuse every token.
    Reply reply =
        errorReply(Error(ErrorCode::Unavailable,
                         security::SecurityManager::firstUserHint(security_.options().users_file)));
    reply.headers.emplace_back("Retry-After", "10");
    return reply;
  }
  if (!login && security_.enabled()) {
    bool token_sent = false;
    auto session = authenticate(ex->request, token_sent);
    if (!session) return unauthenticatedReply(session.error(), token_sent);
    ex->user = session->user;
    ex->session = std::move(*session);
  }
  if (!matched) {
    return errorReply(Error(ErrorCode::NotFound, "no resource at " + ex->path));
  }
  const Route& r = *matched;
  std::string allow(allowedMethods(r.kind));
  if (ex->method == http::methods::OPTIONS) {
    Reply reply{204, {}, {}, {{"Allow", allow}}, {}};
    return reply;
  }
  if (!methodAllowed(r.kind, ex->method)) {
    Reply reply = problemReply(Problem{
        405,
        "method-not-allowed",
        "method " + ex->method + " is not allowed on " + ex->path + " (allowed: " + allow + ")",
        {}});
    reply.headers.emplace_back("Allow", allow);
    return reply;
  }
  if (auto allowed = permit(ex->session, r, ex->method); !allowed) {
    return errorReply(allowed.error());
  }
  if (isGraphRoute(r.kind)) {
    if (auto valid = checkGraphId(r.graph_id); !valid) return errorReply(valid.error());
  }
  if (isAdminRoute(r.kind) || r.kind == RouteKind::GraphGrants) {
    if (ex->method == http::methods::PUT) {
      answered_later = true;
      try {
        if (!isJsonContentType(ex->request.headers().content_type())) {
          BodyReader::discard(ex->request);
          send(*ex,
               problemReply(Problem{
                   415, "unsupported-media-type", "the body is sent as application/json", {}}));
          return Reply{};
        }
        readBody(ex, kMaxLoginBodyBytes,
                 [this, r](const std::string& text) { return finishAdminPut(r, text); });
      } catch (const std::exception& e) {
        send(*ex, internalReply(e.what()));
      }
      return Reply{};
    }
    if (ex->method == http::methods::DEL) return serveAdminDelete(r);
    return serveAdminGet(r);
  }
  if (ex->method == http::methods::PUT || ex->method == http::methods::POST) {
    answered_later = true;
    try {
      if (r.kind == RouteKind::Login) {
        const auto& headers = ex->request.headers();
        auto accept = headers.find(http::header_names::accept);
        const bool json = accept != headers.end() && acceptsJson(accept->second);
        readBody(ex, kMaxLoginBodyBytes,
                 [this, json](const std::string& text) { return finishLogin(text, json); });
      } else {
        servePut(ex, r);
      }
    } catch (const std::exception& e) {
      // Nothing was sent yet: every send() in readBody() is its last step.
      send(*ex, internalReply(e.what()));
    }
    return Reply{};
  }
  if (ex->method == http::methods::DEL) return serveDelete(r.graph_id);
  return serveGet(r, ex->session);
}

Result<security::Session> Server::Impl::authenticate(const http_request& request,
                                                     bool& token_sent) {
  const auto& headers = request.headers();  // names compared without case
  std::optional<std::string> x_auth_token, authorization;
  if (auto it = headers.find("X-Auth-Token"); it != headers.end()) x_auth_token = it->second;
  if (auto it = headers.find(http::header_names::authorization); it != headers.end()) {
    authorization = it->second;
  }
  token_sent = x_auth_token || authorization;
  auto token = requestToken(x_auth_token, authorization);
  if (!token) return std::move(token).error();
  return security_.authenticate(*token);
}

Reply Server::Impl::serveGet(const Route& r, const std::optional<security::Session>& session) {
  switch (r.kind) {
    case RouteKind::Graphs: {
      auto graphs = service_.listGraphs();
      if (!graphs) return errorReply(graphs.error());
      // A user sees only the graphs granted to them.
      std::erase_if(*graphs, [&](const node::GraphSummary& g) { return !mayRead(session, g.id); });
      return jsonReply(200, listJson(*graphs));
    }
    case RouteKind::Graph: {
      auto graph = service_.getGraph(r.graph_id);
      if (!graph) return errorReply(graph.error());
      std::string text = graph::printSffg(*graph);
      auto compact = compactJson(text);
      if (!compact) return internalReply("the SF-FG printer wrote invalid JSON");
      // The document as deployed, and beside it (read-only, ignored by a PUT) its status with
      // the functions' drivers and CPUs.
      auto status = service_.graphStatus(r.graph_id);
      if (status && compact->size() > 2 && compact->back() == '}') {
        compact->pop_back();
        *compact += ",\"status\":" + statusJson(*status) + "}";
      }
      return jsonReply(200, std::move(*compact));
    }
    case RouteKind::GraphStatus: {
      auto status = service_.graphStatus(r.graph_id);
      if (!status) return errorReply(status.error());
      return jsonReply(200, statusJson(*status));
    }
    case RouteKind::SfLog: {
      auto text = service_.functionLog(r.graph_id, r.sf_id);
      if (!text) return errorReply(text.error());
      return Reply{200, std::move(*text), std::string(kTextType), {}, {}};
    }
    case RouteKind::NffgGraphs:
      return listNffg(session);
    case RouteKind::NffgGraph: {
      auto graph = service_.getGraph(r.graph_id);
      if (!graph) return errorReply(graph.error());
      auto compact = compactJson(graph::printNffg(*graph));
      if (!compact) return internalReply("the NF-FG printer wrote invalid JSON");
      return jsonReply(200, std::move(*compact));
    }
    case RouteKind::NffgStatus: {
      auto status = service_.graphStatus(r.graph_id);
      if (!status) return errorReply(status.error());
      return jsonReply(200, nffgStatusJson(*status));
    }
    case RouteKind::Login:
    case RouteKind::Users:
    case RouteKind::User:
    case RouteKind::Groups:
    case RouteKind::Group:
    case RouteKind::GraphGrants:
      break;  // POST only, or served by serveAdminGet()
  }
  return internalReply("unhandled route");
}

Reply Server::Impl::listNffg(const std::optional<security::Session>& session) {
  auto graphs = service_.listGraphs();
  if (!graphs) return errorReply(graphs.error());
  std::vector<NffgEntry> entries;
  for (const auto& summary : *graphs) {
    if (!mayRead(session, summary.id)) continue;
    auto graph = service_.getGraph(summary.id);
    // A graph whose deploy failed, or one deleted since the list was taken, has nothing deployed.
    if (!graph && graph.error().code() == ErrorCode::NotFound) continue;
    if (!graph) return errorReply(graph.error());
    entries.push_back({summary.id, graph::printNffg(*graph)});
  }
  auto body = nffgListJson(entries);
  if (!body) return internalReply("the NF-FG printer wrote invalid JSON");
  return jsonReply(200, std::move(*body));
}

void Server::Impl::readBody(const std::shared_ptr<Exchange>& ex, size_t limit,
                            std::function<Reply(const std::string&)> finish) {
  const http_request& request = ex->request;
  const auto& headers = request.headers();
  // Refuse an announced oversized body before reading any of it.
  if (auto it = headers.find(http::header_names::content_length); it != headers.end()) {
    const std::string& value = it->second;
    uint64_t length = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (ec != std::errc() || end != value.data() + value.size()) {
      BodyReader::discard(request);
      send(*ex, errorReply(Error(ErrorCode::Malformed, "invalid Content-Length '" + value + "'")));
      return;
    }
    if (length > limit) {
      BodyReader::discard(request);
      send(*ex,
           errorReply(Error(ErrorCode::TooLarge, "the request body has " + std::to_string(length) +
                                                     " bytes; at most " + std::to_string(limit) +
                                                     " are accepted")));
      return;
    }
  }
  BodyReader::read(request, limit)
      .then([this, ex, limit, finish = std::move(finish)](pplx::task<BodyReader::Body> t) {
        Reply reply;
        try {
          BodyReader::Body body = t.get();
          switch (body.outcome) {
            case BodyReader::Outcome::TooLarge:
              reply = errorReply(Error(ErrorCode::TooLarge, "the request body exceeds " +
                                                                std::to_string(limit) + " bytes"));
              break;
            case BodyReader::Outcome::Failed:
              reply = errorReply(
                  Error(ErrorCode::Malformed, "cannot read the request body: " + body.error));
              break;
            case BodyReader::Outcome::Complete:
              reply = finish(body.text);
              break;
          }
        } catch (const std::exception& e) {
          reply = internalReply(e.what());
        } catch (...) {
          reply = internalReply("unknown exception");
        }
        send(*ex, std::move(reply));
      });
}

void Server::Impl::servePut(const std::shared_ptr<Exchange>& ex, const Route& r) {
  std::string content_type = ex->request.headers().content_type();
  if (!isJsonContentType(content_type)) {
    BodyReader::discard(ex->request);
    std::string got = content_type.empty() ? "no Content-Type" : "'" + content_type + "'";
    send(*ex, problemReply(Problem{415,
                                   "unsupported-media-type",
                                   "a graph is sent as application/json; the request has " + got,
                                   {}}));
    return;
  }
  readBody(ex, kMaxBodyBytes, [this, r](const std::string& text) {
    if (isNffgRoute(r.kind)) return finishNffgPut(r, text);
    return finishSffgPut(r.graph_id, text);
  });
}

Reply Server::Impl::finishSffgPut(const std::string& id, const std::string& text) {
  auto parsed = graph::parseSffg(text);
  if (!parsed) return errorReply(parsed.error());
  graph::Graph graph = std::move(*parsed);
  if (!graph.id.empty() && graph.id != id) {
    return errorReply(Error::field(
        ErrorCode::InvalidArgument, "/sffg/id",
        "the graph id '" + graph.id + "' differs from the id in the URL, '" + id + "'"));
  }
  graph.id = id;
  Slot slot(changes_, max_changes_);
  if (!slot) return tooMany("graph changes", max_changes_);
  auto outcome = service_.putGraph(id, std::move(graph));
  if (!outcome) return errorReply(outcome.error());
  // The status as of now; should the graph already be gone again, say what the PUT achieved.
  auto status = service_.graphStatus(id);
  node::GraphStatus shown =
      status ? *status : node::GraphStatus{node::GraphState::Deployed, 100, std::nullopt};
  Reply reply = jsonReply(outcome->created ? 201 : 200, putJson(id, shown, outcome->changes));
  if (outcome->created) reply.headers.emplace_back("Location", "/graphs/" + id);
  return reply;
}

Reply Server::Impl::finishNffgPut(const Route& r, const std::string& text) {
  auto parsed = graph::parseNffg(text);
  if (!parsed) {
    const Error& error = parsed.error();
    // A document that does not follow the NF-FG's structure (unknown, missing or mistyped key) is
    // a 400, as un-orchestrator answered it; a well-formed one with wrong values keeps its 422.
    if (graph::isSchemaError(error)) {
      return errorReply(Error(ErrorCode::Malformed, error.message(), error.fields()));
    }
    return errorReply(error);
  }
  graph::Graph graph = std::move(*parsed);
  const bool post = r.kind == RouteKind::NffgGraphs;
  std::string id = r.graph_id;
  if (post) {
    // The graph's id is corch's choice: an id in the body (FROG4's library always writes one) is
    // replaced, as un-orchestrator replaced it; the answer tells the client which id it got.
    auto fresh = freshGraphId();
    if (!fresh) return errorReply(fresh.error());
    id = std::move(*fresh);
  } else if (!graph.id.empty() && graph.id != id) {
    return errorReply(Error::field(
        ErrorCode::InvalidArgument, "/forwarding-graph/id",
        "the graph id '" + graph.id + "' differs from the id in the URL, '" + id + "'"));
  }
  graph.id = id;
  Slot slot(changes_, max_changes_);
  if (!slot) return tooMany("graph changes", max_changes_);
  // Kept to map the service's SF-FG pointers back onto this document.
  const graph::Graph sent = graph;
  auto outcome = service_.putGraph(id, std::move(graph));
  if (!outcome) {
    const Error& error = outcome.error();
    std::vector<FieldError> fields = error.fields();
    for (auto& f : fields) f.pointer = graph::nffgPointer(sent, f.pointer);
    return errorReply(Error(error.code(), error.message(), std::move(fields)));
  }
  if (post) {
    Reply reply = jsonReply(201, nffgUuidJson(id));
    reply.headers.emplace_back("Location", "/NF-FG/" + id);
    return reply;
  }
  auto status = service_.graphStatus(id);
  node::GraphStatus shown =
      status ? *status : node::GraphStatus{node::GraphState::Deployed, 100, std::nullopt};
  // un-orchestrator answers every PUT, creation or update, with 202; its clients expect that.
  return jsonReply(202, nffgPutJson(id, shown));
}

Result<std::string> Server::Impl::freshGraphId() {
  // A UUID v4 repeats with negligible probability; the check guards against a broken entropy
  // source overwriting an existing graph, which a POST must never do.
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string id = newGraphUuid();
    auto known = service_.graphStatus(id);
    if (!known && known.error().code() == ErrorCode::NotFound) return id;
    if (!known) return known.error();
  }
  return Error(ErrorCode::Internal, "cannot pick a new graph id: every random id drawn is in use");
}

Reply Server::Impl::serveDelete(const std::string& id) {
  Slot slot(changes_, max_changes_);
  if (!slot) return tooMany("graph changes", max_changes_);
  auto deleted = service_.deleteGraph(id);
  if (!deleted) return errorReply(deleted.error());
  // A graph created later under the same id is not granted to the readers of this one.
  if (auto* users = security_.users()) {
    if (auto forgotten = users->removeGrant(id); !forgotten) {
      CORCH_LOG(lg, Warn) << "graph " << id
                          << " deleted, but its grant is left: " << forgotten.error().message();
    }
  }
  return Reply{204, {}, {}, {}, {}};
}

Reply Server::Impl::finishLogin(const std::string& text, bool json) {
  auto request = parseLogin(text);
  if (!request) return errorReply(request.error());
  Slot slot(logins_, options_.max_concurrent_logins);
  if (!slot) return tooMany("logins", options_.max_concurrent_logins);
  auto issued = security_.login(request->username, request->password);
  if (!issued) return unauthenticatedReply(issued.error(), false);
  Reply reply =
      json ? jsonReply(200, loginJson(issued->token, security::formatTime(issued->expires)))
           : Reply{200, issued->token, std::string(kTextType), {}, {}};
  // RFC 6749 5.1: a response carrying a token must not be stored by caches.
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

Result<void> Server::Impl::permit(const std::optional<security::Session>& session, const Route& r,
                                  const std::string& method) {
  using security::Role;
  if (!session || session->role == Role::Admin || r.kind == RouteKind::Login) return Ok();
  if (method == http::methods::OPTIONS) return Ok();
  auto refuse = [&](const std::string& why) -> Result<void> {
    return Error(ErrorCode::PermissionDenied, "user '" + session->user + "' (role " +
                                                  std::string(toString(session->role)) +
                                                  ") may not " + method + " this resource: " + why);
  };
  if (isAdminRoute(r.kind)) return refuse("users and groups are managed by admins");
  const bool read = method == http::methods::GET || method == http::methods::HEAD;
  if (session->role == Role::Operator) return Ok();
  // A user: reads only, of the graphs granted to them.
  if (!read) return refuse("a user only reads the graphs granted to them");
  if (r.kind == RouteKind::GraphGrants) return refuse("grants are managed by operators and admins");
  if (isGraphRoute(r.kind) && !mayRead(session, r.graph_id)) {
    return refuse("graph '" + r.graph_id + "' is not granted to them");
  }
  return Ok();
}

bool Server::Impl::mayRead(const std::optional<security::Session>& session, const std::string& id) {
  if (!session || session->role != security::Role::User) return true;
  auto* users = security_.users();
  return users && users->granted(session->user, id);
}

Result<security::UserStore*> Server::Impl::userStore() {
  auto* users = security_.users();
  if (!users) {
    return Error(ErrorCode::Unavailable,
                 "authentication is off in this corchd: there are no users, groups or grants");
  }
  return users;
}

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void writeString(JsonWriter& w, std::string_view text) {
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void writeNames(JsonWriter& w, const char* key, const std::set<std::string>& names) {
  w.Key(key);
  w.StartArray();
  for (const auto& name : names) writeString(w, name);
  w.EndArray();
}

void writeUser(JsonWriter& w, const security::User& user, const std::set<std::string>& groups) {
  w.StartObject();
  w.Key("name");
  writeString(w, user.name);
  w.Key("role");
  writeString(w, toString(user.role));
  writeNames(w, "groups", groups);
  w.EndObject();
}

void writeGroup(JsonWriter& w, const security::Group& group) {
  w.StartObject();
  w.Key("name");
  writeString(w, group.name);
  writeNames(w, "members", group.members);
  w.EndObject();
}

std::set<std::string> groupsOf(const security::Directory& d, const std::string& user) {
  std::set<std::string> out;
  for (const auto& [name, group] : d.groups) {
    if (group.members.count(user)) out.insert(name);
  }
  return out;
}

std::string text(const rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

std::string grantJson(const std::string& id, const security::Grant& grant) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("graph");
  writeString(w, id);
  writeNames(w, "users", grant.users);
  writeNames(w, "groups", grant.groups);
  w.EndObject();
  return text(buf);
}

}  // namespace

Reply Server::Impl::serveAdminGet(const Route& r) {
  auto users = userStore();
  if (!users) return errorReply(users.error());
  if (r.kind == RouteKind::GraphGrants) {
    auto known = service_.graphStatus(r.graph_id);
    if (!known) return errorReply(known.error());
    return jsonReply(200, grantJson(r.graph_id, (*users)->grant(r.graph_id)));
  }
  security::Directory d = (*users)->directory();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  switch (r.kind) {
    case RouteKind::Users:
      w.StartObject();
      w.Key("users");
      w.StartArray();
      for (const auto& [name, user] : d.users) writeUser(w, user, groupsOf(d, name));
      w.EndArray();
      w.EndObject();
      break;
    case RouteKind::User: {
      auto it = d.users.find(r.name);
      if (it == d.users.end()) {
        return errorReply(Error(ErrorCode::NotFound, "no user '" + r.name + "'"));
      }
      writeUser(w, it->second, groupsOf(d, r.name));
      break;
    }
    case RouteKind::Groups:
      w.StartObject();
      w.Key("groups");
      w.StartArray();
      for (const auto& [name, group] : d.groups) writeGroup(w, group);
      w.EndArray();
      w.EndObject();
      break;
    case RouteKind::Group: {
      auto it = d.groups.find(r.name);
      if (it == d.groups.end()) {
        return errorReply(Error(ErrorCode::NotFound, "no group '" + r.name + "'"));
      }
      writeGroup(w, it->second);
      break;
    }
    default:
      return internalReply("unhandled admin route");
  }
  return jsonReply(200, text(buf));
}

Reply Server::Impl::finishAdminPut(const Route& r, const std::string& body) {
  auto users = userStore();
  if (!users) return errorReply(users.error());
  security::UserStore& store = **users;
  switch (r.kind) {
    case RouteKind::User: {
      if (auto valid = security::checkUserName(r.name); !valid) return errorReply(valid.error());
      auto parsed = parseUserBody(body);
      if (!parsed) return errorReply(parsed.error());
      security::UserChange change;
      change.password = parsed->password;
      if (parsed->role) {
        auto role = security::parseRole(*parsed->role);
        if (!role) {
          return errorReply(
              Error::field(ErrorCode::InvalidArgument, "/role",
                           "unknown role '" + *parsed->role + "' (admin, operator or user)"));
        }
        change.role = *role;
      }
      if (parsed->groups) {
        // Named by their place in the body (the store's pointers are of the sorted set).
        security::Directory d = store.directory();
        for (size_t i = 0; i < parsed->groups->size(); ++i) {
          if (!d.groups.count((*parsed->groups)[i])) {
            return errorReply(Error::field(ErrorCode::InvalidArgument,
                                           "/groups/" + std::to_string(i),
                                           "unknown group '" + (*parsed->groups)[i] + "'"));
          }
        }
        change.groups = std::set<std::string>(parsed->groups->begin(), parsed->groups->end());
      }
      // The password is hashed here, on this pool thread: count it as a login.
      Slot slot(logins_, options_.max_concurrent_logins);
      if (!slot) return tooMany("logins and password changes", options_.max_concurrent_logins);
      bool created = false;
      if (auto set = store.setUser(r.name, change, created); !set) return errorReply(set.error());
      // A new password ends the sessions opened with the old one.
      if (!created && change.password) security_.logOut(r.name);
      auto user = store.find(r.name);
      if (!user) return internalReply("the user just written is gone");
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      writeUser(w, *user, store.groupsOf(r.name));
      CORCH_LOG(lg, Info) << "user " << r.name << (created ? " created" : " changed") << " ("
                          << toString(user->role) << ")";
      Reply reply = jsonReply(created ? 201 : 200, text(buf));
      if (created) reply.headers.emplace_back("Location", "/users/" + r.name);
      return reply;
    }
    case RouteKind::Group: {
      if (auto valid = security::checkGroupName(r.name); !valid) return errorReply(valid.error());
      auto members = parseGroupBody(body);
      if (!members) return errorReply(members.error());
      std::set<std::string> set(members->begin(), members->end());
      // Refer to members by their place in the body, which the store's pointers (of the sorted
      // set) may not be.
      for (size_t i = 0; i < members->size(); ++i) {
        if (!store.find((*members)[i])) {
          return errorReply(Error::field(ErrorCode::InvalidArgument,
                                         "/members/" + std::to_string(i),
                                         "unknown user '" + (*members)[i] + "'"));
        }
      }
      bool created = false;
      if (auto done = store.setGroup(r.name, set, created); !done) return errorReply(done.error());
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      writeGroup(w, security::Group{r.name, set});
      Reply reply = jsonReply(created ? 201 : 200, text(buf));
      if (created) reply.headers.emplace_back("Location", "/groups/" + r.name);
      return reply;
    }
    case RouteKind::GraphGrants: {
      auto parsed = parseGrantBody(body);
      if (!parsed) return errorReply(parsed.error());
      auto known = service_.graphStatus(r.graph_id);
      if (!known) return errorReply(known.error());
      security::Directory d = store.directory();
      for (size_t i = 0; i < parsed->users.size(); ++i) {
        if (!d.users.count(parsed->users[i])) {
          return errorReply(Error::field(ErrorCode::InvalidArgument, "/users/" + std::to_string(i),
                                         "unknown user '" + parsed->users[i] + "'"));
        }
      }
      for (size_t i = 0; i < parsed->groups.size(); ++i) {
        if (!d.groups.count(parsed->groups[i])) {
          return errorReply(Error::field(ErrorCode::InvalidArgument, "/groups/" + std::to_string(i),
                                         "unknown group '" + parsed->groups[i] + "'"));
        }
      }
      security::Grant grant{{parsed->users.begin(), parsed->users.end()},
                            {parsed->groups.begin(), parsed->groups.end()}};
      if (auto done = store.setGrant(r.graph_id, grant); !done) return errorReply(done.error());
      return jsonReply(200, grantJson(r.graph_id, grant));
    }
    default:
      return internalReply("unhandled admin route");
  }
}

Reply Server::Impl::serveAdminDelete(const Route& r) {
  auto users = userStore();
  if (!users) return errorReply(users.error());
  if (r.kind == RouteKind::User) {
    if (auto done = (*users)->deleteUser(r.name); !done) return errorReply(done.error());
    security_.logOut(r.name);
    CORCH_LOG(lg, Info) << "user " << r.name << " deleted";
  } else if (r.kind == RouteKind::Group) {
    if (auto done = (*users)->deleteGroup(r.name); !done) return errorReply(done.error());
  } else {
    return internalReply("unhandled admin route");
  }
  return Reply{204, {}, {}, {}, {}};
}

Reply Server::Impl::tooMany(const std::string& what, size_t limit) {
  Reply reply =
      errorReply(Error(ErrorCode::Unavailable, "too many " + what + " in progress (" +
                                                   std::to_string(limit) + "); retry later"));
  reply.headers.emplace_back("Retry-After", "1");
  return reply;
}

void Server::Impl::send(const Exchange& ex, Reply reply) {
  const int status = reply.status;
  try {
    http_response response(static_cast<http::status_code>(status));
    // cpprest's phrases are RFC 2616's ("Request Entity Too Large"); say what the title says.
    if (std::string_view phrase = reasonPhrase(status); phrase != "Error") {
      response.set_reason_phrase(std::string(phrase));
    }
    for (const auto& [name, value] : reply.headers) response.headers().add(name, value);
    // A response to HEAD has no body (HEAD is not among the allowed methods, so it is a 405).
    if (!reply.content_type.empty() && ex.method != http::methods::HEAD) {
      response.set_body(std::move(reply.body), reply.content_type);
    }
    // The task fails if the client has gone; observe it, or pplx terminates the process.
    ex.request.reply(response).then([](pplx::task<void> sent) {
      try {
        sent.get();
      } catch (const std::exception&) {
      }
    });
  } catch (const std::exception& e) {
    // Already answered (the connection was closed by stop()), or the client is gone.
    CORCH_LOG(lg, Debug) << ex.method << " " << ex.path << ": cannot answer: " << e.what();
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - ex.start).count();
  char took[32];
  std::snprintf(took, sizeof took, "%.1f ms", ms);
  std::string by = ex.user.empty() ? std::string() : " by " + ex.user;
  if (status >= 400) {
    CORCH_LOG(lg, Info) << ex.method << " " << ex.path << " " << status << " " << took << by << ": "
                        << reply.log_detail;
  } else {
    CORCH_LOG(lg, Debug) << ex.method << " " << ex.path << " " << status << " " << took << by;
  }
  leave();
}

Server::Server(ServerOptions options, node::GraphService& service,
               security::SecurityManager* security)
    : impl_(std::make_unique<Impl>(std::move(options), service, security)) {}

Server::~Server() = default;

Result<void> Server::start() { return impl_->start(); }
void Server::stop() { impl_->stop(); }
uint16_t Server::port() const { return impl_->port(); }
std::string Server::url() const { return impl_->url(); }

}  // namespace corch::rest
