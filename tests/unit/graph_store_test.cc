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
