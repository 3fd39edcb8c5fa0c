#define BOOST_TEST_MODULE resolver
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include "graph/model.h"
#include "resolver/config.h"
#include "resolver/executable.h"
#include "resolver/repository.h"
#include "resolver/resolver.h"
#include "resolver/sha256.h"

namespace corch {
// For Boost.Test's messages.
std::ostream& operator<<(std::ostream& out, ErrorCode code) { return out << codeName(code); }
}  // namespace corch

namespace fs = std::filesystem;
using namespace corch;
using namespace corch::resolver;

namespace {

const std::string kData = std::string(CORCH_SOURCE_DIR) + "/tests/data/repository";
const std::string kCatalog = kData + "/catalog";
const std::string kImages = kData + "/images";

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A node whose drivers, dependencies and free resources a test sets.
class TestNode : public NodeView {
 public:
  std::map<std::string, std::string> unusable;  // driver type -> why not
  std::set<std::string> missing;                // dependencies not installed
  Resources free{8, 16384, 100000};

  Result<void> driverUsable(const std::string& type) const override {
    auto it = unusable.find(type);
    if (it != unusable.end()) return Error(ErrorCode::Unavailable, it->second);
    return Ok();
  }
  bool dependencyPresent(const std::string& dependency) const override {
    return !missing.contains(dependency);
  }
  Resources freeResources() const override { return free; }
};

graph::Sf makeSf(std::string id, std::string capability, size_t ports,
                 std::optional<std::string> pinned = std::nullopt, std::string config = "{}") {
  graph::Sf sf;
  sf.id = std::move(id);
  sf.name = std::move(capability);
  sf.template_id = std::move(pinned);
  for (size_t i = 0; i < ports; ++i) sf.ports.push_back({"0x" + std::to_string(i + 1), ""});
  sf.config_json = std::move(config);
  return sf;
}

graph::Graph makeGraph(std::vector<graph::Sf> sfs) {
  graph::Graph g;
  g.id = "g1";
  g.sfs = std::move(sfs);
  return g;
}

// A fresh temporary folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("corch-resolver-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// The catalog's graph template: a wire between its two ports. The file of the same name in
// tests/data/repository/catalog was written before graph templates were checked: its graph has
// no internal-port SAP for its two ports, so the repository refuses it. Until that file is this
// text, the catalog is read from a copy (catalogCopy()) that has this one.
constexpr const char* kNatGraph = R"({
  "id": "nat-graph",
  "functional-capability": "nat",
  "graph": {
    "sffg": {
      "id": "nat",
      "SFs": [],
      "saps": [
        {"id": "lan", "type": "internal-port", "internal-port": {"port-index": "0"}},
        {"id": "wan", "type": "internal-port", "internal-port": {"port-index": 1}}
      ],
      "flowrules": [
        {"id": "out", "priority": 1, "match": {"port_in": "service-access-point:lan"},
         "actions": {"output_to_port": "service-access-point:wan"}},
        {"id": "in", "priority": 1, "match": {"port_in": "service-access-point:wan"},
         "actions": {"output_to_port": "service-access-point:lan"}}
      ]
    }
  },
  "ports": {"min": 2, "max": 2}
}
)";

// The catalog, copied into `dir` with kNatGraph as its nat-graph.json.
fs::path catalogCopy(const TempDir& dir) {
  for (const auto& entry : fs::directory_iterator(kCatalog)) {
    fs::copy_file(entry.path(), dir.path / entry.path().filename());
  }
  std::ofstream(dir.path / "nat-graph.json", std::ios::trunc) << kNatGraph;
  return dir.path;
}

// The catalog folder, opened, and a resolver over it.
struct Catalog {
  TempDir dir;
  fs::path folder = catalogCopy(dir);
  std::unique_ptr<Repository> repo;
  std::unique_ptr<Resolver> resolver;
  TestNode node;

  Catalog() {
    auto opened = openFolderRepository(folder.string());
    BOOST_TEST_REQUIRE(opened.ok(), (opened.ok() ? "" : opened.error().message()));
    repo = std::move(opened).value();
    resolver = std::make_unique<Resolver>(*repo, kImages);
  }

  Result<std::vector<Resolution>> resolve(std::vector<graph::Sf> sfs) {
    return resolver->resolve(makeGraph(std::move(sfs)), node);
  }

  // The one template chosen for a one-SF graph ("" and a test failure if resolution failed).
  std::string pick(graph::Sf sf) {
    auto r = resolve({std::move(sf)});
    BOOST_TEST(r.ok(), (r.ok() ? "" : r.error().message()));
    if (!r.ok() || r->size() != 1) return "";
    return r->front().tmpl.id;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(repository)

BOOST_AUTO_TEST_CASE(loads_the_catalog) {
  Catalog c;
  auto all = c.repo->all();
  BOOST_TEST_REQUIRE(all.ok());
  BOOST_TEST(all->size() == 14u);  // README.txt is not a template
  for (size_t i = 1; i < all->size(); ++i) BOOST_TEST(((*all)[i - 1].id < (*all)[i].id));

  auto firewalls = c.repo->findByCapability("firewall");
  BOOST_TEST_REQUIRE(firewalls.ok());
  std::vector<std::string> ids;
  for (const auto& t : *firewalls) ids.push_back(t.id);
  BOOST_TEST(ids == (std::vector<std::string>{"firewall-docker", "firewall-dpdk", "firewall-nsf",
                                              "firewall-vm"}),
             boost::test_tools::per_element());

  auto none = c.repo->findByCapability("teleporter");
  BOOST_TEST_REQUIRE(none.ok());
  BOOST_TEST(none->empty());

  auto fw = c.repo->findById("firewall-nsf");
  BOOST_TEST_REQUIRE(fw.ok());
  BOOST_TEST(fw->capability == "firewall");
  BOOST_TEST(fw->type == "native");
  BOOST_TEST(fw->description == "iptables in a namespace");
  BOOST_TEST(fw->image_uri == "nsf/firewall");
  BOOST_TEST(fw->ports_min == 2u);
  BOOST_TEST(fw->ports_max == 2u);
  BOOST_TEST(fw->port_technology == "veth");
  BOOST_TEST(fw->cpu_cores == 0.1);
  BOOST_TEST(fw->memory_mb == 8u);
  BOOST_TEST(fw->disk_mb == 1u);
  BOOST_TEST(fw->dependencies == std::vector<std::string>{"iptables"},
             boost::test_tools::per_element());
  BOOST_TEST(fw->config.size() == 5u);
  BOOST_TEST(fw->config.at("allowed-tcp-ports").type == "list");
  BOOST_TEST(fw->config.at("allowed-tcp-ports").items == "int");
  BOOST_TEST(fw->config.at("allowed-tcp-ports").default_json == "[]");
  BOOST_TEST(fw->config.at("allow-icmp").default_json == "false");
  BOOST_TEST(fw->config.at("log-prefix").default_json == "");
  BOOST_TEST(fw->source == (c.folder / "firewall-nsf.json").string());
  BOOST_TEST(!fw->isSubGraph());

  auto docker = c.repo->findById("firewall-docker");
  BOOST_TEST_REQUIRE(docker.ok());
  BOOST_TEST(docker->port_technology == "veth");  // the default
  auto vm = c.repo->findById("firewall-vm");
  BOOST_TEST_REQUIRE(vm.ok());
  BOOST_TEST(vm->port_technology == "tap");
  BOOST_TEST(vm->cpu_cores == 1.0);

  auto signed_nsf = c.repo->findById("signed-nsf");
  BOOST_TEST_REQUIRE(signed_nsf.ok());
  // The file gives the digest in upper case; it is kept in lower case, as sha256File() gives it.
  auto digest = sha256File(kImages + "/signed.img");
  BOOST_TEST_REQUIRE(digest.ok());
  BOOST_TEST(signed_nsf->image_sha256 == *digest);

  auto nat = c.repo->findById("nat-graph");
  BOOST_TEST_REQUIRE(nat.ok());
  BOOST_TEST(nat->isSubGraph());
  BOOST_TEST(nat->type.empty());
  BOOST_TEST(contains(nat->graph_json, "\"sffg\""));
  BOOST_TEST_REQUIRE(nat->graph != nullptr);
  BOOST_TEST(nat->graph->saps.size() == 2u);
  BOOST_TEST((nat->graph->saps[1].type == graph::SapType::InternalPort));
  BOOST_TEST(nat->graph->saps[1].port_index == 1u);
}

BOOST_AUTO_TEST_CASE(unknown_id_is_not_found) {
  Catalog c;
  auto r = c.repo->findById("nope");
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::NotFound);
  BOOST_TEST(contains(r.error().message(), "no template 'nope'"));
}

BOOST_AUTO_TEST_CASE(missing_folder_is_not_found) {
  auto r = openFolderRepository(kData + "/no-such-folder");
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::NotFound);
  BOOST_TEST(contains(r.error().message(), "no-such-folder"));
}

BOOST_AUTO_TEST_CASE(empty_folder_is_an_empty_repository) {
  TempDir dir;
  auto r = openFolderRepository(dir.path.string());
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST((*r)->all()->empty());
}

// Each folder of invalid/ holds one broken template (or two clashing ones); opening it must fail
// with an error naming the file and the JSON pointer of the field.
BOOST_AUTO_TEST_CASE(invalid_templates_are_rejected_with_file_and_pointer) {
  const std::map<std::string, std::vector<std::string>> expected = {
      {"bad-default", {"fw.json", "/config/allowed-tcp-ports/default/1", "must be an int"}},
      {"bad-json", {"fw.json", "not valid JSON", "line 3"}},
      {"bad-sha256", {"fw.json", "/image/sha256"}},
      {"bad-technology", {"fw.json", "/ports/technology", "veth, internal, tap, vhost-user"}},
      {"bad-type", {"fw.json", "/type", "native, docker, kvm, dpdk"}},
      {"duplicate-ids", {"'fw'", "a.json", "b.json"}},
      {"duplicate-member", {"fw.json", "/type", "given twice"}},
      {"graph-with-type", {"fw.json", "/type", "not allowed with 'graph'"}},
      {"image-and-graph", {"fw.json", "/graph", "not both"}},
      {"items-on-bool", {"fw.json", "/config/verbose/items"}},
      {"min-max", {"fw.json", "/ports/min", "(3 > 2)"}},
      {"missing-type", {"fw.json", "/type", "is required"}},
      {"missing-uri", {"fw.json", "/image/uri", "is required"}},
      {"negative-memory", {"fw.json", "/resources/memory-mb"}},
      {"string-list-default", {"fw.json", "/config/names/default/1", "must be a string"}},
      {"unknown-field", {"fw.json", "/image/signature", "unknown field 'signature'"}},
  };
  size_t seen = 0;
  for (const auto& entry : fs::directory_iterator(kData + "/invalid")) {
    const std::string name = entry.path().filename().string();
    BOOST_TEST_CONTEXT("case " << name) {
      auto it = expected.find(name);
      BOOST_TEST_REQUIRE((it != expected.end()), "no expectation for invalid/" << name);
      ++seen;
      auto r = openFolderRepository(entry.path().string());
      BOOST_TEST_REQUIRE(!r.ok());
      BOOST_TEST(r.error().code() == ErrorCode::InvalidArgument);
      BOOST_TEST(!r.error().fields().empty());
      for (const std::string& needle : it->second) {
        BOOST_TEST(contains(r.error().message(), needle),
                   "'" << needle << "' not in: " << r.error().message());
      }
    }
  }
  BOOST_TEST(seen == expected.size());
}

BOOST_AUTO_TEST_CASE(every_bad_file_is_reported_at_once) {
  TempDir dir;
  fs::copy_file(kData + "/invalid/unknown-field/fw.json", dir.path / "one.json");
  fs::copy_file(kData + "/invalid/min-max/fw.json", dir.path / "two.json");
  auto r = openFolderRepository(dir.path.string());
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(contains(r.error().message(), "one.json: /image/signature"));
  BOOST_TEST(contains(r.error().message(), "two.json: /ports/min"));
  BOOST_TEST(r.error().fields().size() == 2u);
}

BOOST_AUTO_TEST_CASE(parse_template_reports_every_field) {
  auto r = parseTemplate(R"({"id": "x y", "functional-capability": "", "type": "native",
                            "image": {"uri": "a"}, "ports": {"min": -1, "max": 1.5},
                            "dependencies": ["ip", "ip"], "config": {"": {"type": "int"}}})",
                         "inline");
  BOOST_TEST_REQUIRE(!r.ok());
  std::set<std::string> pointers;
  for (const auto& f : r.error().fields()) pointers.insert(f.pointer);
  BOOST_TEST(pointers == (std::set<std::string>{"/id", "/functional-capability", "/ports/min",
                                                "/ports/max", "/dependencies/1", "/config/"}),
             boost::test_tools::per_element());
  BOOST_TEST(r.error().message().starts_with("invalid template inline: "));
}

BOOST_AUTO_TEST_CASE(reload_rereads_and_keeps_the_old_content_on_failure) {
  TempDir dir;
  fs::copy_file(kCatalog + "/firewall-nsf.json", dir.path / "firewall-nsf.json");
  auto opened = openFolderRepository(dir.path.string());
  BOOST_TEST_REQUIRE(opened.ok());
  Repository& repo = **opened;
  BOOST_TEST(repo.all()->size() == 1u);

  fs::copy_file(kCatalog + "/firewall-vm.json", dir.path / "firewall-vm.json");
  BOOST_TEST(repo.reload().ok());
  BOOST_TEST(repo.all()->size() == 2u);
  BOOST_TEST(repo.findById("firewall-vm").ok());

  fs::copy_file(kData + "/invalid/bad-type/fw.json", dir.path / "broken.json");
  auto failed = repo.reload();
  BOOST_TEST_REQUIRE(!failed.ok());
  BOOST_TEST(contains(failed.error().message(), "broken.json: /type"));
  BOOST_TEST(repo.all()->size() == 2u);

  fs::remove(dir.path / "broken.json");
  fs::remove(dir.path / "firewall-vm.json");
  BOOST_TEST(repo.reload().ok());
  BOOST_TEST(repo.all()->size() == 1u);
  BOOST_TEST(!repo.findById("firewall-vm").ok());
}

// sf-repository/template.schema.json and parseTemplate() must agree: every template the code
// accepts passes the schema, and every file the schema refuses the code refuses too. The only
// differences are what a schema cannot say, listed here.
BOOST_AUTO_TEST_CASE(schema_and_code_agree) {
  rapidjson::Document schema_doc;
  schema_doc.Parse(readFile(std::string(CORCH_SOURCE_DIR) + "/sf-repository/template.schema.json"));
  BOOST_TEST_REQUIRE(!schema_doc.HasParseError());
  rapidjson::SchemaDocument schema(schema_doc);

  auto schemaAccepts = [&](const fs::path& file) {
    rapidjson::Document doc;
    doc.Parse(readFile(file));
    BOOST_TEST_REQUIRE(!doc.HasParseError());
    rapidjson::SchemaValidator validator(schema);
    return doc.Accept(validator);
  };
  const std::set<std::string> beyond_schema = {"duplicate-ids", "duplicate-member", "min-max"};

  TempDir catalog;
  size_t checked = 0;
  for (const auto& entry : fs::directory_iterator(catalogCopy(catalog))) {
    if (entry.path().extension() != ".json") continue;
    BOOST_TEST_CONTEXT(entry.path()) {
      BOOST_TEST(parseTemplate(readFile(entry.path()), entry.path()).ok());
      BOOST_TEST(schemaAccepts(entry.path()));
      ++checked;
    }
  }
  for (const auto& dir : fs::directory_iterator(kData + "/invalid")) {
    const std::string name = dir.path().filename().string();
    if (name == "bad-json") continue;  // not JSON: no schema to apply
    for (const auto& entry : fs::directory_iterator(dir.path())) {
      BOOST_TEST_CONTEXT(entry.path()) {
        bool code_accepts = parseTemplate(readFile(entry.path()), entry.path()).ok();
        bool schema_accepts = schemaAccepts(entry.path());
        if (beyond_schema.contains(name)) {
          BOOST_TEST(schema_accepts);
          BOOST_TEST(code_accepts == (name == "duplicate-ids"));
        } else {
          BOOST_TEST(!schema_accepts);
          BOOST_TEST(!code_accepts);
        }
        ++checked;
      }
    }
  }
  BOOST_TEST(checked > 20u);
}

// The templates shipped in sf-repository/templates/ load, and pass the schema.
BOOST_AUTO_TEST_CASE(shipped_templates_load) {
  const fs::path dir = fs::path(CORCH_SOURCE_DIR) / "sf-repository" / "templates";
  if (!fs::is_directory(dir)) {
    BOOST_TEST_MESSAGE("no " << dir << ": nothing to check");
    return;
  }
  auto r = openFolderRepository(dir.string());
  BOOST_TEST_REQUIRE(r.ok(), (r.ok() ? "" : r.error().message()));
  rapidjson::Document schema_doc;
  schema_doc.Parse(readFile(std::string(CORCH_SOURCE_DIR) + "/sf-repository/template.schema.json"));
  rapidjson::SchemaDocument schema(schema_doc);
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    rapidjson::Document doc;
    doc.Parse(readFile(entry.path()));
    rapidjson::SchemaValidator validator(schema);
    BOOST_TEST(doc.Accept(validator), entry.path() << " does not pass template.schema.json");
    ++files;
  }
  BOOST_TEST((*r)->all()->size() == files);
  BOOST_TEST_MESSAGE(files << " shipped templates checked");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(resolver)

BOOST_AUTO_TEST_CASE(picks_by_capability) {
  Catalog c;
  auto r = c.resolve({makeSf("0x1", "firewall", 2)});
  BOOST_TEST_REQUIRE(r.ok(), (r.ok() ? "" : r.error().message()));
  BOOST_TEST_REQUIRE(r->size() == 1u);
  const Resolution& res = r->front();
  BOOST_TEST(res.sf_id == "0x1");
  BOOST_TEST(res.tmpl.id == "firewall-nsf");
  BOOST_TEST(res.image_path == kImages + "/nsf/firewall");
  BOOST_TEST(res.config_json ==
             R"({"allow-icmp":false,"allowed-tcp-ports":[],"max-connections":1000})");
}

BOOST_AUTO_TEST_CASE(pinned_template_wins_over_cheaper_ones) {
  Catalog c;
  BOOST_TEST(c.pick(makeSf("0x1", "firewall", 2, "firewall-vm")) == "firewall-vm");
  // The SF's name need not be the capability when a template is pinned (NF-FG clients).
  BOOST_TEST(c.pick(makeSf("0x1", "my bridge", 3, "bridge-nsf")) == "bridge-nsf");
}

BOOST_AUTO_TEST_CASE(pinned_template_that_does_not_exist) {
  Catalog c;
  auto r = c.resolve({makeSf("0x1", "firewall", 2, "firewall-nope")});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(r.error().httpStatus() == 422);
  BOOST_TEST_REQUIRE(r.error().fields().size() == 1u);
  BOOST_TEST(r.error().fields()[0].pointer == "/sffg/SFs/0/template");
  BOOST_TEST(r.error().fields()[0].message == "no template 'firewall-nope'");
}

BOOST_AUTO_TEST_CASE(port_count_decides) {
  Catalog c;
  BOOST_TEST(c.pick(makeSf("0x1", "firewall", 3)) == "firewall-docker");  // nsf is 2-2
  BOOST_TEST(c.pick(makeSf("0x1", "firewall", 1)) == "firewall-vm");      // only kvm takes 1

  auto r = c.resolve({makeSf("0x1", "firewall", 9)});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Unsupported);
  BOOST_TEST_REQUIRE(r.error().fields().size() == 1u);
  const FieldError& f = r.error().fields()[0];
  BOOST_TEST(f.pointer == "/sffg/SFs/0");
  BOOST_TEST(f.message ==
             "no implementation of 'firewall' fits: "
             "firewall-nsf: needs 2-2 ports, the SF has 9; "
             "firewall-docker: needs 2-4 ports, the SF has 9; "
             "firewall-dpdk: needs 2-2 ports, the SF has 9; "
             "firewall-vm: needs 1-8 ports, the SF has 9");
}

BOOST_AUTO_TEST_CASE(missing_dependency_refuses) {
  Catalog c;
  c.node.missing = {"iptables"};
  BOOST_TEST(c.pick(makeSf("0x1", "firewall", 2)) == "firewall-docker");

  c.node.unusable = {{"docker", "cannot reach /run/docker.sock"},
                     {"dpdk", "no hugepages"},
                     {"kvm", "not compiled in"}};
  auto r = c.resolve({makeSf("0x1", "firewall", 2)});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Unsupported);
  const std::string& m = r.error().fields().at(0).message;
  BOOST_TEST(contains(m, "firewall-nsf: dependency 'iptables' is missing"), m);
  BOOST_TEST(contains(m,
                      "firewall-docker: driver 'docker' is not usable: cannot reach "
                      "/run/docker.sock"),
             m);
  BOOST_TEST(contains(m, "firewall-dpdk: driver 'dpdk' is not usable: no hugepages"), m);
  BOOST_TEST(contains(m, "firewall-vm: driver 'kvm' is not usable: not compiled in"), m);
}

BOOST_AUTO_TEST_CASE(unusable_driver_refuses) {
  Catalog c;
  c.node.unusable = {{"kvm", "not compiled in"}};
  auto r = c.resolve({makeSf("0x1", "firewall", 2, "firewall-vm")});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(r.error().fields().at(0).pointer == "/sffg/SFs/0");
  BOOST_TEST(r.error().fields().at(0).message ==
             "template 'firewall-vm' cannot be used: firewall-vm: driver 'kvm' is not usable: "
             "not compiled in");

  // Every reason of a candidate is given, not only the first.
  r = c.resolve({makeSf("0x1", "firewall", 9, "firewall-vm")});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(contains(r.error().message(),
                      "firewall-vm: driver 'kvm' is not usable: not compiled "
                      "in, needs 1-8 ports, the SF has 9"),
             r.error().message());
}

BOOST_AUTO_TEST_CASE(unknown_capability) {
  Catalog c;
  auto r = c.resolve({makeSf("0x1", "teleporter", 2)});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(r.error().fields().at(0).pointer == "/sffg/SFs/0");
  BOOST_TEST(r.error().fields().at(0).message ==
             "no template implements the capability 'teleporter'");
}

// resolve() gives one template per SF: a graph template is left to expand() (tested in
// resolver_expand_test.cc).
BOOST_AUTO_TEST_CASE(resolve_refuses_graph_templates) {
  Catalog c;
  auto r = c.resolve({makeSf("0x1", "nat", 2)});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(r.error().fields().at(0).message ==
             "no implementation of 'nat' fits: nat-graph: a graph template, which resolve() does "
             "not splice (expand() does)");
}

// A graph template without functions: a wire between its ports, spliced as junctions only.
BOOST_AUTO_TEST_CASE(expand_splices_a_graph_template_without_functions) {
  Catalog c;
  graph::Graph g = makeGraph({makeSf("n", "nat", 2)});
  for (const char* name : {"eth0", "eth1"}) {
    graph::Sap sap;
    sap.id = name;
    sap.if_name = name;
    g.saps.push_back(sap);
  }
  auto sap = [](std::string id) { return graph::PortRef{graph::PortRef::Kind::Sap, id, "", ""}; };
  auto port = [](std::string sf, std::string p) {
    return graph::PortRef{graph::PortRef::Kind::SfPort, "", sf, p};
  };
  auto rule = [](std::string id, graph::PortRef in, graph::PortRef out) {
    graph::FlowRule r;
    r.id = std::move(id);
    r.priority = 7;
    r.port_in = std::move(in);
    r.outputs = {std::move(out)};
    return r;
  };
  g.rules = {rule("1", sap("eth0"), port("n", "0x1")), rule("2", port("n", "0x2"), sap("eth1"))};

  auto e = c.resolver->expand(g, c.node);
  BOOST_TEST_REQUIRE(e.ok(), (e.ok() ? "" : e.error().message()));
  BOOST_TEST(e->graph.sfs.empty());
  BOOST_TEST(e->resolutions.empty());
  BOOST_TEST(e->origin.empty());
  std::vector<std::string> saps;
  for (const auto& s : e->graph.saps) {
    saps.push_back(s.id + " " + std::string(graph::toString(s.type)) + " " + s.junction_peer);
  }
  BOOST_TEST(saps == (std::vector<std::string>{"eth0 interface ", "eth1 interface ",
                                               "n~0.o junction n~0.i", "n~0.i junction n~0.o",
                                               "n~1.o junction n~1.i", "n~1.i junction n~1.o"}),
             boost::test_tools::per_element());
  std::vector<graph::FlowRule> rules = {
      rule("1", sap("eth0"), sap("n~0.o")), rule("2", sap("n~1.o"), sap("eth1")),
      rule("n.out", sap("n~0.i"), sap("n~1.i")), rule("n.in", sap("n~1.i"), sap("n~0.i"))};
  rules[2].priority = rules[3].priority = 1;
  BOOST_TEST_REQUIRE(e->graph.rules.size() == rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    BOOST_TEST((e->graph.rules[i] == rules[i]), "rule " << i << ": " << e->graph.rules[i].id);
  }
}

BOOST_AUTO_TEST_CASE(order_is_native_docker_dpdk_kvm_then_id) {
  Catalog c;
  BOOST_TEST(c.pick(makeSf("0x1", "probe", 1)) == "probe-native");
  c.node.unusable["native"] = "disabled";
  BOOST_TEST(c.pick(makeSf("0x1", "probe", 1)) == "probe-docker-a");
  c.node.unusable["docker"] = "disabled";
  BOOST_TEST(c.pick(makeSf("0x1", "probe", 1)) == "probe-dpdk");
  c.node.unusable["dpdk"] = "disabled";
  BOOST_TEST(c.pick(makeSf("0x1", "probe", 1)) == "probe-kvm");

  // The refusal lists the candidates in the order they were tried.
  c.node.unusable["kvm"] = "disabled";
  auto r = c.resolve({makeSf("0x1", "probe", 0)});
  BOOST_TEST_REQUIRE(!r.ok());
  const std::string& m = r.error().fields().at(0).message;
  size_t native = m.find("probe-native:"), a = m.find("probe-docker-a:"),
         b = m.find("probe-docker-b:"), dpdk = m.find("probe-dpdk:"), kvm = m.find("probe-kvm:");
  BOOST_TEST((native < a && a < b && b < dpdk && dpdk < kvm && kvm != std::string::npos), m);
}

BOOST_AUTO_TEST_CASE(resources_are_shared_by_the_sfs_of_a_graph) {
  Catalog c;
  c.node.free = {1.0, 1000, 1000};
  // One heavy SF (0.6 cores) fits; a second one does not, as the first took its share.
  BOOST_TEST(c.pick(makeSf("0x1", "heavy", 1)) == "heavy-nsf");
  auto r = c.resolve({makeSf("0x1", "heavy", 1), makeSf("0x2", "heavy", 1)});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::ResourceExhausted);
  BOOST_TEST(r.error().httpStatus() == 409);
  BOOST_TEST_REQUIRE(r.error().fields().size() == 1u);
  BOOST_TEST(r.error().fields()[0].pointer == "/sffg/SFs/1");
  BOOST_TEST(r.error().fields()[0].message ==
             "no implementation of 'heavy' fits in the free resources: heavy-nsf: needs 0.6 CPU "
             "cores, 0.4 free");

  // Memory and disk are counted too, and every shortage is named.
  c.node.free = {8, 150, 15};
  r = c.resolve({makeSf("0x1", "heavy", 1), makeSf("0x2", "heavy", 1)});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::ResourceExhausted);
  BOOST_TEST(contains(r.error().message(),
                      "heavy-nsf: needs 100 MB of memory, 50 MB free, needs 10 MB of disk, 5 MB "
                      "free"),
             r.error().message());

  // Fitting exactly is fitting: 0.1 cores of firewall-nsf ten times in 1 core.
  c.node.free = {1.0, 1000, 1000};
  std::vector<graph::Sf> ten;
  for (int i = 0; i < 10; ++i) ten.push_back(makeSf("0x" + std::to_string(i), "firewall", 2));
  auto fits = c.resolve(ten);
  BOOST_TEST(fits.ok(), (fits.ok() ? "" : fits.error().message()));
  // An eleventh does not fit, and neither do the other firewalls (all need more cores): 409, and
  // the cores left are shown rounded, not as 1e-16.
  ten.push_back(makeSf("0xb", "firewall", 2));
  auto full = c.resolve(ten);
  BOOST_TEST_REQUIRE(!full.ok());
  BOOST_TEST(full.error().code() == ErrorCode::ResourceExhausted);
  BOOST_TEST(full.error().fields().at(0).pointer == "/sffg/SFs/10");
  BOOST_TEST(contains(full.error().message(), "firewall-nsf: needs 0.1 CPU cores, 0 free"),
             full.error().message());
}

BOOST_AUTO_TEST_CASE(resources_and_other_reasons_mixed_is_unsupported) {
  Catalog c;
  c.node.free = {0.05, 1000, 1000};
  c.node.missing = {"iptables"};
  auto r = c.resolve({makeSf("0x1", "firewall", 2)});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(contains(r.error().message(),
                      "firewall-nsf: dependency 'iptables' is missing, needs 0.1 CPU cores, 0.05 "
                      "free"),
             r.error().message());
}

BOOST_AUTO_TEST_CASE(errors_of_all_sfs_are_collected) {
  Catalog c;
  c.node.free = {1.0, 1000, 1000};
  auto r = c.resolve({makeSf("0x1", "teleporter", 2), makeSf("0x2", "heavy", 1),
                      makeSf("0x3", "firewall", 2, std::nullopt, R"({"colour": "red"})"),
                      makeSf("0x4", "heavy", 1)});
  BOOST_TEST_REQUIRE(!r.ok());
  // The most permanent code wins: a bad document is not fixed by waiting for resources.
  BOOST_TEST(r.error().code() == ErrorCode::InvalidArgument);
  std::vector<std::string> pointers;
  for (const auto& f : r.error().fields()) pointers.push_back(f.pointer);
  BOOST_TEST(pointers == (std::vector<std::string>{"/sffg/SFs/0", "/sffg/SFs/2/config/colour",
                                                   "/sffg/SFs/3"}),
             boost::test_tools::per_element());
  BOOST_TEST(contains(r.error().message(), "/sffg/SFs/0: no template implements"));
  BOOST_TEST(contains(r.error().message(), "; /sffg/SFs/3: no implementation of 'heavy' fits in"));
}

BOOST_AUTO_TEST_CASE(unknown_config_key) {
  Catalog c;
  auto r = c.resolve({makeSf("0x1", "firewall", 2, std::nullopt,
                             R"({"allowed-udp-ports": [53], "allow-icmp": true})")});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST_REQUIRE(r.error().fields().size() == 1u);
  BOOST_TEST(r.error().fields()[0].pointer == "/sffg/SFs/0/config/allowed-udp-ports");
  BOOST_TEST(r.error().fields()[0].message ==
             "unknown configuration parameter 'allowed-udp-ports' for template firewall-nsf "
             "(known: allow-icmp, allowed-tcp-ports, log-prefix, max-connections, tags)");

  // Keys are escaped in pointers (RFC 6901).
  r = c.resolve({makeSf("0x1", "firewall", 2, std::nullopt, R"({"a/b~c": 1})")});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().fields().at(0).pointer == "/sffg/SFs/0/config/a~1b~0c");

  // A template without parameters says so.
  r = c.resolve({makeSf("0x1", "firewall", 1, std::nullopt, R"({"x": 1})")});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(
      contains(r.error().fields().at(0).message, "for template firewall-vm (it takes none)"));
}

BOOST_AUTO_TEST_CASE(wrong_config_types) {
  Catalog c;
  auto r = c.resolve({makeSf("0x1", "firewall", 2, std::nullopt,
                             R"({"allow-icmp": "yes", "allowed-tcp-ports": [22, "http", 443, 1.5],
                                 "max-connections": 1.5, "log-prefix": 7, "tags": [[1]]})")});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::InvalidArgument);
  std::map<std::string, std::string> by_pointer;
  for (const auto& f : r.error().fields()) by_pointer[f.pointer] = f.message;
  BOOST_TEST(by_pointer.size() == 6u);
  const std::string at = "/sffg/SFs/0/config/";
  BOOST_TEST(by_pointer[at + "allow-icmp"] ==
             "configuration parameter 'allow-icmp' of template firewall-nsf: must be a bool, got "
             "a string");
  BOOST_TEST(by_pointer[at + "allowed-tcp-ports/1"] ==
             "configuration parameter 'allowed-tcp-ports' of template firewall-nsf: item 1 must "
             "be an int, got a string");
  BOOST_TEST(contains(by_pointer[at + "allowed-tcp-ports/3"], "got a non-integer number"));
  BOOST_TEST(contains(by_pointer[at + "max-connections"], "must be an int"));
  BOOST_TEST(contains(by_pointer[at + "log-prefix"], "must be a string, got an int"));
  BOOST_TEST(contains(by_pointer[at + "tags/0"], "must be a scalar"));

  r = c.resolve({makeSf("0x1", "firewall", 2, std::nullopt, R"({"allowed-tcp-ports": 22})")});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().fields().at(0).pointer == at + "allowed-tcp-ports");
  BOOST_TEST(contains(r.error().fields().at(0).message, "must be a list of int, got an int"));
}

BOOST_AUTO_TEST_CASE(defaults_are_merged_with_the_sf_config) {
  Catalog c;
  auto r = c.resolve({makeSf("0x1", "firewall", 2, std::nullopt,
                             R"({"allowed-tcp-ports": [22, 80], "log-prefix": "fw: ",
                                 "tags": [1, "a", true]})")});
  BOOST_TEST_REQUIRE(r.ok(), (r.ok() ? "" : r.error().message()));
  BOOST_TEST(r->front().config_json ==
             R"({"allow-icmp":false,"allowed-tcp-ports":[22,80],"log-prefix":"fw: ",)"
             R"("max-connections":1000,"tags":[1,"a",true]})");

  // An empty config text means no configuration.
  auto sf = makeSf("0x1", "firewall", 3, std::nullopt, "");
  r = c.resolve({sf});
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(r->front().tmpl.id == "firewall-docker");
  BOOST_TEST(r->front().config_json == R"({"allowed-tcp-ports":[22]})");
}

BOOST_AUTO_TEST_CASE(image_paths) {
  Catalog c;
  // docker images are registry references, kept as they are.
  auto r = c.resolve({makeSf("0x1", "firewall", 3)});
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(r->front().image_path == "corch/firewall:1");
  // Absolute paths are kept.
  c.node.unusable = {{"native", "off"}, {"docker", "off"}};
  r = c.resolve({makeSf("0x1", "firewall", 2)});
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(r->front().tmpl.id == "firewall-dpdk");
  BOOST_TEST(r->front().image_path == "/opt/dpdk/firewall");
  // Relative ones are made absolute, also against a relative image root.
  Resolver relative(*c.repo, "some/root/");
  auto t = c.repo->findById("firewall-vm");
  BOOST_TEST_REQUIRE(t.ok());
  BOOST_TEST(relative.imagePath(*t) ==
             (fs::current_path() / "some/root/vm/firewall.qcow2").string());
}

BOOST_AUTO_TEST_CASE(image_digest_is_checked) {
  Catalog c;
  BOOST_TEST(c.pick(makeSf("0x1", "signed", 1)) == "signed-nsf");
  BOOST_TEST(c.pick(makeSf("0x1", "signed", 1)) == "signed-nsf");  // cached the second time
  // bridge-nsf names a digest, but its image is a folder: not checked.
  BOOST_TEST(c.pick(makeSf("0x1", "bridge", 2)) == "bridge-nsf");

  auto r = c.resolve({makeSf("0x1", "tampered", 1)});
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Unsupported);
  auto digest = sha256File(kImages + "/signed.img");
  BOOST_TEST_REQUIRE(digest.ok());
  std::string ab32;
  for (int i = 0; i < 32; ++i) ab32 += "ab";
  BOOST_TEST(r.error().fields().at(0).message ==
             "no implementation of 'tampered' fits: tampered-nsf: image " + kImages +
                 "/signed.img has SHA-256 " + *digest + ", the template names " + ab32);
}

BOOST_AUTO_TEST_CASE(sha256_known_answers) {
  auto hex = [](std::string_view data) {
    auto path = std::filesystem::temp_directory_path() / "corch-sha256-test";
    std::ofstream(path, std::ios::binary) << data;
    auto digest = sha256File(path.string());
    std::filesystem::remove(path);
    return digest.ok() ? *digest : std::string("error");
  };
  BOOST_TEST(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_TEST(hex(std::string(1000000, 'a')) ==
             "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  auto missing = sha256File("/nonexistent/corch-image");
  BOOST_TEST_REQUIRE(!missing.ok());
  BOOST_TEST(contains(missing.error().message(), "/nonexistent/corch-image"));
}

BOOST_AUTO_TEST_CASE(executables_on_path) {
  BOOST_TEST(executableOnPath("sh"));
  BOOST_TEST(executableOnPath("/bin/sh"));
  BOOST_TEST(!executableOnPath("corch-surely-not-an-executable"));
  BOOST_TEST(!executableOnPath(""));
  BOOST_TEST(!executableOnPath("/etc/passwd"));  // not executable
  clearExecutableCache();
  BOOST_TEST(executableOnPath("sh"));
}

BOOST_AUTO_TEST_SUITE_END()
