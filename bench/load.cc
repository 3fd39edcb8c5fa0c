// bench_load: corchd's REST API under load and under hostile clients, on loopback. A benchmark: it
// prints figures, and it checks what must hold whatever the load (bench/README.md):
//  - no server error: every 5xx is counted, apart from 503 with Retry-After (corchd's documented
//    back-pressure when more changes arrive at once than it serves), which clients honour;
//  - no graph lost or corrupted: each client owns its graphs and knows what it last wrote; every
//    GET of one of them must read back exactly that (compared as parsed SF-FG models), every
//    GET /graphs must list exactly the client's deployed graphs, and a final audit reads them all.
// Exit status 0 when both hold, 1 when not (or set-up failed), 2 on a bad option.
//
// Phase 1, "normal": N clients (threads, one keep-alive HTTPS connection each, cpprest) run a mix
// of PUT of small graphs without functions (empty, or SAPs only: no function start cost),
// GET /graphs, GET /graphs/{id} and DELETE for a bounded time and count. Phase 2, "hostile": the
// same clients go on while other connections misbehave: slow headers (one byte per second), a
// body that stalls midway, connections that never start TLS, and oversized bodies (50 MiB, with a
// Content-Length and chunked) sent as fast as loopback takes them. Printed: latency percentiles
// per request kind and phase, throughput, corchd's RSS and open descriptors, and for each hostile
// connection whether and when corchd cut it off.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cpprest/http_client.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "corch/log.h"
#include "graph/sffg_codec.h"
#include "harness/corchd.h"
#include "harness/sandbox.h"

namespace {

using namespace std::chrono_literals;
using corch::Error;
using corch::ErrorCode;
using corch::Ok;
using corch::Result;
namespace fs = std::filesystem;
namespace http = web::http;
using Clock = std::chrono::steady_clock;

const std::string kSource = CORCH_SOURCE_DIR;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------
// Options

const char* kUsage =
    "usage: bench_load [--clients N] [--warmup S] [--duration S] [--hostile-duration S]\n"
    "                  [--max-requests N]\n"
    "                  [--graphs-per-client N] [--mix get:50,list:20,put:20,delete:10]\n"
    "                  [--slow N] [--big N] [--big-mib N] [--no-tls]\n"
    "Runs corchd in a private network namespace with its own Open vSwitch (root needed) and\n"
    "loads its REST API; see bench/README.md.\n";

struct Options {
  int clients = 200;
  int duration_s = 60;
  int warmup_s = 5;    // not counted: 200 TLS handshakes and first graphs at once
  int hostile_s = 30;  // 0: no hostile phase
  long max_requests = 2'000'000;
  int graphs_per_client = 2;
  std::map<std::string, int> mix = {{"get", 50}, {"list", 20}, {"put", 20}, {"delete", 10}};
  int slow = 10;  // of each kind: slow headers, stalled body, no TLS handshake
  int big = 2;    // oversized-body senders of each kind: Content-Length, chunked
  int big_mib = 50;
  bool tls = true;
  bool help = false;
};

Result<Options> parseOptions(int argc, char** argv) {
  Options o;
  auto number = [](const std::string& flag, const char* text, long min) -> Result<long> {
    char* end = nullptr;
    long v = std::strtol(text, &end, 10);
    if (end == text || *end != 0 || v < min) {
      return Error(ErrorCode::InvalidArgument, flag + ": not a number >= " + std::to_string(min));
    }
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      o.help = true;
      continue;
    }
    if (a == "--no-tls") {
      o.tls = false;
      continue;
    }
    if (i + 1 >= argc) return Error(ErrorCode::InvalidArgument, a + " needs a value");
    const char* v = argv[++i];
    Result<long> n = 0L;
    if (a == "--mix") {
      o.mix.clear();
      std::stringstream ss(v);
      std::string part;
      while (std::getline(ss, part, ',')) {
        auto colon = part.find(':');
        std::string kind = part.substr(0, colon);
        if (colon == std::string::npos ||
            (kind != "get" && kind != "list" && kind != "put" && kind != "delete")) {
          return Error(ErrorCode::InvalidArgument, "--mix: kinds are get, list, put, delete");
        }
        auto w = number("--mix", part.c_str() + colon + 1, 0);
        if (!w.ok()) return w.error();
        o.mix[kind] = static_cast<int>(*w);
      }
      continue;
    }
    // The numeric options: the field each sets and its least value.
    struct Numeric {
      const char* name;
      long* as_long;
      int* as_int;
      long min;
    };
    const Numeric numeric[] = {
        {"--clients", nullptr, &o.clients, 1},
        {"--duration", nullptr, &o.duration_s, 1},
        {"--warmup", nullptr, &o.warmup_s, 0},
        {"--hostile-duration", nullptr, &o.hostile_s, 0},
        {"--max-requests", &o.max_requests, nullptr, 1},
        {"--graphs-per-client", nullptr, &o.graphs_per_client, 1},
        {"--slow", nullptr, &o.slow, 0},
        {"--big", nullptr, &o.big, 0},
        {"--big-mib", nullptr, &o.big_mib, 2},
    };
    const Numeric* option = nullptr;
    for (const auto& candidate : numeric) {
      if (a == candidate.name) option = &candidate;
    }
    if (!option) return Error(ErrorCode::InvalidArgument, "unknown option " + a);
    n = number(a, v, option->min);
    if (n.ok() && option->as_long) *option->as_long = *n;
    if (n.ok() && option->as_int) *option->as_int = static_cast<int>(*n);
    if (!n.ok()) return n.error();
  }
  int total = 0;
  for (const auto& [k, w] : o.mix) total += w;
  if (total == 0) return Error(ErrorCode::InvalidArgument, "--mix: all weights are 0");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Figures

enum Op { kGet, kList, kPut, kDelete, kOps };
const char* kOpNames[kOps] = {"GET /graphs/{id}", "GET /graphs", "PUT /graphs/{id}",
                              "DELETE /graphs/{id}"};

struct Stats {
  std::vector<double> ms[kOps];
  std::map<int, long> statuses;  // HTTP status -> count (0: no answer)
  long busy = 0;                 // 503 with Retry-After
  long server_errors = 0;        // other 5xx
  long transport_errors = 0;     // no answer (connection failed, timeout)
  long corrupted = 0;            // a GET read something else than was written
  long lost = 0;                 // a graph written and not found (404, or missing from the list)
  long unexpected = 0;           // another status than the API documents for the request
  std::vector<std::string> examples;  // the first problems, described

  void merge(const Stats& o) {
    for (int i = 0; i < kOps; ++i) ms[i].insert(ms[i].end(), o.ms[i].begin(), o.ms[i].end());
    for (const auto& [s, n] : o.statuses) statuses[s] += n;
    busy += o.busy;
    server_errors += o.server_errors;
    transport_errors += o.transport_errors;
    corrupted += o.corrupted;
    lost += o.lost;
    unexpected += o.unexpected;
    for (const auto& e : o.examples) {
      if (examples.size() < 10) examples.push_back(e);
    }
  }
  void problem(long& counter, const std::string& what) {
    ++counter;
    if (examples.size() < 10) examples.push_back(what);
  }
  long requests() const {
    long n = 0;
    for (const auto& [s, c] : statuses) n += c;
    return n;
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// corchd's resident memory (kB) and open descriptors, from /proc.
struct ProcSample {
  long rss_kb = 0;
  long fds = 0;
};
ProcSample sampleProc(pid_t pid) {
  ProcSample s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++s.fds;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// The graphs clients write: no function, so that a PUT costs corchd's own work and Open vSwitch's
// (a graph-LSI), not a function's start. Every other version holds SAPs on the two physical ports.

std::string graphJson(const std::string& id, long version, const std::vector<std::string>& phys) {
  std::string name = "load " + id + " v" + std::to_string(version);
  std::string saps;
  if (version % 2 == 1) {
    saps = R"(, "saps": [ { "id": "a", "type": "interface", "interface": {"if-name": ")" + phys[0] +
           R"("} }, { "id": "b", "type": "interface", "interface": {"if-name": ")" + phys[1] +
           R"("} } ])";
  }
  return R"({ "sffg": { "id": ")" + id + R"(", "name": ")" + name + "\"" + saps + " } }";
}

// ---------------------------------------------------------------------------------------------
// A client: one cpprest http_client (one keep-alive connection), its own graphs.

struct Target {
  std::string url;
  std::string token;
  std::string ca_cert;  // empty: plain HTTP
};

web::http::client::http_client_config clientConfig(const Target& t) {
  web::http::client::http_client_config c;
  c.set_timeout(std::chrono::seconds(60));
  if (!t.ca_cert.empty()) {
    std::string ca = t.ca_cert;
    c.set_ssl_context_callback([ca](boost::asio::ssl::context& ctx) { ctx.load_verify_file(ca); });
  }
  return c;
}

struct Answer {
  int status = 0;  // 0: no answer
  std::string body;
  std::string retry_after;
  double ms = 0;
  std::string error;
};

class Client {
 public:
  Client(int index, const Target& target, const Options& options,
         const std::vector<std::string>& phys)
      : index_(index),
        target_(target),
        options_(options),
        phys_(phys),
        client_(web::uri(target.url), clientConfig(target)),
        rng_(static_cast<uint32_t>(index * 7919 + 1)),
        expected_(options.graphs_per_client),
        known_(options.graphs_per_client, true),
        versions_(options.graphs_per_client, 0) {}

  std::string graphId(int k) const {
    return "ld" + std::to_string(index_) + "-" + std::to_string(k);
  }

  // Runs requests until `stop`, counting into `stats` (swapped by the caller between phases
  // under `mu`).
  void run(const std::atomic<bool>& stop, std::atomic<long>& budget, std::mutex& mu,
           Stats*& stats) {
    int total = 0;
    for (const auto& [k, w] : options_.mix) total += w;
    while (!stop.load() && budget.fetch_sub(1) > 0) {
      int pick = std::uniform_int_distribution<int>(0, total - 1)(rng_);
      std::string kind;
      for (const auto& [k, w] : options_.mix) {
        if (pick < w) {
          kind = k;
          break;
        }
        pick -= w;
      }
      int g = std::uniform_int_distribution<int>(0, options_.graphs_per_client - 1)(rng_);
      Stats local;
      double pause_ms = 0;
      if (kind == "get") {
        get(g, local);
      } else if (kind == "list") {
        list(local);
      } else if (kind == "put") {
        pause_ms = put(g, local);
      } else {
        pause_ms = del(g, local);
      }
      {
        std::lock_guard lock(mu);
        stats->merge(local);
      }
      if (pause_ms > 0) {
        // Back-pressure: wait as asked, but wake up for the end of the phase.
        auto until = Clock::now() + std::chrono::duration<double, std::milli>(pause_ms);
        while (!stop.load() && Clock::now() < until) std::this_thread::sleep_for(50ms);
      }
    }
  }

  // The final audit: every graph of this client reads back as last written.
  void audit(Stats& stats) {
    for (int g = 0; g < options_.graphs_per_client; ++g) get(g, stats);
    list(stats);
  }

 private:
  Answer request(const http::method& method, const std::string& path, const std::string& body) {
    Answer a;
    http::http_request req(method);
    req.set_request_uri(path);
    req.headers().add("X-Auth-Token", target_.token);
    if (!body.empty()) req.set_body(body, "application/json");
    auto t0 = Clock::now();
    try {
      http::http_response r = client_.request(req).get();
      a.body = r.extract_utf8string(true).get();
      a.status = r.status_code();
      auto it = r.headers().find("Retry-After");
      if (it != r.headers().end()) a.retry_after = it->second;
    } catch (const std::exception& e) {
      a.error = e.what();
    }
    a.ms = msSince(t0);
    return a;
  }

  // Counts an answer; returns whether it is one the caller should look at (a 2xx or 4xx).
  bool count(Op op, const Answer& a, Stats& s, const std::string& what) {
    s.statuses[a.status]++;
    if (a.status == 0) {
      s.problem(s.transport_errors, what + ": no answer: " + a.error);
      return false;
    }
    if (a.status == 503 && !a.retry_after.empty()) {
      ++s.busy;
      return false;
    }
    s.ms[op].push_back(a.ms);
    if (a.status >= 500) {
      s.problem(s.server_errors,
                what + ": " + std::to_string(a.status) + " " + a.body.substr(0, 300));
      return false;
    }
    return true;
  }

  double retryPause(const Answer& a) {
    if (a.status != 503 || a.retry_after.empty()) return 0;
    return 1000.0 * std::max(1L, std::strtol(a.retry_after.c_str(), nullptr, 10));
  }

  void get(int g, Stats& s) {
    std::string id = graphId(g);
    Answer a = request(http::methods::GET, "/graphs/" + id, "");
    if (!count(kGet, a, s, "GET " + id)) return;
    if (!known_[g]) {
      // After a change whose answer was lost, what is there is the truth.
      resync(g, a);
      return;
    }
    if (!expected_[g]) {
      if (a.status != 404) {
        s.problem(s.unexpected, "GET " + id + " of a deleted graph: " + std::to_string(a.status));
      }
      return;
    }
    if (a.status == 404) {
      s.problem(s.lost,
                "GET " + id + ": 404 for a graph written (v" + std::to_string(versions_[g]) + ")");
      return;
    }
    if (a.status != 200) {
      s.problem(s.unexpected, "GET " + id + ": " + std::to_string(a.status));
      return;
    }
    auto got = corch::graph::parseSffg(a.body);
    if (!got.ok() || !(*got == *expected_[g])) {
      s.problem(s.corrupted, "GET " + id + " read back something else than v" +
                                 std::to_string(versions_[g]) + ": " + a.body.substr(0, 300));
    }
  }

  void resync(int g, const Answer& a) {
    if (a.status == 404) {
      expected_[g].reset();
      known_[g] = true;
    } else if (a.status == 200) {
      auto got = corch::graph::parseSffg(a.body);
      if (got.ok()) {
        expected_[g] = std::move(*got);
        known_[g] = true;
      }
    }
  }

  void list(Stats& s) {
    Answer a = request(http::methods::GET, "/graphs", "");
    if (!count(kList, a, s, "GET /graphs")) return;
    if (a.status != 200) {
      s.problem(s.unexpected, "GET /graphs: " + std::to_string(a.status));
      return;
    }
    rapidjson::Document doc;
    doc.Parse(a.body.c_str(), a.body.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("graphs") ||
        !doc["graphs"].IsArray()) {
      s.problem(s.corrupted, "GET /graphs: not a list: " + a.body.substr(0, 300));
      return;
    }
    std::set<std::string> listed;
    for (const auto& e : doc["graphs"].GetArray()) {
      if (e.IsObject() && e.HasMember("id") && e["id"].IsString())
        listed.insert(e["id"].GetString());
    }
    for (int g = 0; g < options_.graphs_per_client; ++g) {
      if (!known_[g]) continue;
      bool there = listed.count(graphId(g)) > 0;
      if (expected_[g] && !there) {
        s.problem(s.lost, "GET /graphs does not list " + graphId(g));
      } else if (!expected_[g] && there) {
        s.problem(s.unexpected, "GET /graphs lists " + graphId(g) + ", deleted");
      }
    }
  }

  double put(int g, Stats& s) {
    std::string id = graphId(g);
    long version = versions_[g] + 1;
    std::string body = graphJson(id, version, phys_);
    Answer a = request(http::methods::PUT, "/graphs/" + id, body);
    if (!count(kPut, a, s, "PUT " + id)) {
      // Refused with back-pressure: nothing changed. No answer or another 5xx: who knows.
      if (!(a.status == 503 && !a.retry_after.empty())) known_[g] = false;
      return retryPause(a);
    }
    int want = expected_[g] || !known_[g] ? 200 : 201;
    if (a.status == 200 || a.status == 201) {
      if (known_[g] && a.status != want) {
        s.problem(s.unexpected, "PUT " + id + ": " + std::to_string(a.status) + ", expected " +
                                    std::to_string(want));
      }
      auto model = corch::graph::parseSffg(body);
      expected_[g] = std::move(*model);
      versions_[g] = version;
      known_[g] = true;
    } else {
      s.problem(s.unexpected,
                "PUT " + id + ": " + std::to_string(a.status) + " " + a.body.substr(0, 300));
      known_[g] = false;
    }
    return 0;
  }

  double del(int g, Stats& s) {
    if (known_[g] && !expected_[g]) return put(g, s);  // nothing to delete: write instead
    std::string id = graphId(g);
    Answer a = request(http::methods::DEL, "/graphs/" + id, "");
    if (!count(kDelete, a, s, "DELETE " + id)) {
      if (!(a.status == 503 && !a.retry_after.empty())) known_[g] = false;
      return retryPause(a);
    }
    if (a.status == 204 || (!known_[g] && a.status == 404)) {
      expected_[g].reset();
      known_[g] = true;
    } else {
      s.problem(a.status == 404 ? s.lost : s.unexpected,
                "DELETE " + id + ": " + std::to_string(a.status) + " " + a.body.substr(0, 300));
      known_[g] = false;
    }
    return 0;
  }

  int index_;
  Target target_;
  const Options& options_;
  const std::vector<std::string>& phys_;
  web::http::client::http_client client_;
  std::mt19937 rng_;
  std::vector<std::optional<corch::graph::Graph>> expected_;
  std::vector<bool> known_;  // false: a change's answer was lost, the next GET tells
  std::vector<long> versions_;
};

// ---------------------------------------------------------------------------------------------
// Hostile connections: raw sockets (OpenSSL for TLS), each in its own thread.

// How long a hostile connection's write may block before it counts as refused.
constexpr int kBlockedSeconds = 5;

class RawConnection {
 public:
  ~RawConnection() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  // TCP connect; then the TLS handshake when `ctx` is not null.
  bool open(uint16_t port, SSL_CTX* ctx, std::string& why) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      why = std::string("connect: ") + std::strerror(errno);
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The handshake blocks, at most kBlockedSeconds; then the socket is non-blocking, so that
    // looking for an answer never waits for one (TLS 1.3 servers send session tickets after the
    // handshake: readable bytes that are no answer).
    timeval tv{kBlockedSeconds, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (ctx) {
      ssl_ = SSL_new(ctx);
      SSL_set_fd(ssl_, fd_);
      errno = 0;
      if (int rc = SSL_connect(ssl_); rc != 1) {
        // An end of stream: corchd closed the connection at once (beyond its connection caps).
        const int err = errno;
        const int e = SSL_get_error(ssl_, rc);
        if (err == EAGAIN || err == EWOULDBLOCK) {
          why = "TLS handshake not answered within " + std::to_string(kBlockedSeconds) + " s";
        } else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
          why = "closed by corchd before the TLS handshake (connection cap)";
        } else {
          why = "TLS handshake failed";
        }
        ERR_clear_error();
        return false;
      }
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    return true;
  }
  // Writes all of `bytes`; false when the connection is gone, or when the server read nothing
  // for kBlockedSeconds (then blocked() is true).
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      errno = 0;
      int n = ssl_ ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                   : static_cast<int>(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL));
      if (n > 0) {
        bytes.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (!wouldBlock(n)) return false;
      pollfd p{fd_, POLLOUT | POLLIN, 0};
      if (::poll(&p, 1, kBlockedSeconds * 1000) <= 0) {
        blocked_ = true;
        return false;
      }
    }
    return true;
  }
  // Whether the server ended the connection (closed it, or answered: corchd closes after an
  // error answer to a broken request), waiting at most `ms`. `answer` gets what it sent.
  bool ended(int ms, std::string& answer) {
    if (!(ssl_ && SSL_pending(ssl_) > 0)) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, ms) <= 0) return false;
    }
    char buf[4096];
    errno = 0;
    int n =
        ssl_ ? SSL_read(ssl_, buf, sizeof buf) : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      return true;
    }
    return !wouldBlock(n);
  }
  bool blocked() const { return blocked_; }

 private:
  // After a read or write returned n <= 0: whether it only could not go on now.
  bool wouldBlock(int n) {
    bool again = errno == EAGAIN || errno == EWOULDBLOCK;
    if (ssl_) {
      int e = SSL_get_error(ssl_, n);
      again = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
              (e == SSL_ERROR_SYSCALL && again);
    }
    ERR_clear_error();
    return again;
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool blocked_ = false;
};

struct HostileResult {
  std::string kind;
  bool opened = false;
  bool cut = false;      // the server ended it before the phase did
  double cut_s = 0;      // when, after the connection opened
  std::string answer;    // the first line of what the server sent, if anything
  long sent = 0;         // bytes sent
  double request_s = 0;  // oversized: the time the whole exchange took
};

std::string firstLine(const std::string& s) { return s.substr(0, s.find('\r')); }

// Slow headers: a request whose header bytes arrive one per second.
HostileResult slowHeaders(uint16_t port, SSL_CTX* ctx, const std::string& token,
                          const std::atomic<bool>& stop) {
  HostileResult r{"slow headers (1 byte/s)"};
  RawConnection c;
  std::string why;
  if (!c.open(port, ctx, why)) {
    r.answer = why;
    return r;
  }
  r.opened = true;
  auto t0 = Clock::now();
  std::string req = "GET /graphs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: " + token +
                    "\r\nX-Padding: " + std::string(4096, 'a') + "\r\n\r\n";
  for (char ch : req) {
    if (stop.load()) break;
    if (!c.send(std::string_view(&ch, 1)) || c.ended(1000, r.answer)) {
      r.cut = true;
      break;
    }
    ++r.sent;
  }
  r.cut_s = msSince(t0) / 1000;
  return r;
}

// A body that stops midway: whole headers announcing 100000 bytes, 50000 sent, then nothing.
HostileResult stalledBody(uint16_t port, SSL_CTX* ctx, const std::string& token,
                          const std::atomic<bool>& stop, int index) {
  HostileResult r{"body stalled midway"};
  RawConnection c;
  std::string why;
  if (!c.open(port, ctx, why)) {
    r.answer = why;
    return r;
  }
  r.opened = true;
  auto t0 = Clock::now();
  std::string head = "PUT /graphs/stall" + std::to_string(index) +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: " + token +
                     "\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
  std::string half = "{\"sffg\": {\"id\": \"x\", \"name\": \"" + std::string(50000, 'x');
  if (!c.send(head) || !c.send(half)) {
    r.cut = true;
  } else {
    r.sent = static_cast<long>(head.size() + half.size());
    while (!stop.load()) {
      if (c.ended(200, r.answer)) {
        r.cut = true;
        break;
      }
    }
  }
  r.cut_s = msSince(t0) / 1000;
  return r;
}

// A TCP connection that never sends a byte (with TLS on: never starts the handshake).
HostileResult silent(uint16_t port, const std::atomic<bool>& stop) {
  HostileResult r{"connected, silent (no TLS handshake)"};
  RawConnection c;
  std::string why;
  if (!c.open(port, nullptr, why)) {
    r.answer = why;
    return r;
  }
  r.opened = true;
  auto t0 = Clock::now();
  while (!stop.load()) {
    if (c.ended(200, r.answer)) {
      r.cut = true;
      break;
    }
  }
  r.cut_s = msSince(t0) / 1000;
  return r;
}

// An oversized body sent as fast as the server reads it: `mib` MiB, announced by Content-Length
// or chunked (no length announced). The answer should be 413.
HostileResult oversized(uint16_t port, SSL_CTX* ctx, const std::string& token, int mib,
                        bool chunked, int index, const std::atomic<bool>& stop) {
  HostileResult r{chunked ? "oversized body, chunked" : "oversized body, Content-Length"};
  RawConnection c;
  std::string why;
  if (!c.open(port, ctx, why)) {
    r.answer = why;
    return r;
  }
  r.opened = true;
  auto t0 = Clock::now();
  const size_t total = static_cast<size_t>(mib) << 20;
  std::string head = "PUT /graphs/big" + std::to_string(index) +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: " + token +
                     "\r\nContent-Type: application/json\r\n" +
                     (chunked ? std::string("Transfer-Encoding: chunked\r\n")
                              : "Content-Length: " + std::to_string(total) + "\r\n") +
                     "\r\n";
  bool ok = c.send(head);
  bool ended = false;
  const std::string block(64 * 1024, ' ');
  char size_line[32];
  std::snprintf(size_line, sizeof size_line, "%zx\r\n", block.size());
  for (size_t sent = 0; ok && sent < total && !stop.load(); sent += block.size()) {
    if (chunked) {
      ok = c.send(size_line) && c.send(block) && c.send("\r\n");
    } else {
      ok = c.send(block);
    }
    if (ok) r.sent += static_cast<long>(block.size());
    // An early answer (413 before the body is read) ends the upload.
    if (ok && c.ended(0, r.answer)) ended = true;
    if (ended) break;
  }
  if (!ok && c.blocked()) r.answer = "(nothing: corchd stopped reading the body)";
  if (!ok && !c.blocked()) ended = true;  // the connection is gone
  if (ok && !ended && chunked && r.sent == static_cast<long>(total)) ok = c.send("0\r\n\r\n");
  // The answer, within 10 s.
  auto until = Clock::now() + 10s;
  while (ok && r.answer.find("\r\n") == std::string::npos && Clock::now() < until) {
    size_t had = r.answer.size();
    if (c.ended(200, r.answer)) {
      ended = true;
      if (r.answer.size() == had) break;  // closed
    }
  }
  r.cut = ended;
  r.cut_s = msSince(t0) / 1000;
  r.request_s = msSince(t0) / 1000;
  return r;
}

// ---------------------------------------------------------------------------------------------
// The run

struct PhaseResult {
  std::string name;
  double seconds = 0;
  Stats stats;
  ProcSample peak;
  std::vector<HostileResult> hostile;
};

void printPhase(const PhaseResult& p, int clients) {
  std::printf("\n== phase %s: %d clients, %.1f s, %ld requests answered (%.0f/s)\n", p.name.c_str(),
              clients, p.seconds, p.stats.requests() - p.stats.statuses.count(0),
              (p.stats.requests() - (p.stats.statuses.count(0) ? p.stats.statuses.at(0) : 0)) /
                  std::max(p.seconds, 0.001));
  std::printf("%-22s %8s %9s %9s %9s %9s\n", "request", "count", "p50 ms", "p90 ms", "p99 ms",
              "max ms");
  for (int i = 0; i < kOps; ++i) {
    const auto& v = p.stats.ms[i];
    std::printf("%-22s %8zu %9.1f %9.1f %9.1f %9.1f\n", kOpNames[i], v.size(), percentile(v, 50),
                percentile(v, 90), percentile(v, 99), percentile(v, 100));
  }
  std::printf("statuses:");
  for (const auto& [s, n] : p.stats.statuses) std::printf(" %d:%ld", s, n);
  std::printf("\n503 with Retry-After (back-pressure, honoured): %ld\n", p.stats.busy);
  std::printf(
      "server errors (5xx): %ld, no answer: %ld, lost graphs: %ld, corrupted: %ld, "
      "unexpected statuses: %ld\n",
      p.stats.server_errors, p.stats.transport_errors, p.stats.lost, p.stats.corrupted,
      p.stats.unexpected);
  for (const auto& e : p.stats.examples) std::printf("  problem: %s\n", e.c_str());
  std::printf("corchd peak: RSS %.1f MiB, %ld open descriptors\n", p.peak.rss_kb / 1024.0,
              p.peak.fds);
  if (!p.hostile.empty()) {
    std::map<std::string, std::vector<const HostileResult*>> by_kind;
    for (const auto& h : p.hostile) by_kind[h.kind].push_back(&h);
    for (const auto& [kind, list] : by_kind) {
      int opened = 0, cut = 0;
      std::vector<double> cut_s, req_s;
      std::map<std::string, int> answers;
      for (const auto* h : list) {
        opened += h->opened;
        if (h->cut) {
          ++cut;
          cut_s.push_back(h->cut_s);
        }
        if (h->request_s > 0) req_s.push_back(h->request_s);
        answers[h->answer.empty() ? "(nothing)" : firstLine(h->answer)]++;
      }
      std::printf("hostile: %-38s %3zu connections, %3d opened, %3d ended by corchd", kind.c_str(),
                  list.size(), opened, cut);
      if (!cut_s.empty()) {
        std::printf(" (after %.1f-%.1f s, median %.1f s)",
                    *std::min_element(cut_s.begin(), cut_s.end()),
                    *std::max_element(cut_s.begin(), cut_s.end()), percentile(cut_s, 50));
      }
      if (!req_s.empty()) {
        std::vector<double> mib;
        for (const auto* h : list) mib.push_back(h->sent / 1048576.0);
        std::printf("; each: %.1f s, %.1f MiB sent (medians)", percentile(req_s, 50),
                    percentile(mib, 50));
      }
      std::printf("\n");
      for (const auto& [a, n] : answers) std::printf("           %4d x answer: %s\n", n, a.c_str());
    }
  }
}

int run(corch::test::Sandbox& sb, const Options& options) {
  // Two hosts behind corchd's physical ports, for the SAPs of the graphs.
  std::vector<std::string> phys;
  for (const auto& [host, cidr] :
       {std::pair{"la", "10.0.0.1/24"}, std::pair{"lb", "10.0.0.2/24"}}) {
    auto p = sb.addHost(host, cidr);
    if (!p.ok()) {
      std::fprintf(stderr, "bench_load: %s\n", p.error().message().c_str());
      return 1;
    }
    phys.push_back(*p);
  }
  std::string dir = sb.dir() + "/corchd";
  fs::create_directories(dir);
  std::vector<std::string> args = {"--ovsdb",          sb.ovsdbEndpoint(),
                                   "--datapath",       "netdev",
                                   "--physical-ports", phys[0] + "," + phys[1],
                                   "--repository",     kSource + "/sf-repository",
                                   "--state-dir",      dir + "/state",
                                   "--name-prefix",    "l" + std::to_string(::getpid() % 100000),
                                   "--log-level",      "warn"};
  if (!options.tls) args.push_back("--no-tls");
  auto corchd = corch::test::Corchd::start(dir, args);
  if (!corchd.ok()) {
    std::fprintf(stderr, "bench_load: cannot start corchd: %s\n", corchd.error().message().c_str());
    return 1;
  }
  Target target{corchd->url(), corchd->token(), corchd->caCert()};
  uint16_t port = static_cast<uint16_t>(std::stoi(target.url.substr(target.url.rfind(':') + 1)));
  std::printf("bench_load: corchd %s (pid %d), %d clients x %d graphs, mix", target.url.c_str(),
              corchd->pid(), options.clients, options.graphs_per_client);
  for (const auto& [k, w] : options.mix) std::printf(" %s:%d", k.c_str(), w);
  std::printf("\n");
  ProcSample idle = sampleProc(corchd->pid());
  std::printf("corchd idle: RSS %.1f MiB, %ld open descriptors\n", idle.rss_kb / 1024.0, idle.fds);
  std::fflush(stdout);

  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < options.clients; ++i) {
    clients.push_back(std::make_unique<Client>(i, target, options, phys));
  }

  std::mutex mu;
  std::vector<PhaseResult> phases;
  phases.push_back({"normal"});
  if (options.hostile_s > 0) phases.push_back({"hostile"});
  Stats warmup;
  Stats* current = options.warmup_s > 0 ? &warmup : &phases[0].stats;
  std::atomic<bool> stop_clients{false};
  std::atomic<long> budget{options.max_requests};
  std::vector<std::thread> threads;
  for (auto& c : clients) {
    threads.emplace_back([&, cl = c.get()] { cl->run(stop_clients, budget, mu, current); });
  }

  pid_t pid = corchd->pid();
  auto watch = [&](PhaseResult& p, int seconds) {
    auto t0 = Clock::now();
    while (msSince(t0) < seconds * 1000.0 && budget.load() > 0) {
      std::this_thread::sleep_for(250ms);
      ProcSample s = sampleProc(pid);
      p.peak.rss_kb = std::max(p.peak.rss_kb, s.rss_kb);
      p.peak.fds = std::max(p.peak.fds, s.fds);
    }
    p.seconds = msSince(t0) / 1000;
  };

  if (options.warmup_s > 0) {
    std::fprintf(stderr, "bench_load: warm-up, %d s (not counted)\n", options.warmup_s);
    PhaseResult ignored;
    watch(ignored, options.warmup_s);
    std::lock_guard lock(mu);
    current = &phases[0].stats;
  }
  std::fprintf(stderr, "bench_load: phase normal, %d s\n", options.duration_s);
  watch(phases[0], options.duration_s);

  if (options.hostile_s > 0) {
    {
      std::lock_guard lock(mu);
      current = &phases[1].stats;
    }
    std::fprintf(stderr, "bench_load: phase hostile, %d s\n", options.hostile_s);
    SSL_CTX* ctx = nullptr;
    if (options.tls) {
      ctx = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // a hostile client checks nothing
    }
    std::atomic<bool> stop_hostile{false};
    std::mutex hmu;
    std::vector<HostileResult> hostile;
    std::vector<std::thread> hthreads;
    auto keep = [&](HostileResult r) {
      std::lock_guard lock(hmu);
      hostile.push_back(std::move(r));
    };
    for (int i = 0; i < options.slow; ++i) {
      hthreads.emplace_back([&] { keep(slowHeaders(port, ctx, target.token, stop_hostile)); });
      hthreads.emplace_back(
          [&, i] { keep(stalledBody(port, ctx, target.token, stop_hostile, i)); });
      hthreads.emplace_back([&] { keep(silent(port, stop_hostile)); });
    }
    for (int i = 0; i < options.big; ++i) {
      for (bool chunked : {false, true}) {
        hthreads.emplace_back([&, i, chunked] {
          // One after the other until the phase ends.
          for (int n = 0; !stop_hostile.load(); ++n) {
            keep(oversized(port, ctx, target.token, options.big_mib, chunked, i * 1000 + n,
                           stop_hostile));
          }
        });
      }
    }
    watch(phases[1], options.hostile_s);
    stop_hostile = true;
    std::fprintf(stderr, "bench_load: ending the hostile connections\n");
    for (auto& t : hthreads) t.join();
    phases[1].hostile = std::move(hostile);
    if (ctx) SSL_CTX_free(ctx);
  }

  stop_clients = true;
  std::fprintf(stderr, "bench_load: waiting for the clients' last requests\n");
  for (auto& t : threads) t.join();
  std::fprintf(stderr, "bench_load: final audit\n");

  // The final audit, quiet: every client's graphs as last written.
  PhaseResult audit{"final audit (every graph read back, quiet)"};
  auto t0 = Clock::now();
  for (auto& c : clients) c->audit(audit.stats);
  audit.seconds = msSince(t0) / 1000;
  audit.peak = sampleProc(pid);

  for (const auto& p : phases) printPhase(p, options.clients);
  printPhase(audit, options.clients);

  long bad = warmup.server_errors + warmup.lost + warmup.corrupted;
  if (bad != 0) {
    std::printf("\nduring the warm-up: %ld server errors, %ld lost, %ld corrupted\n",
                warmup.server_errors, warmup.lost, warmup.corrupted);
    for (const auto& e : warmup.examples) std::printf("  problem: %s\n", e.c_str());
  }
  for (const auto* p : {&phases[0], phases.size() > 1 ? &phases[1] : &phases[0], &audit}) {
    bad += p->stats.server_errors + p->stats.lost + p->stats.corrupted;
  }
  if (phases.size() > 1) {
    double p99_normal = percentile(phases[0].stats.ms[kGet], 99);
    double p99_hostile = percentile(phases[1].stats.ms[kGet], 99);
    std::printf("\nGET /graphs/{id} p99: %.1f ms normal, %.1f ms with hostile clients (x%.2f)\n",
                p99_normal, p99_hostile, p99_normal > 0 ? p99_hostile / p99_normal : 0.0);
  }
  std::printf("\nverdict: %s (server errors + lost + corrupted graphs = %ld)\n",
              bad == 0 ? "PASS" : "FAIL", bad);
  clients.clear();
  corchd->stop();
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "bench_load: %s\n%s", options.error().message().c_str(), kUsage);
    return 2;
  }
  if (options->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // First, while this is the only thread: the sandbox moves the process into its namespace.
  auto& sb = corch::test::Sandbox::get();
  ::signal(SIGPIPE, SIG_IGN);
  corch::log::setLevel(corch::log::Level::Warn);
  int rc = 1;
  try {
    rc = run(sb, *options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_load: %s\n", e.what());
  }
  corch::test::Sandbox::shutdown();
  return rc;
}
