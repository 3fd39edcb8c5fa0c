// The OpenFlow 1.3 codec of the ovs driver: rules round-trip through FLOW_MOD and flow
// statistics, prerequisites are inferred or refused by name, streams are split into messages,
// and malformed bytes are refused without crashing.
#define BOOST_TEST_MODULE ovs_openflow
#include <boost/test/unit_test.hpp>

#include <random>

#include "drivers/vswitch/ovs/openflow.h"
#include "integration/vswitch_conformance.h"

namespace {

using namespace corch;
namespace of = corch::drivers::ovs::openflow;
using corch::test::conformance::why;

std::vector<TsRule> allRules() {
  auto rules = corch::test::conformance::everyFieldRules(1, 2);
  auto more = corch::test::conformance::sampleRules(3, 4, 0x77);
  rules.insert(rules.end(), more.begin(), more.end());
  return rules;
}

TsRule normalized(const TsRule& rule) {
  auto n = of::normalizeRule(rule);
  BOOST_REQUIRE_MESSAGE(n.ok(), why(n));
  return *n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(flow_mods_round_trip) {
  uint32_t xid = 1;
  for (const auto& rule : allRules()) {
    TsRule n = normalized(rule);
    BOOST_TEST(toString(n) == toString(rule), "these rules are normalized already");
    std::string msg = of::encodeFlowMod(n, of::FlowModCommand::Add, xid);
    auto header = of::parseHeader(msg);
    BOOST_REQUIRE(header);
    BOOST_TEST(header->version == of::kVersion);
    BOOST_TEST(header->length == msg.size());
    BOOST_TEST(header->xid == xid);
    BOOST_TEST(msg.size() % 8 == 0u, "OpenFlow 1.3 messages are padded to 8 bytes");
    auto parsed = of::parseFlowMod(msg);
    BOOST_REQUIRE_MESSAGE(parsed.ok(), why(parsed));
    BOOST_TEST((parsed->command == of::FlowModCommand::Add));
    BOOST_TEST(parsed->table_id == 0);
    BOOST_TEST(toString(parsed->rule) == toString(n));
    BOOST_TEST((parsed->rule == n));
    ++xid;
  }
}

// Outputs to vlan SAPs: a tag pushed just before them, removed for the untagged outputs after;
// rules with them round-trip exactly, and so does an output to NORMAL (internal groups).
BOOST_AUTO_TEST_CASE(output_tags_round_trip) {
  std::vector<TsRule> rules;
  TsRule a;
  a.priority = 5;
  a.in_port = 1;
  a.fields.vlan_id = 30;
  a.mods.pop_vlan = true;
  a.mods.set_source_mac = MacAddr::parse("02:00:00:00:00:01");
  a.outputs = {2, 3, 4, 5};
  a.output_vlans = {0, 10, 10, 20};
  rules.push_back(a);
  TsRule b;  // tagged first, then untagged
  b.priority = 6;
  b.in_port = 1;
  b.mods.dec_ttl = true;
  b.fields.ether_type = 0x0800;
  b.outputs = {2, 3};
  b.output_vlans = {7, 0};
  rules.push_back(b);
  TsRule c;
  c.priority = 0;
  c.outputs = {kPortNormal};
  rules.push_back(c);
  for (const auto& rule : rules) {
    TsRule n = normalized(rule);
    auto parsed = of::parseFlowMod(of::encodeFlowMod(n, of::FlowModCommand::Add, 1));
    BOOST_REQUIRE_MESSAGE(parsed.ok(), why(parsed));
    BOOST_TEST(toString(parsed->rule) == toString(n));
    BOOST_TEST((parsed->rule == n));
  }
  BOOST_TEST(toString(normalized(a))
                     .find("pop_vlan,set_field:02:00:00:00:00:01->eth_src,"
                           "output:2,push_vlan:0x8100,set_field:10->vlan_vid,"
                           "output:3,output:4,pop_vlan,push_vlan:0x8100,"
                           "set_field:20->vlan_vid,output:5") != std::string::npos,
             toString(normalized(a)));
  TsRule bad = a;
  bad.output_vlans = {10};
  BOOST_TEST(!of::normalizeRule(bad).ok());
}

BOOST_AUTO_TEST_CASE(strict_delete_matches_priority_and_match_only) {
  TsRule r = normalized(allRules()[5]);
  r.cookie = 0x1234;
  auto parsed = of::parseFlowMod(of::encodeFlowMod(r, of::FlowModCommand::DeleteStrict, 9));
  BOOST_REQUIRE(parsed.ok());
  BOOST_TEST((parsed->command == of::FlowModCommand::DeleteStrict));
  BOOST_TEST(parsed->cookie_mask == 0u);
  BOOST_TEST(parsed->rule.priority == r.priority);
  BOOST_TEST((parsed->rule.fields == r.fields));
  BOOST_TEST(parsed->rule.outputs.empty());

  auto by_cookie = of::parseFlowMod(of::encodeDeleteByCookie(0x1234, 0xff00, 10));
  BOOST_REQUIRE(by_cookie.ok());
  BOOST_TEST((by_cookie->command == of::FlowModCommand::Delete));
  BOOST_TEST(by_cookie->table_id == of::kTableAll);
  BOOST_TEST(by_cookie->cookie == 0x1200u);
  BOOST_TEST(by_cookie->cookie_mask == 0xff00u);
}

BOOST_AUTO_TEST_CASE(flow_stats_round_trip_and_foreign_flows_are_reported) {
  std::vector<of::FlowStats> flows;
  for (const auto& rule : allRules()) flows.push_back(of::FlowStats{0, 7, 700, normalized(rule)});
  std::string reply = of::encodeFlowStatsReply(42, flows, /*more=*/true);
  auto mp = of::parseMultipartReply(reply);
  BOOST_REQUIRE(mp);
  BOOST_TEST(mp->more());
  std::vector<std::string> skipped;
  auto parsed = of::parseFlowStats(mp->body, &skipped);
  BOOST_REQUIRE_MESSAGE(parsed.ok(), why(parsed));
  BOOST_TEST(skipped.empty());
  BOOST_REQUIRE_EQUAL(parsed->size(), flows.size());
  for (size_t i = 0; i < flows.size(); ++i) {
    BOOST_TEST(toString((*parsed)[i].rule) == toString(flows[i].rule));
    BOOST_TEST((*parsed)[i].packet_count == 7u);
  }

  // A flow with an instruction corch never installs (goto-table) is skipped, and said so.
  TsRule plain = normalized(allRules()[0]);
  std::string one = of::encodeFlowStatsReply(43, {of::FlowStats{0, 0, 0, plain}});
  size_t instruction = one.size() - 24;  // apply-actions (8) + one output (16)
  BOOST_REQUIRE_EQUAL(static_cast<uint8_t>(one[instruction + 1]), 4);
  one[instruction + 1] = 1;  // OFPIT_GOTO_TABLE
  mp = of::parseMultipartReply(one);
  BOOST_REQUIRE(mp);
  skipped.clear();
  parsed = of::parseFlowStats(mp->body, &skipped);
  BOOST_REQUIRE(parsed.ok());
  BOOST_TEST(parsed->empty());
  BOOST_REQUIRE_EQUAL(skipped.size(), 1u);
  BOOST_TEST(skipped[0].find("instruction type 1") != std::string::npos, skipped[0]);
}

BOOST_AUTO_TEST_CASE(prerequisites_are_inferred) {
  TsRule r;
  r.in_port = 1;
  r.fields.source_ip = IpPrefix::parse("10.0.0.0/8");
  BOOST_TEST(*normalized(r).fields.ether_type == 0x0800);
  r = TsRule{};
  r.fields.dest_ip = IpPrefix::parse("2001:db8::1");
  r.mods.set_source_ip = IpAddr::parse("2001:db8::2");
  BOOST_TEST(*normalized(r).fields.ether_type == 0x86dd);
  r = TsRule{};
  r.fields.protocol = 1;
  r.fields.icmp_type = 8;
  BOOST_TEST(*normalized(r).fields.ether_type == 0x0800);
  r = TsRule{};
  r.fields.protocol = 58;
  r.fields.icmp_code = 0;
  BOOST_TEST(*normalized(r).fields.ether_type == 0x86dd);
  r = TsRule{};
  r.fields.arp_opcode = 1;
  BOOST_TEST(*normalized(r).fields.ether_type == 0x0806);
  // A zero-length prefix is "any address" of that family.
  r = TsRule{};
  r.fields.source_ip = IpPrefix::parse("0.0.0.0/0");
  TsRule n = normalized(r);
  BOOST_TEST(!n.fields.source_ip.has_value());
  BOOST_TEST(*n.fields.ether_type == 0x0800);
  // push_vlan makes the packet tagged for set_vlan_id and pop_vlan.
  r = TsRule{};
  r.mods.push_vlan = 5;
  r.mods.set_vlan_id = 6;
  BOOST_TEST(of::normalizeRule(r).ok());
}

BOOST_AUTO_TEST_CASE(what_cannot_be_expressed_is_refused_by_its_sf_fg_name) {
  struct Case {
    std::string field;
    ErrorCode code;
    std::function<void(TsRule&)> fill;
  };
  std::vector<Case> cases = {
      {"source_port", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0800, r.fields.source_port = 1; }},
      {"dest_port", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.ether_type = 0x0800, r.fields.protocol = 47, r.fields.dest_port = 1;
       }},
      {"set_source_port", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0800, r.mods.set_source_port = 1; }},
      {"set_dest_port", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.ether_type = 0x0800, r.fields.protocol = 1, r.mods.set_dest_port = 1;
       }},
      {"icmp_type", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0800, r.fields.icmp_type = 1; }},
      {"icmp_code", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.ether_type = 0x0800, r.fields.protocol = 17, r.fields.icmp_code = 1;
       }},
      {"icmp_type", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.ether_type = 0x86dd, r.fields.protocol = 1, r.fields.icmp_type = 1;
       }},
      {"vlan_pcp", ErrorCode::Unsupported, [](TsRule& r) { r.fields.vlan_pcp = 2; }},
      {"vlan_pcp", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.vlan_id = 1, r.fields.vlan_pcp = 9; }},
      {"vlan_id", ErrorCode::InvalidArgument, [](TsRule& r) { r.fields.vlan_id = 4096; }},
      {"ip_dscp", ErrorCode::InvalidArgument, [](TsRule& r) { r.fields.ip_dscp = 10; }},
      {"ip_dscp", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0800, r.fields.ip_dscp = 64; }},
      {"protocol", ErrorCode::InvalidArgument, [](TsRule& r) { r.fields.protocol = 17; }},
      {"protocol", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0806, r.fields.protocol = 17; }},
      {"source_ip", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.ether_type = 0x86dd, r.fields.source_ip = IpPrefix::parse("10.0.0.1");
       }},
      {"dest_ip", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.source_ip = IpPrefix::parse("10.0.0.1"),
         r.fields.dest_ip = IpPrefix::parse("::1");
       }},
      {"arp_opcode", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.source_ip = IpPrefix::parse("10.0.0.1"), r.fields.arp_opcode = 1;
       }},
      {"arp_opcode", ErrorCode::Unsupported, [](TsRule& r) { r.fields.arp_opcode = 256; }},
      {"set_source_ip", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.mods.set_source_ip = IpAddr::parse("10.0.0.1"); }},
      {"set_dest_ip", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0800, r.mods.set_dest_ip = IpAddr::parse("::1"); }},
      {"dec_ttl", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0806, r.mods.dec_ttl = true; }},
      {"pop_vlan", ErrorCode::InvalidArgument, [](TsRule& r) { r.mods.pop_vlan = true; }},
      {"set_vlan_id", ErrorCode::InvalidArgument, [](TsRule& r) { r.mods.set_vlan_id = 3; }},
      {"set_vlan_id", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.vlan_id = 2, r.mods.pop_vlan = true, r.mods.set_vlan_id = 3; }},
      {"push_vlan", ErrorCode::InvalidArgument, [](TsRule& r) { r.mods.push_vlan = 5000; }},
  };
  for (const auto& c : cases) {
    TsRule r;
    r.priority = 1;
    r.in_port = 1;
    r.outputs = {2};
    c.fill(r);
    auto n = of::normalizeRule(r);
    BOOST_TEST(!n.ok(), c.field << " is refused in " << toString(r));
    if (n.ok()) continue;
    BOOST_TEST((n.error().code() == c.code), n.error().message());
    BOOST_TEST(n.error().message().find(c.field) != std::string::npos, n.error().message());
    BOOST_TEST(n.error().message().find(toString(r)) != std::string::npos, "names the rule");
  }
}

BOOST_AUTO_TEST_CASE(a_stream_is_split_into_messages_whatever_the_chunks) {
  std::string stream = of::encodeHello(1) + of::encodeEchoRequest(2, "abc") +
                       of::encodeFlowMod(normalized(allRules()[3]), of::FlowModCommand::Add, 3) +
                       of::encodeBarrierRequest(4);
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    of::MessageFramer framer;
    std::vector<uint32_t> xids;
    for (size_t pos = 0; pos < stream.size(); pos += chunk) {
      BOOST_REQUIRE(
          framer.feed(std::string_view(stream).substr(pos, chunk),
                      [&](std::string_view m) { xids.push_back(of::parseHeader(m)->xid); }));
    }
    BOOST_TEST(xids == (std::vector<uint32_t>{1, 2, 3, 4}), boost::test_tools::per_element());
  }
  of::MessageFramer bad;
  std::string broken = of::encodeBarrierRequest(1);
  broken[3] = 4;  // a length shorter than a header
  BOOST_TEST(!bad.feed(broken, [](std::string_view) {}));
}

BOOST_AUTO_TEST_CASE(errors_in_words) {
  BOOST_TEST(of::describeError(2, 4) ==
             "bad action: bad out port (OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT)");
  BOOST_TEST(of::describeError(4, 9) ==
             "bad match: bad prereq (OFPET_BAD_MATCH, OFPBMC_BAD_PREREQ)");
  BOOST_TEST(of::describeError(5, 1) ==
             "flow mod failed: table full (OFPET_FLOW_MOD_FAILED, OFPFMFC_TABLE_FULL)");
  BOOST_TEST(of::describeError(99, 1) == "error type 99, code 1");
  std::string error_msg = {4, 1, 0, 12, 0, 0, 0, 7, 0, 2, 0, 4};
  auto e = of::parseError(error_msg);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->type == 2);
  BOOST_TEST(e->code == 4);
  BOOST_TEST(of::describe(error_msg) ==
             "ERROR xid=7 bad action: bad out port (OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT)");
}

// Truncated and corrupted messages are refused (or described) without reading out of bounds
// (run under ASan in the sanitizer build).
BOOST_AUTO_TEST_CASE(malformed_messages_do_not_crash) {
  std::mt19937 random(7);
  std::vector<std::string> messages;
  for (const auto& rule : allRules()) {
    messages.push_back(of::encodeFlowMod(normalized(rule), of::FlowModCommand::Add, 1));
  }
  std::vector<of::FlowStats> flows;
  for (const auto& rule : allRules()) flows.push_back(of::FlowStats{0, 0, 0, normalized(rule)});
  messages.push_back(of::encodeFlowStatsReply(1, flows));
  size_t refused = 0;
  for (const auto& original : messages) {
    for (size_t cut = 0; cut < original.size(); ++cut) {
      std::string truncated = original.substr(0, cut);
      refused += !of::parseFlowMod(truncated).ok();
      (void)of::describe(truncated);
    }
    for (int round = 0; round < 200; ++round) {
      std::string corrupted = original;
      for (int k = 0; k < 3; ++k)
        corrupted[random() % corrupted.size()] = static_cast<char>(random());
      (void)of::parseFlowMod(corrupted);
      (void)of::describe(corrupted);
      if (auto mp = of::parseMultipartReply(corrupted)) {
        std::vector<std::string> skipped;
        (void)of::parseFlowStats(mp->body, &skipped);
      }
    }
  }
  BOOST_TEST(refused > 0u);
}
