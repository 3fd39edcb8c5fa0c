// corchctl, the built binary, against a REST Server in this process in front of an in-memory
// GraphService: output and exit status of every command (0 success, 1 failed, 2 usage).
#define BOOST_TEST_MODULE corchctl
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "corch/log.h"
#include "rest/fake_graph_service.h"
#include "rest/server.h"
#include "security/certificate.h"
#include "security/testing.h"
#include "util/files.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using corch::Error;
using corch::ErrorCode;
using corch::rest::Server;
using corch::rest::ServerOptions;
using corch::rest::testing::FakeGraphService;

const std::string kCorchctl = CORCH_BINARY_DIR "/orchestrator/corchctl";

const std::string kGraph = R"({"sffg": {"id": "g1", "name": "demo graph",
  "SFs": [{"id": "fw", "name": "firewall", "ports": [{"id": "in"}, {"id": "out"}]}],
  "saps": [{"id": "lan", "type": "interface", "interface": {"if-name": "eth1"}}],
  "flowrules": [{"id": "r1", "priority": 1, "match": {"port_in": "service-access-point:lan"},
                 "actions": {"output_to_port": "sf:fw:in"}}]}})";

struct Run {
  int status = -1;  // exit status
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct Fixture {
  // With `tls`, the server serves HTTPS with a certificate generated in the test's folder.
  explicit Fixture(corch::security::SecurityManager* security = nullptr, bool tls = false) {
    corch::log::setLevel(corch::log::Level::Warn);
    char pattern[] = "/tmp/corchctl-test-XXXXXX";
    BOOST_REQUIRE(mkdtemp(pattern) != nullptr);
    dir = pattern;
    ServerOptions options;
    options.port = 0;
    if (tls) {
      cert = dir / "cert.pem";
      auto made = corch::security::ensureCertificate(cert.string(), (dir / "key.pem").string(),
                                                     {"127.0.0.1"});
      BOOST_REQUIRE(made.ok());
      options.tls = corch::rest::TlsOptions{cert.string(), (dir / "key.pem").string()};
    }
    server.emplace(options, service, security);
    auto started = server->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.error().message());
  }
  ~Fixture() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  fs::path write(const std::string& name, const std::string& content) {
    fs::path path = dir / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  // Runs corchctl with `args` (after --url, unless `with_url` is false), `env` added to this
  // process's environment (without its CORCH_* variables; the session file in the test's folder
  // unless `env` names another) and `input` on its stdin
  // (/dev/null if none); waits for it to exit. corchctl's own request timeout bounds the wait.
  Run run(const std::vector<std::string>& args, bool with_url = true,
          const std::vector<std::string>& env = {},
          const std::optional<std::string>& input = std::nullopt) {
    std::vector<std::string> argv_text = {kCorchctl};
    if (with_url) {
      argv_text.push_back("--url");
      argv_text.push_back(server->url());
    }
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> env_text;
    for (char** e = environ; *e; ++e) {
      std::string var = *e;
      if (var.rfind("CORCH_", 0) != 0) env_text.push_back(var);
    }
    env_text.push_back("CORCH_SESSION=" + (dir / "session.json").string());
    env_text.insert(env_text.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);

    fs::path out = dir / "stdout", err = dir / "stderr", in = "/dev/null";
    if (input) in = write("stdin", *input);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, kCorchctl.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    BOOST_REQUIRE_MESSAGE(rc == 0, "cannot run " << kCorchctl << ": " << std::strerror(rc));
    int wstatus = 0;
    BOOST_REQUIRE(waitpid(pid, &wstatus, 0) == pid);
    Run result;
    result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    result.out = slurp(out);
    result.err = slurp(err);
    BOOST_TEST_MESSAGE("corchctl exit " << result.status << "\nstdout: " << result.out
                                        << "stderr: " << result.err);
    return result;
  }

  FakeGraphService service;
  std::optional<Server> server;
  fs::path dir;
  fs::path cert;  // with TLS
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(corchctl, Fixture)

BOOST_AUTO_TEST_CASE(help_and_usage_errors) {
  auto help = run({"--help"});
  BOOST_TEST(help.status == 0);
  BOOST_TEST(contains(help.out, "usage: corchctl"));
  for (const char* command : {"deploy FILE [--id ID]", "get ID", "list", "delete ID", "status ID",
                              "log ID SF", "login USER", "--token TOKEN", "CORCH_TOKEN"}) {
    BOOST_TEST(contains(help.out, command), command);
  }

  auto deploy_help = run({"deploy", "--help"});
  BOOST_TEST(deploy_help.status == 0);
  BOOST_TEST(contains(deploy_help.out, "usage: corchctl [--url URL] deploy FILE [--id ID]"));

  for (const auto& args : std::vector<std::vector<std::string>>{{},
                                                                {"frobnicate"},
                                                                {"get"},
                                                                {"get", "a", "b"},
                                                                {"log", "g1"},
                                                                {"--bogus", "list"},
                                                                {"list", "--id", "x"},
                                                                {"deploy"},
                                                                {"--timeout", "soon", "list"}}) {
    auto r = run(args);
    BOOST_TEST(r.status == 2);
    BOOST_TEST(contains(r.err, "usage: corchctl"), r.err);
    BOOST_TEST(r.out.empty());
  }
  auto bad_url = run({"--url", "ftp://example.org", "list"}, false);
  BOOST_TEST(bad_url.status == 2);
  BOOST_TEST(contains(bad_url.err, "invalid URL 'ftp://example.org'"));
}

BOOST_AUTO_TEST_CASE(deploy_list_get_status_log_delete) {
  auto file = write("g1.json", kGraph);
  auto deployed = run({"deploy", file.string()});
  BOOST_TEST(deployed.status == 0);
  BOOST_TEST(deployed.out == "graph g1 created: deployed (100%)\n  sf fw created\n");
  BOOST_TEST(deployed.err.empty());
  BOOST_TEST(service.stored("g1").has_value());

  auto again = run({"deploy", file.string()});
  BOOST_TEST(again.status == 0);
  BOOST_TEST(contains(again.out, "graph g1 updated: deployed (100%)"));

  auto list = run({"list"});
  BOOST_TEST(list.status == 0);
  BOOST_TEST(list.out ==
             "ID  NAME        STATE     PROGRESS\n"
             "g1  demo graph  deployed  100%\n");

  auto get = run({"get", "g1"});
  BOOST_TEST(get.status == 0);
  BOOST_TEST(get.out.rfind("{\n  \"sffg\": {\n    \"id\": \"g1\",", 0) == 0, get.out);

  auto status = run({"status", "g1"});
  BOOST_TEST(status.status == 0);
  BOOST_TEST(status.out == "deployed (100%)\n");

  service.setLog("g1", "fw", "firewall started\nrules loaded");
  auto log = run({"log", "g1", "fw"});
  BOOST_TEST(log.status == 0);
  BOOST_TEST(log.out == "firewall started\nrules loaded\n");

  auto deleted = run({"delete", "g1"});
  BOOST_TEST(deleted.status == 0);
  BOOST_TEST(deleted.out == "graph g1 deleted\n");
  BOOST_TEST(!service.stored("g1").has_value());

  auto empty = run({"list"});
  BOOST_TEST(empty.status == 0);
  BOOST_TEST(empty.out == "no graphs\n");
}

BOOST_AUTO_TEST_CASE(deploy_ids) {
  // --id overrides the file's id, and the document sent says so.
  auto file = write("g1.json", kGraph);
  auto renamed = run({"deploy", file.string(), "--id", "copy"});
  BOOST_TEST(renamed.status == 0, renamed.err);
  BOOST_TEST(contains(renamed.out, "graph copy created"));
  BOOST_REQUIRE(service.stored("copy").has_value());
  BOOST_TEST(service.stored("copy")->id == "copy");
  BOOST_TEST(!service.stored("g1").has_value());

  // No id in the file: --id is required (a usage error without it).
  std::string anonymous = kGraph;
  anonymous.erase(anonymous.find("\"id\": \"g1\", "), std::string("\"id\": \"g1\", ").size());
  auto anon_file = write("anon.json", anonymous);
  auto missing = run({"deploy", anon_file.string()});
  BOOST_TEST(missing.status == 2);
  BOOST_TEST(contains(missing.err, "has no sffg.id"), missing.err);
  BOOST_TEST(contains(missing.err, "--id"));
  auto given = run({"--id=anon", "deploy", anon_file.string()});
  BOOST_TEST(given.status == 0, given.err);
  BOOST_TEST(service.stored("anon").has_value());

  auto no_file = run({"deploy", (dir / "missing.json").string()});
  BOOST_TEST(no_file.status == 1);
  BOOST_TEST(contains(no_file.err, "cannot read"));
}

BOOST_AUTO_TEST_CASE(server_errors_print_the_problem) {
  std::string bad = kGraph;
  bad.replace(bad.find("sf:fw:in"), 8, "sf:nat:in");
  auto file = write("bad.json", bad);
  auto r = run({"deploy", file.string()});
  BOOST_TEST(r.status == 1);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(contains(r.err, "corchctl: deploy g1: 422 Unprocessable Content"), r.err);
  BOOST_TEST(contains(r.err, "type: https://corch.dev/problems/invalid-argument"));
  BOOST_TEST(contains(r.err, "detail: "));
  BOOST_TEST(contains(r.err, "\n  /sffg/flowrules/0/actions/output_to_port: "), r.err);

  // The server's 400 for a file that is not JSON (sent as is, since --id names the graph).
  auto not_json = write("not.json", "{\"sffg\": ");
  auto malformed = run({"deploy", not_json.string(), "--id", "g1"});
  BOOST_TEST(malformed.status == 1);
  BOOST_TEST(contains(malformed.err, "400 Bad Request"), malformed.err);

  auto unknown = run({"get", "nope"});
  BOOST_TEST(unknown.status == 1);
  BOOST_TEST(contains(unknown.err, "corchctl: get nope: 404 Not Found\n  detail: no graph nope"),
             unknown.err);
  BOOST_TEST(run({"delete", "nope"}).status == 1);
  BOOST_TEST(run({"status", "nope"}).status == 1);
  BOOST_TEST(run({"log", "nope", "fw"}).status == 1);

  auto invalid_id = run({"status", "a b"});
  BOOST_TEST(invalid_id.status == 1);
  BOOST_TEST(contains(invalid_id.err, "422 Unprocessable Content"));
  BOOST_TEST(contains(invalid_id.err, "invalid graph id 'a b'"), invalid_id.err);
}

BOOST_AUTO_TEST_CASE(status_of_a_failed_graph) {
  service.failNextPut("g1", Error::field(ErrorCode::Unsupported, "/sffg/SFs/0/name",
                                         "no template implements 'firewall'"));
  auto file = write("g1.json", kGraph);
  auto failed = run({"deploy", file.string()});
  BOOST_TEST(failed.status == 1);
  BOOST_TEST(contains(failed.err, "\n  /sffg/SFs/0/name: no template implements 'firewall'"),
             failed.err);

  auto status = run({"status", "g1"});
  BOOST_TEST(status.status == 0);
  BOOST_TEST(status.out ==
             "failed: /sffg/SFs/0/name: no template implements 'firewall'\n"
             "  /sffg/SFs/0/name: no template implements 'firewall'\n");
}

BOOST_AUTO_TEST_CASE(url_from_environment_and_unreachable_server) {
  auto file = write("g1.json", kGraph);
  auto env = run({"deploy", file.string()}, false, {"CORCH_URL=" + server->url()});
  BOOST_TEST(env.status == 0, env.err);

  std::string url = server->url();
  server->stop();
  auto refused = run({"list"}, false, {"CORCH_URL=" + url});
  BOOST_TEST(refused.status == 1);
  // Starts with: under LeakSanitizer, cpprest's tasks still in flight at exit may follow.
  BOOST_TEST(
      refused.err.rfind("corchctl: list: cannot reach " + url + ": Connection refused\n", 0) == 0,
      refused.err);
}

BOOST_AUTO_TEST_SUITE_END()

// corchd with authentication on: `corchctl login` gets a token, the other commands send it.
BOOST_AUTO_TEST_SUITE(authentication)

struct AuthFixture {
  AuthFixture()
      : security(corch::security::testing::enabledManager(
            (users_dir.path() / "users.json").string(), {{"admin", "admin-password"}},
            std::chrono::seconds(3600))),
        f(security.get()) {}

  corch::test::TempDir users_dir{"corchctl-auth"};
  std::unique_ptr<corch::security::SecurityManager> security;
  Fixture f;
};

bool isHexToken(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

BOOST_FIXTURE_TEST_CASE(login_then_token_from_option_or_environment, AuthFixture) {
  auto refused = f.run({"list"});
  BOOST_TEST(refused.status == 1);
  BOOST_TEST(contains(refused.err, "corchctl: list: 401 Unauthorized"), refused.err);
  BOOST_TEST(contains(refused.err, "corchctl login"), refused.err);

  auto wrong = f.run({"login", "admin"}, true, {}, std::string("admin-passwore\n"));
  BOOST_TEST(wrong.status == 1);
  BOOST_TEST(wrong.out.empty());
  BOOST_TEST(contains(wrong.err, "corchctl: login admin: 401 Unauthorized"), wrong.err);
  BOOST_TEST(contains(wrong.err, "wrong user name or password"), wrong.err);
  BOOST_TEST(!contains(wrong.err, "log in first"), wrong.err);
  BOOST_TEST(f.run({"login", "admin"}).status == 1);  // no password on stdin

  auto login = f.run({"login", "admin"}, true, {}, std::string("admin-password\n"));
  BOOST_TEST_REQUIRE(login.status == 0, login.err);
  BOOST_REQUIRE(!login.out.empty() && login.out.back() == '\n');
  std::string token = login.out.substr(0, login.out.size() - 1);
  BOOST_TEST(isHexToken(token), token);
  BOOST_TEST(security->authenticate(token).ok());

  auto file = f.write("g1.json", kGraph);
  auto deployed = f.run({"--token", token, "deploy", file.string()});
  BOOST_TEST(deployed.status == 0, deployed.err);
  auto listed = f.run({"list"}, true, {"CORCH_TOKEN=" + token});
  BOOST_TEST(listed.status == 0, listed.err);
  BOOST_TEST(contains(listed.out, "g1  demo graph  deployed"), listed.out);
  auto bad = f.run({"--token=" + std::string(64, '0'), "status", "g1"});
  BOOST_TEST(bad.status == 1);
  BOOST_TEST(contains(bad.err, "401 Unauthorized"), bad.err);
}

BOOST_AUTO_TEST_CASE(login_without_authentication_prints_a_token) {
  Fixture f;
  auto login = f.run({"login", "anyone"}, true, {}, std::string("anything\n"));
  BOOST_TEST(login.status == 0, login.err);
  BOOST_TEST(login.out.size() == 65u, login.out);
}

BOOST_AUTO_TEST_SUITE_END()

// corchd serves HTTPS with its own certificate: corchctl trusts it by file, and a session saved
// by login --save spares the flags.
BOOST_AUTO_TEST_SUITE(https)

struct TlsFixture {
  TlsFixture()
      : security(corch::security::testing::enabledManager(
            (users_dir.path() / "users.json").string(),
            {{"admin", "admin-password"},
             {"reader", "reader-password", corch::security::Role::User}},
            std::chrono::seconds(3600))),
        f(security.get(), true) {}

  std::string login() {
    auto r = f.run({"--cacert", f.cert.string(), "login", "admin"}, true, {},
                   std::string("admin-password\n"));
    BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
    return r.out.substr(0, r.out.size() - 1);
  }

  corch::test::TempDir users_dir{"corchctl-tls"};
  std::unique_ptr<corch::security::SecurityManager> security;
  Fixture f;
};

BOOST_FIXTURE_TEST_CASE(trusts_the_certificate_by_file_or_not_at_all, TlsFixture) {
  BOOST_REQUIRE(f.server->url().rfind("https://", 0) == 0);
  std::string token = login();
  auto untrusted = f.run({"--token", token, "list"});
  BOOST_TEST(untrusted.status == 1);
  BOOST_TEST(contains(untrusted.err, "--cacert"), untrusted.err);
  auto by_flag = f.run({"--token", token, "--cacert", f.cert.string(), "list"});
  BOOST_TEST(by_flag.status == 0, by_flag.err);
  BOOST_TEST(contains(by_flag.out, "no graphs"), by_flag.out);
  auto by_env = f.run({"list"}, true, {"CORCH_TOKEN=" + token, "CORCH_CACERT=" + f.cert.string()});
  BOOST_TEST(by_env.status == 0, by_env.err);
  auto insecure = f.run({"--token", token, "--insecure", "list"});
  BOOST_TEST(insecure.status == 0, insecure.err);
  auto missing = f.run({"--cacert", (f.dir / "none.pem").string(), "list"});
  BOOST_TEST(missing.status == 2);
  BOOST_TEST(contains(missing.err, "none.pem"), missing.err);
}

BOOST_FIXTURE_TEST_CASE(login_save_then_no_flags, TlsFixture) {
  auto saved = f.run({"--cacert", f.cert.string(), "login", "admin", "--save"}, true, {},
                     std::string("admin-password\n"));
  BOOST_TEST_REQUIRE(saved.status == 0, saved.err);
  const fs::path session = f.dir / "session.json";
  BOOST_TEST(fs::exists(session));
  BOOST_TEST(((fs::status(session).permissions() & fs::perms::all) ==
              (fs::perms::owner_read | fs::perms::owner_write)));
  auto file = f.write("g1.json", kGraph);
  // Neither --url, --token nor --cacert: all from the session.
  auto deployed = f.run({"deploy", file.string()}, false);
  BOOST_TEST(deployed.status == 0, deployed.err);
  auto listed = f.run({"list"}, false);
  BOOST_TEST(contains(listed.out, "g1  demo graph  deployed"), listed.out);
  // The session's token is not sent to another URL.
  auto elsewhere = f.run({"--url", "https://127.0.0.2:1", "list"}, false);
  BOOST_TEST(elsewhere.status == 1);
}

BOOST_FIXTURE_TEST_CASE(users_groups_and_grants, TlsFixture) {
  std::vector<std::string> base = {"--cacert", f.cert.string(), "--token", login()};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), base.begin(), base.end());
    return args;
  };
  auto added = f.run(with({"user", "add", "ann", "user"}), true, {}, std::string("ann-password\n"));
  BOOST_TEST(added.status == 0, added.err);
  BOOST_TEST(f.run(with({"group", "set", "readers", "ann"})).status == 0);
  auto users = f.run(with({"user", "list"}));
  BOOST_TEST(users.status == 0, users.err);
  BOOST_TEST(contains(users.out, "ann     user   readers"), users.out);
  auto groups = f.run(with({"group", "list"}));
  BOOST_TEST(contains(groups.out, "readers  ann"), groups.out);
  auto file = f.write("g1.json", kGraph);
  BOOST_TEST(f.run(with({"deploy", file.string()})).status == 0);
  auto granted = f.run(with({"grant", "g1", "group:readers", "user:reader"}));
  BOOST_TEST(granted.status == 0, granted.err);
  BOOST_TEST(contains(granted.out, "g1     reader  readers"), granted.out);
  auto shown = f.run(with({"grant", "g1", "--show"}));
  BOOST_TEST(shown.out == granted.out);
  auto bad = f.run(with({"grant", "g1", "user:ghost"}));
  BOOST_TEST(bad.status == 1);
  BOOST_TEST(contains(bad.err, "/users/0: unknown user 'ghost'"), bad.err);
  BOOST_TEST(f.run(with({"user", "delete", "ann"})).status == 0);
  BOOST_TEST(f.run(with({"group", "delete", "readers"})).status == 0);
  BOOST_TEST(f.run(with({"user", "frobnicate"})).status == 2);
}

BOOST_AUTO_TEST_SUITE_END()
