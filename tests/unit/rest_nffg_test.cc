// un-orchestrator's NF-FG API in the northbound REST server (orchestrator/rest/server.h, DESIGN
// section 5 "Compatibility") over real HTTP: a Server on a free port in front of an in-memory
// GraphService, driven by cpprest's http_client as the FROG4 orchestrator drives un-orchestrator.
#define BOOST_TEST_MODULE rest_nffg
#include <boost/test/unit_test.hpp>

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <cpprest/http_client.h>

#include "corch/log.h"
#include "graph/nffg_codec.h"
#include "graph/sffg_codec.h"
#include "rest/fake_graph_service.h"
#include "rest/responses.h"
#include "rest/routes.h"
#include "rest/server.h"
#include "security/testing.h"
#include "util/files.h"
#include "util/http_answer.h"

namespace {

using corch::Error;
using corch::ErrorCode;
using corch::FieldError;
using corch::node::GraphState;
using corch::node::GraphStatus;
using corch::rest::RouteKind;
using corch::rest::Server;
using corch::rest::ServerOptions;
using corch::rest::testing::FakeGraphService;
namespace fs = std::filesystem;
namespace http = web::http;

const fs::path kSource = CORCH_SOURCE_DIR;

std::string readDoc(const std::string& relative) {
  std::string text = corch::test::readFile(kSource / relative);
  BOOST_REQUIRE_MESSAGE(!text.empty(), "cannot read " << relative);
  return text;
}

// The firewall example: VNF "fw" with ports inout:0 and inout:1 between end-points demo0, demo1.
std::string firewall() { return readDoc("examples/nffg/firewall.json"); }

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, "no '" << from << "' in the document");
  return text.replace(at, from.size(), to);
}

// The firewall example under another graph id (a PUT's body id must be the URL's).
std::string firewallAs(const std::string& id) {
  return replaced(firewall(), "\"id\": \"firewall\"", "\"id\": \"" + id + "\"");
}

const std::string kSffg = R"({"sffg": {"id": "s1", "name": "sffg graph",
  "SFs": [{"id": "fw", "name": "firewall", "ports": [{"id": "in"}, {"id": "out"}]}],
  "saps": [{"id": "lan", "type": "interface", "interface": {"if-name": "eth1"}}],
  "flowrules": [{"id": "r1", "priority": 1, "match": {"port_in": "service-access-point:lan"},
                 "actions": {"output_to_port": "sf:fw:in"}}]}})";

corch::graph::Graph parseNffgText(const std::string& text) {
  auto parsed = corch::graph::parseNffg(text);
  if (!parsed.ok()) BOOST_FAIL("not an NF-FG: " << parsed.error().message() << ": " << text);
  return std::move(parsed).value();
}

bool isUuidV4(const std::string& id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (id[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(id[i]))) return false;
    if (!dash && std::isupper(static_cast<unsigned char>(id[i]))) return false;
  }
  return id[14] == '4' && std::string("89ab").find(id[19]) != std::string::npos;
}

using corch::test::Answer;
using corch::test::toAnswer;

struct Fixture {
  explicit Fixture(corch::security::SecurityManager* security = nullptr) {
    corch::log::setLevel(corch::log::Level::Warn);
    ServerOptions options;
    options.port = 0;
    server.emplace(options, service, security);
    auto started = server->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.error().message());
    http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(10));
    client.emplace(web::uri(server->url()), config);
  }

  // Every request carries an X-Auth-Token, as FROG4's do after their login: with authentication
  // off (the default) its value does not matter; `token` is empty for a request without one.
  Answer call(const std::string& method, const std::string& path,
              const std::optional<std::string>& body = std::nullopt,
              const std::string& content_type = "application/json") {
    http::http_request r{http::method(method)};
    r.set_request_uri(web::uri(path));
    if (!token.empty()) r.headers().add("X-Auth-Token", token);
    r.headers().add("Cache-Control", "no-cache");
    if (body) r.set_body(*body, content_type);
    return toAnswer(client->request(r).get());
  }

  Answer post(const std::string& body, const std::string& path = "/NF-FG/") {
    return call("POST", path, body);
  }
  Answer put(const std::string& id, const std::string& body) {
    return call("PUT", "/NF-FG/" + id, body);
  }

  // POST /login as FROG4's client of un-orchestrator sends it: the token comes back as text.
  Answer login(const std::string& username, const std::string& password) {
    http::http_request r{http::methods::POST};
    r.set_request_uri(web::uri("/login"));
    r.set_body("{\"username\": \"" + username + "\", \"password\": \"" + password + "\"}",
               "application/json");
    return toAnswer(client->request(r).get());
  }

  std::string token = "0123456789abcdef";
  FakeGraphService service;
  std::optional<Server> server;
  std::optional<http::client::http_client> client;
};

// Checks an RFC 9457 problem answer and returns its field errors.
std::vector<FieldError> checkProblem(const Answer& a, int status, const std::string& name) {
  BOOST_TEST(a.status == status, a.body);
  BOOST_TEST(a.content_type == "application/problem+json");
  auto doc = a.json();
  BOOST_REQUIRE(doc.IsObject() && doc.HasMember("type") && doc.HasMember("status"));
  BOOST_TEST(doc["type"].GetString() == "https://corch.dev/problems/" + name);
  BOOST_TEST(doc["status"].GetInt() == status);
  std::vector<FieldError> fields;
  if (doc.HasMember("errors")) {
    for (const auto& e : doc["errors"].GetArray()) {
      fields.push_back({e["pointer"].GetString(), e["message"].GetString()});
    }
  }
  return fields;
}

bool hasPointer(const std::vector<FieldError>& fields, const std::string& pointer) {
  return std::any_of(fields.begin(), fields.end(), [&](const FieldError& f) {
    return f.pointer == pointer && !f.message.empty();
  });
}

// The ids in a GET /NF-FG answer, each element checked to be an NF-FG document.
std::set<std::string> listedIds(const Answer& a) {
  BOOST_TEST(a.status == 200);
  BOOST_TEST(a.content_type == "application/json");
  auto doc = a.json();
  BOOST_REQUIRE(doc.IsObject() && doc.HasMember("NF-FG") && doc["NF-FG"].IsArray());
  std::set<std::string> ids;
  for (const auto& g : doc["NF-FG"].GetArray()) {
    BOOST_REQUIRE(g.IsObject() && g.HasMember("nffg-uuid") && g.HasMember("forwarding-graph"));
    BOOST_TEST(g["forwarding-graph"].IsObject());
    ids.insert(g["nffg-uuid"].GetString());
  }
  return ids;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rules)

BOOST_AUTO_TEST_CASE(nffg_routes_and_methods) {
  using corch::rest::matchRoute;
  using corch::rest::methodAllowed;
  BOOST_TEST((matchRoute({"NF-FG"})->kind == RouteKind::NffgGraphs));
  auto graph = matchRoute({"NF-FG", "g1"});
  BOOST_TEST((graph->kind == RouteKind::NffgGraph));
  BOOST_TEST(graph->graph_id == "g1");
  auto status = matchRoute({"NF-FG", "status", "g1"});
  BOOST_TEST((status->kind == RouteKind::NffgStatus));
  BOOST_TEST(status->graph_id == "g1");
  BOOST_TEST(!matchRoute({"NF-FG", "g1", "status"}).has_value());
  BOOST_TEST(!matchRoute({"NF-FG", "status", "g1", "x"}).has_value());
  BOOST_TEST(!matchRoute({"nf-fg"}).has_value());  // paths are case-sensitive
  BOOST_TEST(corch::rest::isNffgRoute(RouteKind::NffgStatus));
  BOOST_TEST(!corch::rest::isNffgRoute(RouteKind::Graph));
  BOOST_TEST(methodAllowed(RouteKind::NffgGraphs, "POST"));
  BOOST_TEST(!methodAllowed(RouteKind::NffgGraphs, "PUT"));
  BOOST_TEST(methodAllowed(RouteKind::NffgGraph, "PUT"));
  BOOST_TEST(!methodAllowed(RouteKind::NffgGraph, "POST"));
  BOOST_TEST(!methodAllowed(RouteKind::NffgStatus, "DELETE"));
}

BOOST_AUTO_TEST_CASE(new_ids_are_fresh_uuid_v4) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string id = corch::rest::newGraphUuid();
    BOOST_TEST_REQUIRE(isUuidV4(id), id);
    BOOST_TEST(corch::rest::checkGraphId(id).ok());
    seen.insert(id);
  }
  BOOST_TEST(seen.size() == 200u);
}

BOOST_AUTO_TEST_CASE(status_words) {
  using corch::rest::nffgStatusWord;
  BOOST_TEST(nffgStatusWord(GraphState::Deployed) == "complete");
  BOOST_TEST(nffgStatusWord(GraphState::Deploying) == "in_progress");
  BOOST_TEST(nffgStatusWord(GraphState::Updating) == "in_progress");
  BOOST_TEST(nffgStatusWord(GraphState::Deleting) == "in_progress");
  BOOST_TEST(nffgStatusWord(GraphState::Failed) == "error");
  BOOST_TEST(corch::rest::nffgStatusJson(GraphStatus{GraphState::Deploying, 40, std::nullopt}) ==
             R"({"status":"in_progress","percentage_completed":40})");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(server)

BOOST_FIXTURE_TEST_CASE(post_creates_under_a_fresh_uuid_each_time, Fixture) {
  std::set<std::string> ids;
  for (const std::string path : {"/NF-FG/", "/NF-FG", "/NF-FG/"}) {
    BOOST_TEST_CONTEXT("POST " << path) {
      auto a = post(firewall(), path);
      BOOST_TEST_REQUIRE(a.status == 201, a.body);
      BOOST_TEST(a.content_type == "application/json");
      auto doc = a.json();
      BOOST_REQUIRE(doc.IsObject() && doc.HasMember("nffg-uuid") && doc["nffg-uuid"].IsString());
      BOOST_TEST(doc.MemberCount() == 1u);
      std::string id = doc["nffg-uuid"].GetString();
      BOOST_TEST(isUuidV4(id), id);
      BOOST_TEST(a.header("Location") == "/NF-FG/" + id);
      // The body's id ("firewall") gave way to the one corch chose.
      auto stored = service.stored(id);
      BOOST_REQUIRE(stored.has_value());
      BOOST_TEST(stored->id == id);
      BOOST_TEST(stored->sfs.at(0).id == "fw");
      ids.insert(id);
    }
  }
  BOOST_TEST(ids.size() == 3u);
  BOOST_TEST(!service.stored("firewall").has_value());
  BOOST_TEST((listedIds(call("GET", "/NF-FG")) == ids));
}

BOOST_FIXTURE_TEST_CASE(put_get_list_status_delete, Fixture) {
  auto created = put("firewall", firewall());
  BOOST_TEST_REQUIRE(created.status == 202, created.body);
  BOOST_TEST(created.body == R"({"nffg-uuid":"firewall","status":"complete",)"
                             R"("percentage_completed":100})");
  auto updated = put("firewall", replaced(firewall(), "\"priority\": 1", "\"priority\": 7"));
  BOOST_TEST(updated.status == 202, updated.body);
  BOOST_TEST(service.stored("firewall")->rules.at(0).priority == 7);

  auto got = call("GET", "/NF-FG/firewall");
  BOOST_TEST(got.status == 200);
  BOOST_TEST(got.content_type == "application/json");
  BOOST_TEST((parseNffgText(got.body) == *service.stored("firewall")));

  BOOST_TEST((listedIds(call("GET", "/NF-FG")) == std::set<std::string>{"firewall"}));
  BOOST_TEST((listedIds(call("GET", "/NF-FG/")) == std::set<std::string>{"firewall"}));

  auto status = call("GET", "/NF-FG/status/firewall");
  BOOST_TEST(status.status == 200);
  BOOST_TEST(status.body == R"({"status":"complete","percentage_completed":100})");

  auto deleted = call("DELETE", "/NF-FG/firewall");
  BOOST_TEST(deleted.status == 204);
  BOOST_TEST(deleted.body.empty());
  checkProblem(call("DELETE", "/NF-FG/firewall"), 404, "not-found");
  checkProblem(call("GET", "/NF-FG/firewall"), 404, "not-found");
  checkProblem(call("GET", "/NF-FG/status/firewall"), 404, "not-found");
  BOOST_TEST(call("GET", "/NF-FG").body == R"({"NF-FG":[]})");
}

// Every good document of the codec's tests goes in by PUT and by POST and comes back unchanged.
BOOST_FIXTURE_TEST_CASE(good_documents_round_trip, Fixture) {
  std::vector<std::string> files = {"examples/nffg/firewall.json"};
  for (const auto& entry : fs::directory_iterator(kSource / "tests/data/nffg/good")) {
    files.push_back(fs::relative(entry.path(), kSource).string());
  }
  BOOST_TEST(files.size() >= 7u);
  int n = 0;
  for (const auto& file : files) {
    BOOST_TEST_CONTEXT(file) {
      std::string text = readDoc(file);
      auto expected = parseNffgText(text);
      std::string id = expected.id.empty() ? "doc" + std::to_string(n++) : expected.id;
      expected.id = id;
      auto put_answer = put(id, text);
      BOOST_TEST_REQUIRE(put_answer.status == 202, put_answer.body);
      BOOST_TEST((parseNffgText(call("GET", "/NF-FG/" + id).body) == expected));

      auto posted = post(text);
      BOOST_TEST_REQUIRE(posted.status == 201, posted.body);
      std::string uuid = posted.json()["nffg-uuid"].GetString();
      expected.id = uuid;
      BOOST_TEST((parseNffgText(call("GET", "/NF-FG/" + uuid).body) == expected));
    }
  }
  BOOST_TEST(listedIds(call("GET", "/NF-FG")).size() == 2 * files.size());
}

BOOST_FIXTURE_TEST_CASE(sffg_graphs_are_nffg_graphs_and_back, Fixture) {
  // Put as SF-FG, read as NF-FG.
  BOOST_REQUIRE_EQUAL(call("PUT", "/graphs/s1", kSffg).status, 201);
  auto as_nffg = call("GET", "/NF-FG/s1");
  BOOST_TEST_REQUIRE(as_nffg.status == 200, as_nffg.body);
  auto read = parseNffgText(as_nffg.body);
  BOOST_TEST((read == *service.stored("s1")));
  BOOST_TEST(read.sfs.at(0).name == "firewall");
  BOOST_TEST(call("GET", "/NF-FG/status/s1").body ==
             R"({"status":"complete","percentage_completed":100})");

  // Put as NF-FG, read as SF-FG.
  BOOST_REQUIRE_EQUAL(put("n1", firewallAs("n1")).status, 202);
  auto as_sffg = call("GET", "/graphs/n1");
  BOOST_TEST_REQUIRE(as_sffg.status == 200, as_sffg.body);
  auto parsed = corch::graph::parseSffg(as_sffg.body);
  BOOST_TEST_REQUIRE(parsed.ok(), as_sffg.body);
  BOOST_TEST(parsed->id == "n1");
  BOOST_TEST(parsed->sfs.at(0).id == "fw");
  BOOST_TEST((parsed->sfs == service.stored("n1")->sfs));
  BOOST_TEST((parsed->rules == service.stored("n1")->rules));
  BOOST_TEST(call("GET", "/graphs/n1/status").body == R"({"state":"deployed","progress":100})");

  // Both lists hold both graphs.
  BOOST_TEST((listedIds(call("GET", "/NF-FG")) == std::set<std::string>{"n1", "s1"}));
  auto graphs = call("GET", "/graphs").json();
  std::set<std::string> sffg_ids;
  for (const auto& g : graphs["graphs"].GetArray()) sffg_ids.insert(g["id"].GetString());
  BOOST_TEST((sffg_ids == std::set<std::string>{"n1", "s1"}));

  // Updated through the other API, deleted through the first.
  BOOST_TEST(put("s1", firewallAs("s1")).status == 202);
  BOOST_TEST(call("GET", "/graphs/s1").json()["sffg"]["SFs"][0]["id"].GetString() ==
             std::string("fw"));
  BOOST_TEST(call("DELETE", "/graphs/n1").status == 204);
  checkProblem(call("GET", "/NF-FG/n1"), 404, "not-found");
  BOOST_TEST(call("DELETE", "/NF-FG/s1").status == 204);
  checkProblem(call("GET", "/graphs/s1"), 404, "not-found");
}

BOOST_FIXTURE_TEST_CASE(status_follows_the_service, Fixture) {
  BOOST_REQUIRE_EQUAL(put("g1", firewallAs("g1")).status, 202);
  struct Case {
    GraphState state;
    int progress;
    const char* body;
  };
  for (const Case& c :
       {Case{GraphState::Deploying, 40, R"({"status":"in_progress","percentage_completed":40})"},
        Case{GraphState::Updating, 75, R"({"status":"in_progress","percentage_completed":75})"},
        Case{GraphState::Deleting, 10, R"({"status":"in_progress","percentage_completed":10})"},
        Case{GraphState::Failed, 0, R"({"status":"error","percentage_completed":0})"},
        Case{GraphState::Deployed, 100, R"({"status":"complete","percentage_completed":100})"}}) {
    service.setStatus("g1", GraphStatus{c.state, c.progress, std::nullopt});
    BOOST_TEST(call("GET", "/NF-FG/status/g1").body == c.body);
  }
}

BOOST_FIXTURE_TEST_CASE(unknown_keys_are_400_naming_them, Fixture) {
  auto fields = checkProblem(put("g1", replaced(firewall(), "\"name\": \"firewall\",",
                                                "\"name\": \"firewall\", "
                                                "\"gui-position\": {},")),
                             400, "malformed");
  BOOST_TEST(hasPointer(fields, "/forwarding-graph/gui-position"));

  // un-orchestrator's own extensions, which it ignored, each named.
  auto many =
      checkProblem(post(readDoc("tests/data/nffg/bad/unknown-keys.json")), 400, "malformed");
  BOOST_TEST(many.size() > 5u);
  BOOST_TEST(hasPointer(many, "/forwarding-graph/VNFs/0/groups"));
  BOOST_TEST(hasPointer(many, "/forwarding-graph/big-switch/flow-rules/0/match/hard_timeout"));
  BOOST_TEST(service.putCalls() == 0);
}

BOOST_FIXTURE_TEST_CASE(bad_references_are_422_with_nffg_pointers, Fixture) {
  std::string bad = replaced(firewall(), "vnf:fw:inout:0\" } ]", "vnf:nat:inout:0\" } ]");
  auto fields = checkProblem(put("g1", bad), 422, "invalid-argument");
  BOOST_TEST(
      hasPointer(fields, "/forwarding-graph/big-switch/flow-rules/0/actions/0/output_to_port"));
  checkProblem(post(bad), 422, "invalid-argument");
  BOOST_TEST(service.putCalls() == 0);
  BOOST_TEST(call("GET", "/NF-FG").body == R"({"NF-FG":[]})");
}

// Errors of later stages (resolver, network) speak SF-FG; the NF-FG API answers in NF-FG.
BOOST_FIXTURE_TEST_CASE(service_errors_get_nffg_pointers, Fixture) {
  service.failNextPut("g1", Error(ErrorCode::Unsupported, "no template implements 'firewall'",
                                  {{"/sffg/SFs/0/name", "no template implements 'firewall'"},
                                   {"/sffg/flowrules/2/match/port_in", "no vlink left"},
                                   {"/sffg/SFs/0/config/allow-icmp", "not a known option"}}));
  auto fields = checkProblem(put("g1", firewallAs("g1")), 422, "unsupported");
  BOOST_REQUIRE_EQUAL(fields.size(), 3u);
  BOOST_TEST(fields[0].pointer == "/forwarding-graph/VNFs/0/name");
  BOOST_TEST(fields[1].pointer == "/forwarding-graph/big-switch/flow-rules/2/match/port_in");
  BOOST_TEST(fields[2].pointer == "/forwarding-graph/VNFs/0/unify-env-variables/1/variable");
  BOOST_TEST(call("GET", "/NF-FG/status/g1").body ==
             R"({"status":"error","percentage_completed":0})");

  for (auto [code, status, name] : {std::tuple{ErrorCode::Conflict, 409, "conflict"},
                                    std::tuple{ErrorCode::Unavailable, 503, "unavailable"},
                                    std::tuple{ErrorCode::Internal, 500, "internal"}}) {
    service.failNextPut("g1", Error(code, "it went wrong"));
    checkProblem(put("g1", firewallAs("g1")), status, name);
  }
}

BOOST_FIXTURE_TEST_CASE(request_rules_are_the_same_as_for_graphs, Fixture) {
  checkProblem(put("g1", R"({"forwarding-graph": )"), 400, "malformed");
  checkProblem(post(""), 400, "malformed");
  // The body's id, when there is one, must be the URL's.
  auto fields = checkProblem(put("other", firewall()), 422, "invalid-argument");
  BOOST_TEST(hasPointer(fields, "/forwarding-graph/id"));
  // Graph ids follow the same rule.
  checkProblem(put("a%20b", firewall()), 422, "invalid-argument");
  checkProblem(call("GET", "/NF-FG/" + std::string(65, 'a')), 422, "invalid-argument");
  checkProblem(call("GET", "/NF-FG/status/a:b"), 422, "invalid-argument");
  checkProblem(call("DELETE", "/NF-FG/.."), 422, "invalid-argument");
  // Bodies are JSON.
  checkProblem(call("PUT", "/NF-FG/g1", firewall(), "text/plain"), 415, "unsupported-media-type");
  checkProblem(call("POST", "/NF-FG/", firewall(), "text/plain"), 415, "unsupported-media-type");
  BOOST_TEST(service.putCalls() == 0);
  // Unknown paths under /NF-FG are 404, known ones with another method 405 with Allow.
  checkProblem(call("GET", "/NF-FG/status/g1/x"), 404, "not-found");
  checkProblem(call("GET", "/NF-FG/g1/status"), 404, "not-found");
  for (auto [method, path, allow] :
       {std::tuple{"PUT", "/NF-FG/", "GET, POST"}, std::tuple{"DELETE", "/NF-FG", "GET, POST"},
        std::tuple{"POST", "/NF-FG/g1", "GET, PUT, DELETE"},
        std::tuple{"PUT", "/NF-FG/status/g1", "GET"}}) {
    BOOST_TEST_CONTEXT(method << " " << path) {
      auto a = call(method, path);
      checkProblem(a, 405, "method-not-allowed");
      BOOST_TEST(a.header("Allow") == allow);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// The FROG4 orchestrator's session with an un-orchestrator that has authentication on: POST /login
// with {"username", "password"}, the token back as text, then X-Auth-Token on every request.
BOOST_AUTO_TEST_SUITE(authentication)

struct AuthFixture {
  AuthFixture()
      : security(corch::security::testing::enabledManager((dir.path() / "users.json").string(),
                                                          {{"frog4", "frog4-password"}},
                                                          std::chrono::seconds(3600))),
        f(security.get()) {}

  corch::test::TempDir dir{"corch-nffg-auth"};
  std::unique_ptr<corch::security::SecurityManager> security;
  Fixture f;
};

BOOST_FIXTURE_TEST_CASE(frog4_logs_in_and_sends_its_token, AuthFixture) {
  // Without a token, or with one from no login, nothing is served.
  f.token.clear();
  checkProblem(f.post(firewall()), 401, "unauthenticated");
  f.token = "0123456789abcdef";
  checkProblem(f.call("GET", "/NF-FG"), 401, "unauthenticated");
  checkProblem(f.login("frog4", "wrong"), 401, "unauthenticated");
  BOOST_TEST(f.service.putCalls() == 0);

  auto login = f.login("frog4", "frog4-password");
  BOOST_TEST_REQUIRE(login.status == 200, login.body);
  BOOST_TEST(login.content_type == "text/plain; charset=utf-8");
  f.token = login.body;

  auto created = f.post(firewall());
  BOOST_TEST_REQUIRE(created.status == 201, created.body);
  std::string id = created.json()["nffg-uuid"].GetString();
  BOOST_TEST(f.put(id, replaced(firewallAs(id), "\"priority\": 1", "\"priority\": 2")).status ==
             202);
  BOOST_TEST(f.call("GET", "/NF-FG/" + id).status == 200);
  BOOST_TEST((listedIds(f.call("GET", "/NF-FG")) == std::set<std::string>{id}));
  auto status = f.call("GET", "/NF-FG/status/" + id);
  BOOST_TEST(status.body == R"({"status":"complete","percentage_completed":100})");
  BOOST_TEST(f.call("DELETE", "/NF-FG/" + id).status == 204);
}

BOOST_AUTO_TEST_SUITE_END()
