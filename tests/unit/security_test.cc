// The security manager (orchestrator/security/): password hashes, the users file, tokens, and the
// manager that ties them together for POST /login and the checking of requests; and the "auth"
// part of corchd's configuration.
#define BOOST_TEST_MODULE security
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "corch/log.h"
#include "node/config.h"
#include "security/hex.h"
#include "security/password.h"
#include "security/security_manager.h"
#include "security/testing.h"
#include "security/token_store.h"
#include "security/user_store.h"
#include "util/files.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using corch::ErrorCode;
using corch::security::IssuedToken;
using corch::security::kMinIterations;
using corch::security::Role;
using corch::security::SecurityManager;
using corch::security::SecurityOptions;
using corch::security::TokenStore;
using corch::security::UserStore;
using corch::security::WallClock;
using corch::test::readFile;
using corch::test::TempDir;
using corch::test::writeFile;

// The cheapest cost allowed keeps the tests fast; the code paths are those of the default.
constexpr uint32_t kIterations = kMinIterations;

struct Quiet {
  Quiet() { corch::log::setLevel(corch::log::Level::Error); }
};
BOOST_TEST_GLOBAL_FIXTURE(Quiet);

using FakeClock = corch::security::testing::ManualClock;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool isHexToken(const std::string& token) {
  return token.size() == 64 && token.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::unique_ptr<UserStore> openStore(const fs::path& file) {
  auto store = UserStore::open(file.string(), kIterations);
  if (!store.ok()) BOOST_FAIL(store.error().message());
  return std::move(*store);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(passwords)

BOOST_AUTO_TEST_CASE(hex_round_trip) {
  using corch::security::fromHex;
  using corch::security::toHex;
  BOOST_TEST(toHex(std::string("\x00\x7f\xff", 3)) == "007fff");
  BOOST_TEST(*fromHex("007FfF") == std::string("\x00\x7f\xff", 3));
  BOOST_TEST(!fromHex("abc").has_value());
  BOOST_TEST(!fromHex("zz").has_value());
}

BOOST_AUTO_TEST_CASE(hash_and_verify) {
  using corch::security::hashPassword;
  using corch::security::verifyPassword;
  auto hash = hashPassword("correct horse", kIterations);
  BOOST_REQUIRE(hash.ok());
  BOOST_TEST(hash->algorithm == "pbkdf2-sha256");
  BOOST_TEST(hash->iterations == kIterations);
  BOOST_TEST(hash->salt.size() == 16u);
  BOOST_TEST(hash->hash.size() == 32u);
  BOOST_TEST(verifyPassword("correct horse", *hash));
  BOOST_TEST(!verifyPassword("correct horsE", *hash));
  BOOST_TEST(!verifyPassword("", *hash));

  // A fresh salt each time: the same password never hashes the same.
  auto again = hashPassword("correct horse", kIterations);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->salt != hash->salt);
  BOOST_TEST(again->hash != hash->hash);

  // Anything changed in the stored hash fails it.
  auto tampered = *hash;
  tampered.hash[0] = static_cast<char>(tampered.hash[0] ^ 1);
  BOOST_TEST(!verifyPassword("correct horse", tampered));
  auto other_algorithm = *hash;
  other_algorithm.algorithm = "md5";
  BOOST_TEST(!verifyPassword("correct horse", other_algorithm));
  auto weak = *hash;
  weak.iterations = 1000;
  BOOST_TEST(!verifyPassword("correct horse", weak));
  BOOST_TEST(!corch::security::verifyNoPassword("correct horse", kIterations));
}

BOOST_AUTO_TEST_CASE(iteration_bounds_and_password_rules) {
  using corch::security::checkNewPassword;
  using corch::security::hashPassword;
  auto weak = hashPassword("password1", 99999);
  BOOST_REQUIRE(!weak.ok());
  BOOST_TEST((weak.error().code() == ErrorCode::InvalidArgument));
  BOOST_TEST(corch::security::kDefaultIterations >= 100000u);
  BOOST_TEST(checkNewPassword("12345678").ok());
  BOOST_TEST(!checkNewPassword("1234567").ok());
  BOOST_TEST(!checkNewPassword(std::string(1025, 'x')).ok());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(users)

BOOST_AUTO_TEST_CASE(names_and_roles) {
  using corch::security::checkUserName;
  using corch::security::parseRole;
  BOOST_TEST(checkUserName("admin").ok());
  BOOST_TEST(checkUserName("ops.team-1_x@site").ok());
  BOOST_TEST(!checkUserName("").ok());
  BOOST_TEST(!checkUserName("a b").ok());
  BOOST_TEST(!checkUserName("a/b").ok());
  BOOST_TEST(!checkUserName(std::string(65, 'a')).ok());
  for (Role role : {Role::Admin, Role::Operator, Role::User}) {
    BOOST_TEST((parseRole(corch::security::toString(role)) == role));
  }
  BOOST_TEST(!parseRole("root").has_value());
}

BOOST_AUTO_TEST_CASE(missing_file_is_an_empty_store_created_by_the_first_user) {
  TempDir dir;
  fs::path file = dir.path() / "sub" / "users.json";
  auto store = openStore(file);
  BOOST_TEST(store->size() == 0u);
  BOOST_TEST(!fs::exists(file));

  BOOST_REQUIRE(store->addUser("admin", "s3cret-pass", Role::Admin).ok());
  BOOST_REQUIRE(fs::exists(file));
  struct stat st {};
  BOOST_REQUIRE(::stat(file.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  // Only the file and its lock: no temporary file is left behind.
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(file.parent_path())) {
    names.insert(entry.path().filename().string());
  }
  BOOST_TEST((names == std::set<std::string>{"users.json", "users.json.lock"}));

  std::string text = readFile(file);
  BOOST_TEST(contains(text, "\"name\": \"admin\""));
  BOOST_TEST(contains(text, "\"role\": \"admin\""));
  BOOST_TEST(contains(text, "\"algorithm\": \"pbkdf2-sha256\""));
  BOOST_TEST(!contains(text, "s3cret-pass"));

  // Another store on the same file reads it back.
  auto reopened = openStore(file);
  auto user = reopened->find("admin");
  BOOST_REQUIRE(user.has_value());
  BOOST_TEST((user->role == Role::Admin));
  BOOST_TEST(user->password.iterations == kIterations);
}

BOOST_AUTO_TEST_CASE(authenticate_right_wrong_and_unknown) {
  TempDir dir;
  auto store = openStore(dir.path() / "users.json");
  BOOST_REQUIRE(store->addUser("op", "operator-pass", Role::Operator).ok());
  auto good = store->authenticate("op", "operator-pass");
  BOOST_REQUIRE(good.ok());
  BOOST_TEST(good->name == "op");
  BOOST_TEST((good->role == Role::Operator));

  auto wrong = store->authenticate("op", "operator-pasS");
  auto unknown = store->authenticate("nobody", "operator-pass");
  BOOST_REQUIRE(!wrong.ok());
  BOOST_REQUIRE(!unknown.ok());
  BOOST_TEST((wrong.error().code() == ErrorCode::Unauthenticated));
  BOOST_TEST((unknown.error().code() == ErrorCode::Unauthenticated));
  // The answer does not tell an unknown user from a wrong password.
  BOOST_TEST(wrong.error().message() == unknown.error().message());
}

BOOST_AUTO_TEST_CASE(add_user_refuses_duplicates_and_bad_input) {
  TempDir dir;
  auto store = openStore(dir.path() / "users.json");
  BOOST_REQUIRE(store->addUser("admin", "first-pass", Role::Admin).ok());
  auto twice = store->addUser("admin", "second-pass", Role::User);
  BOOST_REQUIRE(!twice.ok());
  BOOST_TEST((twice.error().code() == ErrorCode::AlreadyExists));
  BOOST_TEST(store->authenticate("admin", "first-pass").ok());  // unchanged

  auto short_password = store->addUser("bob", "short", Role::User);
  BOOST_REQUIRE(!short_password.ok());
  BOOST_TEST((short_password.error().code() == ErrorCode::InvalidArgument));
  auto bad_name = store->addUser("bob smith", "long-enough", Role::User);
  BOOST_REQUIRE(!bad_name.ok());
  BOOST_TEST((bad_name.error().code() == ErrorCode::InvalidArgument));
  BOOST_TEST(store->size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_user_added_elsewhere_is_seen_without_restart) {
  TempDir dir;
  fs::path file = dir.path() / "users.json";
  auto daemon = openStore(file);
  BOOST_TEST(daemon->size() == 0u);
  // `corchd --add-user` in another process: another store on the same file.
  auto tool = openStore(file);
  BOOST_REQUIRE(tool->addUser("late", "late-comer", Role::User).ok());
  BOOST_TEST(daemon->authenticate("late", "late-comer").ok());
  BOOST_TEST((daemon->names() == std::vector<std::string>{"late"}));
}

BOOST_AUTO_TEST_CASE(concurrent_adders_lose_no_user) {
  TempDir dir;
  fs::path file = dir.path() / "users.json";
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto store = UserStore::open(file.string(), kIterations);
      if (!store || !(*store)->addUser("user" + std::to_string(i), "password-" + std::to_string(i),
                                       Role::User)) {
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(openStore(file)->size() == 4u);
}

BOOST_AUTO_TEST_CASE(invalid_files_are_refused_naming_the_field) {
  TempDir dir;
  fs::path file = dir.path() / "users.json";
  struct Case {
    std::string text;
    std::string pointer;
  };
  const std::string good_password =
      R"({"algorithm": "pbkdf2-sha256", "iterations": 100000, "salt": "00ff", "hash": "abcd"})";
  for (
      const Case& c : {
          Case{"{", ""},
          Case{R"({"version": 2, "users": []})", "/version"},
          Case{R"({"version": 1, "users": [], "roles": []})", "/roles"},
          Case{R"({"version": 1, "users": [{"name": "a", "role": "root", "password": )" +
                   good_password + "}]}",
               "/users/0/role"},
          Case{
              R"({"version": 1, "users": [{"name": "a", "role": "user", "password": {"algorithm": "pbkdf2-sha256", "iterations": 10, "salt": "00", "hash": "00"}}]})",
              "/users/0/password/iterations"},
          Case{
              R"({"version": 1, "users": [{"name": "a", "role": "user", "password": {"algorithm": "pbkdf2-sha256", "iterations": 100000, "salt": "xyz", "hash": "00"}}]})",
              "/users/0/password/salt"},
          Case{R"({"version": 1, "users": [{"name": "a", "role": "user", "password": )" +
                   good_password + R"(}, {"name": "a", "role": "user", "password": )" +
                   good_password + "}]}",
               "/users/1/name"},
      }) {
    BOOST_TEST_CONTEXT(c.text) {
      writeFile(file, c.text, 0600);
      auto store = UserStore::open(file.string(), kIterations);
      BOOST_REQUIRE(!store.ok());
      BOOST_TEST(contains(store.error().message(), file.string()), store.error().message());
      if (!c.pointer.empty()) {
        BOOST_REQUIRE(!store.error().fields().empty());
        BOOST_TEST(store.error().fields()[0].pointer == c.pointer);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(groups_grants_and_changes_of_users) {
  TempDir dir;
  auto store = openStore(dir.path() / "users.json");
  BOOST_REQUIRE(store->addUser("admin", "admin-pass", Role::Admin).ok());
  bool created = false;
  corch::security::UserChange ann;
  ann.password = "ann-password";
  ann.role = Role::User;
  BOOST_REQUIRE(store->setUser("ann", ann, created).ok());
  BOOST_TEST(created);
  BOOST_REQUIRE(store->setUser("bob", ann, created).ok());
  BOOST_REQUIRE(store->setGroup("readers", {"bob"}, created).ok());
  BOOST_TEST(created);
  BOOST_REQUIRE(store->setGrant("g1", {{"ann"}, {"readers"}}).ok());
  BOOST_TEST(store->granted("ann", "g1"));
  BOOST_TEST(store->granted("bob", "g1"));  // through the group
  BOOST_TEST(!store->granted("admin", "g1"));
  BOOST_TEST(!store->granted("ann", "g2"));

  // Another process sees it all (one file), and a file of it is valid.
  auto other = openStore(dir.path() / "users.json");
  BOOST_TEST(other->granted("bob", "g1"));
  BOOST_TEST(other->groupsOf("bob") == std::set<std::string>{"readers"});
  auto round = corch::security::parseDirectory(readFile(dir.path() / "users.json"));
  BOOST_REQUIRE(round.ok());
  BOOST_TEST(round->grants.at("g1").groups.count("readers") == 1u);

  // A user's groups set by a change: out of readers, so no longer granted.
  corch::security::UserChange regroup;
  regroup.groups = std::set<std::string>{};
  BOOST_REQUIRE(store->setUser("bob", regroup, created).ok());
  BOOST_TEST(!created);
  BOOST_TEST(!store->granted("bob", "g1"));
  regroup.groups = std::set<std::string>{"nope"};
  auto unknown = store->setUser("bob", regroup, created);
  BOOST_REQUIRE(!unknown.ok());
  BOOST_TEST(unknown.error().fields()[0].pointer == "/groups/0");

  // Deleting a user or a group removes it from the grants; the last admin stays.
  BOOST_REQUIRE(store->deleteUser("ann").ok());
  BOOST_TEST(store->grant("g1").users.empty());
  BOOST_REQUIRE(store->deleteGroup("readers").ok());
  BOOST_TEST(store->grant("g1").empty());
  BOOST_TEST((store->deleteUser("admin").error().code() == ErrorCode::Conflict));
  corch::security::UserChange demote;
  demote.role = Role::User;
  BOOST_TEST((store->setUser("admin", demote, created).error().code() == ErrorCode::Conflict));
  BOOST_TEST((store->deleteUser("nobody").error().code() == ErrorCode::NotFound));
  BOOST_TEST((store->find("admin")->role == Role::Admin));

  // Files naming unknown members are refused naming the field.
  for (auto [text, pointer] :
       {std::pair{R"({"version": 1, "users": [], "groups": [{"name": "g", "members": ["x"]}]})",
                  "/groups/0/members/0"},
        {R"({"version": 1, "users": [], "grants": [{"graph": "g", "users": [], "groups": ["x"]}]})",
         "/grants/0/groups/0"},
        {R"({"version": 1, "users": [], "grants": [{"graph": "g", "users": []}]})",
         "/grants/0/groups"}}) {
    BOOST_TEST_CONTEXT(text) {
      auto refused = corch::security::parseDirectory(text);
      BOOST_REQUIRE(!refused.ok());
      BOOST_TEST(refused.error().fields()[0].pointer == pointer);
    }
  }
}

BOOST_AUTO_TEST_CASE(print_and_parse_round_trip) {
  std::map<std::string, corch::security::User, std::less<>> users;
  auto hash = corch::security::hashPassword("round-trip", kIterations);
  BOOST_REQUIRE(hash.ok());
  users.emplace("u", corch::security::User{"u", Role::Operator, *hash});
  auto parsed = corch::security::parseUsers(corch::security::printUsers(users));
  if (!parsed.ok()) BOOST_FAIL(parsed.error().message());
  BOOST_REQUIRE(parsed->count("u") == 1u);
  BOOST_TEST((parsed->at("u").password == *hash));
  BOOST_TEST((parsed->at("u").role == Role::Operator));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tokens)

BOOST_AUTO_TEST_CASE(issue_check_revoke) {
  FakeClock clock;
  TokenStore store(3600s, clock.fn());
  auto a = store.issue("alice", Role::Operator);
  auto b = store.issue("alice", Role::Operator);
  BOOST_REQUIRE(a.ok() && b.ok());
  BOOST_TEST(isHexToken(a->token), a->token);
  BOOST_TEST(a->token != b->token);
  BOOST_TEST((a->expires == clock.now() + 3600s));

  auto session = store.check(a->token);
  BOOST_REQUIRE(session.ok());
  BOOST_TEST(session->user == "alice");
  BOOST_TEST((session->role == Role::Operator));

  auto unknown = store.check(std::string(64, '0'));
  BOOST_REQUIRE(!unknown.ok());
  BOOST_TEST((unknown.error().code() == ErrorCode::Unauthenticated));
  BOOST_TEST(!store.check("").ok());

  BOOST_TEST(store.revoke(a->token));
  BOOST_TEST(!store.revoke(a->token));
  BOOST_TEST(!store.check(a->token).ok());
  BOOST_TEST(store.check(b->token).ok());
}

BOOST_AUTO_TEST_CASE(tokens_expire) {
  FakeClock clock;
  TokenStore store(60s, clock.fn());
  auto token = store.issue("bob", Role::User);
  BOOST_REQUIRE(token.ok());
  clock.advance(59s);
  BOOST_TEST(store.check(token->token).ok());
  clock.advance(1s);
  auto expired = store.check(token->token);
  BOOST_REQUIRE(!expired.ok());
  BOOST_TEST((expired.error().code() == ErrorCode::Unauthenticated));
  BOOST_TEST(contains(expired.error().message(), "expired"), expired.error().message());
  BOOST_TEST(contains(expired.error().message(), corch::security::formatTime(token->expires)));
  BOOST_TEST(store.size() == 0u);  // forgotten
}

BOOST_AUTO_TEST_CASE(the_store_is_bounded) {
  FakeClock clock;
  TokenStore store(3600s, clock.fn(), 3);
  std::vector<IssuedToken> issued;
  for (int i = 0; i < 5; ++i) {
    auto t = store.issue("u", Role::User);
    BOOST_REQUIRE(t.ok());
    issued.push_back(*t);
    clock.advance(1s);
  }
  BOOST_TEST(store.size() == 3u);
  // The ones expiring first made room.
  BOOST_TEST(!store.check(issued[0].token).ok());
  BOOST_TEST(!store.check(issued[1].token).ok());
  BOOST_TEST(store.check(issued[4].token).ok());
}

BOOST_AUTO_TEST_CASE(format_time_is_rfc3339_utc) {
  BOOST_TEST(corch::security::formatTime(WallClock::time_point(std::chrono::seconds(0))) ==
             "1970-01-01T00:00:00Z");
  BOOST_TEST(corch::security::formatTime(WallClock::time_point(std::chrono::seconds(1700000000))) ==
             "2023-11-14T22:13:20Z");
}

BOOST_AUTO_TEST_CASE(tokens_from_many_threads) {
  TokenStore store(3600s);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto token = store.issue("u", Role::User);
        if (!token || !store.check(token->token)) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(bad.load() == 0);
  BOOST_TEST(store.size() == 800u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(manager)

BOOST_AUTO_TEST_CASE(disabled_gives_a_token_to_anyone) {
  auto manager = SecurityManager::create(SecurityOptions{});
  BOOST_REQUIRE(manager.ok());
  BOOST_TEST(!(*manager)->enabled());
  BOOST_TEST((*manager)->users() == nullptr);
  auto token = (*manager)->login("whoever", "whatever");
  BOOST_REQUIRE(token.ok());
  BOOST_TEST(isHexToken(token->token));
  auto session = (*manager)->authenticate(token->token);
  BOOST_REQUIRE(session.ok());
  BOOST_TEST(session->user == "whoever");
}

BOOST_AUTO_TEST_CASE(enabled_without_users_starts_and_says_how_to_make_one) {
  TempDir dir;
  SecurityOptions options;
  options.enabled = true;
  options.pbkdf2_iterations = kIterations;
  auto no_file = SecurityManager::create(options);
  BOOST_REQUIRE(!no_file.ok());
  BOOST_TEST(contains(no_file.error().message(), "users-file"), no_file.error().message());

  // No users file yet: the manager exists, but nobody can log in until the first admin does.
  options.users_file = (dir.path() / "users.json").string();
  auto no_user = SecurityManager::create(options);
  BOOST_REQUIRE(no_user.ok());
  BOOST_TEST((*no_user)->needsFirstUser());
  auto refused = (*no_user)->login("admin", "whatever-pass");
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.error().code() == ErrorCode::Unavailable));
  BOOST_TEST(contains(refused.error().message(), "--add-user"), refused.error().message());
  BOOST_REQUIRE(
      openStore(dir.path() / "users.json")->addUser("admin", "first-pass", Role::Admin).ok());
  BOOST_TEST(!(*no_user)->needsFirstUser());
  BOOST_TEST((*no_user)->login("admin", "first-pass").ok());

  writeFile(dir.path() / "users.json", R"({"version": 1, "users": []})", 0600);
  BOOST_TEST(SecurityManager::create(options).ok());
  writeFile(dir.path() / "users.json", "not json", 0600);
  auto broken = SecurityManager::create(options);
  BOOST_REQUIRE(!broken.ok());
  BOOST_TEST(contains(broken.error().message(), options.users_file), broken.error().message());
}

BOOST_AUTO_TEST_CASE(enabled_logs_users_in) {
  TempDir dir;
  fs::path file = dir.path() / "users.json";
  BOOST_REQUIRE(openStore(file)->addUser("admin", "admin-password", Role::Admin).ok());
  FakeClock clock;
  SecurityOptions options;
  options.enabled = true;
  options.users_file = file.string();
  options.token_lifetime = 120s;
  options.pbkdf2_iterations = kIterations;
  auto manager = SecurityManager::create(options, clock.fn());
  if (!manager.ok()) BOOST_FAIL(manager.error().message());
  BOOST_TEST((*manager)->enabled());
  BOOST_TEST((*manager)->users()->size() == 1u);

  auto wrong = (*manager)->login("admin", "nope");
  BOOST_REQUIRE(!wrong.ok());
  BOOST_TEST((wrong.error().code() == ErrorCode::Unauthenticated));
  BOOST_TEST(!(*manager)->login("root", "admin-password").ok());

  auto token = (*manager)->login("admin", "admin-password");
  BOOST_REQUIRE(token.ok());
  BOOST_TEST((token->expires == clock.now() + 120s));
  auto session = (*manager)->authenticate(token->token);
  BOOST_REQUIRE(session.ok());
  BOOST_TEST((session->role == Role::Admin));
  clock.advance(120s);
  BOOST_TEST(!(*manager)->authenticate(token->token).ok());
}

BOOST_AUTO_TEST_CASE(token_lifetime_bounds) {
  SecurityOptions options;
  options.token_lifetime = 59s;
  BOOST_TEST(!SecurityManager::create(options).ok());
  options.token_lifetime = std::chrono::seconds(7 * 24 * 3600 + 1);
  BOOST_TEST(!SecurityManager::create(options).ok());
  options.token_lifetime = 60s;
  BOOST_TEST(SecurityManager::create(options).ok());
}

BOOST_AUTO_TEST_SUITE_END()

// The "auth" keys of corchd's configuration and its flags (orchestrator/node/config.h).
BOOST_AUTO_TEST_SUITE(configuration)

corch::Result<corch::node::CommandLine> commandLine(std::vector<std::string> args) {
  args.insert(args.begin(), "corchd");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return corch::node::parseCommandLine(static_cast<int>(argv.size()), argv.data(), {});
}

BOOST_AUTO_TEST_CASE(auth_keys) {
  using corch::node::parseConfig;
  auto defaults = parseConfig("{}");
  BOOST_REQUIRE(defaults.ok());
  BOOST_TEST(defaults->auth_enabled);  // on unless the configuration turns it off
  BOOST_TEST(defaults->tls_enabled);
  BOOST_TEST(defaults->token_lifetime_s == 3600u);
  BOOST_TEST(corch::node::usersFile(*defaults) == "/var/lib/corch/users.json");

  auto set = parseConfig(
      R"({"state-dir": "/srv/corch", "auth": {"enabled": true, "token-lifetime-s": 600}})");
  BOOST_REQUIRE(set.ok());
  BOOST_TEST(set->auth_enabled);
  BOOST_TEST(set->token_lifetime_s == 600u);
  BOOST_TEST(corch::node::usersFile(*set) == "/srv/corch/users.json");
  auto file = parseConfig(R"({"auth": {"users-file": "/etc/corch/users.json"}})");
  BOOST_REQUIRE(file.ok());
  BOOST_TEST(corch::node::usersFile(*file) == "/etc/corch/users.json");

  for (auto [text, pointer] :
       {std::pair{R"({"auth": {"enabled": 1}})", "/auth/enabled"},
        {R"({"auth": {"token-lifetime-s": 59}})", "/auth/token-lifetime-s"},
        {R"({"auth": {"token-lifetime-s": 604801}})", "/auth/token-lifetime-s"},
        {R"({"auth": {"users-file": 3}})", "/auth/users-file"},
        {R"({"auth": {"password": "admin"}})", "/auth/password"}}) {
    BOOST_TEST_CONTEXT(text) {
      auto refused = parseConfig(text);
      BOOST_REQUIRE(!refused.ok());
      BOOST_REQUIRE(!refused.error().fields().empty());
      BOOST_TEST(refused.error().fields()[0].pointer == pointer);
    }
  }
}

BOOST_AUTO_TEST_CASE(tls_initial_admin_and_initial_graphs) {
  using corch::node::parseConfig;
  auto defaults = parseConfig(R"({"state-dir": "/srv/corch"})");
  BOOST_REQUIRE(defaults.ok());
  BOOST_TEST(corch::node::tlsCertificateFile(*defaults) == "/srv/corch/tls/cert.pem");
  BOOST_TEST(corch::node::tlsPrivateKeyFile(*defaults) == "/srv/corch/tls/key.pem");
  BOOST_TEST(defaults->initial_admin.empty());
  BOOST_TEST(defaults->initial_graphs.empty());
  BOOST_TEST(defaults->restore_graphs);

  auto set = parseConfig(R"({"tls": {"enabled": false, "certificate": "/c.pem",
      "private-key": "/k.pem"}, "initial-admin": {"name": "root", "password-file": "/pw"},
      "initial-graphs": [{"id": "a", "file": "/a.json"}, {"id": "b", "file": "b.json"}],
      "restore-graphs": false})");
  BOOST_REQUIRE(set.ok());
  BOOST_TEST(!set->tls_enabled);
  BOOST_TEST(corch::node::tlsCertificateFile(*set) == "/c.pem");
  BOOST_TEST(corch::node::tlsPrivateKeyFile(*set) == "/k.pem");
  BOOST_TEST(set->initial_admin == "root");
  BOOST_TEST(set->initial_admin_password_file == "/pw");
  BOOST_REQUIRE(set->initial_graphs.size() == 2u);
  BOOST_TEST((set->initial_graphs[1] == corch::node::InitialGraph{"b", "b.json"}));
  BOOST_TEST(!set->restore_graphs);

  for (auto [text, pointer] :
       {std::pair{R"({"tls": {"enabled": "no"}})", "/tls/enabled"},
        {R"({"tls": {"cert": "/c.pem"}})", "/tls/cert"},
        {R"({"initial-admin": {"name": "root"}})", "/initial-admin/password-file"},
        {R"({"initial-admin": {"name": "a b", "password-file": "/pw"}})", "/initial-admin/name"},
        {R"({"initial-admin": {"name": "root", "password": "x"}})", "/initial-admin/password"},
        {R"({"initial-graphs": {}})", "/initial-graphs"},
        {R"({"initial-graphs": [{"id": "a"}]})", "/initial-graphs/0/file"},
        {R"({"initial-graphs": [{"id": "a", "file": "x", "n": 1}]})", "/initial-graphs/0/n"},
        {R"({"initial-graphs": [{"id": "a", "file": "x"}, {"id": "a", "file": "y"}]})",
         "/initial-graphs/1/id"},
        {R"({"initial-graphs": [{"id": 3, "file": "x"}]})", "/initial-graphs/0/id"},
        {R"({"restore-graphs": 1})", "/restore-graphs"}}) {
    BOOST_TEST_CONTEXT(text) {
      auto refused = parseConfig(text);
      BOOST_REQUIRE(!refused.ok());
      BOOST_REQUIRE(!refused.error().fields().empty());
      BOOST_TEST(refused.error().fields()[0].pointer == pointer);
    }
  }

  auto flags = commandLine({"--no-tls", "--tls-cert", "/c", "--tls-key", "/k", "--initial-admin",
                            "root", "--initial-admin-password-file", "/pw"});
  BOOST_REQUIRE(flags.ok());
  BOOST_TEST(!flags->config.tls_enabled);
  BOOST_TEST(flags->config.tls_certificate == "/c");
  BOOST_TEST(flags->config.initial_admin == "root");
  BOOST_TEST(!commandLine({"--initial-admin", "root"}).ok());  // and its password file
  auto idempotent = commandLine({"--add-user", "a", "--role", "admin", "--if-missing"});
  BOOST_REQUIRE(idempotent.ok());
  BOOST_TEST(idempotent->if_missing);
  BOOST_TEST(!commandLine({"--if-missing"}).ok());
}

BOOST_AUTO_TEST_CASE(auth_flags) {
  auto on = commandLine({"--auth", "on", "--users-file", "/tmp/u.json"});
  BOOST_REQUIRE(on.ok());
  BOOST_TEST(on->config.auth_enabled);
  BOOST_TEST(on->config.users_file == "/tmp/u.json");
  BOOST_TEST(!on->add_user.has_value());
  BOOST_TEST(!commandLine({"--auth", "yes"}).ok());

  auto add = commandLine({"--add-user", "admin", "--role", "admin"});
  BOOST_REQUIRE(add.ok());
  BOOST_TEST(*add->add_user == "admin");
  BOOST_TEST(add->role == "admin");
  BOOST_TEST(!commandLine({"--add-user", "admin"}).ok());  // the role is never implied
  BOOST_TEST(!commandLine({"--role", "admin"}).ok());
}

BOOST_AUTO_TEST_SUITE_END()
