#include "rest/gate.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>

#include "corch/log.h"
#include "rest/responses.h"

namespace corch::rest {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

const log::Logger lg("gate");

// After an answer that ends a connection, what the client still sends is read and dropped for at
// most this long: closing a socket with unread input resets the connection, and the client could
// lose the answer (a 413 while it is still sending the body).
constexpr auto kLinger = std::chrono::seconds(2);
constexpr size_t kDrainChunk = 16 * 1024;
// The largest answer relayed; the API's are far smaller (a function's log is at most 1 MiB).
constexpr uint64_t kMaxAnswerBytes = uint64_t{256} << 20;
// Descriptors a connection may hold: the client's, and both ends of its backend connection
// (cpprest's is in this process too); some are kept for everything else corchd opens.
constexpr rlim_t kDescriptorsPerConnection = 3;
constexpr rlim_t kDescriptorsReserved = 256;
// Refused connections are logged at most this often (a flood must not flood the log).
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);
// After accept() failed for want of descriptors or memory, the next try waits this long.
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);

// Raises the soft limit of open descriptors to the hard one, once per process; returns the soft
// limit in effect.
rlim_t raiseDescriptorLimit() {
  static std::once_flag once;
  static rlim_t soft = 1024;
  std::call_once(once, [] {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    soft = limit.rlim_cur;
    if (limit.rlim_cur >= limit.rlim_max) return;
    rlimit raised{limit.rlim_max, limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      soft = limit.rlim_max;
      CORCH_LOG(lg, Info) << "open descriptors limit raised from " << limit.rlim_cur << " to "
                          << limit.rlim_max;
    } else {
      CORCH_LOG(lg, Warn) << "cannot raise the open descriptors limit from " << limit.rlim_cur
                          << " to " << limit.rlim_max << ": " << std::strerror(errno);
    }
  });
  return soft;
}

// An IPv4 client reaching an IPv6 socket counts as its IPv4 address.
asio::ip::address clientAddress(const tcp::endpoint& endpoint) {
  asio::ip::address a = endpoint.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

std::string seconds(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// Removes the hop-by-hop headers (RFC 9110 7.6.1): those a Connection header names, and the
// standard ones. What remains is end to end, and passes through the gate.
template <class Fields>
void stripHopByHop(Fields& fields) {
  std::string listed(fields[http::field::connection]);
  size_t at = 0;
  while (at <= listed.size()) {
    size_t comma = listed.find(',', at);
    if (comma == std::string::npos) comma = listed.size();
    std::string token = listed.substr(at, comma - at);
    token.erase(0, token.find_first_not_of(" \t"));
    token.erase(token.find_last_not_of(" \t") + 1);
    if (!token.empty()) fields.erase(token);
    at = comma + 1;
  }
  for (auto f : {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
                 http::field::te, http::field::trailer, http::field::transfer_encoding,
                 http::field::upgrade}) {
    fields.erase(f);
  }
}

bool isHttpError(const error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

class SessionBase;

}  // namespace

class Gate::Impl {
 public:
  explicit Impl(GateOptions options)
      : options_(std::move(options)),
        ioc_(static_cast<int>(std::max<size_t>(options_.threads, 1))),
        accept_strand_(asio::make_strand(ioc_)),
        acceptor_(accept_strand_),
        retry_(accept_strand_),
        refusal_timer_(accept_strand_) {}
  ~Impl() { stop(); }

  Result<void> listen(bool& in_use);
  void run();
  void stop();

  uint16_t port() const { return port_; }
  size_t connections() const {
    std::lock_guard lock(mu_);
    return total_;
  }
  size_t maxConnections() const { return max_total_; }

  const GateOptions& options() const { return options_; }
  const tcp::endpoint& backend() const { return backend_; }

  // An admitted connection is counted until release(); a session is known (for stop()) from
  // remember() to forget().
  void release(const asio::ip::address& peer);
  void remember(const std::shared_ptr<SessionBase>& session);
  void forget(SessionBase* session);

 private:
  void accept();
  void onAccept(error_code ec, tcp::socket socket);
  // Counts a new connection in, or says why it is refused.
  bool admit(const asio::ip::address& peer, std::string& why);
  // Logs a refused connection: the first at once, then how many every kRefusalLogInterval while
  // they go on. On the accept strand.
  void noteRefusal(const std::string& why);
  void summarizeRefusals();

  const GateOptions options_;
  asio::io_context ioc_;
  std::optional<ssl::context> tls_;
  asio::strand<asio::io_context::executor_type> accept_strand_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  asio::steady_timer refusal_timer_;
  bool refusal_timer_armed_ = false;
  size_t refused_ = 0;
  std::string last_refusal_;
  tcp::endpoint backend_;
  uint16_t port_ = 0;
  size_t max_total_ = 0;

  std::mutex lifecycle_mu_;  // run() and stop()
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::condition_variable drained_;
  size_t total_ = 0;
  std::map<asio::ip::address, size_t> per_address_;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions_;
};

namespace {

// One admitted connection, counted in the gate's totals for as long as this lives.
class Admission {
 public:
  Admission(Gate::Impl& gate, asio::ip::address peer) : gate_(gate), peer_(std::move(peer)) {}
  ~Admission() { gate_.release(peer_); }
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;
  const asio::ip::address& peer() const { return peer_; }

 private:
  Gate::Impl& gate_;
  const asio::ip::address peer_;
};

class SessionBase {
 public:
  SessionBase(Gate::Impl& gate, std::unique_ptr<Admission> admission)
      : gate_(gate), admission_(std::move(admission)) {}
  virtual ~SessionBase() { gate_.forget(this); }
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;

  // Starts serving, on the session's strand.
  virtual void begin() = 0;
  // Closes the connection (and its backend connection) from any thread.
  virtual void shutdown() = 0;

 protected:
  Gate::Impl& gate_;
  // Declared last among the bases' members: released after everything of the session is closed.
  const std::unique_ptr<Admission> admission_;
};

// One client connection, plain (tcp::socket) or TLS (ssl::stream<tcp::socket>). Every handler
// runs on the connection's strand (the executor of its socket, timer and backend socket), one at
// a time: nothing here is locked.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

 public:
  Session(Gate::Impl& gate, tcp::socket socket, ssl::context* tls,
          std::unique_ptr<Admission> admission)
      : SessionBase(gate, std::move(admission)),
        stream_(makeStream(std::move(socket), tls)),
        timer_(stream_.get_executor()),
        backend_(stream_.get_executor()),
        options_(gate.options()) {}

  void begin() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->start(); });
  }

  void shutdown() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->closeAll(); });
  }

 private:
  // What the connection waits for; it decides what a missed deadline does.
  enum class Phase {
    Handshake,  // the TLS handshake: closed
    Idle,       // a kept-alive connection between requests: closed
    Head,       // a request's head: 408 (closed when no byte of it came)
    Body,       // a request's body: 408
    Backend,    // the API's answer: no deadline
    Reply,      // writing an answer: closed
    Linger,     // reading what follows a final answer: closed
    Closed,
  };

  static Stream makeStream(tcp::socket socket, ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      (void)tls;
      return socket;
    }
  }

  tcp::socket& lowest() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  void start() {
    if (closing_) return;
    if constexpr (kTls) {
      arm(options_.handshake_timeout, Phase::Handshake);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](error_code ec) {
                                if (self->closing_) return;
                                if (ec) return self->closeAll();
                                self->awaitRequest(true);
                              });
    } else {
      awaitRequest(true);
    }
  }

  // Deadlines: one timer, re-armed for each phase; a stale expiry is told apart by its generation.
  void arm(std::chrono::milliseconds d, Phase phase) {
    phase_ = phase;
    timed_out_ = false;
    const uint64_t generation = ++generation_;
    timer_.expires_after(d);
    timer_.async_wait([self = this->shared_from_this(), generation](error_code ec) {
      if (!ec) self->onDeadline(generation);
    });
  }

  void disarm(Phase phase) {
    phase_ = phase;
    ++generation_;
    timer_.cancel();
  }

  void onDeadline(uint64_t generation) {
    if (generation != generation_ || closing_) return;
    switch (phase_) {
      case Phase::Head:
        // A connection that sent nothing at all has no request to answer.
        if (buffer_.size() == 0 && !(parser_ && parser_->got_some())) return closeAll();
        [[fallthrough]];
      case Phase::Body: {
        // The read in progress ends with operation_aborted, and its handler answers 408.
        timed_out_ = true;
        error_code ignored;
        lowest().cancel(ignored);
        return;
      }
      case Phase::Handshake:
      case Phase::Idle:
      case Phase::Reply:
      case Phase::Linger:
        return closeAll();
      case Phase::Backend:
      case Phase::Closed:
        return;
    }
  }

  // Waits for the next request: its head must come within head_timeout of its first byte (of the
  // connection, for the first request); before that byte, a kept-alive connection waits at most
  // idle_timeout.
  void awaitRequest(bool first) {
    if (closing_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_head_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(options_.max_body_bytes));
    // What the last exchange held is given back while the connection idles.
    forwarded_ = {};
    answer_ = {};
    if (first || buffer_.size() > 0) return readHead();
    buffer_.shrink_to_fit();
    backend_buffer_.shrink_to_fit();
    arm(options_.idle_timeout, Phase::Idle);
    stream_.async_read_some(buffer_.prepare(1024),
                            [self = this->shared_from_this()](error_code ec, size_t n) {
                              if (self->closing_) return;
                              if (ec) return self->closeAll();
                              self->buffer_.commit(n);
                              self->readHead();
                            });
  }

  void readHead() {
    arm(options_.head_timeout, Phase::Head);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](error_code ec, size_t) {
                              if (self->closing_) return;
                              if (ec) return self->failedRead(ec, "head");
                              self->onHead();
                            });
  }

  void onHead() {
    const auto& request = parser_->get();
    version_ = request.version();
    keep_alive_ = request.keep_alive();
    if (auto length = parser_->content_length(); length && *length > options_.max_body_bytes) {
      return tooLarge(length);
    }
    if (parser_->is_done()) return forward();
    if (beast::iequals(request[http::field::expect], "100-continue")) {
      // The client waits for this before it sends the body (the backend never sees Expect).
      continue_ = {};
      continue_.version(11);
      continue_.result(http::status::continue_);
      arm(options_.head_timeout, Phase::Reply);
      http::async_write(stream_, continue_,
                        [self = this->shared_from_this()](error_code ec, size_t) {
                          if (self->closing_) return;
                          if (ec) return self->closeAll();
                          self->readBody();
                        });
      return;
    }
    readBody();
  }

  void readBody() {
    arm(options_.body_timeout, Phase::Body);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](error_code ec, size_t) {
                       if (self->closing_) return;
                       if (ec) return self->failedRead(ec, "body");
                       self->forward();
                     });
  }

  void failedRead(const error_code& ec, const char* what) {
    if (ec == asio::error::operation_aborted && timed_out_) {
      auto limit = phase_ == Phase::Body ? options_.body_timeout : options_.head_timeout;
      return answerProblem(
          408, "request-timeout",
          std::string("the request's ") + what + " did not arrive within " + seconds(limit));
    }
    if (ec == http::error::header_limit) {
      return answerProblem(
          431, "header-too-large",
          "the request's head exceeds " + std::to_string(options_.max_head_bytes) + " bytes");
    }
    if (ec == http::error::body_limit) return tooLarge(announcedLength());
    // The client went away (or broke TLS): nobody to answer.
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        !isHttpError(ec)) {
      return closeAll();
    }
    answerProblem(400, "malformed", "malformed HTTP request: " + ec.message());
  }

  // The Content-Length of the request being read, if it has one. The parser refuses a length over
  // the limit before its head is done, when every field is in the message already.
  boost::optional<std::uint64_t> announcedLength() const {
    if (parser_->is_header_done()) return parser_->content_length();
    auto field = parser_->get()[http::field::content_length];
    std::uint64_t length = 0;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), length);
    if (field.empty() || ec != std::errc() || end != field.data() + field.size()) {
      return boost::none;
    }
    return length;
  }

  void tooLarge(boost::optional<std::uint64_t> length) {
    const std::string limit = std::to_string(options_.max_body_bytes);
    answerProblem(413, std::string(codeName(ErrorCode::TooLarge)),
                  length ? "the request body has " + std::to_string(*length) + " bytes; at most " +
                               limit + " are accepted"
                         : "the request body exceeds " + limit + " bytes");
  }

  // The request is complete: to the backend, re-framed, with the gate's secret.
  void forward() {
    disarm(Phase::Backend);
    forwarded_ = parser_->release();
    parser_.reset();
    head_ = forwarded_.method() == http::verb::head;
    // RFC 9110 9.2.2; a POST (a new graph) is never sent twice.
    idempotent_ = forwarded_.method() != http::verb::post &&
                  forwarded_.method() != http::verb::patch &&
                  forwarded_.method() != http::verb::unknown;
    stripHopByHop(forwarded_);
    forwarded_.erase(http::field::expect);
    forwarded_.erase(http::field::proxy_authorization);
    forwarded_.erase(http::field::content_length);
    forwarded_.erase(beast::string_view(kGateSecretHeader.data(), kGateSecretHeader.size()));
    forwarded_.set(beast::string_view(kGateSecretHeader.data(), kGateSecretHeader.size()),
                   gate_.options().secret);
    forwarded_.version(11);
    forwarded_.keep_alive(true);
    const auto method = forwarded_.method();
    if (!forwarded_.body().empty() || method == http::verb::put || method == http::verb::post ||
        method == http::verb::patch) {
      forwarded_.content_length(forwarded_.body().size());
    }
    retried_ = false;
    answer_parser_.reset();
    sendToBackend();
  }

  void sendToBackend() {
    if (backend_.is_open()) {
      reused_ = true;
      return writeToBackend();
    }
    reused_ = false;
    backend_buffer_.clear();
    backend_.async_connect(gate_.backend(), [self = this->shared_from_this()](error_code ec) {
      if (self->closing_) return;
      if (ec) return self->backendFailed(ec);
      error_code ignored;
      self->backend_.set_option(tcp::no_delay(true), ignored);
      self->writeToBackend();
    });
  }

  void writeToBackend() {
    http::async_write(backend_, forwarded_,
                      [self = this->shared_from_this()](error_code ec, size_t) {
                        if (self->closing_) return;
                        if (ec) return self->backendFailed(ec);
                        self->readFromBackend();
                      });
  }

  void readFromBackend() {
    answer_parser_.emplace();
    answer_parser_->body_limit(kMaxAnswerBytes);
    if (head_) answer_parser_->skip(true);
    http::async_read(backend_, backend_buffer_, *answer_parser_,
                     [self = this->shared_from_this()](error_code ec, size_t) {
                       if (self->closing_) return;
                       if (ec) return self->backendFailed(ec);
                       self->relay();
                     });
  }

  void backendFailed(const error_code& ec) {
    error_code ignored;
    backend_.close(ignored);
    // A kept-alive backend connection may have been closed just as the request went out: an
    // idempotent request that got nothing back is sent once more, on a new connection.
    const bool nothing_back = !answer_parser_ || !answer_parser_->got_some();
    if (reused_ && !retried_ && idempotent_ && nothing_back) {
      retried_ = true;
      answer_parser_.reset();
      return sendToBackend();
    }
    CORCH_LOG(lg, Warn) << "the API behind the gate did not answer " << forwarded_.method_string()
                        << " " << forwarded_.target() << ": " << ec.message();
    answerProblem(502, "bad-gateway", "corchd's API did not answer: " + ec.message());
  }

  // The backend's answer, to the client.
  void relay() {
    answer_ = answer_parser_->release();
    answer_parser_.reset();
    if (!answer_.keep_alive()) {
      error_code ignored;
      backend_.close(ignored);
    }
    stripHopByHop(answer_);
    const unsigned status = answer_.result_int();
    if (!head_ && status / 100 != 1 && status != 204 && status != 304) {
      answer_.content_length(answer_.body().size());
    }
    answer_.version(version_ == 10 ? 10 : 11);
    answer_.keep_alive(keep_alive_);
    arm(options_.idle_timeout, Phase::Reply);
    http::async_write(stream_, answer_, [self = this->shared_from_this()](error_code ec, size_t) {
      self->onAnswered(ec);
    });
  }

  // An answer of the gate's own (problem+json), after which the connection is closed.
  void answerProblem(int status, const std::string& name, const std::string& detail) {
    CORCH_LOG(lg, Debug) << admission_->peer().to_string() << ": " << status << ", " << detail;
    answer_ = {};
    answer_.version(version_ == 10 ? 10 : 11);
    answer_.result(static_cast<unsigned>(status));
    if (std::string_view phrase = reasonPhrase(status); phrase != "Error") {
      answer_.reason(beast::string_view(phrase.data(), phrase.size()));
    }
    answer_.set(http::field::content_type,
                beast::string_view(kProblemType.data(), kProblemType.size()));
    answer_.body() = problemJson(Problem{status, name, detail, {}});
    answer_.content_length(answer_.body().size());
    keep_alive_ = false;
    answer_.keep_alive(false);
    arm(options_.head_timeout, Phase::Reply);
    http::async_write(stream_, answer_, [self = this->shared_from_this()](error_code ec, size_t) {
      self->onAnswered(ec);
    });
  }

  void onAnswered(const error_code& ec) {
    if (closing_) return;
    if (ec) return closeAll();
    if (!keep_alive_) return linger();
    awaitRequest(false);
  }

  // The last answer is written: the client gets an end of stream, and what it still sends is
  // dropped until it closes (or kLinger passes).
  void linger() {
    error_code ec;
    lowest().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return closeAll();
    if (!drain_) drain_ = std::make_unique<char[]>(kDrainChunk);
    arm(std::chrono::duration_cast<std::chrono::milliseconds>(kLinger), Phase::Linger);
    drain();
  }

  void drain() {
    lowest().async_read_some(asio::buffer(drain_.get(), kDrainChunk),
                             [self = this->shared_from_this()](error_code ec, size_t) {
                               if (self->closing_) return;
                               if (ec) return self->closeAll();
                               self->drain();
                             });
  }

  void closeAll() {
    if (closing_) return;
    closing_ = true;
    phase_ = Phase::Closed;
    ++generation_;
    timer_.cancel();
    error_code ignored;
    lowest().close(ignored);
    backend_.close(ignored);
  }

  Stream stream_;
  asio::steady_timer timer_;
  tcp::socket backend_;
  const GateOptions& options_;

  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> forwarded_;
  http::response<http::empty_body> continue_;
  beast::flat_buffer backend_buffer_;
  std::optional<http::response_parser<http::string_body>> answer_parser_;
  http::response<http::string_body> answer_;
  std::unique_ptr<char[]> drain_;

  Phase phase_ = Phase::Handshake;
  uint64_t generation_ = 0;
  bool timed_out_ = false;
  bool closing_ = false;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  bool idempotent_ = false;
  bool reused_ = false;
  bool retried_ = false;
};

}  // namespace

Result<void> Gate::Impl::listen(bool& in_use) {
  if (options_.configure_tls) {
    try {
      tls_.emplace(ssl::context::tls_server);
      options_.configure_tls(*tls_);
    } catch (const std::exception& e) {
      return Error(ErrorCode::InvalidArgument, std::string("cannot set TLS up: ") + e.what());
    }
  }
  error_code ec;
  tcp::resolver resolver(ioc_);
  auto found =
      resolver.resolve(options_.host, std::to_string(options_.port), tcp::resolver::passive, ec);
  if (ec || found.empty()) {
    return Error(ErrorCode::InvalidArgument, "cannot resolve '" + options_.host + "': " +
                                                 (ec ? ec.message() : std::string("no address")));
  }
  // IPv4 first, as cpprest's listener did.
  tcp::endpoint endpoint = found.begin()->endpoint();
  for (const auto& entry : found) {
    if (entry.endpoint().address().is_v4()) {
      endpoint = entry.endpoint();
      break;
    }
  }
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    in_use = ec == asio::error::address_in_use;
    error_code ignored;
    acceptor_.close(ignored);
    return Error(ErrorCode::Unavailable, ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  backend_ = tcp::endpoint(asio::ip::address_v4::loopback(), options_.backend_port);

  const rlim_t limit = raiseDescriptorLimit();
  size_t fit = options_.max_connections;
  if (limit != RLIM_INFINITY) {
    fit = limit > kDescriptorsReserved
              ? static_cast<size_t>((limit - kDescriptorsReserved) / kDescriptorsPerConnection)
              : 1;
  }
  max_total_ = std::max<size_t>(1, std::min(options_.max_connections, fit));
  if (max_total_ < options_.max_connections) {
    CORCH_LOG(lg, Warn) << "at most " << max_total_ << " connections (not "
                        << options_.max_connections << "): the open descriptors limit is " << limit;
  }
  return Ok();
}

void Gate::Impl::run() {
  std::lock_guard lifecycle(lifecycle_mu_);
  work_.emplace(ioc_.get_executor());
  for (size_t i = 0; i < std::max<size_t>(options_.threads, 1); ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          // One connection's failure (memory) must not end the gate.
          CORCH_LOG(lg, Error) << "a connection failed: " << e.what();
        }
      }
    });
  }
  asio::post(accept_strand_, [this] { accept(); });
}

void Gate::Impl::stop() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (threads_.empty()) return;
  stopping_ = true;
  // The acceptor is closed on its strand, after any accept being handled (which counts and
  // remembers its connection first, so that it is closed below).
  std::promise<void> closed;
  asio::post(accept_strand_, [this, &closed] {
    error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    refusal_timer_.cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    std::lock_guard lock(mu_);
    for (const auto& [raw, weak] : sessions_) {
      if (auto session = weak.lock()) open.push_back(std::move(session));
    }
  }
  for (const auto& session : open) session->shutdown();
  open.clear();
  {
    std::unique_lock lock(mu_);
    drained_.wait(lock, [this] { return total_ == 0; });
  }
  work_.reset();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Gate::Impl::accept() {
  if (stopping_) return;
  acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code ec, tcp::socket socket) {
    onAccept(ec, std::move(socket));
  });
}

void Gate::Impl::onAccept(error_code ec, tcp::socket socket) {
  if (stopping_ || ec == asio::error::operation_aborted) return;
  if (ec) {
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
        ec == asio::error::no_memory || ec.value() == ENFILE) {
      // Retried a little later rather than at once: the condition lasts.
      noteRefusal("cannot accept a connection: " + ec.message());
      retry_.expires_after(kAcceptRetry);
      retry_.async_wait([this](error_code e) {
        if (!e) accept();
      });
      return;
    }
    CORCH_LOG(lg, Debug) << "accept: " << ec.message();
    return accept();
  }
  error_code peer_ec;
  tcp::endpoint remote = socket.remote_endpoint(peer_ec);
  if (peer_ec) return accept();  // already gone
  asio::ip::address peer = clientAddress(remote);
  std::string why;
  if (!admit(peer, why)) {
    error_code ignored;
    socket.close(ignored);
    noteRefusal(why);
    return accept();
  }
  auto admission = std::make_unique<Admission>(*this, peer);
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  try {
    std::shared_ptr<SessionBase> session;
    if (tls_) {
      session = std::make_shared<Session<ssl::stream<tcp::socket>>>(*this, std::move(socket),
                                                                    &*tls_, std::move(admission));
    } else {
      session = std::make_shared<Session<tcp::socket>>(*this, std::move(socket), nullptr,
                                                       std::move(admission));
    }
    remember(session);
    session->begin();
  } catch (const std::exception& e) {
    CORCH_LOG(lg, Error) << "cannot serve a connection from " << peer.to_string() << ": "
                         << e.what();
  }
  accept();
}

bool Gate::Impl::admit(const asio::ip::address& peer, std::string& why) {
  std::lock_guard lock(mu_);
  if (total_ >= max_total_) {
    why = "a connection from " + peer.to_string() + " refused: " + std::to_string(total_) +
          " connections are open, the most corchd serves";
    return false;
  }
  size_t& from_peer = per_address_[peer];
  if (from_peer >= options_.max_connections_per_address &&
      (options_.limit_loopback || !peer.is_loopback())) {
    why = "a connection from " + peer.to_string() + " refused: it has " +
          std::to_string(from_peer) + " open, the most corchd serves one address";
    return false;
  }
  ++from_peer;
  ++total_;
  return true;
}

void Gate::Impl::release(const asio::ip::address& peer) {
  std::lock_guard lock(mu_);
  if (auto it = per_address_.find(peer); it != per_address_.end() && --it->second == 0) {
    per_address_.erase(it);
  }
  if (--total_ == 0) drained_.notify_all();
}

void Gate::Impl::remember(const std::shared_ptr<SessionBase>& session) {
  std::lock_guard lock(mu_);
  sessions_.emplace(session.get(), session);
}

void Gate::Impl::forget(SessionBase* session) {
  std::lock_guard lock(mu_);
  sessions_.erase(session);
}

void Gate::Impl::noteRefusal(const std::string& why) {
  if (refusal_timer_armed_) {
    ++refused_;
    last_refusal_ = why;
    return;
  }
  CORCH_LOG(lg, Warn) << why;
  summarizeRefusals();
}

void Gate::Impl::summarizeRefusals() {
  refusal_timer_armed_ = true;
  refusal_timer_.expires_after(kRefusalLogInterval);
  refusal_timer_.async_wait([this](error_code ec) {
    refusal_timer_armed_ = false;
    if (ec || refused_ == 0) return;
    CORCH_LOG(lg, Warn) << refused_ << " more connections refused in the last "
                        << kRefusalLogInterval.count() << " s; the last: " << last_refusal_;
    refused_ = 0;
    summarizeRefusals();
  });
}

Gate::Gate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Gate::~Gate() { stop(); }

Result<std::unique_ptr<Gate>> Gate::start(GateOptions options, bool& in_use) {
  in_use = false;
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto listening = impl->listen(in_use); !listening) return listening.error();
  impl->run();
  return std::unique_ptr<Gate>(new Gate(std::move(impl)));
}

void Gate::stop() { impl_->stop(); }
uint16_t Gate::port() const { return impl_->port(); }
size_t Gate::connections() const { return impl_->connections(); }
size_t Gate::maxConnections() const { return impl_->maxConnections(); }

}  // namespace corch::rest
