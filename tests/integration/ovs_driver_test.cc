// The ovs vSwitch driver on a real Open vSwitch (userspace datapath) in the test sandbox: the
// vSwitch conformance suite, real traffic through two LSIs and a function, clean destruction,
// what checkRules refuses, rollback of failed creations, reconnection after restarts, and the
// size of one batch.
#define BOOST_TEST_MODULE ovs_driver
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>

#include "corch/driver_registry.h"
#include "corch/log.h"
#include "harness/sandbox.h"
#include "integration/vswitch_conformance.h"

namespace {

using namespace corch;
using namespace std::chrono_literals;
using corch::test::Sandbox;
using corch::test::waitUntil;
namespace conformance = corch::test::conformance;
using conformance::mustCreate;
using conformance::why;

std::unique_ptr<VSwitchDriver> makeOvs(DriverOptions options) {
  DriverRegistry registry;
  registerBuiltinDrivers(registry);
  auto made = registry.makeVSwitch("ovs", options);
  BOOST_REQUIRE_MESSAGE(made.ok(), why(made));
  auto probed = (*made)->probe();
  BOOST_REQUIRE_MESSAGE(probed.ok(), why(probed));
  return std::move(*made);
}

// One driver for the whole process, as corchd has (created after the sandbox: its threads must
// start inside the sandbox's namespace).
VSwitchDriver& ovs() {
  static std::unique_ptr<VSwitchDriver> driver = makeOvs(Sandbox::get().ovsDriverOptions());
  return *driver;
}

// Veth pairs in the sandbox namespace standing for physical interfaces.
std::vector<std::string> makeInterfaces(size_t n) {
  static int next = 0;
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    std::string name = "cfi" + std::to_string(next++);
    auto r = Sandbox::get().run("ip link add " + name + " type veth peer name " + name +
                                "x && ip link set " + name + " up && ip link set " + name + "x up");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.output);
    names.push_back(name);
  }
  return names;
}

conformance::Environment environment() {
  conformance::Environment env;
  env.prefix = "cf";
  env.interfaces = makeInterfaces;
  // Port 0x10000 is beyond OpenFlow's physical port range: Open vSwitch refuses the output.
  env.refused_rule = [](uint32_t port) {
    TsRule r;
    r.cookie = 0xbad;
    r.priority = 555;
    r.in_port = port;
    r.outputs = {0x10000};
    return r;
  };
  env.another_driver = [] { return makeOvs(Sandbox::get().ovsDriverOptions()); };
  return env;
}

bool linkExists(const std::string& name) { return Sandbox::get().run("ip link show " + name).ok(); }

// Destroys LSIs and hosts of a test however it ends.
struct Cleanup {
  std::vector<std::string> lsis;  // destroyed in this order
  std::vector<std::string> hosts;
  ~Cleanup() {
    for (const auto& l : lsis) (void)ovs().destroyLsi(l);
    for (const auto& h : hosts) (void)Sandbox::get().removeHost(h);
  }
};

TsRule forward(uint32_t in, uint32_t out, uint64_t cookie = 0x42) {
  TsRule r;
  r.cookie = cookie;
  r.priority = 10;
  r.in_port = in;
  r.outputs = {out};
  return r;
}

}  // namespace

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

CORCH_VSWITCH_CONFORMANCE_TESTS(ovs(), environment())

// Two hosts on LSI-0, a graph LSI with two veth SF ports whose function ends are joined by a
// Linux bridge in a namespace of their own, vlinks, rules split across both LSIs (Table 4):
// h1 <-> LSI-0 <-> vlink 0 <-> graph LSI <-> function <-> graph LSI <-> vlink 1 <-> LSI-0 <-> h2.
BOOST_AUTO_TEST_CASE(ping_passes_through_a_function_across_two_lsis) {
  auto& sb = Sandbox::get();
  auto& d = ovs();
  Cleanup cleanup{{"tg", "t0"}, {"t1", "t2", "tfn"}};
  auto h1 = sb.addHost("t1", "10.9.0.1/24");
  BOOST_REQUIRE_MESSAGE(h1.ok(), why(h1));
  auto h2 = sb.addHost("t2", "10.9.0.2/24");
  BOOST_REQUIRE_MESSAGE(h2.ok(), why(h2));

  LsiInfo lsi0 = mustCreate(d, LsiSpec{"t0", {*h1, *h2}, {}, "", 0});
  LsiInfo g = mustCreate(
      d,
      LsiSpec{"tg", {}, {{"tga", PortTechnology::Veth}, {"tgb", PortTechnology::Veth}}, "t0", 2});
  BOOST_REQUIRE_EQUAL(g.ports[0].peer_ifname, "tgaf");
  BOOST_REQUIRE_EQUAL(g.ports[1].peer_ifname, "tgbf");
  BOOST_TEST(linkExists("tga"));

  // The function: a Linux bridge between its two ends.
  auto fn = sb.addHost("tfn", "192.168.250.1/24");
  BOOST_REQUIRE_MESSAGE(fn.ok(), why(fn));
  std::string ns = sb.hostNetns("tfn");
  auto moved = sb.run("ip link set tgaf netns " + ns + " && ip link set tgbf netns " + ns);
  BOOST_REQUIRE_MESSAGE(moved.ok(), moved.output);
  auto bridged = sb.runIn("tfn",
                          "ip link add br0 type bridge && ip link set tgaf master br0 && "
                          "ip link set tgbf master br0 && ip link set tgaf up && "
                          "ip link set tgbf up && ip link set br0 up");
  BOOST_REQUIRE_MESSAGE(bridged.ok(), bridged.output);

  uint32_t p1 = lsi0.interfaces[0].of_port, p2 = lsi0.interfaces[1].of_port;
  const VlinkInfo& v0 = g.vlinks[0];
  const VlinkInfo& v1 = g.vlinks[1];
  uint32_t sfa = g.ports[0].of_port, sfb = g.ports[1].of_port;
  auto on0 = d.installRules("t0", {forward(p1, v0.port_a), forward(v0.port_a, p1),
                                   forward(p2, v1.port_a), forward(v1.port_a, p2)});
  BOOST_REQUIRE_MESSAGE(on0.ok(), why(on0));
  auto ong = d.installRules("tg", {forward(v0.port_b, sfa), forward(sfa, v0.port_b),
                                   forward(sfb, v1.port_b), forward(v1.port_b, sfb)});
  BOOST_REQUIRE_MESSAGE(ong.ok(), why(ong));

  test::CommandResult ping;
  bool passed = waitUntil(
      [&] {
        ping = sb.runIn("t1", "ping -c 1 -W 1 10.9.0.2");
        return ping.ok();
      },
      20s, 100ms);
  BOOST_REQUIRE_MESSAGE(passed, "ping h1 -> h2 failed: " + ping.output + "\n" +
                                    sb.run("ovs-ofctl -O OpenFlow13 dump-flows t0; "
                                           "ovs-ofctl -O OpenFlow13 dump-flows tg")
                                        .output);
  // And it went through the function: the rule out of its second port counted packets.
  auto flows = sb.run("ovs-ofctl -O OpenFlow13 dump-flows tg in_port=" + std::to_string(sfb));
  BOOST_TEST(std::regex_search(flows.output, std::regex("n_packets=[1-9]")), flows.output);

  // Without the function's rules, nothing passes.
  BOOST_REQUIRE(d.removeRulesByCookie("tg", 0x42, ~0ull).ok());
  BOOST_TEST(!sb.runIn("t1", "ping -c 1 -W 1 10.9.0.2").ok());

  // Destroying the LSIs leaves no bridge, port, patch port or veth behind.
  BOOST_REQUIRE(d.destroyLsi("tg").ok());
  BOOST_REQUIRE(d.destroyLsi("t0").ok());
  auto bridges = sb.run("ovs-vsctl list-br");
  BOOST_TEST(bridges.ok());
  BOOST_TEST(bridges.output.find("tg") == std::string::npos, bridges.output);
  BOOST_TEST(bridges.output.find("t0") == std::string::npos, bridges.output);
  auto ports = sb.run("ovs-vsctl --columns=name list Interface");
  BOOST_TEST(ports.output.find("tg") == std::string::npos, ports.output);
  BOOST_TEST(ports.output.find("t0") == std::string::npos, ports.output);
  BOOST_TEST(!linkExists("tga"));
  BOOST_TEST(!linkExists("tgb"));
  BOOST_TEST(!sb.runIn("tfn", "ip link show tgaf").ok(), "the function's end went with its pair");
  // The LSIs' own internal ports are taps of ovs-vswitchd: gone once it applied the removal.
  BOOST_TEST(waitUntil([&] { return !linkExists("tg") && !linkExists("t0"); }, 5s));
  BOOST_TEST(linkExists(*h1), "an attached interface is not the driver's to delete");
}

BOOST_AUTO_TEST_CASE(check_rules_names_what_openflow_cannot_express) {
  auto& d = ovs();
  struct Case {
    const char* field;
    ErrorCode code;
    std::function<void(TsRule&)> fill;
  };
  std::vector<Case> cases = {
      {"source_port", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0800, r.fields.source_port = 80; }},
      {"dest_port", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.ether_type = 0x0800, r.fields.protocol = 1, r.fields.dest_port = 80;
       }},
      {"set_source_port", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.fields.ether_type = 0x0800, r.mods.set_source_port = 80; }},
      {"icmp_type", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.ether_type = 0x0800, r.fields.protocol = 6, r.fields.icmp_type = 8;
       }},
      {"vlan_pcp", ErrorCode::Unsupported, [](TsRule& r) { r.fields.vlan_pcp = 1; }},
      {"protocol", ErrorCode::InvalidArgument, [](TsRule& r) { r.fields.protocol = 6; }},
      {"dest_ip", ErrorCode::InvalidArgument,
       [](TsRule& r) {
         r.fields.ether_type = 0x0806, r.fields.dest_ip = IpPrefix::parse("10.0.0.1");
       }},
      {"set_dest_ip", ErrorCode::InvalidArgument,
       [](TsRule& r) { r.mods.set_dest_ip = IpAddr::parse("10.0.0.1"); }},
      {"dec_ttl", ErrorCode::InvalidArgument, [](TsRule& r) { r.mods.dec_ttl = true; }},
      {"pop_vlan", ErrorCode::InvalidArgument, [](TsRule& r) { r.mods.pop_vlan = true; }},
  };
  for (const auto& c : cases) {
    TsRule r = forward(1, 2);
    c.fill(r);
    auto checked = d.checkRules({r});
    BOOST_TEST(!checked.ok(), c.field << " is refused");
    if (checked.ok()) continue;
    BOOST_TEST((checked.error().code() == c.code), c.field << ": " << checked.error().message());
    BOOST_TEST(checked.error().message().find(c.field) != std::string::npos,
               checked.error().message() << " names " << c.field);
  }
  // Inferred prerequisites: an IPv6 address brings its ether_type.
  TsRule inferred = forward(1, 2);
  inferred.fields.dest_ip = IpPrefix::parse("2001:db8::/64");
  inferred.fields.protocol = 6;
  inferred.fields.dest_port = 22;
  BOOST_TEST(d.checkRules({inferred}).ok());
}

BOOST_AUTO_TEST_CASE(inferred_ether_type_is_installed_and_dumped) {
  auto& d = ovs();
  Cleanup cleanup{{"ti"}, {}};
  LsiInfo info = mustCreate(d, LsiSpec{"ti", makeInterfaces(2), {}, "", 0});
  TsRule r = forward(info.interfaces[0].of_port, info.interfaces[1].of_port);
  r.fields.source_ip = IpPrefix::parse("10.0.0.0/8");
  BOOST_REQUIRE(d.installRules("ti", {r}).ok());
  auto dump = d.dumpRules("ti");
  BOOST_REQUIRE(dump.ok());
  BOOST_REQUIRE_EQUAL(dump->size(), 1u);
  r.fields.ether_type = 0x0800;
  BOOST_TEST(toString((*dump)[0]) == toString(r));
  // And it can be removed as it was given.
  r.fields.ether_type.reset();
  BOOST_REQUIRE(d.removeRules("ti", {r}).ok());
  BOOST_TEST(d.dumpRules("ti")->empty());
}

BOOST_AUTO_TEST_CASE(a_refused_rule_is_named_with_the_switch_error_in_words) {
  auto& d = ovs();
  Cleanup cleanup{{"tr"}, {}};
  LsiInfo info = mustCreate(d, LsiSpec{"tr", makeInterfaces(1), {}, "", 0});
  TsRule bad = environment().refused_rule(info.interfaces[0].of_port);
  auto r = d.installRules("tr", {forward(info.interfaces[0].of_port, 1), bad});
  BOOST_REQUIRE(!r.ok());
  const std::string& m = r.error().message();
  BOOST_TEST(m.find("cannot install rules on LSI tr") != std::string::npos, m);
  BOOST_TEST(m.find(toString(bad)) != std::string::npos, m);
  BOOST_TEST(m.find("bad out port") != std::string::npos, m);
  BOOST_TEST(d.dumpRules("tr")->empty());
}

BOOST_AUTO_TEST_CASE(failed_creations_leave_nothing) {
  auto& sb = Sandbox::get();
  auto& d = ovs();
  Cleanup cleanup{{"tf", "tf0"}, {}};
  // An interface that does not exist: Open vSwitch cannot open it; everything is undone.
  auto missing = d.createLsi(LsiSpec{"tf", {"nosuchif0"}, {{"tfp1", PortTechnology::Veth}}, "", 0});
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST((missing.error().code() == ErrorCode::NotFound), missing.error().message());
  BOOST_TEST(missing.error().message().find("cannot create LSI tf") != std::string::npos);
  BOOST_TEST(!sb.run("ovs-vsctl br-exists tf").ok());
  BOOST_TEST(!linkExists("tfp1"), "the veth made for the failed LSI is deleted");
  BOOST_TEST(!linkExists("tfp1f"));

  // A port name that exists: AlreadyExists, and nothing made.
  mustCreate(d, LsiSpec{"tf0", {}, {{"tfq1", PortTechnology::Veth}}, "", 0});
  auto taken = d.createLsi(
      LsiSpec{"tf", {}, {{"tfq2", PortTechnology::Veth}, {"tfq1", PortTechnology::Veth}}, "", 0});
  BOOST_REQUIRE(!taken.ok());
  BOOST_TEST((taken.error().code() == ErrorCode::AlreadyExists), taken.error().message());
  BOOST_TEST(!linkExists("tfq2"));
  auto dup = d.createPorts("tf0", {{"tfq1", PortTechnology::Internal}});
  BOOST_TEST((!dup.ok() && dup.error().code() == ErrorCode::AlreadyExists), why(dup));
  // A veth name without room for the function end's "f".
  auto long_name = d.createPorts("tf0", {{"tfabcdefghijklm", PortTechnology::Veth}});
  BOOST_TEST((!long_name.ok() && long_name.error().code() == ErrorCode::InvalidArgument),
             why(long_name));
  // vhost-user needs a DPDK build.
  auto vhost = d.createPorts("tf0", {{"tfv1", PortTechnology::VhostUser}});
  BOOST_TEST((!vhost.ok() && vhost.error().code() == ErrorCode::Unsupported), why(vhost));
  // Interfaces of one port kind or another come and go with destroyPorts.
  auto tap =
      d.createPorts("tf0", {{"tft1", PortTechnology::Tap}, {"tfi1", PortTechnology::Internal}});
  BOOST_REQUIRE_MESSAGE(tap.ok(), why(tap));
  BOOST_TEST(waitUntil([] { return linkExists("tft1") && linkExists("tfi1"); }, 5s));
  BOOST_REQUIRE(d.destroyPorts("tf0", {"tft1", "tfi1", "tfq1"}).ok());
  BOOST_TEST(waitUntil([] { return !linkExists("tft1") && !linkExists("tfi1"); }, 5s));
  BOOST_TEST(!linkExists("tfq1"), "destroyPorts deletes the veth pair made for the port");
}

BOOST_AUTO_TEST_CASE(port_numbers_are_deterministic_and_not_reused_at_once) {
  auto& d = ovs();
  Cleanup cleanup{{"tn"}, {}};
  LsiInfo info =
      mustCreate(d, LsiSpec{"tn", makeInterfaces(2), {{"tnp1", PortTechnology::Veth}}, "", 0});
  BOOST_TEST(info.interfaces[0].of_port == 1u);
  BOOST_TEST(info.interfaces[1].of_port == 2u);
  BOOST_TEST(info.ports[0].of_port == 3u);
  BOOST_REQUIRE(d.destroyPorts("tn", {"tnp1"}).ok());
  auto again = d.createPorts("tn", {{"tnp2", PortTechnology::Veth}});
  BOOST_REQUIRE_MESSAGE(again.ok(), why(again));
  BOOST_TEST((*again)[0].of_port == 4u, "number 3 may still be in a stale rule");
}

BOOST_AUTO_TEST_CASE(rules_come_back_after_ovs_restarts) {
  auto& sb = Sandbox::get();
  auto& d = ovs();
  Cleanup cleanup{{"tz"}, {}};
  LsiInfo info = mustCreate(d, LsiSpec{"tz", makeInterfaces(2), {}, "", 0});
  auto rules =
      conformance::sampleRules(info.interfaces[0].of_port, info.interfaces[1].of_port, 0x50);
  BOOST_REQUIRE(d.installRules("tz", rules).ok());

  // ovs-vswitchd forgets its flows; the driver notices its OpenFlow connection drop and puts
  // them back by itself (ovs_heal_test.cc tests that further). Installing them again is harmless.
  auto restarted = sb.restartVswitchd();
  BOOST_REQUIRE_MESSAGE(restarted.ok(), why(restarted));
  BOOST_TEST(waitUntil(
      [&] {
        auto dump = d.dumpRules("tz");
        return dump.ok() && dump->size() == rules.size();
      },
      5s));
  auto reinstalled = d.installRules("tz", rules);
  BOOST_REQUIRE_MESSAGE(reinstalled.ok(), why(reinstalled));
  BOOST_TEST(d.dumpRules("tz")->size() == rules.size());

  // ovsdb-server restarts: the next management call reconnects.
  restarted = sb.restartOvsdbServer();
  BOOST_REQUIRE_MESSAGE(restarted.ok(), why(restarted));
  auto lsis = d.listLsis();
  BOOST_REQUIRE_MESSAGE(lsis.ok(), why(lsis));
  BOOST_TEST(conformance::contains(*lsis, "tz"));
  auto ports = d.createPorts("tz", {{"tzp1", PortTechnology::Veth}});
  BOOST_TEST(ports.ok(), why(ports));
}

// DESIGN / MACHINE-NOTES: a graph of 100 SFs is one transaction; 1000 flows are one batch.
BOOST_AUTO_TEST_CASE(a_big_graph_is_one_transaction_and_one_batch) {
  corch::log::setLevel("ovs", corch::log::Level::Debug);  // the driver logs the time of each step
  auto& d = ovs();
  Cleanup cleanup{{"tbg", "tb0"}, {}};
  mustCreate(d, LsiSpec{"tb0", makeInterfaces(2), {}, "", 0});
  LsiSpec spec{"tbg", {}, {}, "tb0", 4};
  for (int i = 0; i < 100; ++i) {
    spec.ports.push_back({"tb" + std::to_string(i) + "a", PortTechnology::Veth});
    spec.ports.push_back({"tb" + std::to_string(i) + "b", PortTechnology::Veth});
  }
  auto t0 = std::chrono::steady_clock::now();
  LsiInfo info = mustCreate(d, spec);
  auto create_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  BOOST_TEST(info.ports.size() == 200u);

  std::vector<TsRule> rules;
  for (int i = 0; i < 1000; ++i) {
    TsRule r = forward(info.ports[i % 200].of_port, info.vlinks[i % 4].port_b, 0x7000 + i);
    r.priority = static_cast<uint16_t>(100 + i);
    r.fields.ether_type = 0x0800;
    r.fields.dest_ip =
        IpPrefix::parse("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250));
    rules.push_back(r);
  }
  t0 = std::chrono::steady_clock::now();
  auto installed = d.installRules("tbg", rules);
  auto install_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  BOOST_REQUIRE_MESSAGE(installed.ok(), why(installed));
  auto dump = d.dumpRules("tbg");
  BOOST_REQUIRE(dump.ok());
  BOOST_TEST(dump->size() == 1000u);
  t0 = std::chrono::steady_clock::now();
  BOOST_REQUIRE(d.destroyLsi("tbg").ok());
  auto destroy_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  BOOST_TEST_MESSAGE("createLsi with 200 veth ports and 4 vlinks: "
                     << create_ms << " ms; 1000 flows in one batch: " << install_ms
                     << " ms; destroyLsi: " << destroy_ms << " ms");
  // Generous bounds: these catch a per-port round trip or a per-flow barrier, not jitter.
  BOOST_TEST(install_ms < 2000);
  BOOST_TEST(create_ms < 20000);
  BOOST_TEST(!linkExists("tb0a"));
}

// Tap ports (VMs): persistent taps made by the driver and added as plain system ports, so that an
// emulator can still attach to them by name (OVS's own "tap" type would hold them open: EBUSY).
BOOST_AUTO_TEST_CASE(tap_ports_are_free_for_an_emulator_and_go_with_their_lsi) {
  auto& sb = Sandbox::get();
  auto& d = ovs();
  Cleanup cleanup{{"tt"}, {}};
  LsiInfo g = mustCreate(
      d, LsiSpec{"tt", {}, {{"tta", PortTechnology::Tap}, {"ttb", PortTechnology::Tap}}, "", 0});
  BOOST_TEST(g.ports[0].peer_ifname == "tta", "a tap's function end is the tap itself");
  BOOST_TEST(linkExists("tta"));
  auto up = sb.run("ip -o link show tta");
  BOOST_TEST(up.output.find(",UP") != std::string::npos, up.output);
  auto type = sb.run("ovs-vsctl get Interface tta type");
  BOOST_TEST(type.output == "\"\"\n", "a system port, not OVS's tap type: " + type.output);
  // What QEMU does with <target dev='tta' managed='no'/>: TUNSETIFF by name (0x400454ca).
  auto attach = sb.run(
      "python3 -c \"import fcntl,struct,os; f=os.open('/dev/net/tun', os.O_RDWR); "
      "fcntl.ioctl(f, 0x400454ca, struct.pack('16sH', b'tta', 0x1002)); print('attached')\"");
  BOOST_TEST(attach.output.find("attached") != std::string::npos, attach.output);

  auto more = d.createPorts("tt", {{"ttc", PortTechnology::Tap}});
  BOOST_REQUIRE_MESSAGE(more.ok(), why(more));
  BOOST_TEST(linkExists("ttc"));
  BOOST_REQUIRE(d.destroyPorts("tt", {"ttc"}).ok());
  BOOST_TEST(waitUntil([&] { return !linkExists("ttc"); }, 5s), "a destroyed tap port's device");
  BOOST_REQUIRE(d.destroyLsi("tt").ok());
  BOOST_TEST(waitUntil([&] { return !linkExists("tta") && !linkExists("ttb"); }, 5s));
}

namespace {

// The flows of an LSI as ovs-ofctl prints them, one a line (header left out).
std::vector<std::string> flowLines(const std::string& lsi) {
  auto r = Sandbox::get().run("ovs-ofctl -O OpenFlow13 --no-names dump-flows " + lsi +
                              " | grep -v '^OFPST_FLOW'");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.output);
  std::vector<std::string> lines;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The packet counter of the flow of this cookie, or nullopt when there is no such flow.
std::optional<uint64_t> packetsOf(const std::string& lsi, uint64_t cookie) {
  std::ostringstream prefix;
  prefix << "cookie=0x" << std::hex << cookie << ",";
  static const std::regex n_packets("n_packets=([0-9]+)");
  for (const auto& line : flowLines(lsi)) {
    if (line.find(prefix.str()) == std::string::npos) continue;
    std::smatch m;
    if (std::regex_search(line, m, n_packets)) return std::stoull(m[1].str());
  }
  return std::nullopt;
}

// Makes the switch take n packets in at a port through its flow table (a packet-out with action
// table), so that the flow they match counts them.
void sendPackets(const std::string& lsi, uint32_t in_port, int n) {
  const std::string frame = "ffffffffffff02000000000188b5" + std::string(92, '0');
  for (int i = 0; i < n; ++i) {
    auto r = Sandbox::get().run("ovs-ofctl -O OpenFlow13 packet-out " + lsi + " 'in_port=" +
                                std::to_string(in_port) + " packet=" + frame + " actions=table'");
    BOOST_REQUIRE_MESSAGE(r.ok(), r.output);
  }
}

}  // namespace

// The restart of corchd (issue 6): a new driver adopts an LSI an earlier one built, installs the
// rules it still wants and syncs. The earlier run's other flows go; the wanted ones are never
// deleted nor added again (a flow monitor sees no event for them, their counters go on); a flow
// corch cannot decode is left alone; a wanted flow deleted behind its back comes back.
BOOST_AUTO_TEST_CASE(a_new_driver_adopts_an_lsi_without_touching_the_flows_it_still_wants) {
  auto& sb = Sandbox::get();
  const std::string lsi = "ts";
  Cleanup cleanup{{lsi}, {}};
  auto ifs = makeInterfaces(2);
  LsiInfo info;
  TsRule ra, rb, rc;
  {
    auto earlier = makeOvs(sb.ovsDriverOptions());
    info = mustCreate(*earlier, LsiSpec{lsi, ifs, {}, "", 0});
    const uint32_t p1 = info.interfaces[0].of_port, p2 = info.interfaces[1].of_port;
    ra = forward(p1, p2, 0x61);
    rb = forward(p2, p1, 0x62);
    rc = forward(p1, p2, 0x63);
    rc.priority = 20;
    rc.fields.ether_type = 0x88b5;
    BOOST_REQUIRE(earlier->installRules(lsi, {ra, rb}).ok());
    sendPackets(lsi, p1, 3);
    sendPackets(lsi, p2, 3);
    BOOST_REQUIRE(earlier->installRules(lsi, {rc}).ok());
  }  // the earlier corchd is gone; the switch keeps the LSI and its flows
  // Flows corch does not make: a match on metadata, a flow in table 1.
  auto foreign = sb.run("ovs-ofctl -O OpenFlow13 add-flow " + lsi +
                        " 'priority=1,metadata=0x5,actions=drop' && ovs-ofctl -O OpenFlow13 "
                        "add-flow " +
                        lsi + " 'table=1,priority=1,actions=drop'");
  BOOST_REQUIRE_MESSAGE(foreign.ok(), foreign.output);

  auto d = makeOvs(sb.ovsDriverOptions());
  auto ports = d->listPorts(lsi);
  BOOST_REQUIRE_MESSAGE(ports.ok(), why(ports));
  BOOST_TEST(conformance::sortedText(*ports) == conformance::sortedText(info.interfaces),
             boost::test_tools::per_element());
  auto installed = d->installRules(lsi, {ra, rb});
  BOOST_REQUIRE_MESSAGE(installed.ok(), why(installed));
  {
    // (Read before the message: a check inside a message's stream would cut it short.)
    const auto a = packetsOf(lsi, ra.cookie).value_or(0), b = packetsOf(lsi, rb.cookie).value_or(0);
    BOOST_TEST_MESSAGE("counters after installRules of the same flows: A " << a << ", B " << b
                                                                           << " (3 each before)");
  }
  sendPackets(lsi, ra.in_port, 2);
  sendPackets(lsi, rb.in_port, 2);
  const auto a_before = packetsOf(lsi, ra.cookie), b_before = packetsOf(lsi, rb.cookie);
  BOOST_REQUIRE(a_before && b_before);
  BOOST_REQUIRE(*a_before >= 2u && *b_before >= 2u);

  // Every change to the table from now on, whoever makes it.
  const std::string events = sb.dir() + "/ts-monitor.log", pidfile = sb.dir() + "/ts-monitor.pid";
  auto monitor = sb.run("rm -f " + events + "; timeout 60 ovs-ofctl -O OpenFlow13 monitor " + lsi +
                        " watch:'!initial' >" + events + " 2>&1 & echo $! >" + pidfile);
  BOOST_REQUIRE_MESSAGE(monitor.ok(), monitor.output);
  // It is listening once it reports a change: a flow of the test's own, added and deleted.
  BOOST_REQUIRE(waitUntil(
      [&] {
        (void)sb.run("ovs-ofctl -O OpenFlow13 add-flow " + lsi +
                     " 'priority=2,metadata=0x6,actions=drop'");
        return sb.run("grep -q metadata=0x6 " + events).ok();
      },
      10s, 100ms));
  BOOST_REQUIRE(
      sb.run("ovs-ofctl -O OpenFlow13 --strict del-flows " + lsi + " 'priority=2,metadata=0x6'")
          .ok());

  auto synced = d->syncRules(lsi);
  BOOST_REQUIRE_MESSAGE(synced.ok(), why(synced));
  // The sync sends its adds before its deletes: once the monitor saw C go, it saw all of it.
  BOOST_TEST(waitUntil([&] { return sb.run("grep -q cookie=0x63 " + events).ok(); }, 10s, 50ms));
  (void)sb.run("kill $(cat " + pidfile + ")");
  auto seen = sb.run("cat " + events).output;
  BOOST_TEST_MESSAGE("the monitor saw:\n" << seen);
  BOOST_TEST(seen.find("cookie=0x61") == std::string::npos, "A is not touched: " << seen);
  BOOST_TEST(seen.find("cookie=0x62") == std::string::npos, "B is not touched: " << seen);
  BOOST_TEST(std::regex_search(seen, std::regex("event=DELETED[^\\n]*cookie=0x63")),
             "C is deleted: " << seen);

  BOOST_TEST(!packetsOf(lsi, rc.cookie), "the earlier run's C is gone");
  auto a_after = packetsOf(lsi, ra.cookie), b_after = packetsOf(lsi, rb.cookie);
  BOOST_TEST((a_after && *a_after >= *a_before), "A keeps its counter");
  BOOST_TEST((b_after && *b_after >= *b_before), "B keeps its counter");
  auto lines = flowLines(lsi);
  auto has = [&](const std::string& what) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(what) != std::string::npos; });
  };
  BOOST_TEST(has("metadata=0x5"), "a flow corch cannot decode is left alone");
  BOOST_TEST(has("table=1"), "so is a flow of another table");
  BOOST_TEST(lines.size() == 4u, "A, B and the two foreign flows");

  // A wanted flow deleted behind the driver's back comes back with the next sync.
  auto deleted = sb.run("ovs-ofctl -O OpenFlow13 --strict del-flows " + lsi +
                        " 'priority=10,in_port=" + std::to_string(ra.in_port) + "'");
  BOOST_REQUIRE_MESSAGE(deleted.ok(), deleted.output);
  BOOST_REQUIRE(!packetsOf(lsi, ra.cookie));
  synced = d->syncRules(lsi);
  BOOST_REQUIRE_MESSAGE(synced.ok(), why(synced));
  BOOST_TEST(packetsOf(lsi, ra.cookie).has_value(), "A is back");
  b_after = packetsOf(lsi, rb.cookie);
  BOOST_TEST((b_after && *b_after >= *b_before), "B still untouched");
  d.reset();
}

// listPorts reads an LSI back, as createLsi gave it, to a driver that did not make it; a port
// whose device is gone (its veth or its tap deleted behind the driver's back) is left out.
BOOST_AUTO_TEST_CASE(list_ports_leaves_out_a_port_whose_device_is_gone) {
  auto& sb = Sandbox::get();
  auto& d = ovs();
  Cleanup cleanup{{"tl"}, {}};
  LsiInfo info = mustCreate(d, LsiSpec{"tl",
                                       makeInterfaces(1),
                                       {{"tlp1", PortTechnology::Veth},
                                        {"tlp2", PortTechnology::Veth},
                                        {"tlt", PortTechnology::Tap},
                                        {"tli", PortTechnology::Internal}},
                                       "",
                                       0});
  BOOST_TEST(info.ports[0].peer_ifname == "tlp1f");
  BOOST_TEST(info.ports[2].peer_ifname == "tlt");
  std::vector<PortInfo> all = info.interfaces;
  all.insert(all.end(), info.ports.begin(), info.ports.end());
  auto fresh = makeOvs(sb.ovsDriverOptions());
  auto listed = fresh->listPorts("tl");
  BOOST_REQUIRE_MESSAGE(listed.ok(), why(listed));
  BOOST_TEST(conformance::sortedText(*listed) == conformance::sortedText(all),
             boost::test_tools::per_element());

  auto gone = sb.run("ip link del tlp1 && ip link del tlt");
  BOOST_REQUIRE_MESSAGE(gone.ok(), gone.output);
  std::erase_if(all, [](const PortInfo& p) { return p.name == "tlp1" || p.name == "tlt"; });
  for (VSwitchDriver* driver : {fresh.get(), &d}) {
    listed = driver->listPorts("tl");
    BOOST_REQUIRE_MESSAGE(listed.ok(), why(listed));
    BOOST_TEST(conformance::sortedText(*listed) == conformance::sortedText(all),
               boost::test_tools::per_element());
  }
}
