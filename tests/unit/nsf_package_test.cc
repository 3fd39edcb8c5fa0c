// Unit tests of the native driver's package handling: manifest parsing and validation, the
// configuration as CORCH_CFG_* variables, and the shipped packages (nsf/) and their templates
// (sf-repository/templates/) as the resolver's repository reads them.
#define BOOST_TEST_MODULE nsf_package
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "compute/common/config_env.h"
#include "compute/native/manifest.h"
#include "resolver/repository.h"
#include "util/files.h"

namespace corch {
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

namespace fs = std::filesystem;
namespace native = corch::drivers::native;
namespace common = corch::drivers::common;
using corch::ErrorCode;

using corch::test::TempDir;

namespace {

const std::string kSource = CORCH_SOURCE_DIR;

void writeFile(const fs::path& p, const std::string& text, bool executable = false) {
  std::ofstream(p) << text;
  ::chmod(p.c_str(), executable ? 0755 : 0644);
}

std::string messageOf(const corch::Result<native::Manifest>& r) {
  return r.ok() ? std::string() : r.error().message();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_full_manifest_is_parsed) {
  auto m = native::parseManifest(R"({
    "name": "fw", "version": "1.2", "description": "d",
    "ports": {"min": 2, "max": 3},
    "scripts": {"start": "bin/start", "stop": "stop", "update": "up", "status": "st"},
    "dependencies": ["iptables", "ip"]})",
                                 "m.json");
  BOOST_REQUIRE_MESSAGE(m.ok(), messageOf(m));
  BOOST_TEST(m->name == "fw");
  BOOST_TEST(m->version == "1.2");
  BOOST_TEST(*m->ports_min == 2u);
  BOOST_TEST(*m->ports_max == 3u);
  BOOST_TEST(m->start == "bin/start");
  BOOST_TEST(m->update == "up");
  BOOST_TEST(m->status == "st");
  BOOST_TEST(m->dependencies.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_minimal_manifest_gets_the_default_scripts) {
  auto m = native::parseManifest(R"({"name": "x", "version": "1"})", "m.json");
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->start == "start");
  BOOST_TEST(m->stop == "stop");
  BOOST_TEST(m->update.empty());
  BOOST_TEST(!m->ports_min.has_value());
}

BOOST_AUTO_TEST_CASE(bad_manifests_are_refused_with_the_reason) {
  struct Case {
    std::string text;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {"{", "not valid JSON"},
           {"[]", "must be a JSON object"},
           {R"({"version": "1"})", "'name' is required"},
           {R"({"name": "x"})", "'version' is required"},
           {R"({"name": "a b", "version": "1"})", "field 'name'"},
           {R"({"name": "x", "version": 1})", "'version' must be a string"},
           {R"({"name": "x", "version": "1", "colour": "red"})", "unknown field 'colour'"},
           {R"({"name": "x", "version": "1", "ports": {"min": 3, "max": 2}})", "exceeds"},
           {R"({"name": "x", "version": "1", "ports": {"min": -1}})", "'ports.min'"},
           {R"({"name": "x", "version": "1", "scripts": {"start": "/bin/sh"}})", "scripts.start"},
           {R"({"name": "x", "version": "1", "scripts": {"stop": "../x"}})", "scripts.stop"},
           {R"({"name": "x", "version": "1", "scripts": {"restart": "r"}})", "scripts.restart"},
           {R"({"name": "x", "version": "1", "dependencies": "ip"})", "'dependencies'"},
           {R"({"name": "x", "version": "1", "dependencies": ["ip", "ip"]})", "twice"},
       }) {
    auto m = native::parseManifest(c.text, "pkg/manifest.json");
    BOOST_TEST_CONTEXT(c.text) {
      BOOST_REQUIRE(!m.ok());
      BOOST_TEST(m.error().code() == ErrorCode::InvalidArgument);
      BOOST_TEST(m.error().message().find("invalid NSF manifest pkg/manifest.json: ") == 0);
      BOOST_TEST(m.error().message().find(c.says) != std::string::npos, m.error().message());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_package_needs_its_scripts_and_dependencies) {
  TempDir dir;
  const std::string path = "/usr/bin:/bin:/usr/sbin:/sbin";
  auto missing = native::loadPackage((dir.path() / "none").string(), path);
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error().code() == ErrorCode::NotFound);
  BOOST_TEST(!native::loadPackage("relative/path", path).ok());

  auto no_manifest = native::loadPackage(dir.path().string(), path);
  BOOST_REQUIRE(!no_manifest.ok());
  BOOST_TEST(no_manifest.error().message().find("manifest.json") != std::string::npos);

  writeFile(dir.path() / "manifest.json",
            R"({"name": "t", "version": "1", "dependencies": ["sh"]})");
  writeFile(dir.path() / "start", "#!/bin/sh\n", true);
  auto no_stop = native::loadPackage(dir.path().string(), path);
  BOOST_REQUIRE(!no_stop.ok());
  BOOST_TEST(no_stop.error().message().find("stop script") != std::string::npos);

  writeFile(dir.path() / "stop", "#!/bin/sh\n", false);
  auto not_exec = native::loadPackage(dir.path().string(), path);
  BOOST_REQUIRE(!not_exec.ok());
  BOOST_TEST(not_exec.error().message().find("not executable") != std::string::npos);

  ::chmod((dir.path() / "stop").c_str(), 0755);
  auto ok = native::loadPackage(dir.path().string(), path);
  BOOST_REQUIRE(ok.ok());
  BOOST_TEST(ok->start == (dir.path() / "start").string());
  BOOST_TEST(ok->update.empty());

  writeFile(dir.path() / "manifest.json",
            R"({"name": "t", "version": "1", "dependencies": ["corch-no-such-tool"]})");
  auto no_dep = native::loadPackage(dir.path().string(), path);
  BOOST_REQUIRE(!no_dep.ok());
  BOOST_TEST(no_dep.error().code() == ErrorCode::Unavailable);
  BOOST_TEST(no_dep.error().message().find("corch-no-such-tool") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(configuration_becomes_environment_variables) {
  BOOST_TEST(common::configVariable("allowed-tcp-ports") == "CORCH_CFG_ALLOWED_TCP_PORTS");
  BOOST_TEST(common::configVariable("allow.icmp6") == "CORCH_CFG_ALLOW_ICMP6");

  auto env = common::configToEnv(R"({"allowed-tcp-ports": [22, 80], "allow-icmp": true,
      "name": "a b", "mtu": 1500, "ratio": 0.5, "none": null, "empty": [], "off": false,
      "words": ["x", "y"], "nested": {"k": [1]}})");
  BOOST_REQUIRE(env.ok());
  std::map<std::string, std::string> vars(env->begin(), env->end());
  BOOST_TEST(vars.size() == 10u);
  BOOST_TEST(vars["CORCH_CFG_ALLOWED_TCP_PORTS"] == "22 80");
  BOOST_TEST(vars["CORCH_CFG_ALLOW_ICMP"] == "true");
  BOOST_TEST(vars["CORCH_CFG_OFF"] == "false");
  BOOST_TEST(vars["CORCH_CFG_NAME"] == "a b");
  BOOST_TEST(vars["CORCH_CFG_MTU"] == "1500");
  BOOST_TEST(vars["CORCH_CFG_RATIO"] == "0.5");
  BOOST_TEST(vars["CORCH_CFG_NONE"] == "");
  BOOST_TEST(vars["CORCH_CFG_EMPTY"] == "");
  BOOST_TEST(vars["CORCH_CFG_WORDS"] == "x y");
  BOOST_TEST(vars["CORCH_CFG_NESTED"] == R"({"k":[1]})");

  BOOST_TEST(common::configToEnv("")->empty());
  BOOST_TEST(!common::configToEnv("[1]").ok());
  BOOST_TEST(!common::configToEnv("{").ok());
  auto clash = common::configToEnv(R"({"a-b": 1, "a_b": 2})");
  BOOST_REQUIRE(!clash.ok());
  BOOST_TEST(clash.error().message().find("CORCH_CFG_A_B") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_shipped_packages_are_valid) {
  const std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  auto fw = native::loadPackage(kSource + "/nsf/firewall", path);
  BOOST_REQUIRE_MESSAGE(fw.ok(), (fw.ok() ? "" : fw.error().message()));
  BOOST_TEST(fw->manifest.name == "firewall");
  BOOST_TEST(*fw->manifest.ports_min == 2u);
  BOOST_TEST(*fw->manifest.ports_max == 2u);
  BOOST_TEST(!fw->update.empty());
  auto br = native::loadPackage(kSource + "/nsf/bridge", path);
  BOOST_REQUIRE_MESSAGE(br.ok(), (br.ok() ? "" : br.error().message()));
  BOOST_TEST(*br->manifest.ports_min == 2u);
  BOOST_TEST(*br->manifest.ports_max == 16u);
}

BOOST_AUTO_TEST_CASE(the_shipped_templates_are_valid) {
  auto repo = corch::resolver::openFolderRepository(kSource + "/sf-repository/templates");
  BOOST_REQUIRE_MESSAGE(repo.ok(), (repo.ok() ? "" : repo.error().message()));
  auto fw = (*repo)->findById("firewall-nsf");
  BOOST_REQUIRE_MESSAGE(fw.ok(), (fw.ok() ? "" : fw.error().message()));
  BOOST_TEST(fw->capability == "firewall");
  BOOST_TEST(fw->type == "native");
  BOOST_TEST(fw->image_uri == "nsf/firewall");
  BOOST_TEST(fw->ports_min == 2u);
  BOOST_TEST(fw->ports_max == 2u);
  BOOST_TEST(fw->config.at("allowed-tcp-ports").type == "list");
  BOOST_TEST(fw->config.at("allowed-tcp-ports").default_json == "[]");
  BOOST_TEST(fw->config.at("allow-icmp").default_json == "false");
  auto br = (*repo)->findById("bridge-nsf");
  BOOST_REQUIRE_MESSAGE(br.ok(), (br.ok() ? "" : br.error().message()));
  BOOST_TEST(br->capability == "bridge");
  BOOST_TEST(br->ports_max == 16u);
  // Every dependency a template names is one its package's manifest names too.
  auto fw_pkg = native::parseManifest(
      [] {
        std::ifstream in(kSource + "/nsf/firewall/manifest.json");
        return std::string(std::istreambuf_iterator<char>(in), {});
      }(),
      "firewall");
  BOOST_REQUIRE(fw_pkg.ok());
  for (const auto& dep : fw->dependencies) {
    BOOST_TEST((std::find(fw_pkg->dependencies.begin(), fw_pkg->dependencies.end(), dep) !=
                fw_pkg->dependencies.end()),
               dep);
  }
}
