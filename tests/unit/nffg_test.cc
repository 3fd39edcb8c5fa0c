#define BOOST_TEST_MODULE nffg
#include <boost/test/unit_test.hpp>
// Included after unit_test.hpp, which must come first for BOOST_TEST_MODULE.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "graph/document_reader.h"
#include "graph/json_schema.h"
#include "graph/nffg_codec.h"
#include "graph/sffg_codec.h"

// The NF-FG codec: good documents parse and survive a round trip, in the NF-FG and through the
// SF-FG; bad ones are refused with the exact pointers of their offending fields. Cases are tables:
// to add one, drop a file in tests/data/nffg/{good,bad}/ and add a row below (a test checks that
// no file is forgotten).

namespace corch::graph {
namespace {

namespace fs = std::filesystem;
namespace data = boost::unit_test::data;

const fs::path kSource = CORCH_SOURCE_DIR;
const fs::path kData = kSource / "tests/data/nffg";

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Graph parseFile(const fs::path& path) {
  auto parsed = parseNffg(readFile(path));
  // Boost evaluates a message even when the check passes: error() only when there is one.
  if (!parsed.ok()) BOOST_FAIL(path.filename() << ": " << parsed.error().message());
  return std::move(parsed).value();
}

Graph parseSffgFile(const fs::path& path) {
  auto parsed = parseSffg(readFile(path));
  if (!parsed.ok()) BOOST_FAIL(path.filename() << ": " << parsed.error().message());
  return std::move(parsed).value();
}

// Good NF-FG documents, relative to the source root.
const std::vector<std::string> kGood = {
    "tests/data/nffg/good/end-point-types.json",
    "tests/data/nffg/good/all-actions.json",
    "tests/data/nffg/good/all-match-fields.json",
    "tests/data/nffg/good/frog4-style.json",
    "tests/data/nffg/good/minimal.json",
    "tests/data/nffg/good/no-big-switch.json",
    "examples/nffg/firewall.json",
};

// Every SF-FG the repository holds, to print as NF-FG.
std::vector<std::string> sffgDocuments() {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kSource / "tests/data/sffg/good")) {
    files.push_back(fs::relative(entry.path(), kSource).string());
  }
  for (const auto& entry : fs::directory_iterator(kSource / "examples")) {
    if (entry.path().extension() == ".json") {
      files.push_back(fs::relative(entry.path(), kSource).string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct BadCase {
  std::string file;  // under tests/data/nffg/bad/
  ErrorCode code;
  bool schema;                        // an error of the schema stage (400 on the NF-FG API)
  std::vector<std::string> pointers;  // every FieldError's pointer, in any order
  std::string message = {};           // a part of the error's message, if not empty
};

std::ostream& operator<<(std::ostream& out, const BadCase& c) { return out << c.file; }

const std::string kFg = "/forwarding-graph";
const std::string kVnfs = kFg + "/VNFs";
const std::string kEps = kFg + "/end-points";
const std::string kRules = kFg + "/big-switch/flow-rules";

const std::vector<BadCase> kBad = {
    {"malformed-comma.json",
     ErrorCode::Malformed,
     false,
     {},
     "line 1, column 36 (offset 35): Missing a name for object member."},
    {"malformed-truncated.json", ErrorCode::Malformed, false, {}, "malformed JSON"},
    {"not-an-object.json",
     ErrorCode::InvalidArgument,
     true,
     {""},
     "NF-FG document does not follow the NF-FG schema: expected an object, got an array"},
    {"unknown-keys.json",
     ErrorCode::InvalidArgument,
     true,
     {kFg + "/node-config", kVnfs + "/0/groups", kVnfs + "/0/unify-control",
      kVnfs + "/0/ports/0/mac", kVnfs + "/0/ports/0/trusted", kEps + "/0/interface/node-id",
      kEps + "/1/gre-tunnel/ttl", kEps + "/1/remote_endpoint_id", kRules + "/0/match/hard_timeout",
      kRules + "/0/match/tos_bits", kRules + "/0/actions/0/set_ip_tos",
      kRules + "/0/actions/1/output_to_queue", kFg + "/big-switch/default-rule",
      kFg + "/gui-position", "/version"},
     kRules + "/0/actions/0/set_ip_tos: unknown field 'set_ip_tos'"},
    {"wrong-types.json",
     ErrorCode::InvalidArgument,
     true,
     {kFg + "/id", kVnfs, kEps + "/0/interface/if-name", kRules + "/0/priority",
      kRules + "/0/actions", kRules + "/1/priority", kRules + "/1/match/port_in",
      kRules + "/1/actions/0/pop_vlan", kRules + "/1/actions/1/drop", kRules + "/1/actions/2",
      kFg + "/unify-monitoring"},
     kRules + "/1/actions/0/pop_vlan: false is not one of: true"},
    {"missing-fields.json",
     ErrorCode::InvalidArgument,
     true,
     {kVnfs + "/0/name", kVnfs + "/0/ports/0/id", kEps + "/0/id", kEps + "/0/interface/if-name",
      kEps + "/1/gre-tunnel/gre-key", kEps + "/2/host-stack/configuration",
      kFg + "/big-switch/flow-rules"},
     "missing required field 'gre-key'"},
    {"missing-rule-fields.json",
     ErrorCode::InvalidArgument,
     true,
     {kRules + "/0/id", kRules + "/1/priority", kRules + "/1/actions", kRules + "/1/match/port_in",
      kVnfs + "/0/unify-env-variables/0/variable"},
     "missing required field 'port_in'"},
    {"bad-enums.json",
     ErrorCode::InvalidArgument,
     true,
     {kEps + "/0/type", kEps + "/0/interface-out", kEps + "/1/host-stack/configuration"},
     "'pppoe' is not one of: static, STATIC, dhcp, DHCP"},
    {"action-shapes.json",
     ErrorCode::InvalidArgument,
     true,
     {kRules + "/0/actions/0", kRules + "/0/actions/1/output_to_port",
      kRules + "/1/actions/0/pop_vlan", kRules + "/1/actions/0/dec_ttl"},
     "an action has exactly one key: put 'output_to_port' in an object of its own"},
    {"action-order.json",
     ErrorCode::InvalidArgument,
     false,
     {kRules + "/0/actions/1/set_vlan_id", kRules + "/1/actions/1/push_vlan",
      kRules + "/2/actions/1/push_vlan", kRules + "/3/actions/1/drop"},
     "'set_vlan_id' comes after 'output_to_port', but is applied before it"},
    {"bad-references.json",
     ErrorCode::InvalidArgument,
     false,
     {kRules + "/0/match/port_in", kRules + "/1/match/port_in", kRules + "/2/match/port_in",
      kRules + "/2/actions/1/output_to_port", kRules + "/3/match/port_in",
      kRules + "/3/actions/0/output_to_port", kRules + "/4/match/port_in",
      kRules + "/4/actions/0/output_to_port", kRules + "/4/actions/1/output_to_port",
      kRules + "/5/actions/1/output_to_port"},
     "VNF '00000001' has no port 'inout:2' (in 'vnf:00000001:inout:2')"},
    {"bad-numbers.json",
     ErrorCode::InvalidArgument,
     false,
     {kEps + "/0/vlan/vlan-id", kEps + "/1/gre-tunnel/gre-key", kRules + "/0/priority",
      kRules + "/0/match/ether_type", kRules + "/0/match/vlan_id",
      kRules + "/0/match/vlan_priority", kRules + "/0/match/protocol",
      kRules + "/0/match/source_port", kRules + "/0/match/dest_port", kRules + "/0/match/ip_dscp",
      kRules + "/0/match/arp_opcode", kRules + "/0/actions/0/push_vlan",
      kRules + "/0/actions/1/set_vlan_id", kRules + "/0/actions/2/set_l4_src_port",
      kRules + "/0/actions/3/set_l4_dst_port", kRules + "/1/priority",
      kRules + "/1/match/icmpv4_type", kRules + "/1/match/icmpv4_code"},
     "'ftp' is not a protocol number, nor tcp, udp, sctp, icmp or icmpv6"},
    {"bad-addresses.json",
     ErrorCode::InvalidArgument,
     false,
     {kEps + "/1/gre-tunnel/local-ip", kEps + "/2/gre-tunnel/remote-ip",
      kEps + "/3/host-stack/ipv4", kEps + "/4/interface/if-name", kRules + "/0/match/source_mac",
      kRules + "/0/match/dest_ip", kRules + "/0/actions/0/set_ethernet_dst_address",
      kRules + "/0/actions/1/set_ip_src_address"},
     "remote-ip is IPv6 but local-ip is IPv4"},
    {"end-point-conflicts.json",
     ErrorCode::InvalidArgument,
     false,
     {kEps + "/0/interface", kEps + "/0/vlan", kEps + "/1/host-stack/ipv4",
      kEps + "/2/host-stack/ipv4", kEps + "/3/gre-tunnel", kEps + "/5/vlan", kEps + "/7/internal"},
     "end-point 'f' uses the same VLAN 25 on 'eth0' as " + kEps + "/4"},
    {"bad-ids.json",
     ErrorCode::InvalidArgument,
     false,
     {kFg + "/id", kVnfs + "/0/id", kVnfs + "/0/ports/0/id", kVnfs + "/0/ports/2/id",
      kVnfs + "/2/id", kEps + "/1/id", kRules + "/1/id"},
     "duplicate VNF id 'nat' (first at " + kVnfs + "/1)"},
    {"prerequisites.json",
     ErrorCode::InvalidArgument,
     false,
     {kRules + "/0/match/dest_port", kRules + "/1/match/icmpv4_type",
      kRules + "/2/match/icmpv6_code", kRules + "/3/match/vlan_priority",
      kRules + "/4/match/vlan_priority", kRules + "/5/actions/0/set_ip_dst_address",
      kRules + "/6/actions/0/set_l4_src_port", kRules + "/7/actions/0/dec_ttl",
      kRules + "/7/actions/2/output_to_port", kRules + "/8/actions",
      kRules + "/9/actions/1/output_to_port", kRules + "/11"},
     "set_ip_dst_address needs a match that selects IPv4 packets (ether_type 0x0800, or an "
     "address in source_ip or dest_ip)"},
    {"env-variables.json",
     ErrorCode::InvalidArgument,
     false,
     {kVnfs + "/0/unify-env-variables/0/variable", kVnfs + "/0/unify-env-variables/1/variable",
      kVnfs + "/0/unify-env-variables/3/variable"},
     "variable 'ports' is set twice (first at " + kVnfs + "/0/unify-env-variables/2/variable)"},
};

BOOST_DATA_TEST_CASE(good_document_parses_and_round_trips, data::make(kGood), file) {
  Graph graph = parseFile(kSource / file);
  std::string printed = printNffg(graph);
  auto again = parseNffg(printed);
  if (!again.ok()) BOOST_FAIL(again.error().message() << "\nin\n" << printed);
  BOOST_TEST((*again == graph), "parseNffg(printNffg(g)) != g for\n" << printed);
  // Canonical: printing is a fixed point.
  BOOST_TEST(printNffg(*again) == printed);
}

BOOST_DATA_TEST_CASE(bad_document_is_refused_with_its_pointers, data::make(kBad), c) {
  auto parsed = parseNffg(readFile(kData / "bad" / c.file));
  BOOST_REQUIRE(!parsed.ok());
  const Error& error = parsed.error();
  BOOST_TEST(codeName(error.code()) == codeName(c.code), error.message());
  BOOST_TEST(isSchemaError(error) == c.schema, error.message());
  std::multiset<std::string> got, want(c.pointers.begin(), c.pointers.end());
  for (const auto& field : error.fields()) {
    got.insert(field.pointer);
    BOOST_TEST(!field.message.empty(), "no message for " << field.pointer);
  }
  BOOST_TEST(got == want, error.message());
  if (!c.message.empty()) {
    BOOST_TEST(error.message().find(c.message) != std::string::npos,
               "'" << c.message << "' not in: " << error.message());
  }
}

// Every file of the data folders is in a table, so that none is silently skipped.
BOOST_AUTO_TEST_CASE(every_data_file_is_tested) {
  std::set<std::string> listed;
  for (const auto& path : kGood) listed.insert(fs::path(path).filename().string());
  for (const auto& c : kBad) listed.insert(c.file);
  for (const auto* folder : {"good", "bad"}) {
    for (const auto& entry : fs::directory_iterator(kData / folder)) {
      BOOST_TEST(listed.contains(entry.path().filename().string()), entry.path()
                                                                        << " is in no table");
    }
  }
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_told_apart) {
  auto unknown = parseNffg(readFile(kData / "bad/unknown-keys.json"));
  BOOST_REQUIRE(!unknown.ok());
  BOOST_TEST(isSchemaError(unknown.error()));
  for (const auto& field : unknown.error().fields()) {
    BOOST_TEST(isUnknownField(field), field.pointer << ": " << field.message);
  }
  // A schema error that is not an unknown key, and an error of the values.
  auto missing = parseNffg(readFile(kData / "bad/missing-fields.json"));
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(isSchemaError(missing.error()));
  for (const auto& field : missing.error().fields()) BOOST_TEST(!isUnknownField(field));
  auto references = parseNffg(readFile(kData / "bad/bad-references.json"));
  BOOST_REQUIRE(!references.ok());
  BOOST_TEST(!isSchemaError(references.error()));
  BOOST_TEST(references.error().httpStatus() == 422);
}

BOOST_AUTO_TEST_CASE(end_points_map_onto_saps) {
  Graph g = parseFile(kData / "good/end-point-types.json");
  BOOST_TEST(g.id == "end-point-types");
  BOOST_REQUIRE(g.saps.size() == 10u);
  const Sap* ingress = g.findSap("00000001");
  BOOST_TEST((ingress->type == SapType::Interface));
  BOOST_TEST(ingress->name == "ingress");
  BOOST_TEST(ingress->if_name == "eth1");
  BOOST_TEST((g.findSap("00000002")->type == SapType::Vlan));
  BOOST_TEST(g.findSap("00000002")->vlan_id == 25);
  BOOST_TEST(g.findSap("00000002")->if_name == "eth1");
  BOOST_TEST(g.findSap("00000003")->vlan_id == 4095);
  const Sap* gre = g.findSap("00000004");
  BOOST_TEST((gre->type == SapType::Gre));
  BOOST_TEST(gre->gre_local.str() == "10.0.0.1");
  BOOST_TEST(gre->gre_remote.str() == "10.0.0.2");
  BOOST_TEST(gre->gre_key == 1u);
  BOOST_TEST(g.findSap("00000005")->gre_local.v6);
  BOOST_TEST(g.findSap("00000005")->gre_key == 0xffffffffu);
  for (const char* id : {"00000006", "00000007"}) {
    const Sap* host = g.findSap(id);
    BOOST_TEST((host->type == SapType::HostStack));
    BOOST_TEST(host->host_configuration == "static");
    BOOST_REQUIRE(host->host_ipv4.has_value());
  }
  BOOST_TEST(g.findSap("00000006")->host_ipv4->length == 24);
  BOOST_TEST(g.findSap("00000007")->host_ipv4->length == 32);
  for (const char* id : {"00000008", "00000009"}) {
    BOOST_TEST(g.findSap(id)->host_configuration == "dhcp");
    BOOST_TEST(!g.findSap(id)->host_ipv4.has_value());
  }
  const Sap* internal = g.findSap("00000010");
  BOOST_TEST((internal->type == SapType::Internal));
  BOOST_TEST(internal->internal_group == "25");

  // VNF ports keep their "<label>:<n>" ids, which vnf:<id>:<label>:<n> refers to.
  BOOST_REQUIRE(g.sfs.size() == 1u);
  BOOST_TEST(
      (g.sfs[0].ports ==
       std::vector<SfPort>{{"inout:0", "data-port"}, {"inout:1", "data-port"}, {"control:0", ""}}));
  BOOST_TEST((g.rules[0].outputs[0] == PortRef{PortRef::Kind::SfPort, "", "00000001", "inout:0"}));
  BOOST_TEST((g.rules[1].port_in == PortRef{PortRef::Kind::SfPort, "", "00000001", "inout:1"}));
  BOOST_TEST(
      (g.rules[4].outputs[0] == PortRef{PortRef::Kind::SfPort, "", "00000001", "control:0"}));
  BOOST_TEST((g.rules[0].port_in == PortRef{PortRef::Kind::Sap, "00000001", "", ""}));

  // Printed as un-orchestrator spells the host-stack configurations.
  std::string printed = printNffg(g);
  BOOST_TEST(printed.find(R"("configuration": "DHCP")") != std::string::npos);
  BOOST_TEST(printed.find(R"("configuration": "static")") != std::string::npos);
  BOOST_TEST(printed.find(R"("output_to_port": "vnf:00000001:inout:0")") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(every_action_maps_onto_the_model) {
  Graph g = parseFile(kData / "good/all-actions.json");
  const FlowRule& r = g.rules[0];
  BOOST_TEST(r.description == "each action of the NF-FG once, in the order they apply");
  BOOST_TEST(r.mods.push_vlan.value() == 0x25);
  BOOST_TEST(r.mods.pop_vlan);
  BOOST_TEST(r.mods.set_vlan_id.value() == 31);
  BOOST_TEST(r.mods.set_source_mac->str() == "02:00:00:00:00:01");
  BOOST_TEST(r.mods.set_dest_mac->str() == "02:00:00:00:00:02");
  BOOST_TEST(r.mods.set_source_ip->str() == "10.1.1.1");
  BOOST_TEST(r.mods.set_dest_ip->str() == "10.2.2.2");
  BOOST_TEST(r.mods.set_source_port.value() == 1024);
  BOOST_TEST(r.mods.set_dest_port.value() == 53);
  BOOST_TEST(r.mods.dec_ttl);
  BOOST_TEST(!r.drop);
  std::vector<std::string> outputs;
  for (const auto& out : r.outputs) outputs.push_back(out.str());
  BOOST_TEST((outputs == std::vector<std::string>{"sf:ids:inout:0", "service-access-point:mirror",
                                                  "service-access-point:wan"}));
  BOOST_TEST(r.match.protocol.value() == 6);  // "tcp"
  BOOST_TEST(r.match.vlan_id.value() == 0x25);

  BOOST_TEST(g.rules[1].drop);
  BOOST_TEST(g.rules[1].outputs.empty());
  BOOST_TEST(g.rules[1].mods.empty());
  BOOST_TEST(g.rules[2].mods.set_dest_ip->str() == "2001:db8::53");
  BOOST_TEST(g.rules[2].match.protocol.value() == 17);  // "udp"
}

BOOST_AUTO_TEST_CASE(match_fields_and_their_names) {
  Graph g = parseFile(kData / "good/all-match-fields.json");
  const MatchFields& ip = g.rules[0].match;
  BOOST_TEST(g.rules[0].priority == 256);
  BOOST_TEST(ip.ether_type.value() == 0x0800);
  BOOST_TEST(ip.vlan_pcp.value() == 3);  // vlan_priority
  BOOST_TEST(ip.dest_mac->str() == "aa:bb:cc:dd:ee:ff");
  BOOST_TEST(ip.source_ip->str() == "10.0.0.0/8");
  BOOST_TEST(ip.dest_ip->str() == "192.168.1.1");
  BOOST_TEST(ip.dest_port.value() == 443);
  BOOST_TEST(ip.ip_dscp.value() == 46);
  BOOST_TEST(g.rules[1].priority == 65535);
  BOOST_TEST(g.rules[1].match.vlan_pcp.value() == 7);  // vlan_pcp, un-orchestrator's name
  BOOST_TEST(g.rules[2].match.protocol.value() == 1);  // "icmp"
  BOOST_TEST(g.rules[2].match.icmp_type.value() == 8);
  BOOST_TEST(g.rules[3].match.protocol.value() == 58);
  BOOST_TEST(g.rules[3].match.icmp_type.value() == 135);
  BOOST_TEST(g.rules[4].match.arp_opcode.value() == 1);
  BOOST_TEST(g.rules[5].match.protocol.value() == 132);  // "sctp"

  std::string printed = printNffg(g);
  BOOST_TEST(printed.find(R"("vlan_priority": "7")") != std::string::npos);
  BOOST_TEST(printed.find("vlan_pcp") == std::string::npos);
  BOOST_TEST(printed.find(R"("icmpv4_type": "8")") != std::string::npos);
  BOOST_TEST(printed.find(R"("icmpv6_type": "135")") != std::string::npos);
  BOOST_TEST(printed.find(R"("ether_type": "0x0800")") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(graph_fields_and_config_are_kept) {
  Graph g = parseFile(kData / "good/frog4-style.json");
  BOOST_TEST(g.name == "Protected access to the internet");
  BOOST_TEST(g.description == "every graph-level field of the FROG4 nffg library");
  BOOST_TEST(g.domain == "universal-node-1");
  BOOST_TEST(g.measure.starts_with("measurements {m1 = cpu(vnf = nat);}"));
  const Sf& nat = g.sfs[0];
  BOOST_TEST(nat.name == "NAT of the user");
  BOOST_TEST(nat.template_id.value_or("") == "nat-nsf");
  BOOST_TEST((nat.ports == std::vector<SfPort>{{"User:0", "user side"}, {"WAN:0", "WAN side"}}));
  BOOST_TEST(nat.config_json ==
             R"({"logginglevel":"release","block":"tcp","public-ip":"203.0.113.7",)"
             R"("max-sessions":4096,"pools":[{"from":"10.0.0.2","to":"10.0.0.254"}],)"
             R"("note":"a = b, c","empty":""})");
  BOOST_TEST(!g.sfs[1].template_id.has_value());
  BOOST_TEST(g.sfs[1].config_json == "{}");
  BOOST_TEST(g.rules[0].description == "user to NAT");
  BOOST_TEST(g.rules[1].description.empty());
}

// A config round-trips through unify-env-variables, whatever its values; strings print raw unless
// their text would read back as another JSON value.
BOOST_AUTO_TEST_CASE(config_round_trips_through_env_variables) {
  Graph g;
  Sf sf;
  sf.id = "f";
  sf.name = "function";
  // As the codecs hold it: compact, as RapidJSON writes it.
  rapidjson::Document config;
  config.Parse(R"({"word":"release","number-text":"5","true-text":"true","spaced":" 7","empty":"",)"
               R"("quoted":"\"x\"","int":5,"float":2.5,"negative":-3,"bool":false,"null":null,)"
               R"("list":[1,"two",[3]],"object":{"a":{"b":[]}},"unicode":"caf\u00e9 \u0000 end"})");
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  config.Accept(writer);
  sf.config_json.assign(buffer.GetString(), buffer.GetSize());
  g.sfs.push_back(sf);
  std::string printed = printNffg(g);
  auto parsed = parseNffg(printed);
  if (!parsed.ok()) BOOST_FAIL(parsed.error().message() << "\nin\n" << printed);
  BOOST_TEST((*parsed == g), printed);
  BOOST_TEST(printed.find(R"("variable": "word=release")") != std::string::npos, printed);
  BOOST_TEST(printed.find(R"("variable": "number-text=\"5\"")") != std::string::npos, printed);
  BOOST_TEST(printed.find(R"("variable": "int=5")") != std::string::npos, printed);
  BOOST_TEST(printed.find(R"("variable": "list=[1,\"two\",[3]]")") != std::string::npos, printed);
  BOOST_TEST(printed.find(R"("variable": "empty=")") != std::string::npos, printed);

  // A value nested too deep is refused, not a crash.
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto refused = parseNffg(R"({"forwarding-graph": {"VNFs": [{"id": "f", "name": "f",
      "unify-env-variables": [{"variable": "x=)" +
                           deep + R"("}]}]}})");
  BOOST_REQUIRE(!refused.ok());
  BOOST_REQUIRE(refused.error().fields().size() == 1u);
  BOOST_TEST(refused.error().fields()[0].pointer == kVnfs + "/0/unify-env-variables/0/variable");
}

// A graph the SF-FG created prints as a valid NF-FG that reads back as the same graph.
BOOST_DATA_TEST_CASE(sffg_graphs_print_as_nffg, data::make(sffgDocuments()), file) {
  Graph graph = parseSffgFile(kSource / file);
  std::string printed = printNffg(graph);
  auto again = parseNffg(printed);
  if (!again.ok()) BOOST_FAIL(again.error().message() << "\nin\n" << printed);
  BOOST_TEST((*again == graph), "parseNffg(printNffg(g)) != g for\n" << printed);
}

// And the other way, as far as the SF-FG goes: it has no descriptions and no domain.
BOOST_DATA_TEST_CASE(nffg_graphs_print_as_sffg_but_their_descriptions, data::make(kGood), file) {
  Graph graph = parseFile(kSource / file);
  graph.description.clear();
  graph.domain.clear();
  for (auto& rule : graph.rules) rule.description.clear();
  std::string printed = printSffg(graph);
  auto again = parseSffg(printed);
  if (!again.ok()) BOOST_FAIL(again.error().message() << "\nin\n" << printed);
  BOOST_TEST((*again == graph), "parseSffg(printSffg(g)) != g for\n" << printed);
}

// examples/nffg/firewall.json is examples/firewall.json with the NF-FG's port names.
BOOST_AUTO_TEST_CASE(firewall_example_is_the_sffg_example) {
  Graph nffg = parseFile(kSource / "examples/nffg/firewall.json");
  Graph sffg = parseSffgFile(kSource / "examples/firewall.json");
  auto rename = [](std::string& port) { port = port == "0xa" ? "inout:0" : "inout:1"; };
  for (auto& port : sffg.sfs[0].ports) rename(port.id);
  for (auto& rule : sffg.rules) {
    if (rule.port_in.kind == PortRef::Kind::SfPort) rename(rule.port_in.port_id);
    for (auto& out : rule.outputs) {
      if (out.kind == PortRef::Kind::SfPort) rename(out.port_id);
    }
  }
  BOOST_TEST((nffg == sffg), printNffg(nffg) << "\n" << printNffg(sffg));
}

// The printed forms, kept as golden files. Regenerate them with CORCH_TEST_REGENERATE_OUTPUT=1
// after an intended change of the format, and review the diff.
BOOST_AUTO_TEST_CASE(printed_form_is_canonical) {
  for (const char* name : {"end-point-types.json", "all-actions.json", "frog4-style.json"}) {
    std::string printed = printNffg(parseFile(kData / "good" / name)) + "\n";
    fs::path golden = kData / "printed" / name;
    if (std::getenv("CORCH_TEST_REGENERATE_OUTPUT") != nullptr) {
      std::ofstream(golden, std::ios::binary) << printed;
    }
    BOOST_TEST(printed == readFile(golden), name);
  }
}

BOOST_AUTO_TEST_CASE(a_graph_built_in_code_round_trips) {
  Graph g;
  g.id = "built";
  g.description = "built in code";
  g.domain = "here";
  Sf sf;
  sf.id = "fw";
  sf.name = "firewall";
  sf.template_id = "firewall-nsf";
  sf.ports = {{"in", ""}, {"out", "outside"}, {"mgmt:0", ""}};
  g.sfs.push_back(sf);
  Sap sap;
  sap.id = "wan";
  sap.type = SapType::Gre;
  sap.gre_local = *IpAddr::parse("192.0.2.1");
  sap.gre_remote = *IpAddr::parse("192.0.2.2");
  sap.gre_key = 7;
  g.saps.push_back(sap);
  FlowRule in;
  in.id = "in";
  in.description = "ICMPv6 in";
  in.priority = 7;
  in.port_in.sap_id = "wan";
  in.match.ether_type = 0x86dd;
  in.match.protocol = 58;
  in.match.icmp_type = 128;
  in.match.icmp_code = 0;
  in.mods.dec_ttl = true;
  in.outputs.push_back({PortRef::Kind::SfPort, "", "fw", "in"});
  in.outputs.push_back({PortRef::Kind::SfPort, "", "fw", "mgmt:0"});
  g.rules.push_back(in);
  FlowRule drop;
  drop.id = "drop";
  drop.port_in = {PortRef::Kind::SfPort, "", "fw", "out"};
  drop.drop = true;
  g.rules.push_back(drop);

  std::string printed = printNffg(g);
  auto parsed = parseNffg(printed);
  if (!parsed.ok()) BOOST_FAIL(parsed.error().message() << "\nin\n" << printed);
  BOOST_TEST((*parsed == g), printed);
  BOOST_TEST(printed.find(R"("icmpv6_type": "128")") != std::string::npos, printed);
  BOOST_TEST(printed.find(R"("dec_ttl": true)") != std::string::npos);
  BOOST_TEST(printed.find(R"("gre-key": "7")") != std::string::npos);
}

// Pointers of later stages, which speak SF-FG, in the client's NF-FG document.
BOOST_AUTO_TEST_CASE(sffg_pointers_translate_to_the_nffg_document) {
  Graph actions = parseFile(kData / "good/all-actions.json");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/sffg", kFg},
      {"/sffg/id", kFg + "/id"},
      {"/sffg/measure", kFg + "/unify-monitoring"},
      {"/sffg/SFs", kVnfs},
      {"/sffg/SFs/0", kVnfs + "/0"},
      {"/sffg/SFs/0/template", kVnfs + "/0/vnf_template"},
      {"/sffg/SFs/0/ports/1/id", kVnfs + "/0/ports/1/id"},
      {"/sffg/saps/2/vlan/vlan-id", kEps + "/2/vlan/vlan-id"},
      {"/sffg/flowrules", kRules},
      {"/sffg/flowrules/0/match/vlan_id", kRules + "/0/match/vlan_id"},
      {"/sffg/flowrules/0/actions", kRules + "/0/actions"},
      {"/sffg/flowrules/0/actions/push_vlan", kRules + "/0/actions/0/push_vlan"},
      {"/sffg/flowrules/0/actions/set_source_ip", kRules + "/0/actions/5/set_ip_src_address"},
      {"/sffg/flowrules/0/actions/dec_ttl", kRules + "/0/actions/9/dec_ttl"},
      {"/sffg/flowrules/0/actions/output_to_port", kRules + "/0/actions/10/output_to_port"},
      {"/sffg/flowrules/0/actions/output_to_port/2", kRules + "/0/actions/12/output_to_port"},
      {"/sffg/flowrules/1/actions/drop", kRules + "/1/actions/0/drop"},
      {"/sffg/flowrules/2/actions/set_dest_port", kRules + "/2/actions/1/set_l4_dst_port"},
      {"/sffg/flowrules/2/actions/output_to_port", kRules + "/2/actions/2/output_to_port"},
      {"/sffg/flowrules/9", "/sffg/flowrules/9"},  // no such rule
      {"/other", "/other"},
  };
  for (const auto& [sffg, nffg] : cases) BOOST_TEST(nffgPointer(actions, sffg) == nffg, sffg);

  Graph frog4 = parseFile(kData / "good/frog4-style.json");
  BOOST_TEST(nffgPointer(frog4, "/sffg/SFs/0/config/block") ==
             kVnfs + "/0/unify-env-variables/1/variable");
  BOOST_TEST(nffgPointer(frog4, "/sffg/SFs/0/config") == kVnfs + "/0/unify-env-variables");
  Graph types = parseFile(kData / "good/end-point-types.json");
  BOOST_TEST(nffgPointer(types, "/sffg/saps/3/gre/gre-key") == kEps + "/3/gre-tunnel/gre-key");
  BOOST_TEST(nffgPointer(types, "/sffg/saps/9/internal/group") ==
             kEps + "/9/internal/internal-group");
  Graph fields = parseFile(kData / "good/all-match-fields.json");
  BOOST_TEST(nffgPointer(fields, "/sffg/flowrules/0/match/vlan_pcp") ==
             kRules + "/0/match/vlan_priority");
  BOOST_TEST(nffgPointer(fields, "/sffg/flowrules/3/match/icmp_type") ==
             kRules + "/3/match/icmpv6_type");
}

BOOST_AUTO_TEST_CASE(malformed_input_is_400) {
  for (std::string text : {std::string(""), std::string("{\"forwarding-graph\": {}} trailing"),
                           std::string("{\"forwarding-graph\": {\"name\": \"\xff\"}}"),
                           std::string("{\"forwarding-graph\": NaN}")}) {
    auto parsed = parseNffg(text);
    BOOST_REQUIRE(!parsed.ok());
    BOOST_TEST(parsed.error().httpStatus() == 400, parsed.error().message());
    BOOST_TEST(parsed.error().message().find("offset") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused_not_a_crash) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto parsed = parseNffg(R"({"forwarding-graph": {"VNFs": [{"id": "a", "x": )" + deep + "}]}}");
  BOOST_REQUIRE(!parsed.ok());
  BOOST_TEST(isSchemaError(parsed.error()));
  BOOST_REQUIRE(parsed.error().fields().size() == 1u);
  BOOST_TEST(parsed.error().fields()[0].pointer.starts_with(kVnfs + "/0/x/0/0/0"));
}

// The schema file stands on its own (for users' editors and other tools): what the parser says
// about end-points in words, the schema says with anyOf, which check() leaves to validate().
BOOST_AUTO_TEST_CASE(schema_file_alone) {
  JsonSchema schema(readFile(kSource / "orchestrator/graph/nffg.schema.json"));
  rapidjson::Document doc;
  doc.Parse(readFile(kData / "bad/end-point-conflicts.json"));
  BOOST_REQUIRE(!doc.HasParseError());
  BOOST_TEST(schema.check(doc).empty());
  auto error = schema.validate(doc);
  BOOST_REQUIRE(error.has_value());
  BOOST_TEST(error->pointer == kEps + "/0");
  BOOST_TEST(error->message.find("anyOf") != std::string::npos, error->message);

  doc.Parse(readFile(kData / "bad/action-shapes.json"));
  BOOST_TEST(schema.check(doc).empty());
  BOOST_TEST(schema.validate(doc).has_value());

  for (const auto& file : kGood) {
    doc.Parse(readFile(kSource / file));
    BOOST_TEST(!schema.validate(doc).has_value(), file);
  }
}

// A cheap stand-in for a fuzzer: mutate the good documents with a fixed seed. Whatever comes out
// must be refused with pointers or parse into a graph that round-trips, never crash.
BOOST_AUTO_TEST_CASE(mutated_documents_are_refused_or_round_trip) {
  const std::vector<std::string> pieces = {"",
                                           "0",
                                           "-1",
                                           "1.5",
                                           "true",
                                           "false",
                                           "null",
                                           "{}",
                                           "[]",
                                           "\"\"",
                                           "\"x\"",
                                           "\"0x\"",
                                           ",",
                                           ":",
                                           "=",
                                           "\"vnf:00000001:inout:0\"",
                                           "\"endpoint:00000001\"",
                                           "{\"drop\": true},",
                                           "{\"pop_vlan\": true},",
                                           "\"id\": \"1\","};
  std::mt19937 random(42);
  int accepted = 0;
  for (const auto& file : kGood) {
    std::string original = readFile(kSource / file);
    for (int round = 0; round < 300; ++round) {
      std::string text = original;
      for (int edits = 1 + random() % 3; edits > 0; --edits) {
        size_t at = random() % text.size();
        size_t length = random() % 8;
        text.replace(at, length, pieces[random() % pieces.size()]);
      }
      auto parsed = parseNffg(text);
      if (!parsed.ok()) {
        if (parsed.error().code() == ErrorCode::InvalidArgument) {
          BOOST_TEST(!parsed.error().fields().empty(), parsed.error().message());
        }
        continue;
      }
      ++accepted;
      auto again = parseNffg(printNffg(*parsed));
      BOOST_TEST_REQUIRE(again.ok(), text);
      BOOST_TEST((*again == *parsed), text);
    }
  }
  BOOST_TEST_MESSAGE(accepted << " mutated documents were still valid");
}

}  // namespace
}  // namespace corch::graph
