#define BOOST_TEST_MODULE sffg
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
#include <sstream>
#include <string>
#include <vector>

#include "graph/json_schema.h"
#include "graph/sffg_codec.h"

// The SF-FG codec: good documents parse and survive a round trip, bad ones are refused with the
// exact pointers of their offending fields. Cases are tables: to add one, drop a file in
// tests/data/sffg/{good,bad}/ and add a row below (a test checks no file is forgotten).

namespace corch::graph {
namespace {

namespace fs = std::filesystem;
namespace data = boost::unit_test::data;

const fs::path kData = fs::path(CORCH_SOURCE_DIR) / "tests/data/sffg";

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Graph parseFile(const fs::path& path) {
  auto parsed = parseSffg(readFile(path));
  // Boost evaluates a message even when the check passes: error() only when there is one.
  if (!parsed.ok()) BOOST_FAIL(path.filename() << ": " << parsed.error().message());
  return std::move(parsed).value();
}

// Good documents, relative to the source root.
const std::vector<std::string> kGood = {
    "tests/data/sffg/good/design-example.json",
    "tests/data/sffg/good/figure4.json",
    "tests/data/sffg/good/sap-types.json",
    "tests/data/sffg/good/all-match-fields.json",
    "tests/data/sffg/good/all-actions.json",
    "tests/data/sffg/good/multiple-outputs.json",
    "tests/data/sffg/good/minimal.json",
    "examples/passthrough.json",
    "examples/firewall.json",
    "examples/bridge-firewall-bridge.json",
};

struct BadCase {
  std::string file;  // under tests/data/sffg/bad/
  ErrorCode code;
  std::vector<std::string> pointers;  // every FieldError's pointer, in any order
  std::string message = {};           // a part of the error's message, if not empty
};

std::ostream& operator<<(std::ostream& out, const BadCase& c) { return out << c.file; }

const std::vector<BadCase> kBad = {
    {"malformed-comma.json",
     ErrorCode::Malformed,
     {},
     "line 1, column 36 (offset 35): Missing a name for object member."},
    {"malformed-truncated.json", ErrorCode::Malformed, {}, "malformed JSON"},
    {"not-an-object.json", ErrorCode::InvalidArgument, {""}, "expected an object, got an array"},
    {"unknown-field-match.json",
     ErrorCode::InvalidArgument,
     {"/sffg/flowrules/0/match/colour"},
     "/sffg/flowrules/0/match/colour: unknown field 'colour'"},
    {"unknown-fields-everywhere.json",
     ErrorCode::InvalidArgument,
     {"/version", "/sffg/nodes", "/sffg/SFs/0/image", "/sffg/SFs/0/ports/0/mac",
      "/sffg/saps/0/interface/mtu", "/sffg/flowrules/0/actions/set_ttl"},
     "unknown field 'set_ttl'"},
    {"wrong-types.json",
     ErrorCode::InvalidArgument,
     {"/sffg/id", "/sffg/name", "/sffg/SFs/0/name", "/sffg/SFs/0/ports", "/sffg/SFs/0/config",
      "/sffg/saps/0/id", "/sffg/saps/0/vlan/vlan-id", "/sffg/flowrules/0/priority",
      "/sffg/flowrules/0/match/port_in", "/sffg/flowrules/0/match/vlan_id",
      "/sffg/flowrules/0/actions/output_to_port", "/sffg/flowrules/0/actions/pop_vlan",
      "/sffg/flowrules/0/actions/drop", "/sffg/measure"},
     "/sffg/saps/0/vlan/vlan-id: expected a string or an integer, got a floating-point number"},
    {"missing-fields.json",
     ErrorCode::InvalidArgument,
     {"/sffg/SFs/0/name", "/sffg/SFs/0/ports/0/id", "/sffg/saps/0/type",
      "/sffg/saps/0/interface/if-name", "/sffg/flowrules/0/match/port_in",
      "/sffg/flowrules/0/actions", "/sffg/flowrules/1/id", "/sffg/flowrules/1/match"},
     "missing required field 'port_in'"},
    {"bad-enums.json",
     ErrorCode::InvalidArgument,
     {"/sffg/saps/0/type", "/sffg/saps/1/host-stack/configuration"},
     "'ethernet' is not one of: interface, vlan, gre, host-stack, internal"},
    {"empty-values.json",
     ErrorCode::InvalidArgument,
     {"/sffg/id", "/sffg/SFs/0/name", "/sffg/SFs/0/template", "/sffg/saps/0/interface/if-name",
      "/sffg/flowrules/0/priority", "/sffg/flowrules/0/match/port_in",
      "/sffg/flowrules/0/actions/output_to_port", "/sffg/flowrules/1/actions/output_to_port"},
     "/sffg/flowrules/0/priority: must be at least 0"},
    {"duplicate-field.json",
     ErrorCode::InvalidArgument,
     {"/sffg/name", "/sffg/saps/0/id"},
     "duplicate field 'name'"},
    {"unknown-sap-reference.json",
     ErrorCode::InvalidArgument,
     {"/sffg/flowrules/2/actions/output_to_port", "/sffg/flowrules/3/match/port_in"},
     "unknown SAP '0x9'"},
    {"unknown-sf-port-reference.json",
     ErrorCode::InvalidArgument,
     {"/sffg/flowrules/0/actions/output_to_port/1", "/sffg/flowrules/1/match/port_in",
      "/sffg/flowrules/2/actions/output_to_port", "/sffg/flowrules/3/match/port_in",
      "/sffg/flowrules/3/actions/output_to_port"},
     "SF '0x1' has no port '0xc'"},
    {"duplicate-ids.json",
     ErrorCode::InvalidArgument,
     {"/sffg/SFs/0/ports/1/id", "/sffg/SFs/1/id", "/sffg/saps/1/id", "/sffg/saps/3/id",
      "/sffg/flowrules/1/id"},
     "duplicate SF id '0x1' (first at /sffg/SFs/0)"},
    {"bad-ids.json",
     ErrorCode::InvalidArgument,
     {"/sffg/id", "/sffg/SFs/0/id", "/sffg/SFs/0/ports/0/id", "/sffg/saps/1/id"},
     "id 'fw:1' must be"},
    {"duplicate-sap-endpoints.json",
     ErrorCode::InvalidArgument,
     {"/sffg/saps/1/interface", "/sffg/saps/3/vlan", "/sffg/saps/6/internal"},
     "uses the same VLAN 25 on 'eth0' as /sffg/saps/2"},
    {"sap-type-mismatch.json",
     ErrorCode::InvalidArgument,
     {"/sffg/saps/0/interface", "/sffg/saps/0/vlan", "/sffg/saps/1/host-stack/ipv4",
      "/sffg/saps/2/host-stack/ipv4", "/sffg/saps/3/gre"},
     "'gre' does not belong to a SAP of type 'internal'"},
    {"out-of-range.json",
     ErrorCode::InvalidArgument,
     {"/sffg/saps/0/vlan/vlan-id",
      "/sffg/saps/1/gre/gre-key",
      "/sffg/flowrules/0/priority",
      "/sffg/flowrules/0/match/ether_type",
      "/sffg/flowrules/0/match/vlan_id",
      "/sffg/flowrules/0/match/vlan_pcp",
      "/sffg/flowrules/0/match/protocol",
      "/sffg/flowrules/0/match/source_port",
      "/sffg/flowrules/0/match/dest_port",
      "/sffg/flowrules/0/match/ip_dscp",
      "/sffg/flowrules/0/match/icmp_type",
      "/sffg/flowrules/0/match/icmp_code",
      "/sffg/flowrules/0/match/arp_opcode",
      "/sffg/flowrules/0/actions/push_vlan",
      "/sffg/flowrules/0/actions/set_vlan_id",
      "/sffg/flowrules/0/actions/set_source_port",
      "/sffg/flowrules/0/actions/set_dest_port",
      "/sffg/flowrules/1/priority",
      "/sffg/flowrules/1/match/ether_type",
      "/sffg/flowrules/1/match/vlan_id"},
     "/sffg/saps/0/vlan/vlan-id: 4096 is out of range (0-4095)"},
    {"bad-addresses.json",
     ErrorCode::InvalidArgument,
     {"/sffg/saps/1/gre/local-ip", "/sffg/saps/2/gre/remote-ip", "/sffg/saps/3/host-stack/ipv4",
      "/sffg/saps/4/host-stack/ipv4", "/sffg/saps/5/interface/if-name",
      "/sffg/saps/6/interface/if-name", "/sffg/flowrules/0/match/source_mac",
      "/sffg/flowrules/0/match/dest_mac", "/sffg/flowrules/0/match/source_ip",
      "/sffg/flowrules/0/match/dest_ip", "/sffg/flowrules/0/actions/set_source_ip",
      "/sffg/flowrules/0/actions/set_dest_ip", "/sffg/flowrules/0/actions/set_dest_mac"},
     "'10.0.0.1/8' is not an IP address or prefix"},
    {"prerequisites.json",
     ErrorCode::InvalidArgument,
     {"/sffg/flowrules/0/match/source_port", "/sffg/flowrules/1/match/dest_port",
      "/sffg/flowrules/2/match/icmp_type", "/sffg/flowrules/2/match/icmp_code",
      "/sffg/flowrules/3/match/vlan_pcp", "/sffg/flowrules/4/match/arp_opcode",
      "/sffg/flowrules/5/match/arp_opcode", "/sffg/flowrules/6/match/source_ip",
      "/sffg/flowrules/6/match/ip_dscp", "/sffg/flowrules/7/match/dest_ip",
      "/sffg/flowrules/8/match/dest_ip", "/sffg/flowrules/9/match/protocol",
      "/sffg/flowrules/10/actions/set_source_port", "/sffg/flowrules/10/actions/set_dest_port",
      "/sffg/flowrules/11/actions/set_dest_ip", "/sffg/flowrules/12/actions/set_source_ip",
      "/sffg/flowrules/13/actions/set_dest_ip"},
     "dest_port needs protocol 6 (TCP), 17 (UDP) or 132 (SCTP) (not 1)"},
    {"drop-conflicts.json",
     ErrorCode::InvalidArgument,
     {"/sffg/flowrules/0/actions/output_to_port", "/sffg/flowrules/1/actions/set_dest_mac",
      "/sffg/flowrules/1/actions/dec_ttl", "/sffg/flowrules/2/actions",
      "/sffg/flowrules/3/actions"},
     "a rule that drops has no output_to_port"},
    {"output-is-port-in.json",
     ErrorCode::InvalidArgument,
     {"/sffg/flowrules/0/actions/output_to_port", "/sffg/flowrules/1/actions/output_to_port/1",
      "/sffg/flowrules/2/actions/output_to_port/1"},
     "is the rule's own port_in"},
    {"same-match.json",
     ErrorCode::InvalidArgument,
     {"/sffg/flowrules/2"},
     "same priority, port_in and match as flowrule '1' (/sffg/flowrules/0)"},
};

std::vector<std::string> goodNames() {
  std::vector<std::string> names;
  for (const auto& path : kGood) names.push_back(path);
  return names;
}

BOOST_DATA_TEST_CASE(good_document_parses_and_round_trips, data::make(goodNames()), file) {
  Graph graph = parseFile(fs::path(CORCH_SOURCE_DIR) / file);
  std::string printed = printSffg(graph);
  auto again = parseSffg(printed);
  if (!again.ok()) BOOST_FAIL(again.error().message() << "\nin\n" << printed);
  BOOST_TEST((*again == graph), "parseSffg(printSffg(g)) != g for\n" << printed);
  // Canonical: printing is a fixed point.
  BOOST_TEST(printSffg(*again) == printed);
}

BOOST_DATA_TEST_CASE(bad_document_is_refused_with_its_pointers, data::make(kBad), c) {
  auto parsed = parseSffg(readFile(kData / "bad" / c.file));
  BOOST_REQUIRE(!parsed.ok());
  const Error& error = parsed.error();
  BOOST_TEST(codeName(error.code()) == codeName(c.code), error.message());
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

BOOST_AUTO_TEST_CASE(design_example_keeps_every_field) {
  Graph g = parseFile(kData / "good/design-example.json");
  BOOST_TEST(g.id == "0x1");
  BOOST_TEST(g.name == "example graph");
  BOOST_TEST(g.measure == "optional monitoring instructions (section 8)");

  BOOST_REQUIRE(g.sfs.size() == 1u);
  const Sf& fw = g.sfs[0];
  BOOST_TEST(fw.id == "0x1");
  BOOST_TEST(fw.name == "firewall");
  BOOST_TEST(fw.template_id.value_or("") == "firewall-nsf");
  BOOST_TEST((fw.ports == std::vector<SfPort>{{"0xa", "inside"}, {"0xb", "outside"}}));
  BOOST_TEST(fw.config_json == R"({"allowed-tcp-ports":[22,80]})");

  BOOST_REQUIRE(g.saps.size() == 5u);
  BOOST_TEST((g.saps[0].type == SapType::Interface));
  BOOST_TEST(g.saps[0].if_name == "eth1");
  BOOST_TEST((g.saps[1].type == SapType::Vlan));
  BOOST_TEST(g.saps[1].vlan_id == 25);
  BOOST_TEST(g.saps[1].if_name == "eth1");
  BOOST_TEST((g.saps[2].type == SapType::Gre));
  BOOST_TEST(g.saps[2].gre_local.str() == "10.0.0.1");
  BOOST_TEST(g.saps[2].gre_remote.str() == "10.0.0.2");
  BOOST_TEST(g.saps[2].gre_key == 1u);
  BOOST_TEST((g.saps[3].type == SapType::HostStack));
  BOOST_TEST(g.saps[3].host_configuration == "static");
  BOOST_REQUIRE(g.saps[3].host_ipv4.has_value());
  BOOST_TEST(g.saps[3].host_ipv4->addr.str() == "192.168.4.1");
  BOOST_TEST(g.saps[3].host_ipv4->length == 24);
  BOOST_TEST((g.saps[4].type == SapType::Internal));
  BOOST_TEST(g.saps[4].internal_group == "mgmt");

  BOOST_REQUIRE(g.rules.size() == 1u);
  const FlowRule& r = g.rules[0];
  BOOST_TEST(r.id == "0x1");
  BOOST_TEST(r.priority == 1);
  BOOST_TEST(r.port_in.str() == "service-access-point:0x1");
  MatchFields match;
  match.ether_type = 0x0800;
  match.dest_port = 80;
  match.protocol = 6;
  BOOST_TEST((r.match == match));
  BOOST_TEST(r.mods.empty());
  BOOST_TEST(!r.drop);
  BOOST_REQUIRE(r.outputs.size() == 1u);
  BOOST_TEST((r.outputs[0].kind == PortRef::Kind::SfPort));
  BOOST_TEST(r.outputs[0].sf_id == "0x1");
  BOOST_TEST(r.outputs[0].port_id == "0xa");
}

BOOST_AUTO_TEST_CASE(numbers_ids_and_defaults) {
  Graph g = parseFile(kData / "good/sap-types.json");
  const Sap* numbered = g.findSap("7");
  BOOST_REQUIRE(numbered != nullptr);  // a JSON integer id is kept as its decimal text
  BOOST_TEST(numbered->internal_group == "numbered");
  BOOST_TEST(g.findSap("lan-26")->vlan_id == 26);     // a JSON integer
  BOOST_TEST(g.findSap("lan-hex")->vlan_id == 4095);  // 0x-hex
  BOOST_TEST(g.findSap("tunnel-nokey")->gre_key == 0u);
  BOOST_TEST(g.findSap("tunnel-v6")->gre_key == 4294967295u);
  BOOST_TEST(g.findSap("tunnel-v6")->gre_local.v6);
  BOOST_TEST(g.findSap("host-32")->host_ipv4->length == 32);
  BOOST_TEST(!g.findSap("host-dhcp")->host_ipv4.has_value());
  BOOST_TEST(g.findSap("wan")->name == "uplink");
  BOOST_TEST(g.rules[1].port_in.sap_id == "7");

  Graph m = parseFile(kData / "good/all-match-fields.json");
  BOOST_TEST(m.rules[0].priority == 256);
  BOOST_TEST(m.rules[0].match.dest_mac->str() == "aa:bb:cc:dd:ee:ff");
  BOOST_TEST(m.rules[0].match.source_ip->str() == "10.0.0.0/8");
  BOOST_TEST(m.rules[0].match.dest_port.value() == 443);
  BOOST_TEST(m.rules[1].priority == 65535);

  Graph minimal = parseFile(kData / "good/minimal.json");
  BOOST_TEST((minimal == Graph{}));
}

BOOST_AUTO_TEST_CASE(actions_and_outputs) {
  Graph g = parseFile(kData / "good/all-actions.json");
  const FlowRule& r = g.rules[0];
  BOOST_TEST(r.mods.push_vlan.value() == 30);
  BOOST_TEST(r.mods.pop_vlan);
  BOOST_TEST(r.mods.set_vlan_id.value() == 31);
  BOOST_TEST(r.mods.set_source_ip->str() == "10.1.1.1");
  BOOST_TEST(r.mods.set_dest_port.value() == 53);
  BOOST_TEST(r.mods.dec_ttl);
  BOOST_TEST(g.sfs[0].config_json == "{}");
  BOOST_TEST(g.rules[2].drop);
  BOOST_TEST(g.rules[2].outputs.empty());

  Graph fan = parseFile(kData / "good/multiple-outputs.json");
  std::vector<std::string> outputs;
  for (const auto& out : fan.rules[0].outputs) outputs.push_back(out.str());
  BOOST_TEST((outputs == std::vector<std::string>{"service-access-point:lan", "sf:ids:mon",
                                                  "service-access-point:host"}));
  BOOST_TEST(fan.rules[1].outputs.size() == 1u);
}

// The printed form of DESIGN's example, kept as a golden file. Regenerate it with
// CORCH_TEST_REGENERATE_OUTPUT=1 after an intended change of the format, and review the diff.
BOOST_AUTO_TEST_CASE(printed_form_is_canonical) {
  std::string printed = printSffg(parseFile(kData / "good/design-example.json")) + "\n";
  fs::path golden = kData / "printed/design-example.json";
  if (std::getenv("CORCH_TEST_REGENERATE_OUTPUT") != nullptr) {
    std::ofstream(golden, std::ios::binary) << printed;
  }
  BOOST_TEST(printed == readFile(golden));
  BOOST_TEST(printed.find(R"("ether_type": "0x0800")") != std::string::npos);
  BOOST_TEST(printed.find(R"("priority": 1,)") != std::string::npos);
  BOOST_TEST(printed.find(R"("gre-key": "0x1")") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_graph_built_in_code_round_trips) {
  Graph g;
  g.name = "built";
  Sf sf;
  sf.id = "fw";
  sf.name = "firewall";
  sf.ports = {{"in", ""}, {"out", "outside"}};
  sf.config_json = R"({"rules":[{"allow":"tcp/22"}],"nested":{"deep":[1,2.5,"x",null,true]}})";
  g.sfs.push_back(sf);
  Sap sap;
  sap.id = "wan";
  sap.type = SapType::Interface;
  sap.if_name = "eth0";
  g.saps.push_back(sap);
  FlowRule in;
  in.id = "in";
  in.priority = 7;
  in.port_in.sap_id = "wan";
  in.match.ether_type = 0x0806;
  in.match.arp_opcode = 1;
  in.outputs.push_back({PortRef::Kind::SfPort, "", "fw", "in"});
  g.rules.push_back(in);
  FlowRule drop;
  drop.id = "drop";
  drop.port_in = {PortRef::Kind::SfPort, "", "fw", "out"};
  drop.drop = true;
  g.rules.push_back(drop);

  auto parsed = parseSffg(printSffg(g));
  if (!parsed.ok()) BOOST_FAIL(parsed.error().message());
  BOOST_TEST((*parsed == g), printSffg(g));
}

BOOST_AUTO_TEST_CASE(malformed_input_is_400) {
  for (std::string text :
       {std::string(""), std::string("{\"sffg\": {}} trailing"),
        std::string("{\"sffg\": {\"name\": \"\xff\"}}"), std::string("{\"sffg\": NaN}")}) {
    auto parsed = parseSffg(text);
    BOOST_REQUIRE(!parsed.ok());
    BOOST_TEST(parsed.error().httpStatus() == 400, parsed.error().message());
    BOOST_TEST(parsed.error().message().find("offset") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused_not_a_crash) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  std::string text =
      R"({"sffg": {"SFs": [{"id": "a", "name": "b", "config": {"x": )" + deep + "}}]}}";
  auto parsed = parseSffg(text);
  BOOST_REQUIRE(!parsed.ok());
  BOOST_TEST(parsed.error().httpStatus() == 422);
  BOOST_REQUIRE(parsed.error().fields().size() == 1u);
  BOOST_TEST(parsed.error().fields()[0].pointer.starts_with("/sffg/SFs/0/config/x/0/0/0"));
}

// The schema file stands on its own (for users' editors and other tools): what the parser's
// semantic pass says about SAPs in words, the schema says with anyOf, which check() leaves to
// RapidJSON's validate().
BOOST_AUTO_TEST_CASE(schema_file_alone_rejects_a_sap_of_the_wrong_shape) {
  JsonSchema schema(readFile(fs::path(CORCH_SOURCE_DIR) / "orchestrator/graph/sffg.schema.json"));
  rapidjson::Document doc;
  doc.Parse(readFile(kData / "bad/sap-type-mismatch.json"));
  BOOST_REQUIRE(!doc.HasParseError());
  BOOST_TEST(schema.check(doc).empty());
  auto error = schema.validate(doc);
  BOOST_REQUIRE(error.has_value());
  BOOST_TEST(error->pointer == "/sffg/saps/0");
  BOOST_TEST(error->message.find("anyOf") != std::string::npos, error->message);

  doc.Parse(readFile(kData / "good/sap-types.json"));
  BOOST_TEST(!schema.validate(doc).has_value());
}

BOOST_AUTO_TEST_CASE(json_schema_check_reports_every_error_validate_the_first) {
  JsonSchema schema(R"({"type": "object", "additionalProperties": false,
      "properties": {"a": {"type": "integer", "minimum": 1}, "b": {"$ref": "#/definitions/list"},
                     "c": {}},
      "required": ["c"],
      "definitions": {"list": {"type": "array", "minItems": 2, "items": {"enum": ["x", 1]}}}})");
  rapidjson::Document doc;
  doc.Parse(R"({"a": 0, "b": ["x", "y"], "d": null})");
  std::vector<FieldError> want = {{"/a", "must be at least 1"},
                                  {"/b/1", "'y' is not one of: x, 1"},
                                  {"/d", "unknown field 'd'"},
                                  {"/c", "missing required field 'c'"}};
  BOOST_TEST((schema.check(doc) == want));
  BOOST_TEST(schema.validate(doc).has_value());
  doc.Parse(R"({"b": [1], "c": 2})");
  BOOST_TEST((schema.check(doc) == std::vector<FieldError>{{"/b", "must have at least 2 items"}}));
}

// A cheap stand-in for a fuzzer: mutate the good documents with a fixed seed. Whatever comes out
// must be refused with pointers or parse into a graph that round-trips, never crash (the parser
// trusts its schema pass for the types it reads: a gap there would trip a RapidJSON assertion).
BOOST_AUTO_TEST_CASE(mutated_documents_are_refused_or_round_trip) {
  const std::vector<std::string> pieces = {"",
                                           "0",
                                           "-1",
                                           "1.5",
                                           "true",
                                           "null",
                                           "{}",
                                           "[]",
                                           "\"\"",
                                           "\"x\"",
                                           "\"0x\"",
                                           ",",
                                           ":",
                                           "\"sf:0x1:0xa\"",
                                           "\"service-access-point:0x1\"",
                                           "\"drop\": true,",
                                           "\"id\": \"0x1\","};
  std::mt19937 random(42);
  int accepted = 0;
  for (const auto& file : kGood) {
    std::string original = readFile(fs::path(CORCH_SOURCE_DIR) / file);
    for (int round = 0; round < 300; ++round) {
      std::string text = original;
      for (int edits = 1 + random() % 3; edits > 0; --edits) {
        size_t at = random() % text.size();
        size_t length = random() % 8;
        text.replace(at, length, pieces[random() % pieces.size()]);
      }
      auto parsed = parseSffg(text);
      if (!parsed.ok()) {
        if (parsed.error().code() == ErrorCode::InvalidArgument) {
          BOOST_TEST(!parsed.error().fields().empty(), parsed.error().message());
        }
        continue;
      }
      ++accepted;
      auto again = parseSffg(printSffg(*parsed));
      BOOST_TEST_REQUIRE(again.ok(), text);
      BOOST_TEST((*again == *parsed), text);
    }
  }
  BOOST_TEST_MESSAGE(accepted << " mutated documents were still valid");
}

BOOST_AUTO_TEST_CASE(pointer_tokens_are_escaped) {
  auto parsed = parseSffg(R"({"sffg": {"a/b~c": 1}})");
  BOOST_REQUIRE(!parsed.ok());
  BOOST_REQUIRE(parsed.error().fields().size() == 1u);
  BOOST_TEST(parsed.error().fields()[0].pointer == "/sffg/a~1b~0c");
  BOOST_TEST(parsed.error().fields()[0].message == "unknown field 'a/b~c'");
}

}  // namespace
}  // namespace corch::graph

// A \u escape of a lone surrogate passes RapidJSON's encoding check but is no text: refused as
// malformed, naming the field, so that whatever is accepted can be printed (fuzzing found it).
BOOST_AUTO_TEST_CASE(lone_surrogates_are_malformed) {
  auto g = corch::graph::parseSffg(R"({ "sffg": { "id": "g", "name": "a\udd80b" } })");
  BOOST_REQUIRE(!g.ok());
  BOOST_TEST((g.error().code() == corch::ErrorCode::Malformed));
  BOOST_REQUIRE_EQUAL(g.error().fields().size(), 1u);
  BOOST_TEST(g.error().fields()[0].pointer == "/sffg/name");
  auto ok = corch::graph::parseSffg(R"({ "sffg": { "id": "g", "name": "a\ud83d\ude00b" } })");
  BOOST_TEST(ok.ok(), (ok.ok() ? "" : ok.error().message()));
}
