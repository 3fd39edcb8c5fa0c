// Golden files of what the ovs driver emits (tests/data/ovs/): the OVSDB transactions of its
// management calls and its OpenFlow messages rendered as text (and bytes). After an intended
// change, regenerate them with CORCH_REGENERATE_GOLDEN=1 and review the diff.
#define BOOST_TEST_MODULE ovs_golden
#include <boost/test/unit_test.hpp>

#include <rapidjson/document.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "drivers/vswitch/ovs/openflow.h"
#include "drivers/vswitch/ovs/ovsdb_client.h"
#include "drivers/vswitch/ovs/vswitch_db.h"
#include "integration/vswitch_conformance.h"

namespace {

using namespace corch;
using namespace corch::drivers::ovs;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Compares `actual` with the golden file, or rewrites the file when CORCH_REGENERATE_GOLDEN=1.
void checkGolden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(CORCH_SOURCE_DIR) + "/tests/data/ovs/" + name;
  const char* regenerate = std::getenv("CORCH_REGENERATE_GOLDEN");
  if (regenerate && std::string(regenerate) == "1") {
    std::ofstream(path) << actual;
    BOOST_TEST_MESSAGE("regenerated " << path);
    return;
  }
  std::ifstream file(path);
  BOOST_REQUIRE_MESSAGE(file, "no golden file " << path << " (CORCH_REGENERATE_GOLDEN=1 makes it)");
  std::stringstream expected;
  expected << file.rdbuf();
  BOOST_TEST(lines(actual) == lines(expected.str()), boost::test_tools::per_element());
}

// A database as ovsdb-server answers DbSnapshot::query(): LSI-0 with its local port and two
// physical interfaces.
const char* kSnapshot = R"([
  {"rows": [{"next_cfg": 5, "cur_cfg": 5,
             "iface_types": ["set", ["internal", "patch", "system", "tap"]],
             "datapath_types": ["set", ["netdev", "system"]]}]},
  {"rows": [{"_uuid": ["uuid", "00000000-0000-0000-0000-0000000000b0"], "name": "lsi0",
             "ports": ["set", [["uuid", "00000000-0000-0000-0000-0000000000a0"],
                               ["uuid", "00000000-0000-0000-0000-0000000000a1"],
                               ["uuid", "00000000-0000-0000-0000-0000000000a2"]]]}]},
  {"rows": [{"_uuid": ["uuid", "00000000-0000-0000-0000-0000000000a0"], "name": "lsi0",
             "interfaces": ["uuid", "00000000-0000-0000-0000-0000000000c0"]},
            {"_uuid": ["uuid", "00000000-0000-0000-0000-0000000000a1"], "name": "eth1",
             "interfaces": ["uuid", "00000000-0000-0000-0000-0000000000c1"]},
            {"_uuid": ["uuid", "00000000-0000-0000-0000-0000000000a2"], "name": "eth2",
             "interfaces": ["uuid", "00000000-0000-0000-0000-0000000000c2"]}]},
  {"rows": [{"_uuid": ["uuid", "00000000-0000-0000-0000-0000000000c0"], "name": "lsi0",
             "type": "internal", "ofport": 65534, "ofport_request": ["set", []],
             "options": ["map", []], "external_ids": ["map", []], "error": ["set", []]},
            {"_uuid": ["uuid", "00000000-0000-0000-0000-0000000000c1"], "name": "eth1",
             "type": "", "ofport": 1, "ofport_request": 1,
             "options": ["map", []], "external_ids": ["map", []], "error": ["set", []]},
            {"_uuid": ["uuid", "00000000-0000-0000-0000-0000000000c2"], "name": "eth2",
             "type": "", "ofport": 2, "ofport_request": 2,
             "options": ["map", []], "external_ids": ["map", []], "error": ["set", []]}]}
])";

DbSnapshot snapshot() {
  rapidjson::Document doc;
  doc.Parse(kSnapshot);
  BOOST_REQUIRE(!doc.HasParseError());
  auto db = DbSnapshot::parse(doc);
  BOOST_REQUIRE_MESSAGE(db.ok(), corch::test::conformance::why(db));
  return *db;
}

// A graph LSI as the network manager asks for one: SF ports and two vlinks to LSI-0.
LsiSpec graphLsi() {
  return LsiSpec{"corch-g1",
                 {},
                 {{"g1fw0", PortTechnology::Veth},
                  {"g1fw1", PortTechnology::Veth},
                  {"g1hs", PortTechnology::Internal}},
                 "lsi0",
                 2};
}

}  // namespace

BOOST_AUTO_TEST_CASE(create_lsi_transaction) {
  DbSnapshot db = snapshot();
  PortNumbering numbering(db, {});
  auto plan = planCreateLsi(db, graphLsi(), PlanContext{"netdev", "/run/ovs"}, numbering);
  BOOST_REQUIRE_MESSAGE(plan.ok(), corch::test::conformance::why(plan));
  checkGolden("create_lsi.json", toPrettyJson(buildTransaction(plan->change)) + "\n");
}

BOOST_AUTO_TEST_CASE(connect_and_destroy_transactions) {
  DbSnapshot db = snapshot();
  // The graph LSI as created above, read back.
  db.bridges["corch-g1"] =
      BridgeRow{"00000000-0000-0000-0000-0000000001b0",
                "corch-g1",
                {"00000000-0000-0000-0000-0000000001a0", "00000000-0000-0000-0000-0000000001a1",
                 "00000000-0000-0000-0000-0000000001a2"}};
  db.ports["00000000-0000-0000-0000-0000000001a0"] = PortRow{
      "00000000-0000-0000-0000-0000000001a0", "g1fw0", {"00000000-0000-0000-0000-0000000001c0"}};
  db.interfaces["00000000-0000-0000-0000-0000000001c0"] =
      InterfaceRow{"00000000-0000-0000-0000-0000000001c0",
                   "g1fw0",
                   "",
                   1,
                   1,
                   {},
                   {{kVethPeerKey, "g1fw0f"}},
                   ""};
  db.ports["00000000-0000-0000-0000-0000000001a1"] =
      PortRow{"00000000-0000-0000-0000-0000000001a1",
              "corch-g1-vl0b",
              {"00000000-0000-0000-0000-0000000001c1"}};
  db.interfaces["00000000-0000-0000-0000-0000000001c1"] =
      InterfaceRow{"00000000-0000-0000-0000-0000000001c1",
                   "corch-g1-vl0b",
                   "patch",
                   2,
                   2,
                   {{"peer", "corch-g1-vl0a"}},
                   {},
                   ""};
  db.ports["00000000-0000-0000-0000-0000000001a2"] = PortRow{
      "00000000-0000-0000-0000-0000000001a2", "corch-g1", {"00000000-0000-0000-0000-0000000001c2"}};
  db.interfaces["00000000-0000-0000-0000-0000000001c2"] =
      InterfaceRow{"00000000-0000-0000-0000-0000000001c2",
                   "corch-g1",
                   "internal",
                   65534,
                   std::nullopt,
                   {},
                   {},
                   ""};
  db.bridges["lsi0"].ports.push_back("00000000-0000-0000-0000-0000000000a3");
  db.ports["00000000-0000-0000-0000-0000000000a3"] =
      PortRow{"00000000-0000-0000-0000-0000000000a3",
              "corch-g1-vl0a",
              {"00000000-0000-0000-0000-0000000000c3"}};
  db.interfaces["00000000-0000-0000-0000-0000000000c3"] =
      InterfaceRow{"00000000-0000-0000-0000-0000000000c3",
                   "corch-g1-vl0a",
                   "patch",
                   3,
                   3,
                   {{"peer", "corch-g1-vl0b"}},
                   {},
                   ""};

  PortNumbering numbering(db, {});
  auto connect = planConnectLsis(db, "lsi0", "corch-g1", 2, "g1x", numbering);
  BOOST_REQUIRE_MESSAGE(connect.ok(), corch::test::conformance::why(connect));
  checkGolden("connect_lsis.json", toPrettyJson(buildTransaction(connect->change)) + "\n");

  RemovalPlan destroy = planDestroyLsi(db, "corch-g1");
  BOOST_TEST(destroy.veths == std::vector<std::string>{"g1fw0"}, boost::test_tools::per_element());
  checkGolden("destroy_lsi.json", toPrettyJson(buildTransaction(destroy.change)) + "\n");
}

BOOST_AUTO_TEST_CASE(flow_mods_as_text) {
  std::ostringstream out;
  auto hexOf = [](const std::string& bytes) {
    std::string h;
    char buf[4];
    for (unsigned char c : bytes) {
      std::snprintf(buf, sizeof buf, "%02x", c);
      h += buf;
    }
    return h;
  };
  auto emit = [&](const std::string& comment, const std::string& msg) {
    out << "# " << comment << "\n" << openflow::describe(msg) << "\n" << hexOf(msg) << "\n";
  };
  emit("hello", openflow::encodeHello(1));
  emit("barrier", openflow::encodeBarrierRequest(2));
  emit("flow statistics of every table", openflow::encodeFlowStatsRequest(3));
  emit("every rule of one cookie", openflow::encodeDeleteByCookie(0x1200, 0xff00, 4));
  uint32_t xid = 100;
  for (const auto& rule : corch::test::conformance::everyFieldRules(1, 2)) {
    auto normalized = openflow::normalizeRule(rule);
    BOOST_REQUIRE_MESSAGE(normalized.ok(), corch::test::conformance::why(normalized));
    emit(toString(rule),
         openflow::encodeFlowMod(*normalized, openflow::FlowModCommand::Add, xid++));
  }
  // A rule given without its prerequisites: they are added.
  TsRule bare;
  bare.priority = 5;
  bare.in_port = 3;
  bare.fields.dest_ip = IpPrefix::parse("2001:db8::/48");
  bare.fields.protocol = 6;
  bare.fields.dest_port = 22;
  bare.outputs = {4};
  auto normalized = openflow::normalizeRule(bare);
  BOOST_REQUIRE(normalized.ok());
  emit("inferred: " + toString(bare),
       openflow::encodeFlowMod(*normalized, openflow::FlowModCommand::Add, xid++));
  emit("strict delete",
       openflow::encodeFlowMod(*normalized, openflow::FlowModCommand::DeleteStrict, xid++));
  checkGolden("flow_mods.txt", out.str());
}
