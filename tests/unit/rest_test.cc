// The northbound REST server (orchestrator/rest/server.h) over real HTTP: a Server on a free port
// in front of an in-memory GraphService, driven by cpprest's http_client.
#define BOOST_TEST_MODULE rest
#include <boost/test/unit_test.hpp>

#include <rapidjson/document.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include "corch/log.h"
#include "rest/fake_graph_service.h"
#include "rest/routes.h"
#include "rest/server.h"
#include "util/http_answer.h"

namespace {

using corch::Error;
using corch::ErrorCode;
using corch::FieldError;
using corch::rest::Server;
using corch::rest::ServerOptions;
using corch::rest::testing::FakeGraphService;
namespace http = web::http;

// Sized once for the whole process, before anything else uses cpprest: the tests then check
// that a Server asking for another size is refused, and that blocked PUTs leave threads free.
constexpr size_t kPoolThreads = 24;

struct PoolSize {
  PoolSize() {
    corch::log::setLevel(corch::log::Level::Warn);
    FakeGraphService service;
    ServerOptions options;
    options.port = 0;
    options.threads = kPoolThreads;
    Server server(options, service);
    auto started = server.start();
    if (!started) BOOST_FAIL("cannot size the pool: " << started.error().message());
  }
};
BOOST_TEST_GLOBAL_FIXTURE(PoolSize);

const std::string kGraph = R"({"sffg": {"id": "g1", "name": "demo graph",
  "SFs": [{"id": "fw", "name": "firewall", "ports": [{"id": "in"}, {"id": "out"}]}],
  "saps": [{"id": "lan", "type": "interface", "interface": {"if-name": "eth1"}}],
  "flowrules": [{"id": "r1", "priority": 1, "match": {"port_in": "service-access-point:lan"},
                 "actions": {"output_to_port": "sf:fw:in"}}]}})";

std::string graphWithId(const std::string& id) {
  std::string text = kGraph;
  text.replace(text.find("\"g1\""), 4, "\"" + id + "\"");
  return text;
}

using corch::test::Answer;
using corch::test::toAnswer;

struct Fixture {
  Fixture() : Fixture(ServerOptions{}) {}
  explicit Fixture(ServerOptions options) {
    options.port = 0;
    server.emplace(options, service);
    auto started = server->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.error().message());
    BOOST_REQUIRE_NE(server->port(), 0);
    http::client::http_client_config config;
    // The deadline of every request: a request that waits on a blocked one fails after it.
    config.set_timeout(std::chrono::seconds(10));
    client.emplace(web::uri(server->url()), config);
  }

  http::http_request request(const std::string& method, const std::string& path) {
    http::http_request r{http::method(method)};
    r.set_request_uri(web::uri(path));
    return r;
  }

  Answer call(const std::string& method, const std::string& path) {
    return toAnswer(client->request(request(method, path)).get());
  }

  Answer call(const std::string& method, const std::string& path, const std::string& body,
              const std::string& content_type = "application/json") {
    auto r = request(method, path);
    r.set_body(body, content_type);
    return toAnswer(client->request(r).get());
  }

  Answer put(const std::string& id, const std::string& body) {
    return call("PUT", "/graphs/" + id, body);
  }

  FakeGraphService service;
  std::optional<Server> server;
  std::optional<http::client::http_client> client;
};

// Checks the RFC 9457 shape of an error answer and returns its document.
rapidjson::Document checkProblem(const Answer& a, int status, const std::string& name) {
  BOOST_TEST(a.status == status);
  BOOST_TEST(a.content_type == "application/problem+json");
  BOOST_TEST(a.body.find('\n') == std::string::npos);
  auto doc = a.json();
  BOOST_REQUIRE(doc.IsObject());
  BOOST_REQUIRE(doc.HasMember("type") && doc["type"].IsString());
  BOOST_TEST(doc["type"].GetString() == "https://corch.dev/problems/" + name);
  BOOST_REQUIRE(doc.HasMember("title") && doc["title"].IsString());
  BOOST_TEST(std::string(doc["title"].GetString()).size() > 0);
  BOOST_REQUIRE(doc.HasMember("status") && doc["status"].IsInt());
  BOOST_TEST(doc["status"].GetInt() == status);
  BOOST_REQUIRE(doc.HasMember("detail") && doc["detail"].IsString());
  BOOST_TEST(std::string(doc["detail"].GetString()).size() > 0);
  return doc;
}

std::vector<FieldError> problemFields(const rapidjson::Document& doc) {
  std::vector<FieldError> out;
  if (!doc.HasMember("errors")) return out;
  BOOST_REQUIRE(doc["errors"].IsArray());
  for (const auto& e : doc["errors"].GetArray()) {
    BOOST_REQUIRE(e.IsObject() && e.HasMember("pointer") && e.HasMember("message"));
    out.push_back({e["pointer"].GetString(), e["message"].GetString()});
  }
  return out;
}

bool hasPointer(const std::vector<FieldError>& fields, const std::string& pointer) {
  for (const auto& f : fields) {
    if (f.pointer == pointer && !f.message.empty()) return true;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rules)

BOOST_AUTO_TEST_CASE(routes_and_methods) {
  using corch::rest::matchRoute;
  using corch::rest::RouteKind;
  BOOST_TEST(!matchRoute({}).has_value());
  BOOST_TEST(!matchRoute({"graph"}).has_value());
  BOOST_TEST(!matchRoute({"graphs", "g", "state"}).has_value());
  BOOST_TEST(!matchRoute({"graphs", "g", "sfs", "fw"}).has_value());
  BOOST_TEST((matchRoute({"graphs"})->kind == RouteKind::Graphs));
  BOOST_TEST((matchRoute({"graphs", "g"})->kind == RouteKind::Graph));
  auto log = matchRoute({"graphs", "g", "sfs", "fw", "log"});
  BOOST_TEST((log->kind == RouteKind::SfLog));
  BOOST_TEST(log->graph_id == "g");
  BOOST_TEST(log->sf_id == "fw");
  BOOST_TEST(corch::rest::methodAllowed(RouteKind::Graph, "DELETE"));
  BOOST_TEST(!corch::rest::methodAllowed(RouteKind::Graph, "POST"));
  BOOST_TEST(!corch::rest::methodAllowed(RouteKind::Graphs, "PUT"));
}

BOOST_AUTO_TEST_CASE(graph_ids) {
  using corch::rest::checkGraphId;
  BOOST_TEST(checkGraphId("g1").ok());
  BOOST_TEST(checkGraphId("A.b_c-9").ok());
  BOOST_TEST(checkGraphId(std::string(64, 'x')).ok());
  BOOST_TEST(!checkGraphId("").ok());
  BOOST_TEST(!checkGraphId(std::string(65, 'x')).ok());
  BOOST_TEST(!checkGraphId("a b").ok());
  BOOST_TEST(!checkGraphId("a/b").ok());
  BOOST_TEST(!checkGraphId("..").ok());
  BOOST_TEST((checkGraphId("a:b").error().code() == ErrorCode::InvalidArgument));
}

BOOST_AUTO_TEST_CASE(json_content_types) {
  using corch::rest::isJsonContentType;
  BOOST_TEST(isJsonContentType("application/json"));
  BOOST_TEST(isJsonContentType("Application/JSON; charset=utf-8"));
  BOOST_TEST(!isJsonContentType(""));
  BOOST_TEST(!isJsonContentType("text/plain"));
  BOOST_TEST(!isJsonContentType("application/jsonx"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(server)

BOOST_FIXTURE_TEST_CASE(put_creates_then_updates, Fixture) {
  auto created = put("g1", kGraph);
  BOOST_TEST_REQUIRE(created.status == 201, created.body);
  BOOST_TEST(created.content_type == "application/json");
  BOOST_TEST(created.header("Location") == "/graphs/g1");
  auto doc = created.json();
  BOOST_TEST(doc["id"].GetString() == std::string("g1"));
  BOOST_TEST(doc["status"]["state"].GetString() == std::string("deployed"));
  BOOST_TEST(doc["status"]["progress"].GetInt() == 100);
  BOOST_TEST(!doc["status"].HasMember("error"));
  BOOST_REQUIRE(doc["changes"].IsArray());
  BOOST_TEST(doc["changes"][0].GetString() == std::string("sf fw created"));
  BOOST_TEST(service.stored("g1")->name == "demo graph");

  auto updated = put("g1", kGraph);
  BOOST_TEST(updated.status == 200);
  BOOST_TEST(updated.json()["changes"][0].GetString() == std::string("sf fw updated"));
}

BOOST_FIXTURE_TEST_CASE(put_without_body_id_takes_the_url_id, Fixture) {
  std::string body = kGraph;
  body.erase(body.find("\"id\": \"g1\", "), std::string("\"id\": \"g1\", ").size());
  auto a = put("from-url", body);
  BOOST_TEST_REQUIRE(a.status == 201, a.body);
  BOOST_TEST(service.stored("from-url")->id == "from-url");
}

BOOST_FIXTURE_TEST_CASE(put_accepts_a_chunked_body, Fixture) {
  auto r = request("PUT", "/graphs/g1");
  // A stream of unknown length goes out with Transfer-Encoding: chunked.
  r.set_body(concurrency::streams::bytestream::open_istream(kGraph), "application/json");
  auto a = toAnswer(client->request(r).get());
  BOOST_TEST(a.status == 201, a.body);
}

BOOST_FIXTURE_TEST_CASE(get_list_status_log_delete, Fixture) {
  BOOST_REQUIRE_EQUAL(put("g1", kGraph).status, 201);
  service.setLog("g1", "fw", "started\n");

  auto graph = call("GET", "/graphs/g1");
  BOOST_TEST(graph.status == 200);
  BOOST_TEST(graph.content_type == "application/json");
  BOOST_TEST(graph.body.find('\n') == std::string::npos);  // compact
  auto doc = graph.json();
  BOOST_TEST(doc["sffg"]["id"].GetString() == std::string("g1"));
  BOOST_TEST(doc["sffg"]["SFs"][0]["name"].GetString() == std::string("firewall"));

  auto list = call("GET", "/graphs");
  BOOST_TEST(list.status == 200);
  auto graphs = list.json();
  BOOST_REQUIRE(graphs["graphs"].IsArray());
  BOOST_REQUIRE_EQUAL(graphs["graphs"].Size(), 1u);
  const auto& g = graphs["graphs"][0];
  BOOST_TEST(g["id"].GetString() == std::string("g1"));
  BOOST_TEST(g["name"].GetString() == std::string("demo graph"));
  BOOST_TEST(g["state"].GetString() == std::string("deployed"));
  BOOST_TEST(g["progress"].GetInt() == 100);

  auto status = call("GET", "/graphs/g1/status");
  BOOST_TEST(status.status == 200);
  BOOST_TEST(status.body == R"({"state":"deployed","progress":100})");

  auto log = call("GET", "/graphs/g1/sfs/fw/log");
  BOOST_TEST(log.status == 200);
  BOOST_TEST(log.content_type == "text/plain; charset=utf-8");
  BOOST_TEST(log.body == "started\n");
  checkProblem(call("GET", "/graphs/g1/sfs/nat/log"), 404, "not-found");

  auto deleted = call("DELETE", "/graphs/g1");
  BOOST_TEST(deleted.status == 204);
  BOOST_TEST(deleted.body.empty());
  checkProblem(call("DELETE", "/graphs/g1"), 404, "not-found");
  checkProblem(call("GET", "/graphs/g1"), 404, "not-found");
  checkProblem(call("GET", "/graphs/g1/status"), 404, "not-found");
  BOOST_TEST(call("GET", "/graphs").body == R"({"graphs":[]})");
}

BOOST_FIXTURE_TEST_CASE(failed_put_shows_in_status, Fixture) {
  service.failNextPut("g1", Error::field(ErrorCode::Unsupported, "/sffg/SFs/0/name",
                                         "no template implements 'firewall'"));
  auto put_answer = put("g1", kGraph);
  auto problem = checkProblem(put_answer, 422, "unsupported");
  BOOST_TEST(hasPointer(problemFields(problem), "/sffg/SFs/0/name"));

  auto status = call("GET", "/graphs/g1/status");
  BOOST_TEST(status.status == 200);
  auto doc = status.json();
  BOOST_TEST(doc["state"].GetString() == std::string("failed"));
  BOOST_REQUIRE(doc["error"].IsObject());
  BOOST_TEST(doc["error"]["status"].GetInt() == 422);
  BOOST_TEST(doc["error"]["type"].GetString() ==
             std::string("https://corch.dev/problems/unsupported"));
  BOOST_TEST(doc["error"]["errors"][0]["pointer"].GetString() == std::string("/sffg/SFs/0/name"));
}

BOOST_FIXTURE_TEST_CASE(service_errors_pass_through, Fixture) {
  struct Case {
    ErrorCode code;
    int status;
    const char* name;
  };
  for (const Case& c : {Case{ErrorCode::Conflict, 409, "conflict"},
                        Case{ErrorCode::ResourceExhausted, 409, "resource-exhausted"},
                        Case{ErrorCode::Internal, 500, "internal"},
                        Case{ErrorCode::Unavailable, 503, "unavailable"},
                        Case{ErrorCode::Timeout, 504, "timeout"}}) {
    service.failNextPut("g1", Error(c.code, "it went wrong"));
    auto doc = checkProblem(put("g1", kGraph), c.status, c.name);
    BOOST_TEST(doc["detail"].GetString() == std::string("it went wrong"));
    BOOST_TEST(!doc.HasMember("errors"));
  }
}

BOOST_FIXTURE_TEST_CASE(malformed_json_is_400, Fixture) {
  checkProblem(put("g1", R"({"sffg": {"id": )"), 400, "malformed");
  checkProblem(put("g1", ""), 400, "malformed");
  BOOST_TEST(service.putCalls() == 0);
}

BOOST_FIXTURE_TEST_CASE(invalid_graph_is_422_with_pointers, Fixture) {
  std::string body = kGraph;
  body.replace(body.find("sf:fw:in"), 8, "sf:nat:in");
  auto answer = put("g1", body);
  BOOST_TEST(answer.reason == "Unprocessable Content");  // the title, not RFC 2616's phrase
  auto doc = checkProblem(answer, 422, "invalid-argument");
  BOOST_TEST(doc["title"].GetString() == std::string("Unprocessable Content"));
  BOOST_TEST(hasPointer(problemFields(doc), "/sffg/flowrules/0/actions/output_to_port"));

  std::string unknown_field = kGraph;
  unknown_field.replace(unknown_field.find("\"name\": \"demo graph\""), 1, "\"bogus\": 1, \"");
  auto doc2 = checkProblem(put("g1", unknown_field), 422, "invalid-argument");
  BOOST_TEST(!problemFields(doc2).empty());
  BOOST_TEST(service.putCalls() == 0);
}

BOOST_FIXTURE_TEST_CASE(body_id_must_match_url_id, Fixture) {
  auto doc = checkProblem(put("other", kGraph), 422, "invalid-argument");
  auto fields = problemFields(doc);
  BOOST_REQUIRE_EQUAL(fields.size(), 1u);
  BOOST_TEST(fields[0].pointer == "/sffg/id");
  BOOST_TEST(fields[0].message.find("'g1'") != std::string::npos);
  BOOST_TEST(fields[0].message.find("'other'") != std::string::npos);
  BOOST_TEST(service.putCalls() == 0);
}

BOOST_FIXTURE_TEST_CASE(invalid_ids_are_422, Fixture) {
  for (const std::string& path : {"/graphs/" + std::string(65, 'a'), std::string("/graphs/a%20b"),
                                  std::string("/graphs/a%2Fb"), std::string("/graphs/a:b/status"),
                                  std::string("/graphs/..")}) {
    BOOST_TEST_CONTEXT(path) {
      auto doc = checkProblem(call("GET", path), 422, "invalid-argument");
      BOOST_TEST(std::string(doc["detail"].GetString()).find("graph id") != std::string::npos);
    }
  }
  checkProblem(put("bad%24id", kGraph), 422, "invalid-argument");
  BOOST_TEST(service.putCalls() == 0);
}

BOOST_FIXTURE_TEST_CASE(unknown_paths_are_404_whatever_the_method, Fixture) {
  for (const char* method : {"GET", "PUT", "DELETE", "POST"}) {
    for (const char* path :
         {"/", "/nope", "/graphs/g1/bogus", "/graphs/g1/sfs/fw", "/NF-FG/g1/x"}) {
      BOOST_TEST_CONTEXT(method << " " << path) {
        checkProblem(call(method, path), 404, "not-found");
      }
    }
  }
}

BOOST_FIXTURE_TEST_CASE(wrong_methods_are_405_with_allow, Fixture) {
  struct Case {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (const Case& c :
       {Case{"POST", "/graphs/g1", "GET, PUT, DELETE"},
        Case{"PATCH", "/graphs/g1", "GET, PUT, DELETE"}, Case{"PUT", "/graphs", "GET"},
        Case{"DELETE", "/graphs", "GET"}, Case{"PUT", "/graphs/g1/status", "GET"},
        Case{"DELETE", "/graphs/g1/sfs/fw/log", "GET"}, Case{"TRACE", "/graphs", "GET"}}) {
    BOOST_TEST_CONTEXT(c.method << " " << c.path) {
      auto a = call(c.method, c.path);
      checkProblem(a, 405, "method-not-allowed");
      BOOST_TEST(a.header("Allow") == c.allow);
    }
  }
  // With a body, which is read and dropped.
  checkProblem(call("POST", "/graphs/g1", kGraph), 405, "method-not-allowed");
  checkProblem(call("PUT", "/nope", kGraph), 404, "not-found");
  BOOST_TEST(service.putCalls() == 0);
  auto head = call("HEAD", "/graphs");
  BOOST_TEST(head.status == 405);
  BOOST_TEST(head.header("Allow") == "GET");
  BOOST_TEST(head.body.empty());
  auto options = call("OPTIONS", "/graphs/g1");
  BOOST_TEST(options.status == 204);
  BOOST_TEST(options.header("Allow") == "GET, PUT, DELETE");
}

BOOST_FIXTURE_TEST_CASE(put_needs_json_content_type, Fixture) {
  checkProblem(call("PUT", "/graphs/g1", kGraph, "text/plain"), 415, "unsupported-media-type");
  auto r = request("PUT", "/graphs/g1");
  r.set_body(std::vector<unsigned char>(kGraph.begin(), kGraph.end()));  // no Content-Type
  r.headers().remove(http::header_names::content_type);
  checkProblem(toAnswer(client->request(r).get()), 415, "unsupported-media-type");
  BOOST_TEST(call("PUT", "/graphs/g1", kGraph, "application/json; charset=utf-8").status == 201);
}

BOOST_FIXTURE_TEST_CASE(bodies_over_1_mib_are_413, Fixture) {
  const size_t limit = corch::rest::kMaxBodyBytes;
  // Announced by Content-Length.
  checkProblem(put("g1", std::string(limit + 1, ' ')), 413, "too-large");
  // Chunked: no length announced, counted while read.
  auto r = request("PUT", "/graphs/g1");
  r.set_body(concurrency::streams::bytestream::open_istream(std::string(limit + 1, ' ')),
             "application/json");
  checkProblem(toAnswer(client->request(r).get()), 413, "too-large");
  // Exactly the limit is read (and is then not a graph).
  std::string padded = kGraph + std::string(limit - kGraph.size(), ' ');
  BOOST_TEST(put("g1", padded).status == 201);
  BOOST_TEST(service.putCalls() == 1);
}

BOOST_FIXTURE_TEST_CASE(conflict_is_409, Fixture) {
  service.blockPutsOf("g1");
  auto first = client->request([&] {
    auto r = request("PUT", "/graphs/g1");
    r.set_body(kGraph, "application/json");
    return r;
  }());
  BOOST_REQUIRE(service.waitUntilBlocked(std::chrono::seconds(10)));
  checkProblem(put("g1", kGraph), 409, "conflict");
  service.release();
  BOOST_TEST(toAnswer(first.get()).status == 201);
}

// A PUT in progress (blocked inside the service) must leave reads and other graphs served.
BOOST_FIXTURE_TEST_CASE(slow_put_does_not_block_others, Fixture) {
  BOOST_REQUIRE_EQUAL(put("g0", graphWithId("g0")).status, 201);
  service.blockPutsOf("slow");
  auto r = request("PUT", "/graphs/slow");
  r.set_body(graphWithId("slow"), "application/json");
  auto slow = client->request(r);
  BOOST_REQUIRE(service.waitUntilBlocked(std::chrono::seconds(10)));

  // Each of these has the client's 10 s deadline; none may wait for the blocked PUT.
  BOOST_TEST(call("GET", "/graphs").status == 200);
  BOOST_TEST(call("GET", "/graphs/g0").status == 200);
  BOOST_TEST(call("GET", "/graphs/g0/status").status == 200);
  BOOST_TEST(put("other", graphWithId("other")).status == 201);
  BOOST_TEST(call("DELETE", "/graphs/g0").status == 204);
  BOOST_TEST(!slow.is_done());

  service.release();
  auto answer = toAnswer(slow.get());
  BOOST_TEST(answer.status == 201, answer.body);
}

BOOST_AUTO_TEST_CASE(changes_beyond_the_limit_are_503) {
  ServerOptions options;
  options.max_concurrent_changes = 1;
  Fixture f(options);
  f.service.blockPutsOf("a");
  auto r = f.request("PUT", "/graphs/a");
  r.set_body(graphWithId("a"), "application/json");
  auto slow = f.client->request(r);
  BOOST_REQUIRE(f.service.waitUntilBlocked(std::chrono::seconds(10)));
  auto busy = f.put("b", graphWithId("b"));
  checkProblem(busy, 503, "unavailable");
  BOOST_TEST(busy.header("Retry-After") == "1");
  BOOST_TEST(f.call("GET", "/graphs").status == 200);  // reads are not limited
  f.service.release();
  BOOST_TEST(toAnswer(slow.get()).status == 201);
  BOOST_TEST(f.put("b", graphWithId("b")).status == 201);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lifecycle)

BOOST_AUTO_TEST_CASE(start_fails_naming_the_address_in_use) {
  Fixture running;
  FakeGraphService service;
  ServerOptions options;
  options.port = running.server->port();
  Server second(options, service);
  auto started = second.start();
  BOOST_REQUIRE(!started.ok());
  BOOST_TEST(started.error().message().find(running.server->url()) != std::string::npos,
             started.error().message());
  // The running server is unharmed.
  BOOST_TEST(running.call("GET", "/graphs").status == 200);
}

BOOST_AUTO_TEST_CASE(start_checks_its_options) {
  FakeGraphService service;
  ServerOptions options;
  options.port = 0;

  options.threads = kPoolThreads + 1;
  auto resized = Server(options, service).start();
  BOOST_REQUIRE(!resized.ok());
  BOOST_TEST((resized.error().code() == ErrorCode::Conflict));
  BOOST_TEST(resized.error().message().find("already running with 24 threads") !=
             std::string::npos);

  options.threads = kPoolThreads;  // the size in effect is fine
  Server same(options, service);
  BOOST_TEST(same.start().ok());
  auto twice = same.start();
  BOOST_REQUIRE(!twice.ok());
  BOOST_TEST(twice.error().message().find(same.url()) != std::string::npos);

  options.threads = 0;
  options.max_concurrent_changes = kPoolThreads;
  auto too_many = Server(options, service).start();
  BOOST_REQUIRE(!too_many.ok());
  BOOST_TEST((too_many.error().code() == ErrorCode::InvalidArgument));

  options.max_concurrent_changes = 4;
  options.host = "::1";
  auto v6 = Server(options, service).start();
  BOOST_REQUIRE(!v6.ok());
  BOOST_TEST((v6.error().code() == ErrorCode::InvalidArgument));
  options.host = "127.0.0.1";
  options.tls = corch::rest::TlsOptions{"cert.pem", "key.pem"};
  auto tls = Server(options, service).start();
  BOOST_REQUIRE(!tls.ok());
  BOOST_TEST((tls.error().code() == ErrorCode::Unsupported));
}

BOOST_AUTO_TEST_CASE(stop_waits_for_a_put_in_progress_and_is_idempotent) {
  Fixture f;
  f.service.blockPutsOf("g1");
  auto r = f.request("PUT", "/graphs/g1");
  r.set_body(kGraph, "application/json");
  auto slow = f.client->request(r);
  BOOST_REQUIRE(f.service.waitUntilBlocked(std::chrono::seconds(10)));
  // Releases the PUT once stop() has closed the listener, that is while stop() is running.
  std::string url = f.server->url();
  std::thread releaser([&f, url] {
    http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(1));
    http::client::http_client probe(web::uri(url), config);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        probe.request(http::methods::GET, "/graphs").get();
      } catch (const std::exception&) {
        break;  // refused: the listener is closed
      }
    }
    f.service.release();
  });
  f.server->stop();
  // stop() returned only after the service did: the graph is there.
  BOOST_TEST(f.service.stored("g1").has_value());
  releaser.join();
  f.server->stop();
  BOOST_TEST(f.server->port() == 0);
  BOOST_TEST(f.server->url().empty());
  try {
    slow.get();  // answered 500 when stop() closed the connection, or failed: either is fine
  } catch (const std::exception&) {
  }
}

BOOST_AUTO_TEST_SUITE_END()
