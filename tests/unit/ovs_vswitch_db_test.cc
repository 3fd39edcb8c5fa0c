// The database model of the ovs driver without Open vSwitch: the snapshot and the small queries
// parse what ovsdb-server answers, the plans of the management calls choose names and numbers
// and refuse what cannot be made, and the driver's options are checked.
#define BOOST_TEST_MODULE ovs_vswitch_db
#include <boost/test/unit_test.hpp>

#include "drivers/vswitch/ovs/ovs_driver.h"
#include "drivers/vswitch/ovs/vswitch_db.h"
#include "integration/vswitch_conformance.h"

namespace {

using namespace corch;
using namespace corch::drivers::ovs;
using corch::test::conformance::why;

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  BOOST_REQUIRE_MESSAGE(!d.HasParseError(), "bad JSON in the test: " << text);
  return d;
}

}  // namespace

namespace {

// LSI-0 with eth1 (1) and eth2 (2) and a graph LSI g1 with a veth port (1) and a vlink to LSI-0
// (g1-vl0a, 3 on LSI-0; g1-vl0b, 2 on g1).
DbSnapshot sampleDb() {
  DbSnapshot db;
  db.next_cfg = db.cur_cfg = 3;
  db.iface_types = {"internal", "patch", "tap", "system"};
  db.datapath_types = {"netdev"};
  auto add = [&](const std::string& bridge, const std::string& name, const std::string& type,
                 int64_t ofport, std::map<std::string, std::string> options,
                 std::map<std::string, std::string> external_ids) {
    std::string pu = "p-" + name, iu = "i-" + name;
    db.bridges[bridge].name = bridge;
    db.bridges[bridge].uuid = "b-" + bridge;
    db.bridges[bridge].ports.push_back(pu);
    db.ports[pu] = PortRow{pu, name, {iu}};
    db.interfaces[iu] = InterfaceRow{iu, name, type, ofport, ofport, options, external_ids, ""};
  };
  add("lsi0", "lsi0", "internal", 65534, {}, {});
  add("lsi0", "eth1", "", 1, {}, {});
  add("lsi0", "eth2", "", 2, {}, {});
  add("lsi0", "g1-vl0a", "patch", 3, {{"peer", "g1-vl0b"}}, {});
  add("g1", "g1", "internal", 65534, {}, {});
  add("g1", "g1p1", "", 1, {}, {{kVethPeerKey, "g1p1f"}});
  add("g1", "g1-vl0b", "patch", 2, {{"peer", "g1-vl0a"}}, {});
  return db;
}

template <class T>
void expectError(const Result<T>& r, ErrorCode code, const std::string& words) {
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.error().code() == code), r.error().message());
  BOOST_TEST(r.error().message().find(words) != std::string::npos, r.error().message());
}

}  // namespace

BOOST_AUTO_TEST_CASE(port_numbers_go_up_and_are_not_reused_at_once) {
  DbSnapshot db = sampleDb();
  PortNumbering numbering(db, {});
  BOOST_TEST(*numbering.next("lsi0") == 4u);
  BOOST_TEST(*numbering.next("lsi0") == 5u);
  BOOST_TEST(*numbering.next("new") == 1u);
  BOOST_TEST(numbering.hints().at("lsi0") == 6u);
  // A hint above the highest number in use wins (numbers of destroyed ports are not reused).
  PortNumbering hinted(db, {{"g1", 10}});
  BOOST_TEST(*hinted.next("g1") == 10u);
  // At the top of the range, the lowest free number.
  PortNumbering top(db, {{"lsi0", kMaxPortNumber + 1}});
  BOOST_TEST(*top.next("lsi0") == 4u);
}

BOOST_AUTO_TEST_CASE(create_plans_refuse_what_cannot_be_made) {
  DbSnapshot db = sampleDb();
  PlanContext context{"netdev", "/run/ovs"};
  PortNumbering numbering(db, {});
  expectError(planCreateLsi(db, LsiSpec{"g1", {}, {}, "", 0}, context, numbering),
              ErrorCode::AlreadyExists, "LSI g1 exists");
  expectError(planCreateLsi(db, LsiSpec{"g2", {}, {{"g1p1", PortTechnology::Veth}}, "", 0}, context,
                            numbering),
              ErrorCode::AlreadyExists, "port g1p1 exists already on LSI g1");
  expectError(planCreateLsi(db, LsiSpec{"g2", {}, {}, "nope", 1}, context, numbering),
              ErrorCode::NotFound, "no LSI nope");
  expectError(planCreateLsi(db, LsiSpec{"g2", {}, {}, "", 1}, context, numbering),
              ErrorCode::InvalidArgument, "vlink_peer");
  expectError(
      planCreateLsi(db, LsiSpec{"g2", {}, {{"abcdefghijklmno", PortTechnology::Veth}}, "", 0},
                    context, numbering),
      ErrorCode::InvalidArgument, "1 to 14 characters");
  expectError(
      planCreateLsi(
          db, LsiSpec{"g2", {}, {{"x", PortTechnology::Veth}, {"x", PortTechnology::Tap}}, "", 0},
          context, numbering),
      ErrorCode::InvalidArgument, "appears twice");
  expectError(planCreateLsi(db, LsiSpec{"g2", {}, {{"v", PortTechnology::VhostUser}}, "", 0},
                            context, numbering),
              ErrorCode::Unsupported, "DPDK");
  expectError(planCreateLsi(db, LsiSpec{"a/b", {}, {}, "", 0}, context, numbering),
              ErrorCode::InvalidArgument, "invalid LSI name");
  expectError(planCreateLsi(db, LsiSpec{"g2", {"eth1"}, {}, "", 0}, context, numbering),
              ErrorCode::AlreadyExists, "eth1");
}

BOOST_AUTO_TEST_CASE(create_plan_numbers_and_names) {
  DbSnapshot db = sampleDb();
  PortNumbering numbering(db, {});
  auto plan =
      planCreateLsi(db,
                    LsiSpec{"g2",
                            {"eth3"},
                            {{"g2p1", PortTechnology::Veth}, {"g2h", PortTechnology::Internal}},
                            "lsi0",
                            2},
                    PlanContext{"netdev", "/run/ovs"}, numbering);
  BOOST_REQUIRE_MESSAGE(plan.ok(), why(plan));
  const LsiInfo& info = plan->info;
  BOOST_TEST(info.interfaces[0].of_port == 1u);
  BOOST_TEST(info.ports[0].of_port == 2u);
  BOOST_TEST(info.ports[0].peer_ifname == "g2p1f");
  BOOST_TEST(info.ports[1].of_port == 3u);
  BOOST_TEST(info.ports[1].peer_ifname.empty());
  BOOST_REQUIRE_EQUAL(info.vlinks.size(), 2u);
  BOOST_TEST(info.vlinks[0].name_a == "g2-vl0a");
  BOOST_TEST(info.vlinks[0].port_a == 4u);  // after eth1, eth2, g1-vl0a on LSI-0
  BOOST_TEST(info.vlinks[0].name_b == "g2-vl0b");
  BOOST_TEST(info.vlinks[0].port_b == 4u);
  BOOST_TEST(info.vlinks[1].port_a == 5u);
  auto veths = plan->change.newVeths();
  BOOST_REQUIRE_EQUAL(veths.size(), 1u);
  BOOST_TEST(veths[0].first == "g2p1");
  BOOST_TEST(veths[0].second == "g2p1f");
  auto names = plan->change.newPortNames();
  BOOST_TEST(names.size() == 7u, "every new port but the local one, far ends too");
}

BOOST_AUTO_TEST_CASE(destroy_plans_find_far_ends_and_veths) {
  DbSnapshot db = sampleDb();
  RemovalPlan lsi = planDestroyLsi(db, "g1");
  BOOST_TEST(lsi.change.remove_bridges == std::vector<std::string>{"b-g1"},
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(lsi.change.remove_ports.size(), 1u);
  BOOST_TEST(lsi.change.remove_ports[0].bridge_uuid == "b-lsi0");
  BOOST_TEST(lsi.change.remove_ports[0].port_uuids == std::vector<std::string>{"p-g1-vl0a"},
             boost::test_tools::per_element());
  BOOST_TEST(lsi.veths == std::vector<std::string>{"g1p1"}, boost::test_tools::per_element());
  BOOST_TEST(planDestroyLsi(db, "absent").change.empty());

  RemovalPlan ports = planDestroyPorts(db, "g1", {"g1p1", "eth1", "absent"});
  BOOST_REQUIRE_EQUAL(ports.change.remove_ports.size(), 1u);
  BOOST_TEST(ports.change.remove_ports[0].port_uuids == std::vector<std::string>{"p-g1p1"},
             "eth1 is not on g1");
  BOOST_TEST(ports.veths == std::vector<std::string>{"g1p1"}, boost::test_tools::per_element());
  BOOST_TEST(planDestroyPorts(db, "lsi0", {"eth1"}).veths.empty(),
             "an attached netdev is not deleted");

  RemovalPlan vlinks = planDestroyVlinks(db, {VlinkInfo{"g1-vl0a", 3, "g1-vl0b", 2}});
  BOOST_TEST(vlinks.change.remove_ports.size() == 2u);
}

// What createLsi and createPorts wrote is read back as they returned it: numbers, and the
// function's end of each kind of port.
BOOST_AUTO_TEST_CASE(an_lsi_is_read_back_from_the_database) {
  DbSnapshot db = sampleDb();
  auto add = [&](const std::string& name, const std::string& type, std::optional<int64_t> ofport,
                 std::map<std::string, std::string> options,
                 std::map<std::string, std::string> external_ids, const std::string& error = "") {
    std::string pu = "p-" + name, iu = "i-" + name;
    db.bridges["g1"].ports.push_back(pu);
    db.ports[pu] = PortRow{pu, name, {iu}};
    db.interfaces[iu] = InterfaceRow{iu, name, type, ofport, ofport, options, external_ids, error};
  };
  add("g1t", "", 5, {}, {{kTapKey, "true"}});
  add("g1v", "dpdkvhostuserclient", 4, {{"vhost-server-path", "/run/g1v"}}, {});
  add("g1i", "internal", 3, {}, {});
  add("g1x", "", -1, {}, {{kVethPeerKey, "g1xf"}}, "could not open network device g1x");
  add("g1y", "", std::nullopt, {}, {});

  std::vector<std::string> unnumbered;
  auto listed = listBridgePorts(db, "g1", &unnumbered);
  BOOST_REQUIRE_MESSAGE(listed.ok(), why(listed));
  std::vector<std::string> text;
  for (const auto& p : *listed) {
    text.push_back(p.info.name + " " + std::to_string(p.info.of_port) + " " + p.info.peer_ifname +
                   " [" + p.kernel_link + "]");
  }
  BOOST_TEST(text == (std::vector<std::string>{"g1p1 1 g1p1f [g1p1]", "g1-vl0b 2  []", "g1i 3  []",
                                               "g1v 4 /run/g1v []", "g1t 5 g1t [g1t]"}),
             boost::test_tools::per_element());
  BOOST_TEST(
      unnumbered == (std::vector<std::string>{"g1x (could not open network device g1x)", "g1y"}),
      boost::test_tools::per_element());

  auto lsi0 = listBridgePorts(db, "lsi0", nullptr);
  BOOST_REQUIRE(lsi0.ok());
  BOOST_REQUIRE_EQUAL(lsi0->size(), 3u);
  BOOST_TEST((*lsi0)[0].info.name == "eth1", "the local port lsi0 is not listed");
  BOOST_TEST((*lsi0)[2].info.name == "g1-vl0a");
  BOOST_TEST((*lsi0)[2].info.of_port == 3u);
  expectError(listBridgePorts(db, "absent", nullptr), ErrorCode::NotFound, "no LSI absent");
}

BOOST_AUTO_TEST_CASE(small_queries_parse_their_answers) {
  auto names = parseBridgeNames(parse(R"([{"rows":[{"name":"b"},{"name":"a"}]}])"));
  BOOST_REQUIRE(names.ok());
  BOOST_TEST(*names == (std::vector<std::string>{"a", "b"}), boost::test_tools::per_element());

  auto number =
      parsePortNumber(parse(R"([{"rows":[{"ports":["set",[["uuid","p1"],["uuid","p2"]]]}]},
                                          {"rows":[{"_uuid":["uuid","p2"],"interfaces":["uuid","i2"]}]},
                                          {"rows":[{"ofport":7,"error":["set",[]]}]}])"),
                      "br", "x");
  BOOST_TEST((number.ok() && *number == 7u), why(number));
  expectError(parsePortNumber(parse(R"([{"rows":[]},{"rows":[]},{"rows":[]}])"), "br", "x"),
              ErrorCode::NotFound, "no LSI br");
  expectError(parsePortNumber(parse(R"([{"rows":[{"ports":["uuid","p1"]}]},
                                        {"rows":[{"_uuid":["uuid","p9"],"interfaces":["uuid","i9"]}]},
                                        {"rows":[{"ofport":7,"error":["set",[]]}]}])"),
                              "br", "x"),
              ErrorCode::NotFound, "no port x on LSI br");
  expectError(parsePortNumber(parse(R"j([{"rows":[{"ports":["uuid","p1"]}]},
                                        {"rows":[{"_uuid":["uuid","p1"],"interfaces":["uuid","i1"]}]},
                                        {"rows":[{"ofport":-1,"error":"could not open network device x (No such device)"}]}])j"),
                              "br", "x"),
              ErrorCode::Unavailable, "No such device");

  auto counters = parseCfgCounters(parse(R"([{},{"rows":[{"next_cfg":9,"cur_cfg":8}]}])"));
  BOOST_REQUIRE(counters.ok());
  BOOST_TEST(counters->next_cfg == 9);
  BOOST_TEST(counters->cur_cfg == 8);
  BOOST_TEST(!DbSnapshot::parse(parse(R"([{"rows":[]},{"rows":[]},{"rows":[]},{"rows":[]}])")).ok(),
             "an uninitialised database has no Open_vSwitch row");
}

BOOST_AUTO_TEST_CASE(driver_options) {
  DriverOptions o;
  auto defaults = OvsOptions::parse(o);
  BOOST_REQUIRE(defaults.ok());
  BOOST_TEST(defaults->ovsdb.str() == "unix:/var/run/openvswitch/db.sock");
  BOOST_TEST(defaults->rundir == "/var/run/openvswitch");
  BOOST_TEST(defaults->datapath == "netdev");
  BOOST_TEST(defaults->timeout.count() == 5000);

  o.values = {{"ovsdb", "unix:/tmp/x/db.sock"}, {"timeout-ms", "250"}, {"datapath", "system"}};
  auto custom = OvsOptions::parse(o);
  BOOST_REQUIRE(custom.ok());
  BOOST_TEST(custom->rundir == "/tmp/x", "the rundir defaults to the socket's folder");
  BOOST_TEST(custom->timeout.count() == 250);
  BOOST_TEST(custom->datapath == "system");

  o.values = {{"ovsdb", "tcp:127.0.0.1:6640"}, {"rundir", "/run/o"}};
  auto tcp = OvsOptions::parse(o);
  BOOST_REQUIRE(tcp.ok());
  BOOST_TEST(tcp->ovsdb.str() == "tcp:127.0.0.1:6640");
  BOOST_TEST(tcp->rundir == "/run/o");
  BOOST_TEST(Endpoint::parse("tcp:[::1]:6640")->str() == "tcp:[::1]:6640");

  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"ovsdb", "ssl:1.2.3.4:6640"},
                                                        {"ovsdb", "tcp:host:6640"},
                                                        {"ovsdb", "tcp:1.2.3.4:0"},
                                                        {"datapath", "dpdk"},
                                                        {"timeout-ms", "0"},
                                                        {"timeout-ms", "soon"}}) {
    DriverOptions bad;
    bad.values[key] = value;
    auto r = OvsOptions::parse(bad);
    BOOST_TEST(!r.ok(), key << "=" << value);
    if (!r.ok()) {
      BOOST_TEST((r.error().code() == ErrorCode::InvalidArgument));
      BOOST_TEST(r.error().message().find(key) != std::string::npos, r.error().message());
    }
  }
}
