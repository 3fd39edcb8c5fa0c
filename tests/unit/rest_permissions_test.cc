// Who may call what on the northbound API (DESIGN section 5, "Security"): every endpoint of both
// APIs and of the admin resources, called by every kind of caller (no token, an expired token, a
// wrong token, a user the graph is not granted to, a user it is granted to directly, one it is
// granted to through a group, an operator, an admin), each answer's status asserted from one
// table. The server is real (HTTP on a free port), the graph service the in-memory fake, the
// users a real users file.
#define BOOST_TEST_MODULE rest_permissions
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <cpprest/http_client.h>

#include "corch/log.h"
#include "graph/sffg_codec.h"
#include "rest/fake_graph_service.h"
#include "rest/server.h"
#include "security/testing.h"
#include "util/files.h"
#include "util/http_answer.h"

namespace {

using namespace std::chrono_literals;
using corch::rest::Server;
using corch::rest::ServerOptions;
using corch::rest::testing::FakeGraphService;
using corch::security::Role;
using corch::test::Answer;
namespace http = web::http;

struct Quiet {
  Quiet() { corch::log::setLevel(corch::log::Level::Error); }
};
BOOST_TEST_GLOBAL_FIXTURE(Quiet);

std::string sffg(const std::string& id) {
  return R"({"sffg": {"id": ")" + id + R"(", "name": "graph )" + id + R"(",
    "SFs": [{"id": "fw", "name": "firewall", "ports": [{"id": "in"}, {"id": "out"}]}],
    "saps": [{"id": "lan", "type": "interface", "interface": {"if-name": "eth1"}}],
    "flowrules": [{"id": "r1", "priority": 1, "match": {"port_in": "service-access-point:lan"},
                   "actions": {"output_to_port": "sf:fw:in"}}]}})";
}

const std::string kNffg = R"({"forwarding-graph": {"name": "nf", "VNFs": [],
  "end-points": [], "big-switch": {"flow-rules": []}}})";

// The callers, in the order of the table's columns.
enum Caller { kNone, kExpired, kWrong, kUser, kGranted, kViaGroup, kOperator, kAdmin, kCallers };
const char* const kCallerNames[] = {"no token", "expired token", "wrong token",
                                    "user",     "granted user",  "user granted by group",
                                    "operator", "admin"};

struct Row {
  std::string method;
  std::string path;
  std::optional<std::string> body;  // sent as application/json
  int expected[kCallers];
};

// "shared" is granted to ann directly and to the group "readers" (cat); "other" to nobody.
// Everything a row may change is put back before the next one (Fixture::reset).
const std::string kUserBody = R"({"password": "new-user-pass", "role": "user"})";
const std::vector<Row> kTable = {
    //                                                none expd wrng user grnt grp  oper admn
    {"GET", "/graphs", {}, {401, 401, 401, 200, 200, 200, 200, 200}},
    {"PUT", "/graphs/shared", sffg("shared"), {401, 401, 401, 403, 403, 403, 200, 200}},
    {"PUT", "/graphs/fresh", sffg("fresh"), {401, 401, 401, 403, 403, 403, 201, 201}},
    {"GET", "/graphs/shared", {}, {401, 401, 401, 403, 200, 200, 200, 200}},
    {"GET", "/graphs/other", {}, {401, 401, 401, 403, 403, 403, 200, 200}},
    {"GET", "/graphs/missing", {}, {401, 401, 401, 403, 403, 403, 404, 404}},
    {"GET", "/graphs/shared/status", {}, {401, 401, 401, 403, 200, 200, 200, 200}},
    {"GET", "/graphs/other/status", {}, {401, 401, 401, 403, 403, 403, 200, 200}},
    {"GET", "/graphs/shared/sfs/fw/log", {}, {401, 401, 401, 403, 200, 200, 200, 200}},
    {"GET", "/graphs/other/sfs/fw/log", {}, {401, 401, 401, 403, 403, 403, 200, 200}},
    {"DELETE", "/graphs/shared", {}, {401, 401, 401, 403, 403, 403, 204, 204}},
    {"GET", "/graphs/shared/grants", {}, {401, 401, 401, 403, 403, 403, 200, 200}},
    {"PUT",
     "/graphs/shared/grants",
     R"({"users": ["ann"], "groups": ["readers"]})",
     {401, 401, 401, 403, 403, 403, 200, 200}},
    {"POST", "/NF-FG/", kNffg, {401, 401, 401, 403, 403, 403, 201, 201}},
    {"GET", "/NF-FG", {}, {401, 401, 401, 200, 200, 200, 200, 200}},
    {"PUT", "/NF-FG/shared", kNffg, {401, 401, 401, 403, 403, 403, 202, 202}},
    {"GET", "/NF-FG/shared", {}, {401, 401, 401, 403, 200, 200, 200, 200}},
    {"GET", "/NF-FG/other", {}, {401, 401, 401, 403, 403, 403, 200, 200}},
    {"GET", "/NF-FG/status/shared", {}, {401, 401, 401, 403, 200, 200, 200, 200}},
    {"GET", "/NF-FG/status/other", {}, {401, 401, 401, 403, 403, 403, 200, 200}},
    {"DELETE", "/NF-FG/shared", {}, {401, 401, 401, 403, 403, 403, 204, 204}},
    {"POST",
     "/login",
     R"({"username": "admin", "password": "admin-pass"})",
     {200, 200, 200, 200, 200, 200, 200, 200}},
    {"GET", "/users", {}, {401, 401, 401, 403, 403, 403, 403, 200}},
    {"GET", "/users/ann", {}, {401, 401, 401, 403, 403, 403, 403, 200}},
    {"PUT", "/users/newcomer", kUserBody, {401, 401, 401, 403, 403, 403, 403, 201}},
    {"PUT", "/users/bob", R"({"groups": []})", {401, 401, 401, 403, 403, 403, 403, 200}},
    {"DELETE", "/users/temp", {}, {401, 401, 401, 403, 403, 403, 403, 204}},
    {"GET", "/groups", {}, {401, 401, 401, 403, 403, 403, 403, 200}},
    {"GET", "/groups/readers", {}, {401, 401, 401, 403, 403, 403, 403, 200}},
    {"PUT", "/groups/fresh", R"({"members": ["bob"]})", {401, 401, 401, 403, 403, 403, 403, 201}},
    {"DELETE", "/groups/temp", {}, {401, 401, 401, 403, 403, 403, 403, 204}},
    {"GET", "/nothing/here", {}, {401, 401, 401, 404, 404, 404, 404, 404}},
    {"OPTIONS", "/graphs/shared", {}, {401, 401, 401, 204, 204, 204, 204, 204}},
    {"PATCH", "/graphs/shared", {}, {401, 401, 401, 405, 405, 405, 405, 405}},
};

struct Fixture {
  Fixture()
      : users_file(dir.path() / "users.json"),
        security(corch::security::testing::enabledManager(users_file.string(),
                                                          {{"admin", "admin-pass", Role::Admin},
                                                           {"op", "operator-pass", Role::Operator},
                                                           {"bob", "bob-password", Role::User},
                                                           {"ann", "ann-password", Role::User},
                                                           {"cat", "cat-password", Role::User}},
                                                          3600s, clock.fn())) {
    ServerOptions options;
    options.port = 0;
    server.emplace(options, service, security.get());
    auto started = server->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.error().message());
    http::client::http_client_config config;
    config.set_timeout(10s);
    client.emplace(web::uri(server->url()), config);

    // The expired token is issued an hour and a second before the others.
    tokens[kExpired] = login("bob", "bob-password");
    clock.advance(3601s);
    tokens[kWrong] = std::string(64, 'a');
    tokens[kUser] = login("bob", "bob-password");
    tokens[kGranted] = login("ann", "ann-password");
    tokens[kViaGroup] = login("cat", "cat-password");
    tokens[kOperator] = login("op", "operator-pass");
    tokens[kAdmin] = login("admin", "admin-pass");
  }

  std::string login(const std::string& user, const std::string& password) {
    auto a = call("POST", "/login", "",
                  R"({"username": ")" + user + R"(", "password": ")" + password + "\"}");
    BOOST_REQUIRE_MESSAGE(a.status == 200, user << ": " << a.body);
    return a.body;
  }

  Answer call(const std::string& method, const std::string& path, const std::string& token,
              const std::optional<std::string>& body = std::nullopt) {
    http::http_request r{http::method(method)};
    r.set_request_uri(web::uri(path));
    if (!token.empty()) r.headers().add("Authorization", "Bearer " + token);
    if (body) r.set_body(*body, "application/json");
    return corch::test::toAnswer(client->request(r).get());
  }

  void put(const std::string& id) {
    auto graph = corch::graph::parseSffg(sffg(id));
    BOOST_REQUIRE(graph.ok());
    BOOST_REQUIRE(service.putGraph(id, std::move(*graph)).ok());
    service.setLog(id, "fw", "log of " + id + "\n");
  }

  // The state every row starts from.
  void reset() {
    auto* users = security->users();
    for (const auto& g : {"fresh"}) (void)service.deleteGraph(g);
    auto listed = service.listGraphs();
    BOOST_REQUIRE(listed.ok());
    for (const auto& g : *listed) {
      if (g.id != "shared" && g.id != "other") (void)service.deleteGraph(g.id);
    }
    put("shared");
    put("other");
    (void)users->deleteUser("newcomer");
    (void)users->deleteGroup("fresh");
    bool created = false;
    if (!users->find("temp")) {
      corch::security::UserChange temp;
      temp.password = "temp-password";
      temp.role = Role::User;
      BOOST_REQUIRE(users->setUser("temp", temp, created).ok());
    }
    BOOST_REQUIRE(users->setGroup("readers", {"cat"}, created).ok());
    BOOST_REQUIRE(users->setGroup("temp", {}, created).ok());
    BOOST_REQUIRE(users->setGrant("shared", {{"ann"}, {"readers"}}).ok());
  }

  corch::test::TempDir dir{"rest-permissions"};
  std::filesystem::path users_file;
  corch::security::testing::ManualClock clock;
  std::unique_ptr<corch::security::SecurityManager> security;
  FakeGraphService service;
  std::optional<Server> server;
  std::optional<http::client::http_client> client;
  std::string tokens[kCallers];
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(every_endpoint_by_every_caller, Fixture) {
  size_t checked = 0;
  for (const auto& row : kTable) {
    for (int caller = 0; caller < kCallers; ++caller) {
      reset();
      BOOST_TEST_CONTEXT(row.method << " " << row.path << " by " << kCallerNames[caller]) {
        Answer a = call(row.method, row.path, tokens[caller], row.body);
        BOOST_TEST(a.status == row.expected[caller], a.status << " " << a.body);
        if (a.status == 401) {
          BOOST_TEST(contains(a.header("WWW-Authenticate"), "Bearer"));
          BOOST_TEST(a.content_type == "application/problem+json");
        }
        if (a.status == 403) {
          BOOST_TEST(a.content_type == "application/problem+json");
          BOOST_TEST(contains(a.body, "permission-denied"), a.body);
        }
        ++checked;
      }
    }
  }
  BOOST_TEST(checked == kTable.size() * kCallers);
}

BOOST_FIXTURE_TEST_CASE(lists_show_a_user_only_the_graphs_granted_to_them, Fixture) {
  reset();
  auto ids = [&](Caller caller, const std::string& path) {
    Answer a = call("GET", path, tokens[caller]);
    BOOST_REQUIRE(a.status == 200);
    return std::pair{contains(a.body, "\"shared\""), contains(a.body, "\"other\"")};
  };
  for (const std::string path : {"/graphs", "/NF-FG"}) {
    BOOST_TEST_CONTEXT(path) {
      BOOST_TEST((ids(kUser, path) == std::pair{false, false}));
      BOOST_TEST((ids(kGranted, path) == std::pair{true, false}));
      BOOST_TEST((ids(kViaGroup, path) == std::pair{true, false}));
      BOOST_TEST((ids(kOperator, path) == std::pair{true, true}));
      BOOST_TEST((ids(kAdmin, path) == std::pair{true, true}));
    }
  }
}

BOOST_FIXTURE_TEST_CASE(users_groups_and_grants_over_rest, Fixture) {
  reset();
  const std::string& admin = tokens[kAdmin];
  // A new user, in a group, granted a graph through it: reads it at once.
  auto made = call("PUT", "/users/dan", admin,
                   std::string(R"({"password": "dan-password", "role": "user"})"));
  BOOST_TEST(made.status == 201, made.body);
  BOOST_TEST(call("PUT", "/users/dan", admin, std::string(R"({"groups": ["readers"]})")).status ==
             200);
  auto shown = call("GET", "/users/dan", admin);
  BOOST_TEST(shown.status == 200);
  BOOST_TEST(shown.body == R"({"name":"dan","role":"user","groups":["readers"]})");
  std::string dan = login("dan", "dan-password");
  BOOST_TEST(call("GET", "/graphs/shared", dan).status == 200);
  BOOST_TEST(call("GET", "/graphs/other", dan).status == 403);
  // Promoted, the same token may write: roles are read at each request.
  BOOST_TEST(call("PUT", "/users/dan", admin, std::string(R"({"role": "operator"})")).status ==
             200);
  BOOST_TEST(call("PUT", "/graphs/other", dan, sffg("other")).status == 200);
  // A new password ends the old sessions; deleting the user too.
  BOOST_TEST(
      call("PUT", "/users/dan", admin, std::string(R"({"password": "dan-second"})")).status == 200);
  BOOST_TEST(call("GET", "/graphs", dan).status == 401);
  dan = login("dan", "dan-second");
  BOOST_TEST(call("DELETE", "/users/dan", admin).status == 204);
  BOOST_TEST(call("GET", "/graphs", dan).status == 401);
  BOOST_TEST(call("GET", "/users/dan", admin).status == 404);

  // Errors name the field.
  struct Bad {
    std::string method, path, body;
    int status;
    std::string pointer;
  };
  for (const auto& bad : std::vector<Bad>{
           {"PUT", "/users/eve", R"({"role": "user"})", 422, "/password"},
           {"PUT", "/users/eve", R"({"password": "eve-password"})", 422, "/role"},
           {"PUT", "/users/eve", R"({"password": "short", "role": "user"})", 422, "/password"},
           {"PUT", "/users/eve", R"({"password": "eve-password", "role": "root"})", 422, "/role"},
           {"PUT", "/users/eve", R"({"password": "eve-password", "role": "user", "x": 1})", 422,
            "/x"},
           {"PUT", "/users/bob", R"({"groups": ["readers", "nope"]})", 422, "/groups/1"},
           {"PUT", "/groups/g", R"({"members": ["bob", "nobody"]})", 422, "/members/1"},
           {"PUT", "/groups/g", R"({})", 422, "/members"},
           {"PUT", "/graphs/shared/grants", R"({"users": ["ann", "ghost"]})", 422, "/users/1"},
           {"PUT", "/graphs/shared/grants", R"({"groups": ["ghosts"]})", 422, "/groups/0"},
           {"PUT", "/users/admin", R"({"role": "user"})", 409, "/role"},
       }) {
    BOOST_TEST_CONTEXT(bad.method << " " << bad.path << " " << bad.body) {
      Answer a = call(bad.method, bad.path, admin, bad.body);
      BOOST_TEST(a.status == bad.status, a.body);
      BOOST_TEST(contains(a.body, "\"pointer\":\"" + bad.pointer + "\""), a.body);
    }
  }
  BOOST_TEST(call("DELETE", "/users/admin", admin).status == 409);  // the last admin
  BOOST_TEST(call("PUT", "/graphs/missing/grants", admin, std::string("{}")).status == 404);
  BOOST_TEST(call("PUT", "/users/bad%20name", admin, kUserBody).status == 422);

  // Deleting a graph forgets its grant: a new graph of the same id is not granted.
  BOOST_TEST(call("DELETE", "/graphs/shared", admin).status == 204);
  BOOST_TEST(call("PUT", "/graphs/shared", admin, sffg("shared")).status == 201);
  BOOST_TEST(call("GET", "/graphs/shared", tokens[kGranted]).status == 403);
  auto grant = call("GET", "/graphs/shared/grants", admin);
  BOOST_TEST(grant.body == R"({"graph":"shared","users":[],"groups":[]})");
}

BOOST_AUTO_TEST_CASE(no_user_yet_answers_503_saying_how_to_create_one) {
  corch::test::TempDir dir{"rest-permissions"};
  corch::security::SecurityOptions options;
  options.enabled = true;
  options.users_file = (dir.path() / "users.json").string();
  options.pbkdf2_iterations = corch::security::kMinIterations;
  auto security = corch::security::SecurityManager::create(options);
  BOOST_REQUIRE(security.ok());
  FakeGraphService service;
  ServerOptions server_options;
  server_options.port = 0;
  Server server(server_options, service, security->get());
  BOOST_REQUIRE(server.start().ok());
  http::client::http_client client(web::uri(server.url()));
  for (const std::string path : {"/graphs", "/login"}) {
    http::http_request r{path == "/login" ? http::methods::POST : http::methods::GET};
    r.set_request_uri(web::uri(path));
    if (path == "/login") r.set_body(std::string(R"({"username": "a", "password": "b"})"));
    Answer a = corch::test::toAnswer(client.request(r).get());
    BOOST_TEST(a.status == 503);
    BOOST_TEST(contains(a.body, "--add-user"), a.body);
  }
  // The first admin, added by another process: served at once.
  auto store =
      corch::security::UserStore::open(options.users_file, corch::security::kMinIterations);
  BOOST_REQUIRE(store.ok());
  BOOST_REQUIRE((*store)->addUser("root", "root-password", Role::Admin).ok());
  http::http_request r{http::methods::GET};
  r.set_request_uri(web::uri("/graphs"));
  BOOST_TEST(corch::test::toAnswer(client.request(r).get()).status == 401);
}
