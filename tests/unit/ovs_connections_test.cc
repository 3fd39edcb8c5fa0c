// The two connections of the ovs driver against fake servers, without Open vSwitch: the OVSDB
// JSON-RPC client (ids, concurrent and out-of-order replies, echo, notifications, dropped
// connections, deadlines, error codes, the stream framer) and the OpenFlow connection
// (handshake, batches closed by a barrier with their errors, multipart replies, the switch's echo,
// reconnection).
#define BOOST_TEST_MODULE ovs_connections
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "drivers/vswitch/ovs/of_connection.h"
#include "drivers/vswitch/ovs/openflow.h"
#include "drivers/vswitch/ovs/ovsdb_client.h"
#include "integration/vswitch_conformance.h"

namespace {

using namespace corch;
using namespace corch::drivers::ovs;
using namespace std::chrono_literals;
using corch::test::conformance::why;

Deadline in(std::chrono::milliseconds ms) { return Clock::now() + ms; }

// Parses JSON; an object without members when the text is not JSON. No Boost.Test assertion:
// the fake servers call it from their own thread, and Boost.Test is not thread-safe.
rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  if (d.HasParseError()) d.SetObject();
  return d;
}

std::string reply(const rapidjson::Value& id, const std::string& result_json) {
  return R"({"id":)" + toJson(id) + R"(,"result":)" + result_json + R"(,"error":null})";
}

// A server on a unix socket in a temporary folder, one client at a time, speaking whatever its
// framer splits. For each message the handler returns what to send back (nothing, one message,
// or answers held from earlier messages); the marker kDrop closes the connection instead.
// `greeting` is sent to each new client (an OpenFlow switch's HELLO).
class FakeServer {
 public:
  static constexpr const char* kDrop = "<drop>";
  // Splits bytes into messages; one per connection.
  using Framer = std::function<bool(std::string_view bytes,
                                    const std::function<void(std::string_view)>& on_message)>;
  using FramerFactory = std::function<Framer()>;
  using Handler = std::function<std::vector<std::string>(std::string_view message)>;

  FakeServer(FramerFactory framing, Handler handler, std::string greeting = "")
      : framing_(std::move(framing)), handler_(std::move(handler)), greeting_(std::move(greeting)) {
    char tmpl[] = "/tmp/corch-ovs-test-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl));
    dir_ = tmpl;
    path_ = dir_ + "/server.sock";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    BOOST_REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::listen(listen_fd_, 4) == 0);
    BOOST_REQUIRE(::pipe(wake_) == 0);
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServer() {
    (void)!::write(wake_[1], "x", 1);
    thread_.join();
    if (client_fd_ >= 0) ::close(client_fd_);
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    std::filesystem::remove_all(dir_);
  }

  Endpoint endpoint() const { return Endpoint::unixPath(path_); }
  int connections() const { return connections_.load(); }

  void send(const std::string& bytes) {
    std::lock_guard lock(mu_);
    if (client_fd_ >= 0) (void)!::write(client_fd_, bytes.data(), bytes.size());
  }

  // Closes the connection of the current client (a server that exits).
  void dropClient() {
    std::lock_guard lock(mu_);
    if (client_fd_ >= 0) ::shutdown(client_fd_, SHUT_RDWR);
  }

  // Waits until some received message satisfies `match`.
  bool waitForMessage(const std::function<bool(std::string_view)>& match,
                      std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      for (const auto& m : received_) {
        if (match(m)) return true;
      }
      return false;
    });
  }

 private:
  void loop() {
    Framer framer;
    for (;;) {
      pollfd fds[3] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}, {client_fd_, POLLIN, 0}};
      int n = ::poll(fds, client_fd_ >= 0 ? 3 : 2, -1);
      if (n < 0) continue;
      if (fds[0].revents) return;
      if (fds[1].revents & POLLIN) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        std::lock_guard lock(mu_);
        if (client_fd_ >= 0) ::close(client_fd_);
        client_fd_ = fd;
        framer = framing_();
        ++connections_;
        if (!greeting_.empty()) (void)!::write(client_fd_, greeting_.data(), greeting_.size());
        continue;
      }
      if (client_fd_ >= 0 && fds[2].revents) {
        char buf[65536];
        ssize_t got = ::read(client_fd_, buf, sizeof buf);
        if (got <= 0) {
          std::lock_guard lock(mu_);
          ::close(client_fd_);
          client_fd_ = -1;
          continue;
        }
        std::vector<std::string> messages;
        framer(std::string_view(buf, static_cast<size_t>(got)),
               [&](std::string_view m) { messages.emplace_back(m); });
        for (const auto& m : messages) {
          {
            std::lock_guard lock(mu_);
            received_.push_back(m);
          }
          cv_.notify_all();
          for (const auto& out : handler_(m)) {
            std::lock_guard lock(mu_);
            if (out == kDrop) {
              ::shutdown(client_fd_, SHUT_RDWR);
            } else if (client_fd_ >= 0) {
              (void)!::write(client_fd_, out.data(), out.size());
            }
          }
        }
      }
    }
  }

  FramerFactory framing_;
  Handler handler_;
  std::string greeting_;
  std::string dir_, path_;
  int listen_fd_ = -1, client_fd_ = -1, wake_[2] = {-1, -1};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> received_;
  std::thread thread_;
};

// --- OVSDB framing ---

FakeServer::FramerFactory jsonFraming() {
  return [] {
    auto framer = std::make_shared<JsonFramer>();
    return [framer](std::string_view bytes, const std::function<void(std::string_view)>& on) {
      return framer->feed(bytes, on);
    };
  };
}

using JsonHandler = std::function<std::vector<std::string>(const rapidjson::Document& request)>;

// Hands the requests (messages with a method) to `handler`; replies from the client are only
// recorded.
FakeServer::Handler jsonRpc(JsonHandler handler) {
  return [handler](std::string_view text) -> std::vector<std::string> {
    rapidjson::Document request = parse(std::string(text));
    if (!request.HasMember("method")) return {};
    return handler(request);
  };
}

std::function<bool(std::string_view)> json(std::function<bool(const rapidjson::Document&)> match) {
  return [match](std::string_view text) { return match(parse(std::string(text))); };
}

// Answers every request with a result naming its id: [{"rows":[{"id":N}]}].
std::vector<std::string> echoId(const rapidjson::Document& request) {
  return {reply(request["id"], "[{\"rows\":[{\"id\":" + toJson(request["id"]) + "}]}]")};
}

rapidjson::Document emptyOps() { return rapidjson::Document(rapidjson::kArrayType); }

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_call_gets_the_reply_with_its_id) {
  FakeServer server(jsonFraming(), jsonRpc(echoId));
  OvsdbClient client(server.endpoint());
  auto result = client.transact("Open_vSwitch", emptyOps(), in(2000ms));
  BOOST_REQUIRE_MESSAGE(result.ok(), why(result));
  BOOST_REQUIRE(result->IsArray());
  BOOST_TEST((*result)[0]["rows"][0]["id"].GetUint64() > 0u);
  BOOST_TEST(server.waitForMessage(json([](const rapidjson::Document& m) {
                                     return m.HasMember("method") &&
                                            std::string(m["method"].GetString()) == "transact" &&
                                            std::string(m["params"][0].GetString()) ==
                                                "Open_vSwitch";
                                   }),
                                   1s));
}

// Replies with the request's params as the result, so that a caller can tell its own reply.
std::string echoParams(const rapidjson::Document& request) {
  return reply(request["id"], toJson(request["params"]));
}

// Calls "test" with [n] and checks that the result is [n]; returns what went wrong, if anything.
std::string callAndCheck(OvsdbClient& client, int n) {
  rapidjson::Document params(rapidjson::kArrayType);
  params.PushBack(n, params.GetAllocator());
  auto result = client.call("test", params, in(5000ms));
  if (!result.ok()) return result.error().message();
  if (toJson(*result) != "[" + std::to_string(n) + "]") return "got the reply of another call";
  return "";
}

BOOST_AUTO_TEST_CASE(concurrent_calls_get_their_own_replies) {
  FakeServer server(jsonFraming(), jsonRpc([](const rapidjson::Document& request) {
                      return std::vector<std::string>{echoParams(request)};
                    }));
  OvsdbClient client(server.endpoint());
  constexpr int kThreads = 8;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50 && failures[t].empty(); ++round) {
        failures[t] = callAndCheck(client, t * 1000 + round);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) BOOST_TEST(f.empty(), f);
  BOOST_TEST(server.connections() == 1, "one persistent connection");
}

BOOST_AUTO_TEST_CASE(replies_out_of_order_reach_their_callers) {
  // Holds the first request of each pair and answers the pair in reverse order. Two threads call
  // at the same time in every round, so that every request finds its partner.
  std::mutex mu;
  std::optional<std::string> held;
  FakeServer server(jsonFraming(),
                    jsonRpc([&](const rapidjson::Document& request) -> std::vector<std::string> {
                      std::lock_guard lock(mu);
                      std::string mine = echoParams(request);
                      if (!held) {
                        held = mine;
                        return {};
                      }
                      std::vector<std::string> out{mine, *held};
                      held.reset();
                      return out;
                    }));
  OvsdbClient client(server.endpoint());
  constexpr int kRounds = 20;
  std::barrier sync(2);
  std::vector<std::string> failures(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();
        std::string f = callAndCheck(client, t * 1000 + round);
        if (failures[t].empty()) failures[t] = f;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) BOOST_TEST(f.empty(), f);
}

BOOST_AUTO_TEST_CASE(the_servers_echo_is_answered_and_notifications_are_handed_over) {
  FakeServer server(jsonFraming(), jsonRpc(echoId));
  OvsdbClient client(server.endpoint());
  std::mutex mu;
  std::condition_variable cv;
  std::string notified;
  client.setNotificationHandler([&](const std::string& method, const rapidjson::Value& params) {
    std::lock_guard lock(mu);
    notified = method + " " + toJson(params);
    cv.notify_all();
  });
  BOOST_REQUIRE(client.connect(in(2000ms)).ok());
  // connect() does not send anything: make sure the server has accepted before it speaks.
  BOOST_REQUIRE(client.transact("Open_vSwitch", emptyOps(), in(2000ms)).ok());
  server.send(R"({"method":"echo","params":["probe",1],"id":"echo"})");
  BOOST_TEST(server.waitForMessage(json([](const rapidjson::Document& m) {
                                     return m.HasMember("id") && m["id"].IsString() &&
                                            std::string(m["id"].GetString()) == "echo" &&
                                            m.HasMember("result") &&
                                            toJson(m["result"]) == R"(["probe",1])";
                                   }),
                                   2s));
  server.send(R"({"method":"update","params":["mon",{"Bridge":{}}],"id":null})");
  std::unique_lock lock(mu);
  BOOST_TEST(cv.wait_for(lock, 2s, [&] { return !notified.empty(); }));
  BOOST_TEST(notified == R"(update ["mon",{"Bridge":{}}])");
}

BOOST_AUTO_TEST_CASE(a_dropped_connection_fails_the_call_and_the_next_one_reconnects) {
  std::atomic<int> requests{0};
  FakeServer server(jsonFraming(),
                    jsonRpc([&](const rapidjson::Document& request) -> std::vector<std::string> {
                      if (requests++ == 0) return {FakeServer::kDrop};
                      return echoId(request);
                    }));
  OvsdbClient client(server.endpoint());
  auto start = Clock::now();
  auto failed = client.transact("Open_vSwitch", emptyOps(), in(5000ms));
  BOOST_REQUIRE(!failed.ok());
  BOOST_TEST((failed.error().code() == ErrorCode::Unavailable), failed.error().message());
  BOOST_TEST((Clock::now() - start < 2s),
             "it fails when the connection drops, not at its deadline");
  auto again = client.transact("Open_vSwitch", emptyOps(), in(5000ms));
  BOOST_TEST(again.ok(), why(again));
  BOOST_TEST(server.connections() == 2);
}

// The driver heals on a lost connection (ovsdb-server restarted): the handler hears of a drop by
// the server, once, and not of a disconnect() the client asked for.
BOOST_AUTO_TEST_CASE(a_dropped_connection_is_reported_and_a_requested_one_is_not) {
  std::atomic<int> requests{0};
  FakeServer server(jsonFraming(),
                    jsonRpc([&](const rapidjson::Document& request) -> std::vector<std::string> {
                      if (requests++ == 1) return {FakeServer::kDrop};
                      return echoId(request);
                    }));
  OvsdbClient client(server.endpoint());
  std::mutex mu;
  std::condition_variable cv;
  int lost = 0;
  client.setLostHandler([&](const Error&) {
    std::lock_guard lock(mu);
    ++lost;
    cv.notify_all();
  });
  BOOST_REQUIRE(client.transact("Open_vSwitch", emptyOps(), in(2000ms)).ok());
  BOOST_TEST(!client.transact("Open_vSwitch", emptyOps(), in(2000ms)).ok());
  {
    std::unique_lock lock(mu);
    BOOST_TEST(cv.wait_for(lock, 2s, [&] { return lost == 1; }));
  }
  BOOST_REQUIRE(client.connect(in(2000ms)).ok());
  BOOST_TEST(client.connected());
  client.disconnect();
  BOOST_TEST(waitFor([&] { return !client.connected(); }, 2s));
  std::this_thread::sleep_for(50ms);  // a report would come from the reader at once
  std::lock_guard lock(mu);
  BOOST_TEST(lost == 1);
}

BOOST_AUTO_TEST_CASE(a_silent_server_makes_the_call_time_out) {
  FakeServer server(jsonFraming(),
                    jsonRpc([](const rapidjson::Document&) { return std::vector<std::string>{}; }));
  OvsdbClient client(server.endpoint());
  auto start = Clock::now();
  auto r = client.transact("Open_vSwitch", emptyOps(), in(200ms));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code() == ErrorCode::Timeout), r.error().message());
  BOOST_TEST((Clock::now() - start < 2s));
}

BOOST_AUTO_TEST_CASE(transaction_errors_become_codes) {
  std::string answer;
  FakeServer server(jsonFraming(), jsonRpc([&](const rapidjson::Document& request) {
                      return std::vector<std::string>{reply(request["id"], answer)};
                    }));
  OvsdbClient client(server.endpoint());
  struct Case {
    std::string result;
    ErrorCode code;
    std::string words;
  };
  std::vector<Case> cases = {
      {R"([{"uuid":["uuid","x"]},{"error":"constraint violation","details":"Transaction causes multiple rows in \"Bridge\" table to have identical values (\"br0\") for index on column \"name\"."}])",
       ErrorCode::AlreadyExists, "identical values"},
      {R"([{"count":1},{"error":"timed out","details":"\"wait\" timed out after 100 ms"}])",
       ErrorCode::Timeout, "timed out"},
      {R"([{"error":"referential integrity violation"}])", ErrorCode::InvalidArgument,
       "referential"},
      {R"([{"error":"unknown error"}, null])", ErrorCode::Internal, "unknown error"},
  };
  for (const auto& c : cases) {
    answer = c.result;
    auto r = client.transact("Open_vSwitch", emptyOps(), in(2000ms));
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST((r.error().code() == c.code), r.error().message());
    BOOST_TEST(r.error().message().starts_with("ovsdb: "), r.error().message());
    BOOST_TEST(r.error().message().find(c.words) != std::string::npos, r.error().message());
  }
}

BOOST_AUTO_TEST_CASE(no_server_is_not_found_or_unavailable) {
  OvsdbClient missing(Endpoint::unixPath("/nonexistent/corch/db.sock"));
  auto r = missing.connect(in(1000ms));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code() == ErrorCode::NotFound), r.error().message());
  BOOST_TEST(r.error().message().find("/nonexistent/corch/db.sock") != std::string::npos);

  // A socket file that nobody listens on: refused.
  char tmpl[] = "/tmp/corch-ovs-test-XXXXXX";
  BOOST_REQUIRE(::mkdtemp(tmpl));
  std::string path = std::string(tmpl) + "/db.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  OvsdbClient refused(Endpoint::unixPath(path));
  r = refused.connect(in(1000ms));
  ::close(fd);
  std::filesystem::remove_all(tmpl);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code() == ErrorCode::Unavailable), r.error().message());
}

BOOST_AUTO_TEST_CASE(the_framer_splits_values_whatever_the_chunks) {
  const std::string stream =
      R"( {"a":"}{\"[","b":[1,{"c":2}]}
[1,2]{"s":"\\"} )";
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    JsonFramer framer;
    std::vector<std::string> values;
    for (size_t pos = 0; pos < stream.size(); pos += chunk) {
      BOOST_REQUIRE(framer.feed(std::string_view(stream).substr(pos, chunk),
                                [&](std::string_view v) { values.emplace_back(v); }));
    }
    BOOST_REQUIRE_EQUAL(values.size(), 3u);
    BOOST_TEST(values[0] == R"({"a":"}{\"[","b":[1,{"c":2}]})");
    BOOST_TEST(values[1] == "[1,2]");
    BOOST_TEST(values[2] == R"({"s":"\\"})");
  }
  JsonFramer framer;
  BOOST_TEST(!framer.feed("x{}", [](std::string_view) {}));
  // Nesting: as deep as kMaxDepth passes; deeper is refused before anyone parses it (RapidJSON
  // would recurse once per level: tests/fuzz/corpus/ovsdb/crash-deep-nesting.json).
  const int max = JsonFramer::kMaxDepth;
  std::string deep = std::string(max, '[') + std::string(max, ']');
  int got = 0;
  JsonFramer ok_framer;
  BOOST_TEST(ok_framer.feed(deep, [&](std::string_view) { ++got; }));
  BOOST_TEST(got == 1);
  JsonFramer deep_framer;
  BOOST_TEST(!deep_framer.feed("[" + deep + "]", [](std::string_view) {}));
}

// --- OpenFlow ---

namespace {

namespace of = corch::drivers::ovs::openflow;

FakeServer::FramerFactory ofFraming() {
  return [] {
    auto framer = std::make_shared<of::MessageFramer>();
    return [framer](std::string_view bytes, const std::function<void(std::string_view)>& on) {
      return framer->feed(bytes, [&](std::string_view m) { on(m); });
    };
  };
}

std::string ofHeader(of::MsgType type, uint32_t xid, std::string_view body = {}) {
  std::string s = {static_cast<char>(of::kVersion), static_cast<char>(type), 0, 0};
  uint16_t length = static_cast<uint16_t>(of::kHeaderSize + body.size());
  s[2] = static_cast<char>(length >> 8);
  s[3] = static_cast<char>(length);
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>(xid >> shift));
  return s + std::string(body);
}

std::string ofError(uint32_t xid, uint16_t type, uint16_t code) {
  std::string body = {static_cast<char>(type >> 8), static_cast<char>(type),
                      static_cast<char>(code >> 8), static_cast<char>(code)};
  return ofHeader(of::MsgType::Error, xid, body);
}

// A switch that answers echo requests and barriers, refuses the flow mods that output to port 13
// (bad out port), and answers a flow statistics request in three parts.
std::vector<std::string> fakeSwitch(std::string_view msg) {
  auto h = of::parseHeader(msg);
  switch (static_cast<of::MsgType>(h->type)) {
    case of::MsgType::EchoRequest:
      return {of::encodeEchoReply(h->xid, msg.substr(of::kHeaderSize))};
    case of::MsgType::BarrierRequest:
      return {ofHeader(of::MsgType::BarrierReply, h->xid)};
    case of::MsgType::FlowMod: {
      auto mod = of::parseFlowMod(msg);
      if (mod.ok() && !mod->rule.outputs.empty() && mod->rule.outputs[0] == 13) {
        return {ofError(h->xid, 2, 4)};
      }
      return {};
    }
    case of::MsgType::MultipartRequest: {
      TsRule r;
      r.priority = 1;
      r.in_port = 1;
      r.outputs = {2};
      std::vector<std::string> parts;
      for (int i = 0; i < 3; ++i) {
        r.cookie = static_cast<uint64_t>(i);
        parts.push_back(of::encodeFlowStatsReply(h->xid, {of::FlowStats{0, 0, 0, r}}, i < 2));
      }
      return parts;
    }
    default:
      return {};
  }
}

std::string flowMods(OfConnection& conn, const std::vector<uint32_t>& outputs, uint32_t* first) {
  *first = conn.reserveXids(static_cast<uint32_t>(outputs.size()) + 1);
  std::string bytes;
  for (size_t i = 0; i < outputs.size(); ++i) {
    TsRule r;
    r.priority = static_cast<uint16_t>(i);
    r.in_port = 1;
    r.outputs = {outputs[i]};
    bytes += of::encodeFlowMod(r, of::FlowModCommand::Add, *first + static_cast<uint32_t>(i));
  }
  return bytes;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_batch_returns_the_errors_of_its_messages) {
  FakeServer sw(ofFraming(), fakeSwitch, of::encodeHello(0));
  OfConnection conn(sw.endpoint(), "LSI test");
  uint32_t first = 0;
  std::string bytes = flowMods(conn, {2, 13, 3, 13}, &first);
  auto errors = conn.sendWithBarrier(bytes, first, 4, in(2000ms));
  BOOST_REQUIRE_MESSAGE(errors.ok(), why(errors));
  BOOST_REQUIRE_EQUAL(errors->size(), 2u);
  BOOST_TEST((*errors)[0].xid == first + 1);
  BOOST_TEST((*errors)[1].xid == first + 3);
  BOOST_TEST((*errors)[0].error.type == 2);
  BOOST_TEST((*errors)[0].error.code == 4);
  // A clean batch on the same connection.
  bytes = flowMods(conn, {2, 3}, &first);
  errors = conn.sendWithBarrier(bytes, first, 2, in(2000ms));
  BOOST_REQUIRE(errors.ok());
  BOOST_TEST(errors->empty());
  BOOST_TEST(sw.connections() == 1);
}

BOOST_AUTO_TEST_CASE(a_multipart_reply_is_collected_whole) {
  FakeServer sw(ofFraming(), fakeSwitch, of::encodeHello(0));
  OfConnection conn(sw.endpoint(), "LSI test");
  uint32_t xid = conn.reserveXids(1);
  auto parts = conn.multipart(of::encodeFlowStatsRequest(xid), xid, in(2000ms));
  BOOST_REQUIRE_MESSAGE(parts.ok(), why(parts));
  BOOST_REQUIRE_EQUAL(parts->size(), 3u);
  for (size_t i = 0; i < parts->size(); ++i) {
    auto mp = of::parseMultipartReply((*parts)[i]);
    BOOST_REQUIRE(mp);
    BOOST_TEST(mp->more() == (i < 2));
    auto flows = of::parseFlowStats(mp->body, nullptr);
    BOOST_REQUIRE(flows.ok());
    BOOST_TEST((*flows)[0].rule.cookie == i);
  }
}

BOOST_AUTO_TEST_CASE(the_switchs_echo_is_answered) {
  FakeServer sw(ofFraming(), fakeSwitch, of::encodeHello(0));
  OfConnection conn(sw.endpoint(), "LSI test");
  BOOST_REQUIRE(conn.connect(in(2000ms)).ok());
  sw.send(of::encodeEchoRequest(0x777, "abc"));
  BOOST_TEST(sw.waitForMessage(
      [](std::string_view m) {
        auto h = of::parseHeader(m);
        return h->type == static_cast<uint8_t>(of::MsgType::EchoReply) && h->xid == 0x777 &&
               m.substr(of::kHeaderSize) == "abc";
      },
      2s));
}

BOOST_AUTO_TEST_CASE(a_dropped_switch_fails_the_batch_and_the_next_call_reconnects) {
  std::atomic<int> barriers{0};
  FakeServer sw(
      ofFraming(),
      [&](std::string_view msg) -> std::vector<std::string> {
        auto h = of::parseHeader(msg);
        if (h->type == static_cast<uint8_t>(of::MsgType::BarrierRequest) && barriers++ == 0) {
          return {FakeServer::kDrop};
        }
        return fakeSwitch(msg);
      },
      of::encodeHello(0));
  OfConnection conn(sw.endpoint(), "LSI test");
  uint32_t first = 0;
  std::string bytes = flowMods(conn, {2}, &first);
  auto start = Clock::now();
  auto failed = conn.sendWithBarrier(bytes, first, 1, in(5000ms));
  BOOST_REQUIRE(!failed.ok());
  BOOST_TEST((failed.error().code() == ErrorCode::Unavailable), failed.error().message());
  BOOST_TEST((Clock::now() - start < 2s));
  bytes = flowMods(conn, {2}, &first);
  auto again = conn.sendWithBarrier(bytes, first, 1, in(5000ms));
  BOOST_TEST(again.ok(), why(again));
  BOOST_TEST(sw.connections() == 2);
}

// ovs-vswitchd exiting closes the connection: the handler hears of it (once); close() is silent.
BOOST_AUTO_TEST_CASE(a_switch_that_closes_the_connection_is_reported_and_close_is_not) {
  FakeServer sw(ofFraming(), fakeSwitch, of::encodeHello(0));
  OfConnection conn(sw.endpoint(), "LSI test");
  std::mutex mu;
  std::condition_variable cv;
  int lost = 0;
  conn.setLostHandler([&](const Error&) {
    std::lock_guard lock(mu);
    ++lost;
    cv.notify_all();
  });
  BOOST_REQUIRE(conn.connect(in(2000ms)).ok());
  BOOST_TEST(conn.connected());
  sw.dropClient();
  {
    std::unique_lock lock(mu);
    BOOST_TEST(cv.wait_for(lock, 2s, [&] { return lost == 1; }));
  }
  BOOST_TEST(!conn.connected());
  BOOST_REQUIRE(conn.connect(in(2000ms)).ok());
  conn.close();
  BOOST_TEST(waitFor([&] { return !conn.connected(); }, 2s));
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(mu);
  BOOST_TEST(lost == 1);
}

BOOST_AUTO_TEST_CASE(a_switch_that_refuses_openflow_13_says_so) {
  FakeServer sw(
      ofFraming(),
      [](std::string_view msg) -> std::vector<std::string> {
        auto h = of::parseHeader(msg);
        if (h->type == static_cast<uint8_t>(of::MsgType::Hello)) {
          return {ofError(h->xid, 0, 0), FakeServer::kDrop};  // HELLO_FAILED, INCOMPATIBLE
        }
        return {};
      },
      of::encodeHello(0));
  OfConnection conn(sw.endpoint(), "LSI test");
  auto r = conn.connect(in(2000ms));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().message().find("hello failed: incompatible") != std::string::npos,
             r.error().message());
  OfConnection missing(Endpoint::unixPath("/nonexistent/corch/br.mgmt"), "LSI br");
  r = missing.connect(in(1000ms));
  BOOST_TEST((!r.ok() && r.error().code() == ErrorCode::NotFound), why(r));
}

BOOST_AUTO_TEST_CASE(a_silent_switch_makes_the_batch_time_out) {
  FakeServer sw(
      ofFraming(),
      [](std::string_view msg) -> std::vector<std::string> {
        auto h = of::parseHeader(msg);
        if (h->type == static_cast<uint8_t>(of::MsgType::EchoRequest)) return fakeSwitch(msg);
        return {};  // no barrier reply
      },
      of::encodeHello(0));
  OfConnection conn(sw.endpoint(), "LSI test");
  uint32_t first = 0;
  std::string bytes = flowMods(conn, {2}, &first);
  auto r = conn.sendWithBarrier(bytes, first, 1, in(300ms));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code() == ErrorCode::Timeout), r.error().message());
}
