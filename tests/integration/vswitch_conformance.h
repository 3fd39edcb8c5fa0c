// The conformance suite of the vSwitch driver interface (orchestrator/include/corch/vswitch.h):
// the same checks on every driver, the fake in the unit tier and the real ones in the
// integration tier (containerd's SnapshotterSuite; STYLE "Tests").
//
//   #include "vswitch_conformance.h"
//   CORCH_VSWITCH_CONFORMANCE_TESTS(myDriver(), myEnvironment())
//
// expands into one Boost test case per check; both arguments are expressions evaluated in each
// case (a VSwitchDriver& and a conformance::Environment). Each check creates LSIs named from
// Environment::prefix and destroys them again, also when it fails (LsiGuard).
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "corch/error.h"
#include "corch/flow.h"
#include "corch/vswitch.h"

namespace corch::test::conformance {

// The message of a failed result, or "" (for BOOST_*_MESSAGE, which evaluates it always).
template <class T>
std::string why(const Result<T>& r) {
  return r.ok() ? std::string() : r.error().message();
}

// What a run needs from its driver's world.
struct Environment {
  // LSI and port names start with it; at most 6 characters, so that names stay within 15.
  std::string prefix = "cf";
  // Returns n names of existing network interfaces an LSI may take (any names for a fake).
  std::function<std::vector<std::string>(size_t n)> interfaces;
  // A rule that checkRules() accepts but the switch refuses to install, given an existing port
  // number; unset when the driver has none (the failed-batch check is then skipped).
  std::function<TsRule(uint32_t port)> refused_rule;
  // A new driver on the same switch, as a restarted corchd makes one: it knows nothing of what
  // the others made or want. Unset when the driver cannot share its switch (the checks of a
  // second driver are then skipped).
  std::function<std::unique_ptr<VSwitchDriver>()> another_driver;
};

// Destroys an LSI when it goes out of scope, so that a failed check leaves nothing behind.
class LsiGuard {
 public:
  LsiGuard(VSwitchDriver& driver, std::string lsi) : driver_(driver), lsi_(std::move(lsi)) {}
  ~LsiGuard() { (void)driver_.destroyLsi(lsi_); }
  LsiGuard(const LsiGuard&) = delete;
  LsiGuard& operator=(const LsiGuard&) = delete;

 private:
  VSwitchDriver& driver_;
  std::string lsi_;
};

inline std::vector<std::string> sortedText(const std::vector<TsRule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) out.push_back(toString(r));
  std::sort(out.begin(), out.end());
  return out;
}

inline bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Creates an LSI or stops the check.
inline LsiInfo mustCreate(VSwitchDriver& d, const LsiSpec& spec) {
  auto info = d.createLsi(spec);
  BOOST_REQUIRE_MESSAGE(info.ok(), "createLsi(" + spec.name + "): " + why(info));
  return *info;
}

// A few rules in the style of the network manager's: IP-only fields carry their ether_type, so
// that every driver dumps them back as given.
inline std::vector<TsRule> sampleRules(uint32_t in, uint32_t out, uint64_t cookie) {
  TsRule a;
  a.cookie = cookie;
  a.priority = 100;
  a.in_port = in;
  a.outputs = {out};
  TsRule b = a;
  b.cookie = cookie + 1;
  b.priority = 200;
  b.fields.ether_type = 0x0800;
  b.fields.dest_ip = IpPrefix::parse("10.1.0.0/16");
  b.fields.protocol = 6;
  b.fields.dest_port = 80;
  b.mods.dec_ttl = true;
  TsRule c = a;
  c.cookie = cookie + 2;
  c.priority = 300;
  c.in_port = out;
  c.outputs = {in};
  c.fields.source_mac = MacAddr::parse("02:00:00:00:00:01");
  return {a, b, c};
}

// One rule per match field and per action kind (and a drop), in the form every driver must
// dump back unchanged: prerequisites explicit (ether_type with IP fields, protocol with ports).
inline std::vector<TsRule> everyFieldRules(uint32_t p1, uint32_t p2) {
  std::vector<TsRule> rules;
  uint16_t priority = 1000;
  auto add = [&](const std::function<void(TsRule&)>& fill) {
    TsRule r;
    r.cookie = 0xc0de0000u + priority;
    r.priority = priority++;
    r.in_port = p1;
    r.outputs = {p2};
    fill(r);
    rules.push_back(r);
  };
  auto ip4 = [](TsRule& r) { r.fields.ether_type = 0x0800; };
  auto ip6 = [](TsRule& r) { r.fields.ether_type = 0x86dd; };
  add([&](TsRule& r) { ip4(r); });
  add([&](TsRule& r) { r.fields.vlan_id = 10; });
  add([&](TsRule& r) { r.fields.vlan_id = 11, r.fields.vlan_pcp = 3; });
  add([&](TsRule& r) { r.fields.source_mac = MacAddr::parse("02:00:00:00:00:aa"); });
  add([&](TsRule& r) { r.fields.dest_mac = MacAddr::parse("02:00:00:00:00:bb"); });
  add([&](TsRule& r) { ip4(r), r.fields.source_ip = IpPrefix::parse("10.0.0.0/8"); });
  add([&](TsRule& r) { ip4(r), r.fields.dest_ip = IpPrefix::parse("10.1.2.3"); });
  add([&](TsRule& r) { ip6(r), r.fields.source_ip = IpPrefix::parse("2001:db8::/32"); });
  add([&](TsRule& r) { ip6(r), r.fields.dest_ip = IpPrefix::parse("2001:db8::1"); });
  add([&](TsRule& r) { ip4(r), r.fields.protocol = 17; });
  add([&](TsRule& r) {
    ip4(r), r.fields.protocol = 6, r.fields.source_port = 1234, r.fields.dest_port = 80;
  });
  add([&](TsRule& r) {
    ip6(r), r.fields.protocol = 17, r.fields.source_port = 53, r.fields.dest_port = 5353;
  });
  add([&](TsRule& r) { ip4(r), r.fields.protocol = 132, r.fields.dest_port = 36412; });
  add([&](TsRule& r) { ip4(r), r.fields.ip_dscp = 46; });
  add([&](TsRule& r) {
    ip4(r), r.fields.protocol = 1, r.fields.icmp_type = 8, r.fields.icmp_code = 0;
  });
  add([&](TsRule& r) {
    ip6(r), r.fields.protocol = 58, r.fields.icmp_type = 128, r.fields.icmp_code = 0;
  });
  add([&](TsRule& r) { r.fields.ether_type = 0x0806, r.fields.arp_opcode = 2; });
  add([&](TsRule& r) { r.mods.push_vlan = 100; });
  add([&](TsRule& r) { r.fields.vlan_id = 12, r.mods.pop_vlan = true; });
  add([&](TsRule& r) { r.fields.vlan_id = 13, r.mods.set_vlan_id = 14; });
  add([&](TsRule& r) {
    r.mods.set_source_mac = MacAddr::parse("02:00:00:00:01:01");
    r.mods.set_dest_mac = MacAddr::parse("02:00:00:00:01:02");
  });
  add([&](TsRule& r) {
    ip4(r);
    r.mods.set_source_ip = IpAddr::parse("192.0.2.1");
    r.mods.set_dest_ip = IpAddr::parse("192.0.2.2");
  });
  add([&](TsRule& r) { ip6(r), r.mods.set_dest_ip = IpAddr::parse("2001:db8::2"); });
  add([&](TsRule& r) {
    ip4(r), r.fields.protocol = 6, r.mods.set_source_port = 8080, r.mods.set_dest_port = 8443;
  });
  add([&](TsRule& r) { ip4(r), r.fields.protocol = 17, r.mods.set_dest_port = 4789; });
  add([&](TsRule& r) { ip4(r), r.mods.dec_ttl = true; });
  add([&](TsRule& r) {
    ip4(r);
    r.fields.source_ip = IpPrefix::parse("10.2.0.0/16");
    r.fields.dest_ip = IpPrefix::parse("10.3.0.0/24");
    r.fields.protocol = 6;
    r.fields.dest_port = 443;
    r.fields.source_mac = MacAddr::parse("02:00:00:00:00:cc");
    r.fields.vlan_id = 20;
    r.mods.pop_vlan = true;
    r.mods.set_dest_mac = MacAddr::parse("02:00:00:00:00:dd");
    r.mods.dec_ttl = true;
    r.outputs = {p1, p2};
  });
  add([&](TsRule& r) { r.outputs.clear(); });  // drop
  return rules;
}

inline void checkLsiLifecycle(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a0", b = env.prefix + "b0";
  auto ifs = env.interfaces(2);
  LsiGuard guard_b(d, b), guard_a(d, a);  // b first: its vlinks end on a
  LsiInfo ia = mustCreate(d, LsiSpec{a, ifs, {}, "", 0});
  BOOST_TEST(ia.name == a);
  BOOST_REQUIRE_EQUAL(ia.interfaces.size(), 2u);
  std::set<uint32_t> numbers_a;
  for (size_t i = 0; i < ifs.size(); ++i) {
    BOOST_TEST(ia.interfaces[i].name == ifs[i]);
    BOOST_TEST(ia.interfaces[i].of_port != 0u);
    numbers_a.insert(ia.interfaces[i].of_port);
  }
  BOOST_TEST(numbers_a.size() == 2u, "interface numbers are distinct");

  LsiInfo ib = mustCreate(d, LsiSpec{b,
                                     {},
                                     {{env.prefix + "p1", PortTechnology::Veth},
                                      {env.prefix + "p2", PortTechnology::Veth}},
                                     a,
                                     2});
  BOOST_REQUIRE_EQUAL(ib.ports.size(), 2u);
  BOOST_REQUIRE_EQUAL(ib.vlinks.size(), 2u);
  std::set<uint32_t> numbers_b;
  for (const auto& p : ib.ports) {
    BOOST_TEST(p.of_port != 0u);
    BOOST_TEST(!p.peer_ifname.empty(), "a veth port names the function's end");
    BOOST_TEST(p.peer_ifname != p.name);
    numbers_b.insert(p.of_port);
  }
  for (const auto& v : ib.vlinks) {
    BOOST_TEST(!v.name_a.empty());
    BOOST_TEST(!v.name_b.empty());
    BOOST_TEST(v.port_a != 0u);
    BOOST_TEST(v.port_b != 0u);
    numbers_a.insert(v.port_a);
    numbers_b.insert(v.port_b);
  }
  BOOST_TEST(numbers_a.size() == 4u, "numbers on the peer are distinct");
  BOOST_TEST(numbers_b.size() == 4u, "numbers on the new LSI are distinct");

  auto lsis = d.listLsis();
  BOOST_REQUIRE_MESSAGE(lsis.ok(), why(lsis));
  BOOST_TEST(contains(*lsis, a));
  BOOST_TEST(contains(*lsis, b));

  for (const auto& p : ia.interfaces) {
    auto n = d.portNumber(a, p.name);
    BOOST_TEST((n.ok() && *n == p.of_port), "portNumber(" << p.name << "): " << why(n));
  }
  for (const auto& p : ib.ports) {
    auto n = d.portNumber(b, p.name);
    BOOST_TEST((n.ok() && *n == p.of_port), "portNumber(" << p.name << "): " << why(n));
  }
  for (const auto& v : ib.vlinks) {
    auto na = d.portNumber(a, v.name_a);
    BOOST_TEST((na.ok() && *na == v.port_a), "portNumber(" << v.name_a << "): " << why(na));
    auto nb = d.portNumber(b, v.name_b);
    BOOST_TEST((nb.ok() && *nb == v.port_b), "portNumber(" << v.name_b << "): " << why(nb));
  }

  // Destroying the graph-side LSI takes the far ends of its vlinks with it.
  auto gone = d.destroyLsi(b);
  BOOST_REQUIRE_MESSAGE(gone.ok(), why(gone));
  lsis = d.listLsis();
  BOOST_REQUIRE(lsis.ok());
  BOOST_TEST(!contains(*lsis, b));
  for (const auto& v : ib.vlinks) {
    auto na = d.portNumber(a, v.name_a);
    BOOST_TEST((!na.ok() && na.error().code() == ErrorCode::NotFound),
               "the far end " << v.name_a << " is gone");
  }
  for (const auto& p : ia.interfaces) BOOST_TEST(d.portNumber(a, p.name).ok());
  auto again = d.destroyLsi(b);
  BOOST_TEST(again.ok(), "destroying an absent LSI succeeds: " << why(again));
  BOOST_TEST(d.destroyLsi(a).ok());
  BOOST_TEST(d.destroyLsi(a).ok());
}

inline void checkAlreadyExistsAndNotFound(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a1", missing = env.prefix + "zz";
  LsiGuard guard(d, a);
  mustCreate(d, LsiSpec{a, {}, {}, "", 0});
  auto twice = d.createLsi(LsiSpec{a, {}, {}, "", 0});
  BOOST_TEST((!twice.ok() && twice.error().code() == ErrorCode::AlreadyExists), why(twice));

  const std::string b = env.prefix + "b1";
  LsiGuard guard_b(d, b);
  auto no_peer = d.createLsi(LsiSpec{b, {}, {}, missing, 1});
  BOOST_TEST((!no_peer.ok() && no_peer.error().code() == ErrorCode::NotFound), why(no_peer));
  auto lsis = d.listLsis();
  BOOST_REQUIRE(lsis.ok());
  BOOST_TEST(!contains(*lsis, b), "a failed createLsi leaves no LSI");

  auto n = d.portNumber(missing, "x");
  BOOST_TEST((!n.ok() && n.error().code() == ErrorCode::NotFound));
  n = d.portNumber(a, env.prefix + "nope");
  BOOST_TEST((!n.ok() && n.error().code() == ErrorCode::NotFound));
  auto c = d.connectLsis(a, missing, 1, env.prefix + "x");
  BOOST_TEST((!c.ok() && c.error().code() == ErrorCode::NotFound), why(c));
  auto p = d.createPorts(missing, {{env.prefix + "q", PortTechnology::Veth}});
  BOOST_TEST((!p.ok() && p.error().code() == ErrorCode::NotFound), why(p));
  auto dump = d.dumpRules(missing);
  BOOST_TEST((!dump.ok() && dump.error().code() == ErrorCode::NotFound), why(dump));
  auto install = d.installRules(missing, sampleRules(1, 2, 0));
  BOOST_TEST((!install.ok() && install.error().code() == ErrorCode::NotFound), why(install));
  // Removing from what does not exist succeeds.
  BOOST_TEST(d.destroyLsi(missing).ok());
  BOOST_TEST(d.destroyPorts(missing, {"x"}).ok());
  BOOST_TEST(d.removeRules(missing, sampleRules(1, 2, 0)).ok());
  BOOST_TEST(d.removeRulesByCookie(missing, 1, ~0ull).ok());
  BOOST_TEST(d.destroyVlinks({VlinkInfo{env.prefix + "nx0a", 1, env.prefix + "nx0b", 1}}).ok());
}

inline void checkPorts(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a2";
  LsiGuard guard(d, a);
  mustCreate(d, LsiSpec{a, {}, {}, "", 0});
  const std::string p1 = env.prefix + "q1", p2 = env.prefix + "q2";
  auto ports = d.createPorts(a, {{p1, PortTechnology::Veth}, {p2, PortTechnology::Internal}});
  BOOST_REQUIRE_MESSAGE(ports.ok(), why(ports));
  BOOST_REQUIRE_EQUAL(ports->size(), 2u);
  BOOST_TEST((*ports)[0].name == p1);
  BOOST_TEST((*ports)[1].name == p2);
  BOOST_TEST(!(*ports)[0].peer_ifname.empty());
  BOOST_TEST((*ports)[0].of_port != (*ports)[1].of_port);
  for (const auto& p : *ports) {
    auto n = d.portNumber(a, p.name);
    BOOST_TEST((n.ok() && *n == p.of_port), why(n));
  }
  BOOST_REQUIRE(d.destroyPorts(a, {p1}).ok());
  auto n1 = d.portNumber(a, p1);
  BOOST_TEST((!n1.ok() && n1.error().code() == ErrorCode::NotFound));
  BOOST_TEST(d.portNumber(a, p2).ok());
  BOOST_TEST(d.destroyPorts(a, {p1}).ok(), "destroying an absent port succeeds");
  BOOST_TEST(d.destroyPorts(a, {p2}).ok());
}

inline void checkVlinks(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a3", b = env.prefix + "b3";
  LsiGuard guard_b(d, b), guard_a(d, a);
  mustCreate(d, LsiSpec{a, {}, {}, "", 0});
  mustCreate(d, LsiSpec{b, {}, {}, "", 0});
  auto vlinks = d.connectLsis(a, b, 3, env.prefix + "x");
  BOOST_REQUIRE_MESSAGE(vlinks.ok(), why(vlinks));
  BOOST_REQUIRE_EQUAL(vlinks->size(), 3u);
  std::set<uint32_t> on_a, on_b;
  for (const auto& v : *vlinks) {
    BOOST_TEST(v.name_a.starts_with(env.prefix + "x"));
    BOOST_TEST(v.name_b.starts_with(env.prefix + "x"));
    auto na = d.portNumber(a, v.name_a);
    BOOST_TEST((na.ok() && *na == v.port_a), why(na));
    auto nb = d.portNumber(b, v.name_b);
    BOOST_TEST((nb.ok() && *nb == v.port_b), why(nb));
    on_a.insert(v.port_a);
    on_b.insert(v.port_b);
  }
  BOOST_TEST(on_a.size() == 3u);
  BOOST_TEST(on_b.size() == 3u);
  std::vector<VlinkInfo> first{(*vlinks)[0]};
  BOOST_REQUIRE(d.destroyVlinks(first).ok());
  BOOST_TEST(!d.portNumber(a, first[0].name_a).ok());
  BOOST_TEST(!d.portNumber(b, first[0].name_b).ok());
  BOOST_TEST(d.portNumber(a, (*vlinks)[1].name_a).ok());
  BOOST_TEST(d.destroyVlinks(first).ok(), "destroying absent vlinks succeeds");
  BOOST_TEST(d.destroyVlinks(*vlinks).ok());
  BOOST_TEST(!d.portNumber(b, (*vlinks)[2].name_b).ok());
}

inline void checkRules(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a4";
  LsiGuard guard(d, a);
  LsiInfo info = mustCreate(d, LsiSpec{a, env.interfaces(2), {}, "", 0});
  uint32_t p1 = info.interfaces[0].of_port, p2 = info.interfaces[1].of_port;
  auto empty = d.dumpRules(a);
  BOOST_REQUIRE_MESSAGE(empty.ok(), why(empty));
  BOOST_TEST(empty->empty(), "a new LSI has no rules");

  auto rules = sampleRules(p1, p2, 0x10);
  BOOST_TEST(d.checkRules(rules).ok());
  auto installed = d.installRules(a, rules);
  BOOST_REQUIRE_MESSAGE(installed.ok(), why(installed));
  auto dump = d.dumpRules(a);
  BOOST_REQUIRE_MESSAGE(dump.ok(), why(dump));
  BOOST_TEST(sortedText(*dump) == sortedText(rules), boost::test_tools::per_element());

  // Removal matches priority and match, not the cookie or the actions.
  TsRule first = rules[0];
  first.cookie = 0x999;
  first.outputs = {};
  BOOST_REQUIRE(d.removeRules(a, {first}).ok());
  dump = d.dumpRules(a);
  BOOST_REQUIRE(dump.ok());
  std::vector<TsRule> rest(rules.begin() + 1, rules.end());
  BOOST_TEST(sortedText(*dump) == sortedText(rest), boost::test_tools::per_element());
  BOOST_TEST(d.removeRules(a, {rules[0]}).ok(), "removing an absent rule succeeds");
  BOOST_TEST(d.installRules(a, {}).ok(), "an empty batch is fine");
}

inline void checkRemoveByCookie(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a5";
  LsiGuard guard(d, a);
  LsiInfo info = mustCreate(d, LsiSpec{a, env.interfaces(2), {}, "", 0});
  uint32_t p1 = info.interfaces[0].of_port, p2 = info.interfaces[1].of_port;
  auto mine = sampleRules(p1, p2, 0x100);    // cookies 0x100-0x102
  auto theirs = sampleRules(p1, p2, 0x200);  // cookies 0x200-0x202
  for (auto& r : theirs) r.priority += 1;
  BOOST_REQUIRE(d.installRules(a, mine).ok());
  BOOST_REQUIRE(d.installRules(a, theirs).ok());
  BOOST_REQUIRE(d.removeRulesByCookie(a, 0x100, 0xff00).ok());
  auto dump = d.dumpRules(a);
  BOOST_REQUIRE(dump.ok());
  BOOST_TEST(sortedText(*dump) == sortedText(theirs), boost::test_tools::per_element());
  BOOST_REQUIRE(d.removeRulesByCookie(a, 0, 0).ok());  // mask 0: everything
  dump = d.dumpRules(a);
  BOOST_REQUIRE(dump.ok());
  BOOST_TEST(dump->empty());
}

// A batch with a rule the switch refuses fails as a whole and leaves none of its rules; a rule
// installed before (the bystander) stays. `batch_rules` come before and after the refused one;
// when `refused` is unset the whole batch is expected to fail (a driver told to fail).
inline void checkFailedBatchLeavesNothing(VSwitchDriver& d, const Environment& env,
                                          bool bystander = true) {
  const std::string a = env.prefix + "a6";
  LsiGuard guard(d, a);
  LsiInfo info = mustCreate(d, LsiSpec{a, env.interfaces(2), {}, "", 0});
  uint32_t p1 = info.interfaces[0].of_port, p2 = info.interfaces[1].of_port;
  TsRule before;
  before.cookie = 0x7;
  before.priority = 7;
  before.in_port = p2;
  before.outputs = {p1};
  if (bystander) BOOST_REQUIRE(d.installRules(a, {before}).ok());
  auto batch = sampleRules(p1, p2, 0x20);
  if (env.refused_rule) batch.insert(batch.begin() + 1, env.refused_rule(p1));
  auto r = d.installRules(a, batch);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST_MESSAGE("the failed batch said: " << r.error().message());
  auto dump = d.dumpRules(a);
  BOOST_REQUIRE_MESSAGE(dump.ok(), why(dump));
  std::vector<TsRule> expected;
  if (bystander) expected.push_back(before);
  BOOST_TEST(sortedText(*dump) == sortedText(expected), boost::test_tools::per_element());
}

// Every match field and action kind installs and dumps back equal.
inline void checkEveryFieldRoundTrips(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a7";
  LsiGuard guard(d, a);
  LsiInfo info = mustCreate(d, LsiSpec{a, env.interfaces(2), {}, "", 0});
  auto rules = everyFieldRules(info.interfaces[0].of_port, info.interfaces[1].of_port);
  auto checked = d.checkRules(rules);
  BOOST_REQUIRE_MESSAGE(checked.ok(), why(checked));
  auto installed = d.installRules(a, rules);
  BOOST_REQUIRE_MESSAGE(installed.ok(), why(installed));
  auto dump = d.dumpRules(a);
  BOOST_REQUIRE_MESSAGE(dump.ok(), why(dump));
  BOOST_TEST(sortedText(*dump) == sortedText(rules), boost::test_tools::per_element());
  // Each one also removes exactly.
  BOOST_REQUIRE(d.removeRules(a, rules).ok());
  dump = d.dumpRules(a);
  BOOST_REQUIRE(dump.ok());
  BOOST_TEST(dump->empty());
}

// Calls from several threads at once, on different LSIs.
inline void checkConcurrentCalls(VSwitchDriver& d, const Environment& env) {
  constexpr int kThreads = 4;
  std::vector<std::string> names;
  for (int i = 0; i < kThreads; ++i) names.push_back(env.prefix + "c" + std::to_string(i));
  std::vector<std::unique_ptr<LsiGuard>> guards;
  for (const auto& n : names) guards.push_back(std::make_unique<LsiGuard>(d, n));
  std::vector<std::vector<std::string>> ifs;
  for (int i = 0; i < kThreads; ++i) ifs.push_back(env.interfaces(2));
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto info = d.createLsi(LsiSpec{names[i], ifs[i], {}, "", 0});
      if (!info.ok()) {
        failures[i] = "createLsi: " + info.error().message();
        return;
      }
      auto rules =
          sampleRules(info->interfaces[0].of_port, info->interfaces[1].of_port, 0x1000 * (i + 1));
      for (int round = 0; round < 5; ++round) {
        auto r = d.installRules(names[i], rules);
        if (!r.ok()) {
          failures[i] = "installRules: " + r.error().message();
          return;
        }
        auto dump = d.dumpRules(names[i]);
        if (!dump.ok() || sortedText(*dump) != sortedText(rules)) {
          failures[i] =
              "dumpRules: " + (dump.ok() ? std::string("wrong rules") : dump.error().message());
          return;
        }
        (void)d.removeRulesByCookie(names[i], 0, 0);
      }
      auto gone = d.destroyLsi(names[i]);
      if (!gone.ok()) failures[i] = "destroyLsi: " + gone.error().message();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i)
    BOOST_TEST(failures[i].empty(), names[i] << ": " << failures[i]);
}

// A port as text, to compare lists of ports in one message.
inline std::vector<std::string> sortedText(const std::vector<PortInfo>& ports) {
  std::vector<std::string> out;
  for (const auto& p : ports) {
    out.push_back(p.name + " #" + std::to_string(p.of_port) + " peer=" + p.peer_ifname);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// listPorts() shows an LSI's ports (interfaces, SF ports made with it or after, vlink ends) as
// createLsi(), createPorts() and connectLsis() gave them, also to a new driver, and follows their
// removals.
inline void checkListPorts(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a8", b = env.prefix + "b8";
  LsiGuard guard_b(d, b), guard_a(d, a);
  LsiInfo ia = mustCreate(d, LsiSpec{a, env.interfaces(2), {}, "", 0});
  LsiInfo ib = mustCreate(d, LsiSpec{b,
                                     {},
                                     {{env.prefix + "l1", PortTechnology::Veth},
                                      {env.prefix + "l2", PortTechnology::Internal}},
                                     a,
                                     2});
  auto more = d.createPorts(b, {{env.prefix + "l3", PortTechnology::Veth}});
  BOOST_REQUIRE_MESSAGE(more.ok(), why(more));
  auto looped = d.connectLsis(b, b, 1, env.prefix + "y");
  BOOST_REQUIRE_MESSAGE(looped.ok(), why(looped));
  std::vector<PortInfo> on_a = ia.interfaces, on_b = ib.ports;
  on_b.push_back((*more)[0]);
  for (const auto& v : ib.vlinks) {
    on_a.push_back(PortInfo{v.name_a, v.port_a, ""});
    on_b.push_back(PortInfo{v.name_b, v.port_b, ""});
  }
  for (const auto& v : *looped) {
    on_b.push_back(PortInfo{v.name_a, v.port_a, ""});
    on_b.push_back(PortInfo{v.name_b, v.port_b, ""});
  }

  auto expect = [&](VSwitchDriver& driver, const std::string& lsi,
                    const std::vector<PortInfo>& ports, const std::string& when) {
    auto listed = driver.listPorts(lsi);
    BOOST_REQUIRE_MESSAGE(listed.ok(), when << ": listPorts(" << lsi << "): " << why(listed));
    BOOST_TEST(sortedText(*listed) == sortedText(ports), when << ", LSI " << lsi);
    for (size_t i = 1; i < listed->size(); ++i) {
      BOOST_TEST((*listed)[i - 1].of_port < (*listed)[i].of_port, "listed by number");
    }
  };
  expect(d, a, on_a, "as made");
  expect(d, b, on_b, "as made");
  if (env.another_driver) {
    auto fresh = env.another_driver();
    expect(*fresh, a, on_a, "to a new driver");
    expect(*fresh, b, on_b, "to a new driver");
  }
  auto missing = d.listPorts(env.prefix + "zz");
  BOOST_TEST((!missing.ok() && missing.error().code() == ErrorCode::NotFound), why(missing));

  // Removals.
  BOOST_REQUIRE(d.destroyPorts(b, {env.prefix + "l1"}).ok());
  on_b.erase(on_b.begin());
  BOOST_REQUIRE(d.destroyVlinks({ib.vlinks[0]}).ok());
  std::erase_if(on_a, [&](const PortInfo& p) { return p.name == ib.vlinks[0].name_a; });
  std::erase_if(on_b, [&](const PortInfo& p) { return p.name == ib.vlinks[0].name_b; });
  expect(d, a, on_a, "after removals");
  expect(d, b, on_b, "after removals");
  BOOST_REQUIRE(d.destroyLsi(b).ok());
  expect(d, a, ia.interfaces, "after its peer went");
  auto gone = d.listPorts(b);
  BOOST_TEST((!gone.ok() && gone.error().code() == ErrorCode::NotFound), why(gone));
}

// syncRules() makes an LSI's flow table what the driver wants on it: rules already right stay,
// wanted ones deleted or changed behind its back come back, others go. With a second driver: the
// restart of corchd (a new driver adopts an LSI with the earlier run's flows, installs what it
// still wants, and the rest goes).
inline void checkSyncRules(VSwitchDriver& d, const Environment& env) {
  const std::string a = env.prefix + "a9", missing = env.prefix + "zz";
  LsiGuard guard(d, a);
  LsiInfo info = mustCreate(d, LsiSpec{a, env.interfaces(2), {}, "", 0});
  const uint32_t p1 = info.interfaces[0].of_port, p2 = info.interfaces[1].of_port;
  auto none = d.syncRules(missing);
  BOOST_TEST((!none.ok() && none.error().code() == ErrorCode::NotFound), why(none));
  auto dumped = [&](VSwitchDriver& driver) {
    auto dump = driver.dumpRules(a);
    BOOST_REQUIRE_MESSAGE(dump.ok(), why(dump));
    return sortedText(*dump);
  };
  auto sync = [&](VSwitchDriver& driver) {
    auto synced = driver.syncRules(a);
    BOOST_REQUIRE_MESSAGE(synced.ok(), "syncRules: " << why(synced));
  };

  sync(d);
  BOOST_TEST(dumped(d).empty(), "a new LSI stays empty");
  const auto rules = sampleRules(p1, p2, 0x30);  // A, B, C
  const TsRule &ra = rules[0], &rb = rules[1], &rc = rules[2];
  BOOST_REQUIRE(d.installRules(a, rules).ok());
  sync(d);
  BOOST_TEST(dumped(d) == sortedText(rules), boost::test_tools::per_element());
  BOOST_REQUIRE(d.removeRules(a, {rc}).ok());
  sync(d);
  BOOST_TEST(dumped(d) == sortedText({ra, rb}), boost::test_tools::per_element());
  BOOST_REQUIRE(d.removeRulesByCookie(a, rb.cookie, ~0ull).ok());
  sync(d);
  BOOST_TEST(dumped(d) == sortedText({ra}), boost::test_tools::per_element());
  BOOST_REQUIRE(d.installRules(a, {rb, rc}).ok());
  if (!env.another_driver) return;

  // A restarted corchd's driver finds A, B and C and still wants A and B.
  auto fresh = env.another_driver();
  BOOST_REQUIRE(fresh->installRules(a, {ra, rb}).ok());
  sync(*fresh);
  BOOST_TEST(dumped(*fresh) == sortedText({ra, rb}), boost::test_tools::per_element());
  sync(*fresh);
  BOOST_TEST(dumped(*fresh) == sortedText({ra, rb}), "a second sync changes nothing");

  // Behind its back (the first driver, standing for anyone else): A deleted, B changed (same
  // priority and match, other actions and cookie), D added. The sync puts its table back.
  TsRule changed = rb;
  changed.cookie = 0x777;
  changed.outputs = {};  // a drop
  changed.mods = {};
  TsRule rd = ra;
  rd.cookie = 0x778;
  rd.priority = 400;
  BOOST_REQUIRE(d.removeRules(a, {ra}).ok());
  BOOST_REQUIRE(d.installRules(a, {changed, rd}).ok());
  BOOST_TEST(dumped(*fresh) == sortedText({changed, rd}), boost::test_tools::per_element());
  sync(*fresh);
  BOOST_TEST(dumped(*fresh) == sortedText({ra, rb}), boost::test_tools::per_element());

  // Its own removals hold in the sync, also of a rule put back behind its back.
  BOOST_REQUIRE(fresh->removeRules(a, {rb}).ok());
  BOOST_REQUIRE(d.installRules(a, {rb}).ok());
  sync(*fresh);
  BOOST_TEST(dumped(*fresh) == sortedText({ra}), boost::test_tools::per_element());
  BOOST_REQUIRE(fresh->removeRulesByCookie(a, 0, 0).ok());
  BOOST_REQUIRE(d.installRules(a, {ra, rc}).ok());
  sync(*fresh);
  BOOST_TEST(dumped(*fresh).empty(), "nothing wanted, nothing left");
  none = fresh->syncRules(missing);
  BOOST_TEST((!none.ok() && none.error().code() == ErrorCode::NotFound), why(none));
}

}  // namespace corch::test::conformance

// One Boost test case per check. `driver` and `env` are expressions giving a VSwitchDriver& and
// a conformance::Environment.
#define CORCH_VSWITCH_CONFORMANCE_TESTS(driver, env)                          \
  BOOST_AUTO_TEST_CASE(conformance_lsi_lifecycle) {                           \
    corch::test::conformance::checkLsiLifecycle((driver), (env));             \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_already_exists_and_not_found) {            \
    corch::test::conformance::checkAlreadyExistsAndNotFound((driver), (env)); \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_ports) {                                   \
    corch::test::conformance::checkPorts((driver), (env));                    \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_vlinks) {                                  \
    corch::test::conformance::checkVlinks((driver), (env));                   \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_rules) {                                   \
    corch::test::conformance::checkRules((driver), (env));                    \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_remove_by_cookie) {                        \
    corch::test::conformance::checkRemoveByCookie((driver), (env));           \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_every_field_round_trips) {                 \
    corch::test::conformance::checkEveryFieldRoundTrips((driver), (env));     \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_failed_batch_leaves_nothing) {             \
    if (!(env).refused_rule) return;                                          \
    corch::test::conformance::checkFailedBatchLeavesNothing((driver), (env)); \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_concurrent_calls) {                        \
    corch::test::conformance::checkConcurrentCalls((driver), (env));          \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_list_ports) {                              \
    corch::test::conformance::checkListPorts((driver), (env));                \
  }                                                                           \
  BOOST_AUTO_TEST_CASE(conformance_sync_rules) {                              \
    corch::test::conformance::checkSyncRules((driver), (env));                \
  }
