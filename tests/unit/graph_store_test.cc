// The graph store (node/graph_store.h): file names for any id, save/load/remove, damaged files.
#define BOOST_TEST_MODULE graph_store
#include "node/graph_store.h"

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "graph/nffg_codec.h"
#include "graph/sffg_codec.h"

using namespace corch;
using corch::node::GraphStore;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/corch-store-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

graph::Graph sample(const std::string& id) {
  auto g = graph::parseSffg(R"({ "sffg": { "id": ")" + id + R"(", "name": "n",
    "saps": [ { "id": "s0", "type": "interface", "interface": { "if-name": "eth0" } },
              { "id": "s1", "type": "interface", "interface": { "if-name": "eth1" } } ],
    "flowrules": [ { "id": "r", "priority": "1",
      "match": { "port_in": "service-access-point:s0" },
      "actions": { "output_to_port": "service-access-point:s1" } } ] } })");
  BOOST_REQUIRE_MESSAGE(g.ok(), (g.ok() ? "" : g.error().message()));
  return *g;
}

}  // namespace

BOOST_AUTO_TEST_CASE(file_names_are_safe_and_distinct_for_any_id) {
  for (std::string id : {"plain-id_1.2", "a/b", "..", ".hidden", "%41", "A", "ü nicode", "x y"}) {
    const std::string name = GraphStore::fileName(id);
    BOOST_TEST(name.find('/') == std::string::npos, name);
    BOOST_TEST(name.front() != '.', name);
    auto back = GraphStore::idOf(name);
    BOOST_REQUIRE(back.ok());
    BOOST_TEST(*back == id);
  }
  BOOST_TEST(GraphStore::fileName("%41") != GraphStore::fileName("A"));
  BOOST_TEST(!GraphStore::idOf("a.json").ok());
  BOOST_TEST(!GraphStore::idOf("%4.sffg.json").ok());
  BOOST_TEST(!GraphStore::idOf("%zz.sffg.json").ok());
  BOOST_TEST(!GraphStore::idOf("a%2fb.sffg.json").ok());  // lower-case hex: not what we write
}

BOOST_AUTO_TEST_CASE(saved_graphs_load_back_equal_and_removed_ones_do_not) {
  TempDir tmp;
  GraphStore store(tmp.path + "/graphs");
  auto empty = store.load();
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->empty());

  BOOST_REQUIRE(store.save("g2", sample("g2")).ok());
  BOOST_REQUIRE(store.save("a.1", sample("a.1")).ok());
  BOOST_REQUIRE(store.save("g2", sample("g2")).ok());  // replaced
  BOOST_TEST(((fs::status(store.dir()).permissions() & fs::perms::others_all) == fs::perms::none));
  auto loaded = store.load();
  BOOST_REQUIRE(loaded.ok());
  BOOST_REQUIRE_EQUAL(loaded->size(), 2u);
  BOOST_TEST((*loaded)[0].id == "a.1");
  BOOST_TEST((*loaded)[1].id == "g2");
  BOOST_REQUIRE((*loaded)[1].graph.ok());
  BOOST_TEST((*(*loaded)[1].graph == sample("g2")));

  BOOST_REQUIRE(store.remove("g2").ok());
  BOOST_REQUIRE(store.remove("g2").ok());  // nothing to remove: fine
  loaded = store.load();
  BOOST_REQUIRE(loaded.ok());
  BOOST_REQUIRE_EQUAL(loaded->size(), 1u);
  BOOST_TEST((*loaded)[0].id == "a.1");
}

BOOST_AUTO_TEST_CASE(a_damaged_file_is_reported_and_others_still_load) {
  TempDir tmp;
  GraphStore store(tmp.path);
  BOOST_REQUIRE(store.save("good", sample("good")).ok());
  std::ofstream(tmp.path + "/" + GraphStore::fileName("bad")) << "{ \"sffg\": ";
  std::ofstream(tmp.path + "/.good.sffg.json.tmp") << "left by a crash";
  auto loaded = store.load();
  BOOST_REQUIRE(loaded.ok());
  BOOST_REQUIRE_EQUAL(loaded->size(), 2u);
  BOOST_TEST((*loaded)[0].id == "bad");
  BOOST_TEST(!(*loaded)[0].graph.ok());
  BOOST_TEST((*loaded)[0].graph.error().message().find("stored graph") != std::string::npos);
  BOOST_TEST((*loaded)[1].graph.ok());
}

// Graphs that came through the NF-FG API are stored as SF-FG too: every NF-FG test document
// must come back from the store equal.
BOOST_AUTO_TEST_CASE(graphs_put_through_the_nffg_api_come_back_equal) {
  TempDir tmp;
  GraphStore store(tmp.path);
  int n = 0;
  for (const auto& entry :
       fs::directory_iterator(std::string(CORCH_SOURCE_DIR) + "/tests/data/nffg/good")) {
    std::ifstream in(entry.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto g = graph::parseNffg(text);
    BOOST_REQUIRE_MESSAGE(g.ok(), entry.path() << ": " << (g.ok() ? "" : g.error().message()));
    const std::string id = "g" + std::to_string(n++);
    g->id = id;
    BOOST_REQUIRE(store.save(id, *g).ok());
    auto loaded = store.load();
    BOOST_REQUIRE(loaded.ok());
    const GraphStore::Loaded* found = nullptr;
    for (const auto& l : *loaded) {
      if (l.id == id) found = &l;
    }
    BOOST_REQUIRE(found != nullptr);
    const std::string why = found->graph.ok() ? "" : found->graph.error().message();
    BOOST_REQUIRE_MESSAGE(found->graph.ok(), entry.path() << ": " << why);
    BOOST_TEST((*found->graph == *g), entry.path());
  }
  BOOST_TEST(n >= 5);
}

// What was built for a graph (the names and numbers a restarted corchd adopts it by) comes back
// equal; a file without it, or with a damaged one, still restores its graph (built anew).
BOOST_AUTO_TEST_CASE(what_was_built_comes_back_equal_and_its_absence_is_no_error) {
  TempDir tmp;
  GraphStore store(tmp.path);
  node::BuiltState built;
  built.index = 7;
  built.sf_numbers = {{"fw", 0}, {"nat", 2}};
  built.sf_port_numbers = {{{"fw", "1"}, 0}, {{"fw", "2"}, 1}, {{"nat", "in"}, 3}};
  built.flowrule_numbers = {{"r1", 1}, {"r2", 4}};
  built.sap_numbers = {{"host", 0}};
  graph::PortRef sap{graph::PortRef::Kind::Sap, "s1", "", ""};
  graph::PortRef port{graph::PortRef::Kind::SfPort, "", "fw", "2"};
  built.vlinks.vlink_of = {{sap, 0}, {port, 1}};
  built.vlinks.side_of = {{sap, network::Side::Lsi0}, {port, network::Side::GraphLsi}};
  built.vlinks.count = 2;
  built.vlink_names = {{"x-g7-vl0a", "x-g7-vl0b"}, {"x-g7-vx1-0a", "x-g7-vx1-0b"}};
  built.placement.functions["fw"] = compute::SfPlacement{{2, 3}, "dedicated 2-3 (NUMA 0)"};
  built.placement.functions["nat"] = compute::SfPlacement{{}, "shared"};
  BOOST_REQUIRE(store.save("with", sample("with"), &built).ok());
  BOOST_REQUIRE(store.save("without", sample("without")).ok());
  std::ofstream(tmp.path + "/" + GraphStore::fileName("damaged"))
      << R"({ "format": 1, "graph": { "sffg": { "id": "damaged", "name": "n" } },
              "built": { "index": "seven" } })";
  auto loaded = store.load();
  BOOST_REQUIRE(loaded.ok());
  BOOST_REQUIRE_EQUAL(loaded->size(), 3u);
  BOOST_TEST((*loaded)[0].id == "damaged");
  BOOST_TEST((*loaded)[0].graph.ok());
  BOOST_TEST(!(*loaded)[0].built.has_value());
  BOOST_TEST((*loaded)[1].id == "with");
  BOOST_REQUIRE((*loaded)[1].built.has_value());
  BOOST_TEST((*(*loaded)[1].built == built));
  BOOST_TEST((*(*loaded)[1].graph == sample("with")));
  BOOST_TEST(!(*loaded)[2].built.has_value());

  const network::GraphNetworkPlan plan = node::planOf(built);
  BOOST_TEST(plan.index == 7u);
  BOOST_TEST((plan.sf_numbers == built.sf_numbers));
  BOOST_TEST(plan.vlinks.count == 2u);
}
