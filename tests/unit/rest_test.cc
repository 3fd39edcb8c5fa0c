// The northbound REST server (orchestrator/rest/server.h) over real HTTP: a Server on a free port
// in front of an in-memory GraphService, driven by cpprest's http_client.
#define BOOST_TEST_MODULE rest
#include <boost/test/unit_test.hpp>

#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
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
#include "security/testing.h"
#include "util/files.h"
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
  explicit Fixture(ServerOptions options, corch::security::SecurityManager* security = nullptr) {
    options.port = 0;
    server.emplace(options, service, security);
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

  // A request with extra headers ({"X-Auth-Token", token}, ...) and an optional JSON body.
  Answer callWith(const std::string& method, const std::string& path,
                  const std::vector<std::pair<std::string, std::string>>& headers,
                  const std::optional<std::string>& body = std::nullopt) {
    auto r = request(method, path);
    for (const auto& [name, value] : headers) r.headers().add(name, value);
    if (body) r.set_body(*body, "application/json");
    return toAnswer(client->request(r).get());
  }

  // POST /login with a JSON body; `accept` becomes the Accept header when not empty.
  Answer login(const std::string& body, const std::string& accept = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!accept.empty()) headers.emplace_back("Accept", accept);
    return callWith("POST", "/login", headers, body);
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

// A token as corchd issues them: 64 lower-case hex digits.
bool isHexToken(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
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

BOOST_AUTO_TEST_CASE(login_route) {
  using corch::rest::matchRoute;
  using corch::rest::RouteKind;
  BOOST_TEST((matchRoute({"login"})->kind == RouteKind::Login));
  BOOST_TEST(!matchRoute({"login", "x"}).has_value());
  BOOST_TEST(corch::rest::methodAllowed(RouteKind::Login, "POST"));
  BOOST_TEST(!corch::rest::methodAllowed(RouteKind::Login, "GET"));
  BOOST_TEST(!corch::rest::isNffgRoute(RouteKind::Login));
}

BOOST_AUTO_TEST_CASE(accept_headers) {
  using corch::rest::acceptsJson;
  BOOST_TEST(acceptsJson("application/json"));
  BOOST_TEST(acceptsJson("text/plain, Application/JSON; charset=utf-8"));
  BOOST_TEST(acceptsJson("application/json;q=0.5"));
  BOOST_TEST(!acceptsJson(""));
  BOOST_TEST(!acceptsJson("*/*"));
  BOOST_TEST(!acceptsJson("text/plain"));
  BOOST_TEST(!acceptsJson("application/json; q=0"));
  BOOST_TEST(!acceptsJson("application/json;q=0.0, text/plain"));
  BOOST_TEST(!acceptsJson("application/jsonx"));
}

BOOST_AUTO_TEST_CASE(request_tokens) {
  using corch::rest::requestToken;
  using Opt = std::optional<std::string_view>;
  BOOST_TEST(*requestToken(Opt("abc"), std::nullopt) == "abc");
  BOOST_TEST(*requestToken(std::nullopt, Opt("Bearer abc")) == "abc");
  BOOST_TEST(*requestToken(std::nullopt, Opt("bearer   abc ")) == "abc");
  BOOST_TEST(*requestToken(Opt("abc"), Opt("Bearer abc")) == "abc");
  for (auto [x_auth, authorization] : {std::pair<Opt, Opt>{std::nullopt, std::nullopt},
                                       {Opt(""), std::nullopt},
                                       {std::nullopt, Opt("Bearer")},
                                       {std::nullopt, Opt("Bearer  ")},
                                       {std::nullopt, Opt("Basic YWRtaW46YWRtaW4=")},
                                       {Opt("abc"), Opt("Bearer xyz")}}) {
    auto token = requestToken(x_auth, authorization);
    BOOST_TEST_REQUIRE(!token.ok());
    BOOST_TEST((token.error().code() == ErrorCode::Unauthenticated));
  }
  auto basic = requestToken(std::nullopt, Opt("Basic YWRtaW46YWRtaW4="));
  BOOST_TEST(basic.error().message().find("'Basic'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(login_bodies) {
  using corch::rest::parseLogin;
  auto good = parseLogin(R"({"username": "admin", "password": "pw"})");
  BOOST_TEST_REQUIRE(good.ok());
  BOOST_TEST(good->username == "admin");
  BOOST_TEST(good->password == "pw");
  BOOST_TEST(parseLogin(R"({"username": "u", "password": ""})").ok());
  struct Case {
    const char* body;
    const char* pointer;  // nullptr: not JSON, no field
  };
  for (const Case& c :
       {Case{"", nullptr}, Case{"{", nullptr}, Case{"[]", ""},
        Case{R"({"password": "pw"})", "/username"}, Case{R"({"username": "u"})", "/password"},
        Case{R"({"username": 7, "password": "pw"})", "/username"},
        Case{R"({"username": "u", "password": null})", "/password"},
        Case{R"({"username": "", "password": "pw"})", "/username"},
        Case{R"({"username": "u", "password": "pw", "group": "g"})", "/group"}}) {
    BOOST_TEST_CONTEXT(c.body) {
      auto parsed = parseLogin(c.body);
      BOOST_TEST_REQUIRE(!parsed.ok());
      BOOST_TEST((parsed.error().code() == ErrorCode::Malformed));
      if (c.pointer) {
        BOOST_TEST_REQUIRE(parsed.error().fields().size() == 1u);
        BOOST_TEST(parsed.error().fields()[0].pointer == c.pointer);
      }
    }
  }
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
  // HTTPS without its files (tls_test.cc serves HTTPS): refused, naming the file.
  options.tls = corch::rest::TlsOptions{"/nonexistent/cert.pem", "/nonexistent/key.pem"};
  auto tls = Server(options, service).start();
  BOOST_REQUIRE(!tls.ok());
  BOOST_TEST((tls.error().code() == ErrorCode::InvalidArgument));
  BOOST_TEST(tls.error().message().find("/nonexistent/cert.pem") != std::string::npos);
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

// POST /login with authentication off (the default): a token for any well-formed body, so that
// clients that always log in first keep working; no request needs one.
BOOST_AUTO_TEST_SUITE(login_without_authentication)

BOOST_FIXTURE_TEST_CASE(login_answers_the_token_as_text, Fixture) {
  // un-orchestrator's request and answer: the token alone, as text, not to be cached.
  auto a = login(R"({"username": "admin", "password": "admin"})");
  BOOST_TEST_REQUIRE(a.status == 200, a.body);
  BOOST_TEST(a.content_type == "text/plain; charset=utf-8");
  BOOST_TEST(isHexToken(a.body), a.body);
  BOOST_TEST(a.header("Cache-Control") == "no-store");
  auto b = login(R"({"username": "anyone", "password": ""})", "*/*");
  BOOST_TEST(b.status == 200);
  BOOST_TEST(isHexToken(b.body));
  BOOST_TEST(a.body != b.body);
}

BOOST_FIXTURE_TEST_CASE(login_answers_json_to_who_asks, Fixture) {
  auto a = login(R"({"username": "admin", "password": "admin"})", "application/json");
  BOOST_TEST_REQUIRE(a.status == 200, a.body);
  BOOST_TEST(a.content_type == "application/json");
  BOOST_TEST(a.header("Cache-Control") == "no-store");
  auto doc = a.json();
  BOOST_REQUIRE(doc.IsObject() && doc.MemberCount() == 2u);
  BOOST_TEST(isHexToken(doc["token"].GetString()));
  std::string expires = doc["expires"].GetString();
  BOOST_TEST(expires.size() == 20u, expires);  // 2026-01-31T12:00:00Z
  BOOST_TEST(expires.back() == 'Z');
}

BOOST_FIXTURE_TEST_CASE(malformed_logins_are_400_naming_the_field, Fixture) {
  auto missing = checkProblem(login(R"({"username": "admin"})"), 400, "malformed");
  auto fields = problemFields(missing);
  BOOST_REQUIRE_EQUAL(fields.size(), 1u);
  BOOST_TEST(fields[0].pointer == "/password");
  auto wrong_type = checkProblem(login(R"({"username": 1, "password": "x"})"), 400, "malformed");
  BOOST_TEST(hasPointer(problemFields(wrong_type), "/username"));
  auto unknown = checkProblem(login(R"({"user": "a", "password": "x"})"), 400, "malformed");
  BOOST_TEST(hasPointer(problemFields(unknown), "/user"));
  checkProblem(login("{"), 400, "malformed");
  checkProblem(login(""), 400, "malformed");
  checkProblem(login(std::string(corch::rest::kMaxLoginBodyBytes + 1, ' ')), 413, "too-large");
  auto get = call("GET", "/login");
  checkProblem(get, 405, "method-not-allowed");
  BOOST_TEST(get.header("Allow") == "POST");
}

BOOST_FIXTURE_TEST_CASE(without_authentication_no_token_is_needed_or_checked, Fixture) {
  BOOST_TEST(call("GET", "/graphs").status == 200);
  BOOST_TEST(callWith("GET", "/graphs", {{"X-Auth-Token", "not-a-token"}}).status == 200);
  BOOST_TEST(callWith("GET", "/graphs", {{"Authorization", "Basic YWRtaW46YWRtaW4="}}).status ==
             200);
  BOOST_TEST(callWith("PUT", "/graphs/g1", {{"X-Auth-Token", "x"}}, kGraph).status == 201);
  BOOST_TEST(call("DELETE", "/graphs/g1").status == 204);
}

BOOST_AUTO_TEST_SUITE_END()

// Authentication on: every request but POST /login needs a valid token.
BOOST_AUTO_TEST_SUITE(authentication)

using corch::security::Role;
using corch::security::testing::ManualClock;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::chrono::seconds kLifetime{600};
const std::string kAdminLogin = R"({"username": "admin", "password": "admin-password"})";
const std::string kNoTokenChallenge = R"(Bearer realm="corch")";
const std::string kBadTokenChallenge = R"(Bearer realm="corch", error="invalid_token")";

struct AuthFixture {
  AuthFixture()
      : security(corch::security::testing::enabledManager(
            (dir.path() / "users.json").string(),
            {{"admin", "admin-password", Role::Admin}, {"viewer", "viewer-password", Role::User}},
            kLifetime, clock.fn())),
        f(ServerOptions{}, security.get()) {}

  // A fresh token of the admin, through POST /login.
  std::string token() {
    auto a = f.login(kAdminLogin);
    BOOST_REQUIRE_MESSAGE(a.status == 200, a.body);
    return a.body;
  }

  corch::test::TempDir dir{"corch-rest-auth"};
  ManualClock clock;
  std::unique_ptr<corch::security::SecurityManager> security;
  Fixture f;
};

// Checks a 401 and its challenge; returns the problem's detail.
std::string checkUnauthenticated(const Answer& a, const std::string& challenge) {
  auto doc = checkProblem(a, 401, "unauthenticated");
  BOOST_TEST(a.header("WWW-Authenticate") == challenge);
  return doc["detail"].GetString();
}

BOOST_FIXTURE_TEST_CASE(login_right_wrong_and_malformed, AuthFixture) {
  auto good = f.login(kAdminLogin);
  BOOST_TEST_REQUIRE(good.status == 200, good.body);
  BOOST_TEST(good.content_type == "text/plain; charset=utf-8");
  BOOST_TEST(isHexToken(good.body));
  BOOST_TEST(security->authenticate(good.body).ok());

  auto json =
      f.login(R"({"username": "viewer", "password": "viewer-password"})", "application/json");
  BOOST_TEST_REQUIRE(json.status == 200, json.body);
  auto doc = json.json();
  BOOST_TEST(doc["expires"].GetString() == corch::security::formatTime(clock.now() + kLifetime));
  auto session = security->authenticate(doc["token"].GetString());
  BOOST_REQUIRE(session.ok());
  BOOST_TEST(session->user == "viewer");
  BOOST_TEST((session->role == Role::User));

  auto wrong = checkUnauthenticated(
      f.login(R"({"username": "admin", "password": "admin-passwore"})"), kNoTokenChallenge);
  auto unknown = checkUnauthenticated(
      f.login(R"({"username": "root", "password": "admin-password"})"), kNoTokenChallenge);
  BOOST_TEST(wrong == unknown);  // nothing tells which of the two was wrong
  BOOST_TEST(wrong.find("admin-password") == std::string::npos);

  auto malformed = checkProblem(f.login(R"({"username": "admin"})"), 400, "malformed");
  BOOST_TEST(hasPointer(problemFields(malformed), "/password"));
  checkProblem(f.login("not json"), 400, "malformed");
}

BOOST_FIXTURE_TEST_CASE(every_endpoint_needs_a_valid_token, AuthFixture) {
  const std::string nffg = corch::test::readFile(std::filesystem::path(CORCH_SOURCE_DIR) /
                                                 "examples/nffg/firewall.json");
  BOOST_REQUIRE(!nffg.empty());
  f.service.setLog("g1", "fw", "started\n");
  struct Case {
    std::string method;
    std::string path;
    std::optional<std::string> body;
    int status;  // with a good token
  };
  const std::vector<Case> cases = {
      {"PUT", "/graphs/g1", kGraph, 201},
      {"PUT", "/graphs/g1", kGraph, 200},
      {"GET", "/graphs", std::nullopt, 200},
      {"GET", "/graphs/g1", std::nullopt, 200},
      {"GET", "/graphs/g1/status", std::nullopt, 200},
      {"GET", "/graphs/g1/sfs/fw/log", std::nullopt, 200},
      {"PUT", "/NF-FG/firewall", nffg, 202},
      {"POST", "/NF-FG/", nffg, 201},
      {"GET", "/NF-FG", std::nullopt, 200},
      {"GET", "/NF-FG/firewall", std::nullopt, 200},
      {"GET", "/NF-FG/status/firewall", std::nullopt, 200},
      {"DELETE", "/NF-FG/firewall", std::nullopt, 204},
      {"DELETE", "/graphs/g1", std::nullopt, 204},
  };
  int puts = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    BOOST_TEST_CONTEXT(c.method << " " << c.path) {
      auto none = f.callWith(c.method, c.path, {}, c.body);
      BOOST_TEST(checkUnauthenticated(none, kNoTokenChallenge).find("POST /login") !=
                 std::string::npos);

      const std::string unknown(64, '0');
      checkUnauthenticated(f.callWith(c.method, c.path, {{"X-Auth-Token", unknown}}, c.body),
                           kBadTokenChallenge);
      checkUnauthenticated(
          f.callWith(c.method, c.path, {{"Authorization", "Bearer " + unknown}}, c.body),
          kBadTokenChallenge);

      std::string old = token();
      clock.advance(kLifetime);
      auto expired = f.callWith(c.method, c.path, {{"X-Auth-Token", old}}, c.body);
      BOOST_TEST(checkUnauthenticated(expired, kBadTokenChallenge).find("expired") !=
                 std::string::npos);
      BOOST_TEST(f.service.putCalls() == puts);  // nothing refused reached the service

      // Both headers carry tokens: X-Auth-Token (un-orchestrator's), Authorization: Bearer.
      Headers good = i % 2 == 0 ? Headers{{"X-Auth-Token", token()}}
                                : Headers{{"Authorization", "Bearer " + token()}};
      auto answer = f.callWith(c.method, c.path, good, c.body);
      BOOST_TEST(answer.status == c.status, answer.body);
      if (c.method == "PUT" || c.method == "POST") ++puts;
    }
  }
}

BOOST_FIXTURE_TEST_CASE(nothing_is_told_without_a_token, AuthFixture) {
  // Unknown paths and wrong methods are 401 without a token, 404 and 405 with one.
  checkUnauthenticated(f.call("GET", "/nope"), kNoTokenChallenge);
  checkUnauthenticated(f.call("POST", "/graphs/g1"), kNoTokenChallenge);
  checkUnauthenticated(f.call("OPTIONS", "/graphs"), kNoTokenChallenge);
  Headers with = {{"X-Auth-Token", token()}};
  checkProblem(f.callWith("GET", "/nope", with), 404, "not-found");
  checkProblem(f.callWith("POST", "/graphs/g1", with), 405, "method-not-allowed");
  // Another scheme, or two different tokens, are refused.
  checkUnauthenticated(f.callWith("GET", "/graphs", {{"Authorization", "Basic YWRtaW4="}}),
                       kBadTokenChallenge);
  checkUnauthenticated(
      f.callWith("GET", "/graphs", {{"X-Auth-Token", token()}, {"Authorization", "Bearer x"}}),
      kBadTokenChallenge);
  BOOST_TEST(f.callWith("GET", "/graphs", {{"authorization", "bearer " + token()}}).status == 200);
}

BOOST_FIXTURE_TEST_CASE(a_user_added_to_the_file_can_log_in_at_once, AuthFixture) {
  checkUnauthenticated(f.login(R"({"username": "late", "password": "late-password"})"),
                       kNoTokenChallenge);
  auto store = corch::security::UserStore::open((dir.path() / "users.json").string(),
                                                corch::security::kMinIterations);
  BOOST_REQUIRE(store.ok());
  BOOST_REQUIRE((*store)->addUser("late", "late-password", Role::Operator).ok());
  BOOST_TEST(f.login(R"({"username": "late", "password": "late-password"})").status == 200);
}

BOOST_AUTO_TEST_SUITE_END()
