// Graph templates (DESIGN section 4, sf-repository/README.md): their checks when a template is
// read, and Resolver::expand(), which splices their graphs in place of the SFs they implement.
#define BOOST_TEST_MODULE resolver_expand
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <rapidjson/document.h>
#include <rapidjson/schema.h>

#include "graph/sffg_codec.h"
#include "resolver/repository.h"
#include "resolver/resolver.h"

namespace corch {
// For Boost.Test's messages.
std::ostream& operator<<(std::ostream& out, ErrorCode code) { return out << codeName(code); }
}  // namespace corch

namespace fs = std::filesystem;
using namespace corch;
using namespace corch::resolver;

namespace {

const fs::path kSource = CORCH_SOURCE_DIR;
const fs::path kShipped = kSource / "sf-repository" / "templates";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
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

// A fresh temporary folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / ("corch-resolver-expand-test-" + std::to_string(::getpid()) +
                                        "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A template of two ports run from an image by the driver of `type`.
std::string leafTemplate(const std::string& id, const std::string& capability,
                         const std::string& type = "native", double cpu = 0.1) {
  return R"({"id": ")" + id + R"(", "functional-capability": ")" + capability + R"(", "type": ")" +
         type + R"(", "image": {"uri": "nsf/)" + id +
         R"("}, "ports": {"min": 2, "max": 2}, "resources": {"cpu-cores": )" + std::to_string(cpu) +
         "}}";
}

// A graph template of two ports whose graph is one SF (id `sf_id`, ports "a" and "b") asking for
// `inner` (a capability, or a template id when `pinned`), wired both ways between its ports.
std::string chainTemplate(const std::string& id, const std::string& capability,
                          const std::string& inner, bool pinned = false,
                          const std::string& sf_id = "s") {
  std::string sf = R"({"id": ")" + sf_id + R"(", "name": ")" + (pinned ? "anything" : inner) +
                   R"(", )" + (pinned ? R"("template": ")" + inner + R"(", )" : "") +
                   R"("ports": [{"id": "a"}, {"id": "b"}]})";
  auto rule = [&](const char* rid, const std::string& in, const std::string& out) {
    return R"({"id": ")" + std::string(rid) + R"(", "priority": 3, "match": {"port_in": ")" + in +
           R"("}, "actions": {"output_to_port": ")" + out + R"("}})";
  };
  const std::string p0 = "service-access-point:p0", p1 = "service-access-point:p1";
  const std::string a = "sf:" + sf_id + ":a", b = "sf:" + sf_id + ":b";
  return R"({"id": ")" + id + R"(", "functional-capability": ")" + capability +
         R"(", "ports": {"min": 2, "max": 2}, "graph": {"sffg": {"SFs": [)" + sf +
         R"(], "saps": [{"id": "p0", "type": "internal-port", "internal-port": {"port-index": 0}},
                        {"id": "p1", "type": "internal-port", "internal-port": {"port-index": "0x1"}}],
            "flowrules": [)" +
         rule("1", p0, a) + ", " + rule("2", a, p0) + ", " + rule("3", p1, b) + ", " +
         rule("4", b, p1) + "]}}}";
}

// A repository in a temporary folder (or the shipped one), and a resolver over it.
struct Repo {
  TempDir dir;
  TestNode node;
  std::unique_ptr<Repository> repo;
  std::unique_ptr<Resolver> resolver;

  void add(const std::string& id, const std::string& json) {
    std::ofstream(dir.path / (id + ".json")) << json;
  }
  void open(const fs::path& folder) {
    auto opened = openFolderRepository(folder.string());
    BOOST_TEST_REQUIRE(opened.ok(), (opened.ok() ? "" : opened.error().message()));
    repo = std::move(opened).value();
    resolver = std::make_unique<Resolver>(*repo, "/images");
  }
  void open() { open(dir.path); }
  // The templates of sf-repository/templates.
  void openShipped() { open(kShipped); }
};

// A client's graph with one SF of two ports "in" and "out", between interface SAPs eth0 (to
// "in") and eth1 (to "out"), both ways.
graph::Graph oneSfGraph(const std::string& sf_id, const std::string& capability,
                        const std::string& config = "") {
  std::string doc = R"({"sffg": {"id": "g", "SFs": [{"id": ")" + sf_id + R"(", "name": ")" +
                    capability + R"(", "ports": [{"id": "in"}, {"id": "out"}])" +
                    (config.empty() ? "" : R"(, "config": )" + config) + R"(}],
    "saps": [{"id": "eth0", "type": "interface", "interface": {"if-name": "eth0"}},
             {"id": "eth1", "type": "interface", "interface": {"if-name": "eth1"}}],
    "flowrules": [
      {"id": "r1", "priority": 5, "match": {"port_in": "service-access-point:eth0"},
       "actions": {"output_to_port": "sf:)" +
                    sf_id + R"(:in"}},
      {"id": "r2", "priority": 5, "match": {"port_in": "sf:)" +
                    sf_id + R"(:in"},
       "actions": {"output_to_port": "service-access-point:eth0"}},
      {"id": "r3", "priority": 5, "match": {"port_in": "service-access-point:eth1"},
       "actions": {"output_to_port": "sf:)" +
                    sf_id + R"(:out"}},
      {"id": "r4", "priority": 5, "match": {"port_in": "sf:)" +
                    sf_id + R"(:out"},
       "actions": {"output_to_port": "service-access-point:eth1"}}]}})";
  auto g = graph::parseSffg(doc);
  BOOST_TEST_REQUIRE(g.ok(), (g.ok() ? "" : g.error().message()));
  return std::move(g).value();
}

// The parts of a graph as lines, for exact comparisons that read well when they fail.
std::vector<std::string> sfLines(const graph::Graph& g) {
  std::vector<std::string> out;
  for (const auto& sf : g.sfs) {
    std::string line = sf.id + " (" + sf.name + ")";
    for (const auto& p : sf.ports) line += " " + p.id;
    out.push_back(line);
  }
  return out;
}
std::vector<std::string> sapLines(const graph::Graph& g) {
  std::vector<std::string> out;
  for (const auto& sap : g.saps) {
    std::string line = sap.id + " " + std::string(graph::toString(sap.type));
    if (sap.type == graph::SapType::Junction) line += " peer " + sap.junction_peer;
    out.push_back(line);
  }
  return out;
}
std::vector<std::string> ruleLines(const graph::Graph& g) {
  std::vector<std::string> out;
  for (const auto& r : g.rules) {
    std::string line = r.id + " [" + std::to_string(r.priority) + "] " + r.port_in.str() + " ->";
    for (const auto& o : r.outputs) line += " " + o.str();
    out.push_back(line);
  }
  return out;
}

std::string message(const Result<Expansion>& r) { return r.ok() ? "" : r.error().message(); }

using Lines = std::vector<std::string>;

}  // namespace

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(template_checks)

BOOST_AUTO_TEST_CASE(the_shipped_security_graph) {
  auto t = parseTemplate(readFile(kShipped / "security-graph.json"), "security-graph.json");
  BOOST_TEST_REQUIRE(t.ok(), (t.ok() ? "" : t.error().message()));
  BOOST_TEST(t->isSubGraph());
  BOOST_TEST(t->type.empty());
  BOOST_TEST(t->capability == "security");
  BOOST_TEST(t->ports_min == 2u);
  BOOST_TEST(t->ports_max == 2u);
  BOOST_TEST_REQUIRE(t->graph != nullptr);
  BOOST_TEST(sfLines(*t->graph) == (Lines{"fw (firewall) inside outside", "br (bridge) 0 1"}),
             boost::test_tools::per_element());
  BOOST_TEST(sapLines(*t->graph) == (Lines{"inside internal-port", "outside internal-port"}),
             boost::test_tools::per_element());
  BOOST_TEST(t->graph->saps[0].port_index == 0u);
  BOOST_TEST(t->graph->saps[1].port_index == 1u);
  // internal-port SAPs print and read back as they were.
  auto reread = graph::parseSffg(graph::printSffg(*t->graph));
  BOOST_TEST_REQUIRE(reread.ok(), (reread.ok() ? "" : reread.error().message()));
  BOOST_TEST((*reread == *t->graph));
}

// Each case: a broken graph template, the pointers of its errors, words of the message, and
// whether template.schema.json refuses it too (what a schema cannot say is the code's alone).
BOOST_AUTO_TEST_CASE(broken_graph_templates_are_refused) {
  const std::string head = R"({"id": "g", "functional-capability": "c", )";
  const std::string saps2 =
      R"("saps": [{"id": "p0", "type": "internal-port", "internal-port": {"port-index": 0}},
                  {"id": "p1", "type": "internal-port", "internal-port": {"port-index": 1}}])";
  const std::string graph2 = R"("graph": {"sffg": {)" + saps2 + "}}";
  struct Case {
    std::string name;
    std::string json;
    std::set<std::string> pointers;
    std::string words;
    bool schema_refuses;
  };
  const std::vector<Case> cases = {
      {"interface SAP",
       head + R"("ports": {"min": 2, "max": 2}, "graph": {"sffg": {"saps": [
           {"id": "p0", "type": "internal-port", "internal-port": {"port-index": 0}},
           {"id": "e", "type": "interface", "interface": {"if-name": "eth0"}}]}}})",
       {"/graph/sffg/saps/1/type"},
       "must be 'internal-port', not 'interface': the SAPs of a template's graph are the ports of "
       "the SF it implements",
       false},
      {"ports fewer than SAPs",
       head + R"("ports": {"min": 1, "max": 3}, )" + graph2 + "}",
       {"/ports/min", "/ports/max"},
       "/ports/min: must be 2, the number of internal-port SAPs of the template's graph",
       false},
      {"port index out of range",
       head + R"("ports": {"min": 2, "max": 2}, "graph": {"sffg": {"saps": [
           {"id": "p0", "type": "internal-port", "internal-port": {"port-index": 0}},
           {"id": "p1", "type": "internal-port", "internal-port": {"port-index": "0x2"}}]}}})",
       {"/graph/sffg/saps/1/internal-port/port-index"},
       "is 2, but the graph has 2 SAPs: their port indexes must be 0 to 1",
       false},
      {"port index twice",
       head + R"("ports": {"min": 2, "max": 2}, "graph": {"sffg": {"saps": [
           {"id": "p0", "type": "internal-port", "internal-port": {"port-index": 0}},
           {"id": "p1", "type": "internal-port", "internal-port": {"port-index": 0}}]}}})",
       {"/graph/sffg/saps/1/internal-port"},
       "uses the same port 0 of the implemented SF",
       false},
      {"measure",
       head + R"("ports": {"min": 0, "max": 0}, "graph": {"sffg": {"measure": "m"}}})",
       {"/graph/sffg/measure"},
       "is not allowed in a template's graph",
       false},
      {"not an SF-FG document",
       head + R"("ports": {"min": 0, "max": 0}, "graph": {"SFs": []}})",
       {"/graph/SFs", "/graph/sffg"},
       "/graph/SFs: unknown field 'SFs'",
       true},
      {"bad SF-FG inside",
       head +
           R"("ports": {"min": 0, "max": 0}, "graph": {"sffg": {"SFs": [{"id": "a b", "name": "x"}]}}})",
       {"/graph/sffg/SFs/0/id"},
       "/graph/sffg/SFs/0/id: id 'a b' must be 1 to 64 letters",
       false},
      {"resources",
       head + R"("ports": {"min": 2, "max": 2}, "resources": {"cpu-cores": 1}, )" + graph2 + "}",
       {"/resources"},
       "is not allowed with 'graph'",
       true},
      {"dependencies",
       head + R"("ports": {"min": 2, "max": 2}, "dependencies": ["ip"], )" + graph2 + "}",
       {"/dependencies"},
       "is not allowed with 'graph'",
       true},
      {"config",
       head + R"("ports": {"min": 2, "max": 2}, "config": {"x": {"type": "int"}}, )" + graph2 + "}",
       {"/config"},
       "its functions are configured in its graph",
       true},
      {"technology",
       head + R"("ports": {"min": 2, "max": 2, "technology": "tap"}, )" + graph2 + "}",
       {"/ports/technology"},
       "is not allowed with 'graph'",
       true},
  };

  rapidjson::Document schema_doc;
  schema_doc.Parse(readFile(kSource / "sf-repository" / "template.schema.json"));
  BOOST_TEST_REQUIRE(!schema_doc.HasParseError());
  rapidjson::SchemaDocument schema(schema_doc);

  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("case " << c.name) {
      auto r = parseTemplate(c.json, "t.json");
      BOOST_TEST_REQUIRE(!r.ok());
      BOOST_TEST(r.error().code() == ErrorCode::InvalidArgument);
      std::set<std::string> pointers;
      for (const auto& f : r.error().fields()) pointers.insert(f.pointer);
      BOOST_TEST(pointers == c.pointers, boost::test_tools::per_element());
      BOOST_TEST(contains(r.error().message(), c.words), r.error().message());
      BOOST_TEST(r.error().message().starts_with("invalid template t.json: "));

      rapidjson::Document doc;
      doc.Parse(c.json.data(), c.json.size());
      BOOST_TEST_REQUIRE(!doc.HasParseError());
      rapidjson::SchemaValidator validator(schema);
      BOOST_TEST(!doc.Accept(validator) == c.schema_refuses);
    }
  }

  // And the good one passes both.
  const std::string good = head + R"("ports": {"min": 2, "max": 2}, )" + graph2 + "}";
  BOOST_TEST(parseTemplate(good, "t.json").ok());
  rapidjson::Document doc;
  doc.Parse(good.data(), good.size());
  rapidjson::SchemaValidator validator(schema);
  BOOST_TEST(doc.Accept(validator));
}

// A repository that holds a broken graph template does not open, naming the file and field.
BOOST_AUTO_TEST_CASE(a_folder_with_a_broken_graph_template_does_not_open) {
  Repo r;
  r.add("bad", R"({"id": "bad", "functional-capability": "c", "ports": {"min": 1, "max": 1},
                   "graph": {"sffg": {"saps": [
                     {"id": "e", "type": "vlan", "vlan": {"vlan-id": 5, "if-name": "eth0"}}]}}})");
  auto opened = openFolderRepository(r.dir.path.string());
  BOOST_TEST_REQUIRE(!opened.ok());
  BOOST_TEST(opened.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(contains(opened.error().message(),
                      "bad.json: /graph/sffg/saps/0/type: must be "
                      "'internal-port', not 'vlan'"),
             opened.error().message());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(expand)

// The example of sf-repository/README.md, with the shipped templates: capability "security" is
// a firewall then a bridge, spliced between eth0 and eth1.
BOOST_AUTO_TEST_CASE(security_graph_is_spliced) {
  Repo r;
  r.openShipped();
  auto e = r.resolver->expand(oneSfGraph("sec", "security"), r.node);
  BOOST_TEST_REQUIRE(e.ok(), message(e));

  BOOST_TEST(
      sfLines(e->graph) == (Lines{"sec.fw (firewall) inside outside", "sec.br (bridge) 0 1"}),
      boost::test_tools::per_element());
  BOOST_TEST(sapLines(e->graph) ==
                 (Lines{"eth0 interface", "eth1 interface", "sec~0.o junction peer sec~0.i",
                        "sec~0.i junction peer sec~0.o", "sec~1.o junction peer sec~1.i",
                        "sec~1.i junction peer sec~1.o"}),
             boost::test_tools::per_element());
  BOOST_TEST(ruleLines(e->graph) ==
                 (Lines{// The graph's own rules reach the SF's ports through the outer junctions.
                        "r1 [5] service-access-point:eth0 -> service-access-point:sec~0.o",
                        "r2 [5] service-access-point:sec~0.o -> service-access-point:eth0",
                        "r3 [5] service-access-point:eth1 -> service-access-point:sec~1.o",
                        "r4 [5] service-access-point:sec~1.o -> service-access-point:eth1",
                        // The template's, its internal-port SAPs replaced by the inner junctions.
                        "sec.inside-to-fw [1] service-access-point:sec~0.i -> sf:sec.fw:inside",
                        "sec.fw-to-inside [1] sf:sec.fw:inside -> service-access-point:sec~0.i",
                        "sec.fw-to-br [1] sf:sec.fw:outside -> sf:sec.br:0",
                        "sec.br-to-fw [1] sf:sec.br:0 -> sf:sec.fw:outside",
                        "sec.br-to-outside [1] sf:sec.br:1 -> service-access-point:sec~1.i",
                        "sec.outside-to-br [1] service-access-point:sec~1.i -> sf:sec.br:1"}),
             boost::test_tools::per_element());
  BOOST_TEST(e->graph.id == "g");

  BOOST_TEST_REQUIRE(e->resolutions.size() == 2u);
  BOOST_TEST(e->resolutions[0].sf_id == "sec.fw");
  BOOST_TEST(e->resolutions[0].tmpl.id == "firewall-nsf");
  BOOST_TEST(e->resolutions[0].config_json == R"({"allow-icmp":false,"allowed-tcp-ports":[]})");
  BOOST_TEST(e->resolutions[0].image_path == "/images/nsf/firewall");
  BOOST_TEST(e->resolutions[1].sf_id == "sec.br");
  BOOST_TEST(e->resolutions[1].tmpl.id == "bridge-nsf");
  BOOST_TEST(e->resolutions[1].config_json == R"({"stp":false})");
  BOOST_TEST(
      (e->origin == std::map<std::string, std::string>{{"sec.fw", "sec"}, {"sec.br", "sec"}}));
}

// Spliced SFs take the place of the SF they implement; the others keep theirs and are their own
// origin; a graph without graph templates comes back as it was.
BOOST_AUTO_TEST_CASE(splices_in_place_among_other_sfs) {
  Repo r;
  r.openShipped();
  graph::Graph g = oneSfGraph("sec", "security");
  graph::Sf before = g.sfs[0], after = g.sfs[0];
  before.id = "a";
  before.name = "bridge";
  after.id = "z";
  after.name = "firewall";
  g.sfs = {before, g.sfs[0], after};
  auto e = r.resolver->expand(g, r.node);
  BOOST_TEST_REQUIRE(e.ok(), message(e));
  std::vector<std::string> ids, templates;
  for (const auto& sf : e->graph.sfs) ids.push_back(sf.id);
  for (const auto& res : e->resolutions) templates.push_back(res.sf_id + "=" + res.tmpl.id);
  BOOST_TEST(ids == (Lines{"a", "sec.fw", "sec.br", "z"}), boost::test_tools::per_element());
  BOOST_TEST(templates == (Lines{"a=bridge-nsf", "sec.fw=firewall-nsf", "sec.br=bridge-nsf",
                                 "z=firewall-nsf"}),
             boost::test_tools::per_element());
  BOOST_TEST((e->origin == std::map<std::string, std::string>{
                               {"a", "a"}, {"sec.fw", "sec"}, {"sec.br", "sec"}, {"z", "z"}}));

  graph::Graph plain = oneSfGraph("fw", "firewall");
  auto same = r.resolver->expand(plain, r.node);
  BOOST_TEST_REQUIRE(same.ok(), message(same));
  BOOST_TEST((same->graph == plain));
  BOOST_TEST_REQUIRE(same->resolutions.size() == 1u);
  BOOST_TEST(same->resolutions[0].tmpl.id == "firewall-nsf");
  BOOST_TEST((same->origin == std::map<std::string, std::string>{{"fw", "fw"}}));
}

// A graph template whose graph has an SF implemented by another graph template.
BOOST_AUTO_TEST_CASE(recursion_two_levels_deep) {
  Repo r;
  r.add("outer", chainTemplate("outer", "outer", "inner"));
  r.add("inner", chainTemplate("inner", "inner", "leaf-nsf", true));
  r.add("leaf-nsf", leafTemplate("leaf-nsf", "leaf", "native", 0.25));
  r.open();
  auto e = r.resolver->expand(oneSfGraph("x", "outer"), r.node);
  BOOST_TEST_REQUIRE(e.ok(), message(e));
  BOOST_TEST(sfLines(e->graph) == (Lines{"x.s.s (anything) a b"}),
             boost::test_tools::per_element());
  BOOST_TEST(
      sapLines(e->graph) == (Lines{"eth0 interface", "eth1 interface", "x~0.o junction peer x~0.i",
                                   "x~0.i junction peer x~0.o", "x~1.o junction peer x~1.i",
                                   "x~1.i junction peer x~1.o", "x.s~0.o junction peer x.s~0.i",
                                   "x.s~0.i junction peer x.s~0.o", "x.s~1.o junction peer x.s~1.i",
                                   "x.s~1.i junction peer x.s~1.o"}),
      boost::test_tools::per_element());
  BOOST_TEST(ruleLines(e->graph) ==
                 (Lines{"r1 [5] service-access-point:eth0 -> service-access-point:x~0.o",
                        "r2 [5] service-access-point:x~0.o -> service-access-point:eth0",
                        "r3 [5] service-access-point:eth1 -> service-access-point:x~1.o",
                        "r4 [5] service-access-point:x~1.o -> service-access-point:eth1",
                        // outer's rules, its SF s spliced too
                        "x.1 [3] service-access-point:x~0.i -> service-access-point:x.s~0.o",
                        "x.2 [3] service-access-point:x.s~0.o -> service-access-point:x~0.i",
                        "x.3 [3] service-access-point:x~1.i -> service-access-point:x.s~1.o",
                        "x.4 [3] service-access-point:x.s~1.o -> service-access-point:x~1.i",
                        // inner's rules
                        "x.s.1 [3] service-access-point:x.s~0.i -> sf:x.s.s:a",
                        "x.s.2 [3] sf:x.s.s:a -> service-access-point:x.s~0.i",
                        "x.s.3 [3] service-access-point:x.s~1.i -> sf:x.s.s:b",
                        "x.s.4 [3] sf:x.s.s:b -> service-access-point:x.s~1.i"}),
             boost::test_tools::per_element());
  BOOST_TEST_REQUIRE(e->resolutions.size() == 1u);
  BOOST_TEST(e->resolutions[0].sf_id == "x.s.s");
  BOOST_TEST(e->resolutions[0].tmpl.id == "leaf-nsf");
  BOOST_TEST((e->origin == std::map<std::string, std::string>{{"x.s.s", "x"}}));

  // The parts take their resources: two of them do not fit in 0.4 cores, and the answer is 409,
  // as for any SF that only lacks resources.
  r.node.free = {0.4, 1000, 1000};
  graph::Graph two = oneSfGraph("x", "outer");
  graph::Sf y = two.sfs[0];
  y.id = "y";
  two.sfs.push_back(y);
  auto full = r.resolver->expand(two, r.node);
  BOOST_TEST_REQUIRE(!full.ok());
  BOOST_TEST(full.error().code() == ErrorCode::ResourceExhausted);
  BOOST_TEST_REQUIRE(full.error().fields().size() == 1u);
  BOOST_TEST(full.error().fields()[0].pointer == "/sffg/SFs/1");
  BOOST_TEST(full.error().fields()[0].message ==
             "no implementation of 'outer' fits in the free resources: outer: its graph does not "
             "resolve: [SF 's': no implementation of 'inner' fits in the free resources: inner: "
             "its graph does not resolve: [SF 's': template 'leaf-nsf' cannot be used in the free "
             "resources: leaf-nsf: needs 0.25 CPU cores, 0.15 free]]");
}

// An SF of a template's graph that cannot be resolved: the error is at the client's SF, and says
// which SF of the graph failed and why.
BOOST_AUTO_TEST_CASE(inner_sf_that_cannot_resolve) {
  Repo r;
  r.openShipped();
  r.node.missing = {"iptables"};
  graph::Graph g = oneSfGraph("sec", "security");
  graph::Sf bridge = g.sfs[0];
  bridge.id = "br0";
  bridge.name = "bridge";
  g.sfs.insert(g.sfs.begin(), bridge);
  auto e = r.resolver->expand(g, r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(e.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(e.error().httpStatus() == 422);
  BOOST_TEST_REQUIRE(e.error().fields().size() == 1u);
  BOOST_TEST(e.error().fields()[0].pointer == "/sffg/SFs/1");
  BOOST_TEST(e.error().fields()[0].message ==
             "no implementation of 'security' fits: security-graph: its graph does not resolve: "
             "[SF 'fw': no implementation of 'firewall' fits: firewall-nsf: dependency "
             "'iptables' is missing]");
}

BOOST_AUTO_TEST_CASE(a_cycle_is_refused_naming_it) {
  Repo r;
  r.add("loop-a", chainTemplate("loop-a", "loop-a", "loop-b"));
  r.add("loop-b", chainTemplate("loop-b", "loop-b", "loop-a", true));
  r.add("self", chainTemplate("self", "self", "self"));
  r.open();
  auto e = r.resolver->expand(oneSfGraph("x", "loop-a"), r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(e.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(e.error().httpStatus() == 422);
  BOOST_TEST_REQUIRE(e.error().fields().size() == 1u);
  BOOST_TEST(e.error().fields()[0].pointer == "/sffg/SFs/0");
  BOOST_TEST(e.error().fields()[0].message ==
             "no implementation of 'loop-a' fits: loop-a: its graph does not resolve: [SF 's': no "
             "implementation of 'loop-b' fits: loop-b: its graph does not resolve: [SF 's': "
             "template 'loop-a' cannot be used: loop-a: graph templates in a cycle: loop-a -> "
             "loop-b -> loop-a]]");

  e = r.resolver->expand(oneSfGraph("x", "self"), r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(contains(e.error().message(), "graph templates in a cycle: self -> self"),
             e.error().message());
}

BOOST_AUTO_TEST_CASE(depth_is_limited) {
  Repo r;
  // d1 -> d2 -> ... -> d9, each a graph template of the next; d10 runs.
  for (int k = 1; k <= 9; ++k) {
    std::string id = "d" + std::to_string(k);
    r.add(id, chainTemplate(id, id, "d" + std::to_string(k + 1)));
  }
  r.add("d10", leafTemplate("d10", "d10"));
  r.open();
  static_assert(kMaxTemplateDepth == 8);

  // Eight graph templates deep is fine.
  auto ok = r.resolver->expand(oneSfGraph("x", "d2"), r.node);
  BOOST_TEST_REQUIRE(ok.ok(), message(ok));
  BOOST_TEST(sfLines(ok->graph) == (Lines{"x.s.s.s.s.s.s.s.s (d10) a b"}),
             boost::test_tools::per_element());
  BOOST_TEST(ok->graph.saps.size() == 2u + 8u * 4u);

  // Nine is not.
  auto deep = r.resolver->expand(oneSfGraph("x", "d1"), r.node);
  BOOST_TEST_REQUIRE(!deep.ok());
  BOOST_TEST(deep.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(deep.error().fields().at(0).pointer == "/sffg/SFs/0");
  BOOST_TEST(contains(deep.error().message(),
                      "d9: graph templates nested more than 8 deep: d1 -> d2 -> d3 -> d4 -> d5 -> "
                      "d6 -> d7 -> d8 -> d9]]]]]]]]"),
             deep.error().message());
}

// Graph templates that could each be made of the others: the tries are bounded, and the answer
// too.
BOOST_AUTO_TEST_CASE(tries_are_bounded) {
  Repo r;
  for (int k = 0; k < 7; ++k) {
    std::string id = "c" + std::to_string(k);
    r.add(id, chainTemplate(id, "c", "c"));
  }
  r.open();
  auto e = r.resolver->expand(oneSfGraph("x", "c"), r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(e.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(contains(e.error().message(),
                      "c6: not tried: 4096 graph templates were tried for this graph already"),
             e.error().message().substr(0, 500));
  BOOST_TEST(e.error().message().size() < 20000u);
}

// Graph templates rank after every type: a function that runs is preferred to a graph of them.
BOOST_AUTO_TEST_CASE(graph_templates_rank_last) {
  Repo r;
  r.add("filter-nsf", leafTemplate("filter-nsf", "filter", "native"));
  r.add("filter-vm", leafTemplate("filter-vm", "filter", "kvm"));
  r.add("filter-graph", chainTemplate("filter-graph", "filter", "part-docker", true));
  r.add("part-docker", leafTemplate("part-docker", "part", "docker"));
  r.open();
  auto pick = [&] {
    auto e = r.resolver->expand(oneSfGraph("f", "filter"), r.node);
    BOOST_TEST_REQUIRE(e.ok(), message(e));
    BOOST_TEST_REQUIRE(e->resolutions.size() == 1u);
    return e->resolutions[0].sf_id + "=" + e->resolutions[0].tmpl.id;
  };
  BOOST_TEST(pick() == "f=filter-nsf");
  r.node.unusable["native"] = "off";
  BOOST_TEST(pick() == "f=filter-vm");
  r.node.unusable["kvm"] = "off";
  BOOST_TEST(pick() == "f.s=part-docker");

  // The refusal lists the candidates in that order.
  r.node.unusable["docker"] = "off";
  auto e = r.resolver->expand(oneSfGraph("f", "filter"), r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(e.error().fields().at(0).message ==
             "no implementation of 'filter' fits: filter-nsf: driver 'native' is not usable: off; "
             "filter-vm: driver 'kvm' is not usable: off; filter-graph: its graph does not "
             "resolve: [SF 's': template 'part-docker' cannot be used: part-docker: driver "
             "'docker' is not usable: off]");

  // A graph template pinned is used even though cheaper ones exist.
  r.node.unusable.clear();
  graph::Graph g = oneSfGraph("f", "filter");
  g.sfs[0].template_id = "filter-graph";
  auto pinned = r.resolver->expand(g, r.node);
  BOOST_TEST_REQUIRE(pinned.ok(), message(pinned));
  BOOST_TEST(pinned->resolutions.at(0).tmpl.id == "part-docker");
}

BOOST_AUTO_TEST_CASE(port_count_must_match) {
  Repo r;
  r.openShipped();
  graph::Graph g = oneSfGraph("sec", "security");
  g.sfs[0].ports.push_back({"extra", ""});
  auto e = r.resolver->expand(g, r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(e.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(e.error().fields().at(0).pointer == "/sffg/SFs/0");
  BOOST_TEST(e.error().fields().at(0).message ==
             "no implementation of 'security' fits: security-graph: needs 2-2 ports, the SF has 3");
}

// internal-port SAPs belong in templates' graphs only: the SF-FG parser reads them (templates
// are read with it), the resolver refuses them in a client's graph.
BOOST_AUTO_TEST_CASE(internal_port_sap_in_a_clients_graph_is_refused) {
  Repo r;
  r.openShipped();
  auto g = graph::parseSffg(R"({"sffg": {"id": "g", "SFs": [],
      "saps": [{"id": "e", "type": "interface", "interface": {"if-name": "eth0"}},
               {"id": "p", "type": "internal-port", "internal-port": {"port-index": "0"}}],
      "flowrules": [{"id": "1", "priority": 1, "match": {"port_in": "service-access-point:e"},
                     "actions": {"output_to_port": "service-access-point:p"}}]}})");
  BOOST_TEST_REQUIRE(g.ok(), (g.ok() ? "" : g.error().message()));
  const std::string why =
      "a SAP of type 'internal-port' only belongs in the graph of a graph template (it stands "
      "for a port of the SF the template implements)";
  auto e = r.resolver->expand(*g, r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(e.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(e.error().httpStatus() == 422);
  BOOST_TEST_REQUIRE(e.error().fields().size() == 1u);
  BOOST_TEST(e.error().fields()[0].pointer == "/sffg/saps/1/type");
  BOOST_TEST(e.error().fields()[0].message == why);

  auto resolved = r.resolver->resolve(*g, r.node);
  BOOST_TEST_REQUIRE(!resolved.ok());
  BOOST_TEST(resolved.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(resolved.error().fields().at(0).pointer == "/sffg/saps/1/type");
}

BOOST_AUTO_TEST_CASE(a_graph_template_takes_no_configuration) {
  Repo r;
  r.openShipped();
  auto e = r.resolver->expand(oneSfGraph("sec", "security", R"({"allow-icmp": true})"), r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(e.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST_REQUIRE(e.error().fields().size() == 1u);
  BOOST_TEST(e.error().fields()[0].pointer == "/sffg/SFs/0/config");
  BOOST_TEST(e.error().fields()[0].message ==
             "template security-graph is a graph template: it takes no configuration (its "
             "functions are configured in its graph)");
  // An empty one is no configuration.
  BOOST_TEST(r.resolver->expand(oneSfGraph("sec", "security", "{}"), r.node).ok());
}

// The configuration of a template's graph is checked against its SFs' templates.
BOOST_AUTO_TEST_CASE(configuration_in_a_templates_graph) {
  Repo r;
  fs::copy_file(kShipped / "firewall-nsf.json", r.dir.path / "firewall-nsf.json");
  fs::copy_file(kShipped / "bridge-nsf.json", r.dir.path / "bridge-nsf.json");
  // The shipped security graph, as template `id` of capability `id`, its firewall configured.
  auto securityGraph = [](const std::string& id, const std::string& config) {
    std::string t = readFile(kShipped / "security-graph.json");
    auto replace = [&t](const std::string& from, const std::string& to) {
      size_t at = t.find(from);
      BOOST_TEST_REQUIRE(at != std::string::npos, from);
      t.replace(at, from.size(), to);
    };
    replace(R"("id": "security-graph")", R"("id": ")" + id + R"(")");
    replace(R"("functional-capability": "security")",
            R"("functional-capability": ")" + id + R"(")");
    replace(R"("name": "firewall",)", R"("name": "firewall", "config": )" + config + ",");
    return t;
  };
  r.add("good", securityGraph("good", R"({"allowed-tcp-ports": [22], "allow-icmp": true})"));
  r.add("bad", securityGraph("bad", R"({"allowed-udp-ports": [53]})"));
  r.open();
  auto e = r.resolver->expand(oneSfGraph("sec", "good"), r.node);
  BOOST_TEST_REQUIRE(e.ok(), message(e));
  BOOST_TEST(e->resolutions.at(0).config_json == R"({"allow-icmp":true,"allowed-tcp-ports":[22]})");

  auto bad = r.resolver->expand(oneSfGraph("sec", "bad"), r.node);
  BOOST_TEST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error().code() == ErrorCode::Unsupported);
  BOOST_TEST(bad.error().fields().at(0).pointer == "/sffg/SFs/0");
  BOOST_TEST(contains(bad.error().message(),
                      "bad: its graph does not resolve: [SF 'fw': unknown configuration "
                      "parameter 'allowed-udp-ports' for template firewall-nsf"),
             bad.error().message());
}

// Spliced ids must not clash with the graph's own; and must stay short enough to name the
// functions' namespaces.
BOOST_AUTO_TEST_CASE(clashing_and_overlong_ids) {
  Repo r;
  r.openShipped();
  graph::Graph g = oneSfGraph("sec", "security");
  graph::Sf clash = g.sfs[0];
  clash.id = "sec.fw";
  clash.name = "firewall";
  g.sfs.push_back(clash);
  g.rules[0].id = "sec.fw-to-br";
  auto e = r.resolver->expand(g, r.node);
  BOOST_TEST_REQUIRE(!e.ok());
  BOOST_TEST(e.error().code() == ErrorCode::InvalidArgument);
  std::vector<std::string> fields;
  for (const auto& f : e.error().fields()) fields.push_back(f.pointer + ": " + f.message);
  BOOST_TEST(fields == (Lines{"/sffg/SFs/0: splicing graph template security-graph in place of "
                              "SF 'sec' makes an SF 'sec.fw', which the graph already has",
                              "/sffg/SFs/0: splicing graph template security-graph in place of "
                              "SF 'sec' makes a flowrule 'sec.fw-to-br', which the graph "
                              "already has"}),
             boost::test_tools::per_element());

  Repo deep;
  const std::string l64(64, 'l');
  deep.add("long1", chainTemplate("long1", "long1", "long2", false, l64));
  deep.add("long2", chainTemplate("long2", "long2", "leaf-nsf", true, l64));
  deep.add("leaf-nsf", leafTemplate("leaf-nsf", "leaf"));
  deep.open();
  const std::string u64(64, 'u');
  auto overlong = deep.resolver->expand(oneSfGraph(u64, "long1"), deep.node);
  BOOST_TEST_REQUIRE(!overlong.ok());
  BOOST_TEST(overlong.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(overlong.error().fields().at(0).pointer == "/sffg/SFs/0");
  BOOST_TEST(contains(overlong.error().message(),
                      "makes an SF id of 194 characters, more than 183 ('" + u64 + "." + l64 + "." +
                          l64 + "'): its network namespace could not be named"),
             overlong.error().message());
  // One level less fits.
  BOOST_TEST(deep.resolver->expand(oneSfGraph(u64, "long2"), deep.node).ok());
}

BOOST_AUTO_TEST_CASE(expansions_in_parallel_agree) {
  Repo r;
  r.openShipped();
  const graph::Graph g = oneSfGraph("sec", "security");
  auto first = r.resolver->expand(g, r.node);
  BOOST_TEST_REQUIRE(first.ok(), message(first));
  std::atomic<int> different{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        auto e = r.resolver->expand(g, r.node);
        if (!e.ok() || !(e->graph == first->graph) || e->origin != first->origin ||
            e->resolutions.size() != first->resolutions.size()) {
          ++different;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(different.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
