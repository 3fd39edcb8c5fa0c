// The gate in front of the REST API (orchestrator/rest/gate.h): a Server with the fake graph
// service, driven by raw sockets that misbehave (slow heads, stalled bodies, oversized heads and
// bodies, too many connections, idle connections) and by cpprest clients that must keep being
// served meanwhile. Deadlines are set short (1 s); every assertion on time has a wide margin, the
// machine may be loaded.
#define BOOST_TEST_MODULE rest_gate
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <cpprest/http_client.h>

#include "corch/log.h"
#include "rest/fake_graph_service.h"
#include "rest/gate.h"
#include "rest/routes.h"
#include "rest/server.h"
#include "security/certificate.h"
#include "util/files.h"
#include "util/http_answer.h"

namespace {

using namespace std::chrono_literals;
using corch::rest::Server;
using corch::rest::ServerOptions;
using corch::rest::testing::FakeGraphService;
using corch::test::toAnswer;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
namespace http = web::http;

struct Quiet {
  Quiet() { corch::log::setLevel(corch::log::Level::Error); }
};
BOOST_TEST_GLOBAL_FIXTURE(Quiet);

const std::string kGraph = R"({"sffg": {"id": "ID", "name": "demo graph",
  "SFs": [{"id": "fw", "name": "firewall", "ports": [{"id": "in"}, {"id": "out"}]}],
  "saps": [{"id": "lan", "type": "interface", "interface": {"if-name": "eth1"}}],
  "flowrules": [{"id": "r1", "priority": 1, "match": {"port_in": "service-access-point:lan"},
                 "actions": {"output_to_port": "sf:fw:in"}}]}})";

std::string graphWithId(const std::string& id) {
  std::string text = kGraph;
  text.replace(text.find("\"ID\""), 4, "\"" + id + "\"");
  return text;
}

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// An HTTP answer read off a raw socket.
struct RawAnswer {
  int status = 0;  // 0: none
  std::string text;
  bool closed = false;  // the server closed the connection (end of stream or reset)

  std::string body() const {
    auto at = text.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : text.substr(at + 4);
  }
  bool has(const std::string& part) const { return text.find(part) != std::string::npos; }
};

// The length of the first answer in `text` (head, and the body its Content-Length announces);
// npos while it is not whole.
size_t answerLength(const std::string& text) {
  auto end = text.find("\r\n\r\n");
  if (end == std::string::npos) return std::string::npos;
  std::string head = text.substr(0, end);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t length = 0;
  if (auto at = head.find("\r\ncontent-length:"); at != std::string::npos) {
    length = std::stoul(head.substr(at + 17));
  }
  return text.size() >= end + 4 + length ? end + 4 + length : std::string::npos;
}

bool wholeAnswer(const std::string& text) { return answerLength(text) != std::string::npos; }

int statusOf(const std::string& text) {
  if (text.rfind("HTTP/1.", 0) != 0 || text.size() < 12) return 0;
  return std::atoi(text.c_str() + 9);
}

// A client connection on a raw socket (TLS through OpenSSL when given a context), so that a test
// can send exactly the bytes it wants, when it wants.
class Raw {
 public:
  Raw(uint16_t port, SSL_CTX* tls = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE_MESSAGE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0,
                          "connect: " << std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A safety net: no call here blocks for long, whatever the server does.
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (tls) {
      ssl_ = SSL_new(tls);
      SSL_set_fd(ssl_, fd_);
      BOOST_REQUIRE_MESSAGE(SSL_connect(ssl_) == 1, "TLS handshake failed");
    }
  }
  ~Raw() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      int n = ssl_ ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                   : static_cast<int>(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL));
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads until a whole answer came, the connection closed, or `timeout` passed.
  RawAnswer answer(std::chrono::milliseconds timeout) {
    RawAnswer a;
    a.closed = readUntil(timeout, a.text, [](const std::string& t) { return wholeAnswer(t); });
    a.status = statusOf(a.text);
    return a;
  }

  // Whether the server closes the connection within `timeout` (what it sends meanwhile is
  // dropped).
  bool closedWithin(std::chrono::milliseconds timeout) {
    std::string ignored;
    return readUntil(timeout, ignored, [](const std::string&) { return false; });
  }

  int fd() const { return fd_; }

 private:
  // Returns whether the connection was closed.
  bool readUntil(std::chrono::milliseconds timeout, std::string& text,
                 const std::function<bool(const std::string&)>& enough) {
    auto until = Clock::now() + timeout;
    while (!enough(text)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (!(ssl_ && SSL_pending(ssl_) > 0)) {
        // At least one look, also with no time left.
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 0))) <= 0) return false;
      }
      char buf[16384];
      int n = ssl_ ? SSL_read(ssl_, buf, sizeof buf)
                   : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
      if (n > 0) {
        text.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (ssl_) {
        int e = SSL_get_error(ssl_, n);
        ERR_clear_error();
        // TLS 1.3 session tickets and the like: bytes that are no application data.
        if (e == SSL_ERROR_WANT_READ) continue;
      }
      return true;  // end of stream or reset
    }
    return false;
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

struct Fixture {
  explicit Fixture(ServerOptions options = fast()) {
    options.port = 0;
    server.emplace(options, service);
    auto started = server->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.error().message());
    port = server->port();
    http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(20));
    client.emplace(web::uri(server->url()), config);
  }

  // Deadlines of a second, so that the tests wait little.
  static ServerOptions fast() {
    ServerOptions o;
    o.handshake_timeout = 1s;
    o.head_timeout = 1s;
    o.body_timeout = 1s;
    o.idle_timeout = 1s;
    return o;
  }

  int get(const std::string& path) {
    return client->request(http::methods::GET, path).get().status_code();
  }

  FakeGraphService service;
  std::optional<Server> server;
  uint16_t port = 0;
  std::optional<http::client::http_client> client;
};

// The TCP ports this process listens on, on 127.0.0.1 (from /proc: the sockets among its
// descriptors).
std::set<uint16_t> loopbackListeningPorts() {
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd", ec)) {
    auto target = fs::read_symlink(entry.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::set<uint16_t> ports;
  std::ifstream tcp("/proc/self/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the titles
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
        inode;
    if (state != "0A" || !inodes.count(inode)) continue;  // 0A: LISTEN
    if (local.substr(0, 8) != "0100007F") continue;       // 127.0.0.1
    ports.insert(static_cast<uint16_t>(std::stoul(local.substr(9), nullptr, 16)));
  }
  return ports;
}

const std::string kGet = "GET /graphs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(deadlines)

// Slowloris: heads trickling in one byte at a time are cut after the head deadline with a 408,
// however often a byte comes; GETs on other connections are served all along.
BOOST_FIXTURE_TEST_CASE(slow_heads_get_408_while_others_are_served, Fixture) {
  BOOST_REQUIRE_EQUAL(
      client->request(http::methods::PUT, "/graphs/g1", graphWithId("g1"), "application/json")
          .get()
          .status_code(),
      201);
  constexpr int kSlow = 20;
  std::vector<std::unique_ptr<Raw>> slow;
  for (int i = 0; i < kSlow; ++i) slow.push_back(std::make_unique<Raw>(port));
  const std::string head =
      "GET /graphs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + std::string(200, 'a') + "\r\n\r\n";
  std::atomic<bool> done{false};
  std::vector<double> latencies;
  std::vector<int> statuses;
  std::thread reader([&] {
    while (!done.load()) {
      auto t0 = Clock::now();
      statuses.push_back(get("/graphs/g1"));
      latencies.push_back(secondsSince(t0));
    }
  });
  // One byte per 100 ms on each slow connection: the deadline is from the first byte.
  auto t0 = Clock::now();
  std::vector<double> cut(kSlow, -1);
  std::vector<RawAnswer> answers(kSlow);
  for (size_t at = 0; at < head.size() && secondsSince(t0) < 8; ++at) {
    for (int i = 0; i < kSlow; ++i) {
      if (cut[i] >= 0) continue;
      auto a = slow[i]->answer(0ms);
      if (a.status != 0 || a.closed || !slow[i]->send(std::string_view(&head[at], 1))) {
        a.text += slow[i]->answer(2s).text;
        a.status = statusOf(a.text);
        answers[i] = a;
        cut[i] = secondsSince(t0);
      }
    }
    bool all = true;
    for (double c : cut) all = all && c >= 0;
    if (all) break;
    std::this_thread::sleep_for(100ms);
  }
  done = true;
  reader.join();
  for (int i = 0; i < kSlow; ++i) {
    BOOST_TEST_CONTEXT("slow connection " << i) {
      BOOST_TEST(cut[i] >= 0.9);
      BOOST_TEST(cut[i] < 5.0);
      BOOST_TEST(answers[i].status == 408, answers[i].text);
      BOOST_TEST(answers[i].has("application/problem+json"));
      BOOST_TEST(answers[i].has("/problems/request-timeout"));
      BOOST_TEST(answers[i].has("Connection: close"));
    }
  }
  BOOST_TEST(latencies.size() >= 5u);
  for (int s : statuses) BOOST_TEST(s == 200);
  for (double l : latencies) BOOST_TEST(l < 2.0);
}

// A connection that sends nothing is closed after the head deadline, with nothing to answer.
BOOST_FIXTURE_TEST_CASE(silent_connection_is_closed, Fixture) {
  Raw silent(port);
  auto t0 = Clock::now();
  auto a = silent.answer(5s);
  BOOST_TEST(a.closed);
  BOOST_TEST(a.text.empty(), a.text);
  BOOST_TEST(secondsSince(t0) >= 0.9);
}

BOOST_FIXTURE_TEST_CASE(stalled_body_gets_408, Fixture) {
  Raw c(port);
  BOOST_REQUIRE(
      c.send("PUT /graphs/stall HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"sffg\":"));
  auto t0 = Clock::now();
  auto a = c.answer(5s);
  BOOST_TEST(a.status == 408, a.text);
  BOOST_TEST(a.has("the request's body did not arrive within 1 s"));
  BOOST_TEST(secondsSince(t0) >= 0.9);
  BOOST_TEST(c.closedWithin(5s));
  BOOST_TEST(service.putCalls() == 0);
}

BOOST_FIXTURE_TEST_CASE(idle_kept_alive_connection_is_closed, Fixture) {
  Raw c(port);
  BOOST_REQUIRE(c.send(kGet));
  BOOST_TEST(c.answer(5s).status == 200);
  // Still open just after; closed once idle for the idle deadline.
  BOOST_REQUIRE(c.send(kGet));
  BOOST_TEST(c.answer(5s).status == 200);
  auto t0 = Clock::now();
  BOOST_TEST(c.closedWithin(5s));
  BOOST_TEST(secondsSince(t0) >= 0.9);
}

// The deadlines bound what the client sends, not the answer: a deploy may take seconds.
BOOST_FIXTURE_TEST_CASE(slow_put_is_not_cut, Fixture) {
  service.blockPutsOf("slow");
  std::thread releaser([&] {
    if (service.waitUntilBlocked(10s)) std::this_thread::sleep_for(3s);
    service.release();
  });
  auto t0 = Clock::now();
  auto answer = toAnswer(
      client->request(http::methods::PUT, "/graphs/slow", graphWithId("slow"), "application/json")
          .get());
  releaser.join();
  BOOST_TEST(answer.status == 201, answer.body);
  BOOST_TEST(secondsSince(t0) >= 2.9);
  // The same connection serves on.
  BOOST_TEST(get("/graphs/slow") == 200);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(limits)

BOOST_FIXTURE_TEST_CASE(oversized_content_length_is_413_before_the_body, Fixture) {
  Raw c(port);
  BOOST_REQUIRE(
      c.send("PUT /graphs/big HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"));
  auto a = c.answer(5s);
  BOOST_TEST(a.status == 413, a.text);
  BOOST_TEST(a.has("/problems/too-large"));
  BOOST_TEST(a.has("at most " + std::to_string(corch::rest::kMaxBodyBytes)), a.text);
  BOOST_TEST(c.closedWithin(5s));
  BOOST_TEST(service.putCalls() == 0);
}

BOOST_FIXTURE_TEST_CASE(oversized_chunked_body_is_413, Fixture) {
  Raw c(port);
  BOOST_REQUIRE(
      c.send("PUT /graphs/big HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
  RawAnswer a;
  for (int i = 0; i < 40 && a.status == 0; ++i) {
    if (!c.send(chunk)) break;
    a = c.answer(0ms);
  }
  if (a.status == 0) a = c.answer(5s);
  BOOST_TEST(a.status == 413, a.text);
  BOOST_TEST(a.has("exceeds " + std::to_string(corch::rest::kMaxBodyBytes)), a.text);
  BOOST_TEST(service.putCalls() == 0);
}

BOOST_FIXTURE_TEST_CASE(head_over_16_kib_is_431, Fixture) {
  Raw c(port);
  BOOST_REQUIRE(c.send("GET /graphs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " +
                       std::string(20 * 1024, 'a') + "\r\n\r\n"));
  auto a = c.answer(5s);
  BOOST_TEST(a.status == 431, a.text);
  BOOST_TEST(a.has("application/problem+json"));
  BOOST_TEST(a.has("16384"));
  BOOST_TEST(c.closedWithin(5s));
  // A head just under the limit is served.
  Raw d(port);
  BOOST_REQUIRE(d.send("GET /graphs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " +
                       std::string(15 * 1024, 'a') + "\r\n\r\n"));
  BOOST_TEST(d.answer(5s).status == 200);
}

BOOST_FIXTURE_TEST_CASE(garbage_is_400, Fixture) {
  Raw c(port);
  BOOST_REQUIRE(c.send("NOT HTTP AT ALL\r\n\r\n"));
  auto a = c.answer(5s);
  BOOST_TEST(a.status == 400, a.text);
  BOOST_TEST(c.closedWithin(5s));
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_per_address_cap_are_closed) {
  ServerOptions options = Fixture::fast();
  options.head_timeout = 30s;  // the connections held wait for their request
  options.max_connections_per_address = 4;
  options.limit_loopback_connections = true;
  Fixture f(options);
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<Raw>(f.port));
  // The fifth is accepted by the kernel, and closed by the gate at once.
  Raw fifth(f.port);
  auto t0 = Clock::now();
  BOOST_TEST(fifth.closedWithin(5s));
  BOOST_TEST(secondsSince(t0) < 2.0);
  // The four held are served.
  for (auto& c : held) {
    BOOST_REQUIRE(c->send(kGet));
    BOOST_TEST(c->answer(5s).status == 200);
  }
  // One of them gone, a new connection is served again.
  held.pop_back();
  auto until = Clock::now() + 5s;
  int status = 0;
  while (status != 200 && Clock::now() < until) {
    Raw next(f.port);
    if (next.send(kGet)) status = next.answer(2s).status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(status == 200);
}

BOOST_AUTO_TEST_CASE(loopback_is_not_capped_per_address_by_default) {
  ServerOptions options = Fixture::fast();
  options.head_timeout = 30s;
  options.max_connections_per_address = 2;
  Fixture f(options);
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<Raw>(f.port));
  for (auto& c : held) {
    BOOST_REQUIRE(c->send(kGet));
    BOOST_TEST(c->answer(5s).status == 200);
  }
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_total_cap_are_closed) {
  ServerOptions options = Fixture::fast();
  options.head_timeout = 30s;
  options.max_connections = 3;
  Fixture f(options);
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<Raw>(f.port));
  Raw fourth(f.port);
  BOOST_TEST(fourth.closedWithin(5s));
  BOOST_REQUIRE(held[0]->send(kGet));
  BOOST_TEST(held[0]->answer(5s).status == 200);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(forwarding)

// The port of cpprest's listener is no way around the gate: without the gate's secret (or with
// a wrong one) every request is refused before anything else.
BOOST_FIXTURE_TEST_CASE(backend_refuses_requests_without_the_secret, Fixture) {
  auto ports = loopbackListeningPorts();
  BOOST_REQUIRE(ports.count(port));
  ports.erase(port);
  BOOST_REQUIRE_MESSAGE(!ports.empty(), "the backend's port is not found");
  for (uint16_t backend : ports) {
    BOOST_TEST_CONTEXT("port " << backend) {
      Raw c(backend);
      BOOST_REQUIRE(c.send(kGet));
      auto a = c.answer(5s);
      BOOST_TEST(a.status == 403, a.text);
      BOOST_TEST(a.has("/problems/permission-denied"));
      Raw d(backend);
      BOOST_REQUIRE(d.send(
          "PUT /graphs/g1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Corch-Gate: " + std::string(64, '0') +
          "\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(graphWithId("g1").size()) + "\r\n\r\n" + graphWithId("g1")));
      BOOST_TEST(d.answer(5s).status == 403);
    }
  }
  BOOST_TEST(service.putCalls() == 0);
  // Through the gate, a client's own X-Corch-Gate is replaced by the real one.
  Raw c(port);
  BOOST_REQUIRE(c.send("GET /graphs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Corch-Gate: " +
                       std::string(64, '0') + "\r\n\r\n"));
  BOOST_TEST(c.answer(5s).status == 200);
}

BOOST_FIXTURE_TEST_CASE(expect_continue_pipelining_and_http_1_0, Fixture) {
  const std::string body = graphWithId("g1");
  {
    // Expect: 100-continue: the gate says continue, then forwards the whole request.
    Raw c(port);
    BOOST_REQUIRE(
        c.send("PUT /graphs/g1 HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
               "Content-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n"));
    auto cont = c.answer(5s);
    BOOST_TEST(cont.status == 100, cont.text);
    BOOST_REQUIRE(c.send(body));
    auto a = c.answer(5s);
    BOOST_TEST(a.status == 201, a.text);
  }
  {
    // Two requests in one write: two answers, in order.
    Raw c(port);
    BOOST_REQUIRE(
        c.send("GET /graphs/g1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
               "GET /graphs/nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    auto first = c.answer(5s);
    BOOST_TEST(first.status == 200, first.text);
    // The second may have come in the same read.
    std::string rest = first.text.substr(std::min(answerLength(first.text), first.text.size()));
    if (rest.empty()) rest = c.answer(5s).text;
    BOOST_TEST(statusOf(rest) == 404, rest);
  }
  {
    // HTTP/1.0 without keep-alive: answered, then closed.
    Raw c(port);
    BOOST_REQUIRE(c.send("GET /graphs HTTP/1.0\r\n\r\n"));
    auto a = c.answer(5s);
    BOOST_TEST(a.status == 200, a.text);
    BOOST_TEST(c.closedWithin(5s));
  }
  {
    // A chunked body is re-framed for the API.
    Raw c(port);
    std::ostringstream chunked;
    chunked << std::hex << body.size() << "\r\n" << body << "\r\n0\r\n\r\n";
    BOOST_REQUIRE(
        c.send("PUT /graphs/g1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" +
               chunked.str()));
    auto a = c.answer(5s);
    BOOST_TEST(a.status == 200, a.text);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tls)

struct HttpsFixture {
  HttpsFixture() {
    auto made = corch::security::ensureCertificate(cert.string(), key.string(), {"127.0.0.1"});
    BOOST_REQUIRE(made.ok());
    ServerOptions options = Fixture::fast();
    options.port = 0;
    options.tls = corch::rest::TlsOptions{cert.string(), key.string()};
    server.emplace(options, service);
    auto started = server->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.error().message());
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  ~HttpsFixture() { SSL_CTX_free(ctx); }

  corch::test::TempDir dir{"gate-tls"};
  fs::path cert = dir.path() / "cert.pem";
  fs::path key = dir.path() / "key.pem";
  FakeGraphService service;
  std::optional<Server> server;
  SSL_CTX* ctx = nullptr;
};

BOOST_FIXTURE_TEST_CASE(https_serves_and_cuts_the_same, HttpsFixture) {
  // A cpprest client trusting the certificate by its file.
  http::client::http_client_config config;
  config.set_timeout(std::chrono::seconds(20));
  config.set_ssl_context_callback(
      [this](boost::asio::ssl::context& c) { c.load_verify_file(cert.string()); });
  http::client::http_client client(web::uri(server->url()), config);
  BOOST_TEST(client.request(http::methods::GET, "/graphs").get().status_code() == 200);

  // A raw TLS client: served, then a slow head over TLS is cut with a 408.
  Raw c(server->port(), ctx);
  BOOST_REQUIRE(c.send(kGet));
  BOOST_TEST(c.answer(5s).status == 200);
  BOOST_REQUIRE(c.send("GET /graphs HTTP/1.1\r\nHo"));
  auto t0 = Clock::now();
  auto a = c.answer(5s);
  BOOST_TEST(a.status == 408, a.text);
  BOOST_TEST(secondsSince(t0) >= 0.9);

  // A connection that never starts its handshake is closed after the handshake deadline.
  Raw silent(server->port());
  t0 = Clock::now();
  BOOST_TEST(silent.closedWithin(5s));
  BOOST_TEST(secondsSince(t0) >= 0.9);

  // Plain HTTP on the HTTPS port is no request.
  Raw plain(server->port());
  BOOST_REQUIRE(plain.send(kGet));
  BOOST_TEST(plain.answer(5s).status == 0);
}

BOOST_AUTO_TEST_SUITE_END()
