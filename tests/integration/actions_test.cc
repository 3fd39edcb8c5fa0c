// Every match field and every action of the SF-FG (DESIGN section 6), shown with real traffic:
// corchd on the sandbox's Open vSwitch, graphs PUT over REST, packets sent from the hosts' network
// namespaces (nc, ping, ARP from the kernel) and looked at on the receiving host with tcpdump.
// A match is shown both ways: traffic that matches passes, traffic that differs only in that field
// does not. A modification is shown on the packet that arrives (headers rewritten, tag pushed,
// TTL decremented, checksums still right). Rules stay on LSI-0 (SAP to SAP) or go through a
// bridge function, so that they are split between LSI-0 and the graph-LSI and modifications happen
// on either.
//
// How a negative is checked: the packets of one host go through the switch in order, so once a
// last "marker" datagram (sent after every probe, on a path that passes) has arrived, a probe
// that has not arrived was dropped. No fixed sleeps.
//
// The kernel of these machines has no 802.1Q module (no VLAN interfaces in hosts), so frames that
// arrive already tagged are made two ways: pushed by a rule on LSI-0 and received back from the
// bridge function by the graph-LSI, or injected into LSI-0 as if received on demo0 with
// `ovs-ofctl packet-out ... actions=table` (which runs them through the flow table; the only way
// to get a priority other than 0, there being no set_vlan_pcp action).
#define BOOST_TEST_MODULE actions
#include <arpa/inet.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>
#include <vector>

#include "harness/demo_node.h"
#include "harness/sandbox.h"

using namespace corch::test;
using namespace std::chrono_literals;

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

// Host hi has MAC kMac[i], 10.0.0.<i+1>/24 and fd00::<i+1>/64.
const std::string kMac[] = {"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"};
// Addresses that no host has, and the MAC each host's static neighbour entry gives them.
const std::string kVirtualMac = "02:00:00:00:01:00";
const std::vector<std::pair<std::string, std::string>> kExtraNeighbours = {
    {"10.0.0.66", "02:00:00:00:00:66"},  // a MAC no rule expects (dest_mac)
    {"10.0.0.6", kMac[1]},               // h1's MAC, an address outside 10.0.0.0/30 (dest_ip)
    {"10.0.0.77", "02:00:00:00:00:77"},  // rewritten to h1 by a rule
    {"10.0.0.100", kVirtualMac},         // a "virtual" address NATed to h1
    {"fd00::6", kMac[1]},                // outside fd00::/126
    {"fd00::100", kVirtualMac},
};
const int kMarkerPort = 41999;
const int kMarkerLength = 999;

std::string ipOf(int host) { return "10.0.0." + std::to_string(host + 1); }
std::string ip6Of(int host) { return "fd00::" + std::to_string(host + 1); }

// --- Graphs ---

std::string sap(const std::string& id) { return "service-access-point:" + id; }
const std::string kBr1 = "sf:br:1";
const std::string kBr2 = "sf:br:2";

// A flowrule; `match` and `actions` are JSON members ("\"protocol\": \"17\"").
std::string rule(const std::string& id, int priority, const std::string& in,
                 const std::string& match, const std::string& actions) {
  return R"({ "id": ")" + id + R"(", "priority": ")" + std::to_string(priority) +
         R"(", "match": { "port_in": ")" + in + "\"" + (match.empty() ? "" : ", " + match) +
         " }, \"actions\": { " + actions + " } }";
}
std::string to(const std::string& port) { return R"("output_to_port": ")" + port + "\""; }
std::string toAll(const std::vector<std::string>& ports) {
  std::string list;
  for (const auto& p : ports) list += (list.empty() ? "\"" : ", \"") + p + "\"";
  return R"("output_to_port": [)" + list + "]";
}
const std::string kDrop = R"("drop": true)";
// The match of IPv4 UDP datagrams to one port.
std::string udpTo(int port) {
  return R"("ether_type": "0x0800", "protocol": "17", "dest_port": ")" + std::to_string(port) +
         "\"";
}
std::string field(const std::string& name, const std::string& value) {
  return "\"" + name + "\": \"" + value + "\"";
}

// A graph with SAPs demo0..demo<saps-1>, the bridge function "br" (ports 1 and 2) if `bridge`,
// and `rules`.
std::string graph(const std::string& id, int saps, bool bridge,
                  const std::vector<std::string>& rules) {
  std::string out = R"({ "sffg": { "id": ")" + id + R"(", "name": ")" + id + "\", ";
  if (bridge) {
    out += R"("SFs": [ { "id": "br", "name": "bridge", )"
           R"("ports": [ { "id": "1" }, { "id": "2" } ] } ], )";
  }
  out += "\"saps\": [";
  for (int i = 0; i < saps; ++i) {
    std::string name = "demo" + std::to_string(i);
    out += std::string(i ? ", " : " ") + R"({ "id": ")" + name +
           R"(", "type": "interface", "interface": { "if-name": ")" + name + "\" } }";
  }
  out += " ],\n\"flowrules\": [\n";
  for (size_t i = 0; i < rules.size(); ++i) out += (i ? ",\n" : "") + rules[i];
  return out + "\n] } }";
}

// --- Traffic ---

// A shell command sending one UDP datagram of `length` zero bytes: its tag, tcpdump printing
// "UDP, length <length>" (three digits, so that no tag is a prefix of another).
std::string udp(int length, const std::string& to_ip, int port, const std::string& options = "") {
  bool v6 = to_ip.find(':') != std::string::npos;
  return "head -c " + std::to_string(length) + " /dev/zero | nc -u -q0 " + (v6 ? "-6 " : "") +
         options + (options.empty() ? "" : " ") + to_ip + " " + std::to_string(port) + "\n";
}
std::string marker() { return udp(kMarkerLength, ipOf(1), kMarkerPort); }
// One ping that nobody waits for (its answer, if any, is not the point).
std::string pingInBackground(const std::string& options) {
  return "ping -c1 -W1 " + options + " >/dev/null 2>&1 &\n";
}

// An Ethernet frame carrying an IPv4 UDP datagram of `length` zero bytes (UDP checksum 0), with
// an 802.1Q tag when vid >= 0, as hex for ovs-ofctl packet-out.
std::string udpFrameHex(const std::string& dst_mac, const std::string& src_mac, int vid, int pcp,
                        const std::string& src_ip, const std::string& dst_ip, int sport, int dport,
                        int length) {
  std::vector<uint8_t> f;
  auto put16 = [&](unsigned v) {
    f.push_back(static_cast<uint8_t>(v >> 8));
    f.push_back(static_cast<uint8_t>(v));
  };
  auto putMac = [&](const std::string& mac) {
    unsigned b[6];
    std::sscanf(mac.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
    for (unsigned x : b) f.push_back(static_cast<uint8_t>(x));
  };
  auto putIp = [&](const std::string& ip) {
    in_addr a{};
    inet_pton(AF_INET, ip.c_str(), &a);
    auto* p = reinterpret_cast<const uint8_t*>(&a.s_addr);
    f.insert(f.end(), p, p + 4);
  };
  putMac(dst_mac);
  putMac(src_mac);
  if (vid >= 0) {
    put16(0x8100);
    put16(static_cast<unsigned>(pcp << 13 | vid));
  }
  put16(0x0800);
  size_t ip = f.size();
  put16(0x4500);
  put16(static_cast<unsigned>(20 + 8 + length));
  put16(0);       // id
  put16(0x4000);  // DF
  put16(0x4011);  // TTL 64, UDP
  put16(0);       // checksum, below
  putIp(src_ip);
  putIp(dst_ip);
  uint32_t sum = 0;
  for (size_t i = ip; i < ip + 20; i += 2) sum += static_cast<uint32_t>(f[i] << 8 | f[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  f[ip + 10] = static_cast<uint8_t>(~sum >> 8);
  f[ip + 11] = static_cast<uint8_t>(~sum);
  put16(static_cast<unsigned>(sport));
  put16(static_cast<unsigned>(dport));
  put16(static_cast<unsigned>(8 + length));
  put16(0);
  f.insert(f.end(), static_cast<size_t>(length), 0);
  std::string hex;
  char byte[3];
  for (uint8_t b : f) {
    std::snprintf(byte, sizeof byte, "%02x", b);
    hex += byte;
  }
  return hex;
}

// --- Capture ---

// tcpdump on a host's eth0, for the packets it receives ("in") or sends ("out") that pass
// `filter`, printed with link headers and full IP details (-e -vv: checksums are verified).
class Capture {
 public:
  Capture(Sandbox& sb, const std::string& host, const std::string& filter,
          const std::string& direction = "in")
      : host_(host) {
    static int count = 0;
    std::string base = sb.dir() + "/capture-" + std::to_string(++count) + "-" + host;
    out_ = base + ".txt";
    err_ = base + ".err";
    pid_file_ = base + ".pid";
    // timeout: tcpdump ends by itself should the test die without stopping it.
    auto started = sb.runIn(host, "timeout 120 tcpdump -i eth0 -Q " + direction +
                                      " --immediate-mode -l -nn -e -vv -tt " + shellQuote(filter) +
                                      " >" + out_ + " 2>" + err_ + " & echo $! >" + pid_file_);
    BOOST_REQUIRE_MESSAGE(started.ok(), started.output);
    std::ifstream(pid_file_) >> pid_;
    bool listening =
        waitUntil([&] { return read(err_).find("listening on") != std::string::npos; }, 10s, 10ms);
    BOOST_REQUIRE_MESSAGE(listening, "tcpdump on " << host << " did not start: " << read(err_));
  }
  ~Capture() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // The packets so far, each as its lines joined ("\n"), and the first two lines of each (the
  // headers: what follows them is what tcpdump decodes inside, e.g. the datagram an ICMP error
  // quotes).
  struct Packet {
    std::string head;
    std::string text;
  };
  std::vector<Packet> packets() const {
    std::vector<Packet> out;
    std::istringstream in(read(out_));
    std::string line;
    int lines = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (std::isdigit(static_cast<unsigned char>(line[0]))) {
        out.push_back({});
        lines = 0;
      }
      if (out.empty()) continue;
      if (lines++ < 2) out.back().head += line + "\n";
      out.back().text += line + "\n";
    }
    return out;
  }
  // The packets whose headers hold every one of `needles`.
  std::vector<Packet> all(const std::vector<std::string>& needles) const {
    std::vector<Packet> found;
    for (auto& p : packets()) {
      bool ok = true;
      for (const auto& n : needles) ok = ok && p.head.find(n) != std::string::npos;
      if (ok) found.push_back(p);
    }
    return found;
  }
  std::optional<Packet> find(const std::vector<std::string>& needles) const {
    auto found = all(needles);
    if (found.empty()) return std::nullopt;
    return found.front();
  }
  bool waitFor(const std::vector<std::string>& needles, std::chrono::milliseconds timeout = 5s) {
    return waitUntil([&] { return find(needles).has_value(); }, timeout, 20ms);
  }
  // The UDP datagram tagged `length` (see udp()).
  std::optional<Packet> udp(int length) const { return find({udpNeedle(length)}); }
  static std::string udpNeedle(int length) { return "UDP, length " + std::to_string(length); }
  bool waitForMarker() { return waitFor({udpNeedle(kMarkerLength)}); }
  std::string dump() const { return host_ + " saw:\n" + read(out_); }

 private:
  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string host_;
  std::string out_;
  std::string err_;
  std::string pid_file_;
  int pid_ = -1;
};

// Whether tcpdump found a checksum wrong anywhere in a packet (IPv4 header, UDP, TCP, ICMP).
bool checksumsOk(const std::string& text) {
  for (const char* bad : {"bad cksum", "bad udp cksum", "incorrect", "wrong icmp cksum"}) {
    if (text.find(bad) != std::string::npos) return false;
  }
  return true;
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// --- The node ---

// The demo node with fixed MACs, IPv6 addresses, static neighbour entries (rewritten and
// filtered traffic needs no ARP), no ICMP rate limit, and what these tests ask of it.
class Node : public DemoNode {
 public:
  explicit Node(int hosts = 2)
      : DemoNode("a", "actions-" + std::to_string(++count_), {}, hosts), host_count_(hosts) {
    auto started = start();
    BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? std::string() : started.error().message()));
    for (int i = 0; i < host_count_; ++i) {
      run("h" + std::to_string(i), "ip -6 addr add " + ip6Of(i) +
                                       "/64 dev eth0 nodad\n"
                                       "echo 0 >/proc/sys/net/ipv4/icmp_ratelimit\n"
                                       "echo 0 >/proc/sys/net/ipv6/icmp/ratelimit\n" +
                                       setMac(i, kMac[i]));
    }
    // Second addresses of h0, for source address matches (deprecated: never chosen by itself).
    run("h0",
        "ip addr add 10.0.0.11/24 dev eth0\n"
        "ip -6 addr add fd00::11/64 dev eth0 nodad preferred_lft 0\n");
  }

  // A script giving host i's eth0 a MAC, and the static neighbour entries (which a change of MAC
  // flushes).
  std::string setMac(int i, const std::string& mac) const {
    std::string script = "ip link set eth0 address " + mac + "\n";
    for (int j = 0; j < host_count_; ++j) {
      if (j == i) continue;
      script += "ip neigh replace " + ipOf(j) + " lladdr " + kMac[j] + " dev eth0 nud permanent\n";
      script +=
          "ip -6 neigh replace " + ip6Of(j) + " lladdr " + kMac[j] + " dev eth0 nud permanent\n";
    }
    for (const auto& [ip, lladdr] : kExtraNeighbours) {
      script += "ip neigh replace " + ip + " lladdr " + lladdr + " dev eth0 nud permanent\n";
    }
    return script;
  }

  // Runs a shell script in a host; it must succeed.
  void run(const std::string& host, const std::string& script) {
    auto r = sandbox().runIn(host, "set -ex\n" + script, 30s);
    BOOST_REQUIRE_MESSAGE(r.ok(), host << " could not run (set -x trace):\n" << r.output);
  }

  void deploy(const std::string& json) {
    auto put = request("PUT", "/graphs/actions", json);
    BOOST_REQUIRE_MESSAGE(put.status == 201, "PUT: " << put.status << " " << put.body << "\n"
                                                     << json << "\ncorchd's log:\n"
                                                     << log());
  }
  void undeploy() {
    auto del = request("DELETE", "/graphs/actions");
    BOOST_TEST(del.status == 204, "DELETE: " << del.status << " " << del.body);
    std::string left = leftovers();
    BOOST_TEST(left.empty(), "left behind: " << left);
  }

  std::string lsi0() const { return prefix() + "0"; }
  // The graph's LSI: the one bridge that is not LSI-0.
  std::string graphLsi() {
    auto r = sandbox().run("ovs-vsctl list-br | grep -vx " + lsi0() + " | head -1");
    std::string name = r.output;
    while (!name.empty() && name.back() == '\n') name.pop_back();
    return name;
  }
  std::string flows(const std::string& bridge) {
    return sandbox().run("ovs-ofctl -O OpenFlow13 dump-flows " + bridge).output;
  }

  // Injects a frame into LSI-0 as if it had been received on a port, through the flow table.
  // ovs-ofctl waits (barrier) until the switch has processed it.
  void inject(const std::string& port, const std::string& hex) {
    auto ofport = sandbox().run("ovs-vsctl get Interface " + port + " ofport");
    BOOST_REQUIRE(ofport.ok());
    std::string n = ofport.output.substr(0, ofport.output.find('\n'));
    auto r = sandbox().run("ovs-ofctl -O OpenFlow13 packet-out " + lsi0() + " in_port=" + n +
                           ",packet=" + hex + ",actions=table");
    BOOST_REQUIRE_MESSAGE(r.ok(), "packet-out: " << r.output);
  }

 private:
  static inline int count_ = 0;
  int host_count_;
};

// Checks that a probe arrived, with every one of `expected` in its headers and its checksums
// right; returns its text (empty when it did not arrive).
std::string expectArrived(const Capture& cap, int length, const std::vector<std::string>& expected,
                          const std::string& what) {
  auto p = cap.udp(length);
  BOOST_TEST(p.has_value(), what << ": datagram " << length << " did not arrive\n" << cap.dump());
  if (!p) return "";
  for (const auto& e : expected) {
    BOOST_TEST(has(p->head, e), what << ": expected \"" << e << "\" in\n" << p->text);
  }
  BOOST_TEST(checksumsOk(p->text), what << ": bad checksum in\n" << p->text);
  return p->text;
}
void expectDropped(const Capture& cap, int length, const std::string& what) {
  auto p = cap.udp(length);
  BOOST_TEST(!p.has_value(), what << ": datagram " << length << " passed but must not:\n"
                                  << (p ? p->text : ""));
}

}  // namespace

// ether_type, source_mac, dest_mac and arp_opcode, on rules that stay on LSI-0.
BOOST_AUTO_TEST_CASE(ethernet_and_arp_matches_between_saps) {
  Node node;
  const std::string d0 = sap("demo0"), d1 = sap("demo1");
  node.deploy(
      graph("actions", 2, false,
            {rule("marker", 2, d0, udpTo(kMarkerPort), to(d1)),
             rule("src-mac", 10, d0, field("source_mac", kMac[0]) + ", " + udpTo(41001), to(d1)),
             rule("dst-mac", 10, d0, field("dest_mac", kMac[1]) + ", " + udpTo(41002), to(d1)),
             rule("ipv6-only", 10, d0, field("ether_type", "0x86dd"), to(d1)),
             rule("arp-requests", 10, d0, field("arp_opcode", "1"), to(d1)),
             rule("arp-back", 10, d1, field("ether_type", "0x0806"), to(d0))}));
  Capture h1(node.sandbox(), "h1", "udp or arp");
  Capture h0_out(node.sandbox(), "h0", "arp", "out");

  // h1 asks for h0's MAC (demo1 -> demo0 passes any ARP); h0's reply (opcode 2) must not pass.
  node.run("h1", "ip neigh del 10.0.0.1 dev eth0\n" + pingInBackground("10.0.0.1"));
  BOOST_REQUIRE_MESSAGE(h0_out.waitFor({"Reply 10.0.0.1 is-at " + kMac[0]}), h0_out.dump());
  node.run("h0",
           // source_mac: the same datagram from another MAC is dropped.
           node.setMac(0, "02:00:00:00:00:11") + udp(102, ipOf(1), 41001) +
               node.setMac(0, kMac[0]) + udp(101, ipOf(1), 41001) +
               // dest_mac: to a neighbour entry with another MAC is dropped.
               udp(104, "10.0.0.66", 41002) + udp(103, ipOf(1), 41002) +
               // ether_type 0x86dd: IPv6 passes, IPv4 to the same port does not.
               udp(106, ipOf(1), 41003) + udp(105, ip6Of(1), 41003) +
               // arp_opcode 1: h0's request for an address nobody has passes.
               pingInBackground("10.0.0.7"));
  BOOST_TEST(h1.waitFor({"Request who-has 10.0.0.7 tell 10.0.0.1"}), h1.dump());
  node.run("h0", marker());
  BOOST_REQUIRE_MESSAGE(h1.waitForMarker(), h1.dump());

  expectArrived(h1, 101, {kMac[0] + " > " + kMac[1]}, "source_mac match");
  expectDropped(h1, 102, "source_mac mismatch");
  expectArrived(h1, 103, {kMac[0] + " > " + kMac[1]}, "dest_mac match");
  expectDropped(h1, 104, "dest_mac mismatch");
  expectArrived(h1, 105, {"ethertype IPv6 (0x86dd)", "fd00::1.", "> fd00::2.41003"},
                "ether_type 0x86dd match");
  expectDropped(h1, 106, "ether_type 0x86dd mismatch (IPv4)");
  BOOST_TEST(h1.all({"ARP, Reply"}).empty(), "arp_opcode 1 let a reply (opcode 2) through\n"
                                                 << h1.dump());
  node.undeploy();
}

// source_ip and dest_ip (address and CIDR, IPv4 and IPv6), protocol, source_port, dest_port
// (UDP and TCP), ip_dscp, icmp_type and icmp_code (ICMP and ICMPv6), on rules that stay on LSI-0.
BOOST_AUTO_TEST_CASE(ip_and_transport_matches_between_saps) {
  Node node;
  const std::string d0 = sap("demo0"), d1 = sap("demo1");
  auto udp17 = [](int port) {
    return R"("protocol": "17", "dest_port": ")" + std::to_string(port) + "\"";
  };
  node.deploy(graph(
      "actions", 2, false,
      {rule("marker", 2, d0, udpTo(kMarkerPort), to(d1)),
       rule("src-ip", 10, d0, field("source_ip", "10.0.0.1") + ", " + udp17(41011), to(d1)),
       rule("dst-cidr", 10, d0, field("dest_ip", "10.0.0.0/30") + ", " + udp17(41012), to(d1)),
       rule("dst-ip", 10, d0, field("dest_ip", "10.0.0.2") + ", " + udp17(41018), to(d1)),
       rule("src-cidr", 10, d0, field("source_ip", "10.0.0.0/29") + ", " + udp17(41019), to(d1)),
       rule("tcp-port", 10, d0, R"("ether_type": "0x0800", "protocol": "6", "dest_port": "41013")",
            to(d1)),
       rule("src-port", 10, d0, field("source_port", "41114") + ", " + udpTo(41014), to(d1)),
       rule("dscp", 10, d0, field("ip_dscp", "46") + ", " + udpTo(41017), to(d1)),
       rule("dscp6", 10, d0,
            R"("ether_type": "0x86dd", "ip_dscp": "46", "protocol": "17", "dest_port": "41033")",
            to(d1)),
       rule("echo-requests", 10, d0, R"("protocol": "1", "icmp_type": "8")", to(d1)),
       rule("port-unreachable", 10, d0, R"("protocol": "1", "icmp_type": "3", "icmp_code": "3")",
            to(d1)),
       rule("src-ip6", 10, d0, field("source_ip", "fd00::1") + ", " + udp17(41031), to(d1)),
       rule("dst-cidr6", 10, d0, field("dest_ip", "fd00::/126") + ", " + udp17(41032), to(d1)),
       rule("echo6-requests", 10, d0, R"("protocol": "58", "icmp_type": "128")", to(d1)),
       rule("icmp-back", 10, d1, R"("protocol": "1")", to(d0)),
       rule("icmp6-back", 10, d1, R"("protocol": "58")", to(d0)),
       rule("udp-back", 10, d1, R"("ether_type": "0x0800", "protocol": "17")", to(d0))}));
  Capture h1(node.sandbox(), "h1", "udp or tcp or icmp or icmp6");
  Capture h0_out(node.sandbox(), "h0", "icmp or icmp6 or tcp", "out");

  // What h0 sends in answer to h1 and must be filtered: echo replies (ICMP type 0, ICMPv6 129)
  // and an ICMP "administratively prohibited" (type 3 code 13, where only code 3 passes).
  node.run("h0",
           "iptables -A INPUT -p udp --dport 41021 -j REJECT --reject-with "
           "icmp-admin-prohibited\n");
  node.run("h1", pingInBackground("-s 300 10.0.0.1") + pingInBackground("-s 350 fd00::1") +
                     udp(121, ipOf(0), 41020) + udp(122, ipOf(0), 41021));
  const std::vector<std::vector<std::string>> answers = {
      {"ICMP echo reply", "length 308"},
      {"ICMP6, echo reply", "payload length: 358"},
      {"udp port 41020 unreachable"},
      {"admin prohibited"}};
  for (const auto& sent : answers) {
    BOOST_REQUIRE_MESSAGE(h0_out.waitFor(sent), sent.front() << "\n" << h0_out.dump());
  }
  node.run("h0",
           // source_ip 10.0.0.1 (an address): not from h0's second address.
           udp(112, ipOf(1), 41011, "-s 10.0.0.11") + udp(111, ipOf(1), 41011) +
               // dest_ip 10.0.0.0/30: 10.0.0.2 is in, 10.0.0.6 (also h1's MAC) is not.
               udp(114, "10.0.0.6", 41012) + udp(113, ipOf(1), 41012) +
               // protocol 6 and dest_port 41013: TCP to 41013 passes; UDP to 41013 and TCP to
               // 41016 do not.
               udp(116, ipOf(1), 41013) + "nc -z -w1 10.0.0.2 41016 >/dev/null 2>&1 &\n" +
               "nc -z -w1 10.0.0.2 41013 >/dev/null 2>&1 &\n" +
               // source_port 41114: not from 41115.
               udp(118, ipOf(1), 41014, "-p 41115") + udp(117, ipOf(1), 41014, "-p 41114") +
               // ip_dscp 46 (EF, TOS 0xb8): not AF11 (TOS 0x28).
               udp(120, ipOf(1), 41017, "-T af11") + udp(119, ipOf(1), 41017, "-T ef") +
               udp(128, ip6Of(1), 41033, "-T af11") + udp(127, ip6Of(1), 41033, "-T ef") +
               // dest_ip 10.0.0.2 (an address) and source_ip 10.0.0.0/29.
               udp(124, "10.0.0.6", 41018) + udp(123, ipOf(1), 41018) +
               udp(126, ipOf(1), 41019, "-s 10.0.0.11") + udp(125, ipOf(1), 41019) +
               // IPv6 source_ip fd00::1 and dest_ip fd00::/126.
               udp(132, ip6Of(1), 41031, "-s fd00::11") + udp(131, ip6Of(1), 41031) +
               udp(134, "fd00::6", 41032) + udp(133, ip6Of(1), 41032) +
               // icmp_type 8 and ICMPv6 128: echo requests (answered: the back rules).
               "ping -c1 -W2 -s 200 10.0.0.2 >/dev/null\n"
               "ping -c1 -W2 -s 250 fd00::2 >/dev/null\n");
  BOOST_TEST(h1.waitFor({".41013: Flags [S]"}), h1.dump());
  BOOST_REQUIRE_MESSAGE(h0_out.waitFor({".41016: Flags [S]"}), h0_out.dump());
  node.run("h0", marker());
  BOOST_REQUIRE_MESSAGE(h1.waitForMarker(), h1.dump());

  expectArrived(h1, 111, {"10.0.0.1.", "> 10.0.0.2.41011"}, "source_ip match");
  expectDropped(h1, 112, "source_ip mismatch");
  expectArrived(h1, 113, {"> 10.0.0.2.41012"}, "dest_ip CIDR match");
  expectDropped(h1, 114, "dest_ip CIDR mismatch");
  expectDropped(h1, 116, "protocol mismatch (UDP where TCP is asked)");
  BOOST_TEST(h1.all({".41016: Flags [S]"}).empty(), "dest_port mismatch (TCP)\n" << h1.dump());
  expectArrived(h1, 117, {"10.0.0.1.41114 >"}, "source_port match");
  expectDropped(h1, 118, "source_port mismatch");
  expectArrived(h1, 119, {"tos 0xb8"}, "ip_dscp match");
  expectDropped(h1, 120, "ip_dscp mismatch");
  expectArrived(h1, 127, {"class 0xb8"}, "IPv6 ip_dscp match");
  expectDropped(h1, 128, "IPv6 ip_dscp mismatch");
  expectArrived(h1, 123, {"> 10.0.0.2.41018"}, "dest_ip address match");
  expectDropped(h1, 124, "dest_ip address mismatch");
  expectArrived(h1, 125, {"10.0.0.1.", "> 10.0.0.2.41019"}, "source_ip CIDR match");
  expectDropped(h1, 126, "source_ip CIDR mismatch");
  expectArrived(h1, 131, {"fd00::1.", "> fd00::2.41031"}, "IPv6 source_ip match");
  expectDropped(h1, 132, "IPv6 source_ip mismatch");
  expectArrived(h1, 133, {"> fd00::2.41032"}, "IPv6 dest_ip CIDR match");
  expectDropped(h1, 134, "IPv6 dest_ip CIDR mismatch");
  BOOST_TEST(h1.find({"ICMP echo request", "length 208"}).has_value(), "icmp_type 8 match\n"
                                                                           << h1.dump());
  BOOST_TEST(h1.all({"ICMP echo reply"}).empty(), "icmp_type 8 mismatch (reply)\n" << h1.dump());
  BOOST_TEST(h1.find({"ICMP6, echo request", "payload length: 258"}).has_value(),
             "ICMPv6 icmp_type 128 match\n"
                 << h1.dump());
  BOOST_TEST(h1.all({"ICMP6, echo reply"}).empty(), "ICMPv6 icmp_type 128 mismatch (reply)\n"
                                                        << h1.dump());
  BOOST_TEST(h1.find({"udp port 41020 unreachable"}).has_value(), "icmp_code 3 match\n"
                                                                      << h1.dump());
  BOOST_TEST(h1.all({"admin prohibited"}).empty(), "icmp_code 3 mismatch (13)\n" << h1.dump());
  node.undeploy();
}

// push_vlan on LSI-0; vlan_id, vlan_pcp, set_vlan_id and pop_vlan on the graph-LSI (the frames
// pushed on LSI-0 come back tagged from the bridge function); and the same fields on LSI-0 alone,
// with frames tagged with a priority injected on demo0.
BOOST_AUTO_TEST_CASE(vlan_matches_and_actions_on_both_lsis) {
  Node node;
  const std::string d0 = sap("demo0"), d1 = sap("demo1");
  node.deploy(graph(
      "actions", 2, true,
      {rule("marker-in", 2, d0, udpTo(kMarkerPort), to(kBr1)),
       rule("marker-out", 2, kBr2, udpTo(kMarkerPort), to(d1)),
       rule("push-100", 10, d0, udpTo(41041), R"("push_vlan": "100", )" + to(kBr1)),
       rule("push-101", 10, d0, udpTo(41042), R"("push_vlan": "101", )" + to(kBr1)),
       rule("push-102", 10, d0, udpTo(41043), R"("push_vlan": "102", )" + to(kBr1)),
       rule("vid-100", 20, kBr2, field("vlan_id", "100"), R"("set_vlan_id": "200", )" + to(d1)),
       rule("vid-101-pcp-5", 30, kBr2, R"("vlan_id": "101", "vlan_pcp": "5")", to(d1)),
       rule("vid-101-pcp-0", 20, kBr2, R"("vlan_id": "101", "vlan_pcp": "0")",
            R"("pop_vlan": true, )" + to(d1)),
       rule("lsi0-pcp-5", 30, d0, R"("vlan_id": "300", "vlan_pcp": "5")",
            R"("pop_vlan": true, )" + to(d1)),
       rule("lsi0-vid", 20, d0, field("vlan_id", "300"), R"("set_vlan_id": "301", )" + to(d1))}));
  // Where the modifications are: pushes on LSI-0, the rest of the SF path on the graph-LSI.
  std::string graph_lsi = node.graphLsi();
  BOOST_REQUIRE(!graph_lsi.empty());
  BOOST_TEST(has(node.flows(node.lsi0()), "push_vlan"), node.flows(node.lsi0()));
  std::string graph_flows = node.flows(graph_lsi);
  BOOST_TEST(has(graph_flows, "pop_vlan"), graph_flows);
  BOOST_TEST(!has(graph_flows, "push_vlan"), graph_flows);

  Capture h1(node.sandbox(), "h1", "udp or vlan");
  node.run("h0", udp(143, ipOf(1), 41043) + udp(141, ipOf(1), 41041) + udp(142, ipOf(1), 41042) +
                     marker());
  // Tagged frames entering LSI-0 on demo0: VLAN 302 (no rule), 300 with priority 5 and with 3.
  const std::tuple<int, int, int> frames[] = {{153, 302, 5}, {151, 300, 5}, {152, 300, 3}};
  for (auto [length, vid, pcp] : frames) {
    node.inject("demo0",
                udpFrameHex(kMac[1], kMac[0], vid, pcp, ipOf(0), ipOf(1), 41050, 41051, length));
  }
  BOOST_REQUIRE_MESSAGE(h1.waitForMarker(), h1.dump());
  BOOST_REQUIRE_MESSAGE(h1.waitFor({Capture::udpNeedle(152)}), h1.dump());

  // push_vlan 100 on LSI-0, vlan_id 100 matched and set to 200 on the graph-LSI.
  expectArrived(h1, 141, {"vlan 200, p 0,"}, "push_vlan, vlan_id match, set_vlan_id");
  // VLAN 101 priority 0: the rule for priority 5 (higher) is passed over; popped.
  std::string popped = expectArrived(h1, 142, {"ethertype IPv4"}, "vlan_pcp 0 match, pop_vlan");
  BOOST_TEST(!has(popped, "vlan"), "pop_vlan left a tag:\n" << popped);
  expectDropped(h1, 143, "vlan_id mismatch (102) on the graph-LSI");
  // On LSI-0 alone: priority 5 popped; priority 3 falls to the vlan_id rule, retagged 301.
  std::string untagged = expectArrived(h1, 151, {"ethertype IPv4"}, "LSI-0 vlan_pcp 5, pop_vlan");
  BOOST_TEST(!has(untagged, "vlan"), "pop_vlan left a tag:\n" << untagged);
  expectArrived(h1, 152, {"vlan 301, p 3,"}, "LSI-0 vlan_pcp mismatch, set_vlan_id");
  expectDropped(h1, 153, "vlan_id mismatch (302) on LSI-0");
  node.undeploy();
}

// set_source_mac, set_dest_mac, set_source_ip, set_dest_ip, set_source_port, set_dest_port and
// dec_ttl on LSI-0, IPv4 and IPv6: a ping to a "virtual" address NATed both ways is answered.
BOOST_AUTO_TEST_CASE(rewrites_between_saps) {
  Node node;
  const std::string d0 = sap("demo0"), d1 = sap("demo1");
  node.deploy(graph(
      "actions", 2, false,
      {rule("nat-in", 20, d0, field("dest_ip", "10.0.0.100"),
            field("set_dest_mac", kMac[1]) + ", " + field("set_dest_ip", "10.0.0.2") +
                R"(, "dec_ttl": true, )" + to(d1)),
       rule("nat-out", 20, d1, R"("source_ip": "10.0.0.2", "dest_ip": "10.0.0.1")",
            field("set_source_mac", kVirtualMac) + ", " + field("set_source_ip", "10.0.0.100") +
                ", " + to(d0)),
       rule("ports", 20, d0, udpTo(41061),
            R"("set_source_port": "41161", "set_dest_port": "41062", "dec_ttl": true, )" + to(d1)),
       rule("nat6", 20, d0, R"("dest_ip": "fd00::100", "protocol": "17")",
            field("set_dest_mac", kMac[1]) + ", " + field("set_source_ip", "fd00::50") + ", " +
                field("set_dest_ip", "fd00::2") +
                R"(, "set_source_port": "41171", "dec_ttl": true, )" + to(d1))}));
  Capture h1(node.sandbox(), "h1", "udp or icmp");
  Capture h0(node.sandbox(), "h0", "icmp");

  // The ping is answered: both rewrites kept the packets valid (IP checksum, addresses).
  node.run("h0", "ping -c1 -W2 -t 9 -s 120 10.0.0.100\n" + udp(161, ipOf(1), 41061, "-p 41160") +
                     udp(171, "fd00::100", 41070));
  BOOST_REQUIRE_MESSAGE(h1.waitFor({Capture::udpNeedle(171)}), h1.dump());

  auto request = h1.find({"ICMP echo request", "length 128"});
  BOOST_TEST(request.has_value(), h1.dump());
  if (request) {
    // set_dest_mac and set_dest_ip; dec_ttl (9 -> 8).
    BOOST_TEST(has(request->head, kMac[0] + " > " + kMac[1]), request->text);
    BOOST_TEST(has(request->head, "10.0.0.1 > 10.0.0.2: ICMP echo request"), request->text);
    BOOST_TEST(has(request->head, "ttl 8,"), request->text);
    BOOST_TEST(checksumsOk(request->text), request->text);
  }
  auto reply = h0.find({"ICMP echo reply", "length 128"});
  BOOST_TEST(reply.has_value(), h0.dump());
  if (reply) {
    // set_source_mac and set_source_ip on the way back.
    BOOST_TEST(has(reply->head, kVirtualMac + " > " + kMac[0]), reply->text);
    BOOST_TEST(has(reply->head, "10.0.0.100 > 10.0.0.1: ICMP echo reply"), reply->text);
    BOOST_TEST(checksumsOk(reply->text), reply->text);
  }
  expectArrived(h1, 161, {"ttl 63,", "10.0.0.1.41161 > 10.0.0.2.41062:", "[udp sum ok]"},
                "set_source_port, set_dest_port, dec_ttl");
  expectArrived(
      h1, 171,
      {kMac[0] + " > " + kMac[1], "hlim 63,", "fd00::50.41171 > fd00::2.41070:", "[udp sum ok]"},
      "IPv6 set_dest_mac, set_source_ip, set_dest_ip, set_source_port, dec_ttl");
  node.undeploy();
}

// The same rewrites split between the LSIs: LSI-0 rewrites the destination port and decrements
// the TTL before the bridge function; the graph-LSI matches the rewritten port and rewrites
// everything else (and decrements the TTL again) on the way out.
BOOST_AUTO_TEST_CASE(rewrites_on_both_lsis_through_a_bridge) {
  Node node;
  const std::string d0 = sap("demo0"), d1 = sap("demo1");
  node.deploy(
      graph("actions", 2, true,
            {rule("in", 20, d0, udpTo(41081),
                  R"("set_dest_port": "41082", "dec_ttl": true, )" + to(kBr1)),
             rule("out", 20, kBr2, udpTo(41082),
                  field("set_source_mac", "02:00:00:00:aa:01") + ", " +
                      field("set_dest_mac", kMac[1]) + ", " + field("set_source_ip", "10.0.0.50") +
                      ", " + field("set_dest_ip", "10.0.0.2") +
                      R"(, "set_source_port": "41183", "dec_ttl": true, )" + to(d1))}));
  Capture h1(node.sandbox(), "h1", "udp");
  node.run("h0", udp(181, "10.0.0.77", 41081, "-p 41180"));
  BOOST_REQUIRE_MESSAGE(h1.waitFor({Capture::udpNeedle(181)}), h1.dump());
  expectArrived(h1, 181,
                {"02:00:00:00:aa:01 > " + kMac[1], "ttl 62,",
                 "10.0.0.50.41183 > 10.0.0.2.41082:", "[udp sum ok]"},
                "rewrites on LSI-0 and on the graph-LSI");
  node.undeploy();
}

// drop (overriding a lower-priority output, on LSI-0 and on the graph-LSI) and output_to_port
// as a list: to two SAPs on LSI-0, to a SAP and the bridge function at once, and from the
// bridge function to two SAPs. Each copy arrives once.
BOOST_AUTO_TEST_CASE(drop_and_multiple_outputs) {
  Node node(3);
  const std::string d0 = sap("demo0"), d1 = sap("demo1"), d2 = sap("demo2");
  node.deploy(
      graph("actions", 3, true,
            {rule("marker", 2, d0, udpTo(kMarkerPort), to(kBr1)),
             rule("from-bridge", 2, kBr2, R"("ether_type": "0x0800", "protocol": "17")", to(d1)),
             rule("fan-lsi0", 10, d0, udpTo(41091), toAll({d1, d2})),
             rule("drop-lsi0", 20, d0, field("source_port", "41192") + ", " + udpTo(41092), kDrop),
             rule("pass-lsi0", 10, d0, udpTo(41092), to(d1)),
             rule("fan-mixed", 10, d0, udpTo(41093), toAll({kBr1, d2})),
             rule("to-bridge-94", 10, d0, udpTo(41094), to(kBr1)),
             rule("drop-graph", 20, kBr2, udpTo(41094), kDrop),
             rule("to-bridge-95", 10, d0, udpTo(41095), to(kBr1)),
             rule("fan-graph", 20, kBr2, udpTo(41095), toAll({d1, d2}))}));
  Capture h1(node.sandbox(), "h1", "udp");
  Capture h2(node.sandbox(), "h2", "udp");
  node.run("h0", udp(191, ipOf(1), 41091) + udp(192, ipOf(1), 41092, "-p 41192") +
                     udp(193, ipOf(1), 41092, "-p 41193") + udp(194, ipOf(1), 41093) +
                     udp(195, ipOf(1), 41094) + udp(196, ipOf(1), 41095) + marker());
  BOOST_REQUIRE_MESSAGE(h1.waitForMarker(), h1.dump());
  BOOST_REQUIRE_MESSAGE(h2.waitFor({Capture::udpNeedle(196)}), h2.dump());

  for (int length : {191, 194, 196}) {
    std::string what = "output_to_port list, datagram " + std::to_string(length);
    BOOST_TEST(h1.all({Capture::udpNeedle(length)}).size() == 1u, what << "\n" << h1.dump());
    BOOST_TEST(h2.all({Capture::udpNeedle(length)}).size() == 1u, what << "\n" << h2.dump());
  }
  expectDropped(h1, 192, "drop on LSI-0");
  expectArrived(h1, 193, {"10.0.0.1.41193 >"}, "lower-priority output next to a drop");
  expectDropped(h1, 195, "drop on the graph-LSI");
  for (int length : {192, 193, 195}) expectDropped(h2, length, "not for h2");
  node.undeploy();
}

// What Open vSwitch cannot match is refused before anything is built, with 422 naming the field:
// an ARP opcode above 255 (OpenFlow's field is 16 bits, Open vSwitch keeps 8).
BOOST_AUTO_TEST_CASE(a_field_the_vswitch_cannot_match_is_refused) {
  Node node;
  const std::string d0 = sap("demo0"), d1 = sap("demo1");
  auto put = node.request(
      "PUT", "/graphs/actions",
      graph("actions", 2, false, {rule("arp", 10, d0, field("arp_opcode", "256"), to(d1))}));
  BOOST_TEST_MESSAGE("PUT: " << put.status << " " << put.body);
  BOOST_TEST(put.status == 422, put.status << " " << put.body);
  BOOST_TEST(has(put.body, "arp_opcode"), put.body);
  BOOST_TEST(has(put.body, "/sffg/flowrules/0"), put.body);
  // vlan_pcp alone (OpenFlow matches a priority only with a VLAN id).
  put = node.request(
      "PUT", "/graphs/actions",
      graph("actions", 2, false, {rule("pcp", 10, d0, field("vlan_pcp", "3"), to(d1))}));
  BOOST_TEST_MESSAGE("PUT: " << put.status << " " << put.body);
  BOOST_TEST(put.status == 422, put.status << " " << put.body);
  BOOST_TEST(has(put.body, "/sffg/flowrules/0/match/vlan_pcp"), put.body);
  BOOST_TEST(node.request("GET", "/graphs/actions").status == 404);
  std::string left = node.leftovers();
  BOOST_TEST(left.empty(), "left behind: " << left);
}
