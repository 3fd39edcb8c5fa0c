// Every SAP type with real traffic (DESIGN sections 1 and 3, paper 5.1.1): vlan SAPs keep VLANs of
// one interface apart and hide the tag from the graph; internal SAPs join graphs at one named
// point and keep their rules apart (un-orchestrator issue 110); a host-stack SAP puts a port in
// the node's own stack, through which a host service is reached across a firewall; a gre SAP
// terminates a tunnel on the graph-LSI, its far end a second userspace Open vSwitch in its own
// namespace, the key checked on the wire.
//
// The kernel here has neither VLAN devices nor VLAN-filtering bridges (MACHINE-NOTES), so the
// "hosts with VLAN sub-interfaces" of the vlan test are hosts behind access ports of a plain
// learning OVS bridge (not corchd's), whose trunk is the node's physical port.
#define BOOST_TEST_MODULE sap
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "harness/demo_node.h"
#include "harness/sandbox.h"

using namespace corch::test;
using namespace std::chrono_literals;

using corch::test::SandboxFixture;
BOOST_TEST_GLOBAL_FIXTURE(SandboxFixture);

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",\n") + i;
  return out;
}

std::string rule(const std::string& id, const std::string& in, const std::string& out,
                 const std::string& priority = "1") {
  return R"({ "id": ")" + id + R"(", "priority": ")" + priority + R"(", "match": { "port_in": ")" +
         in + R"(" }, "actions": { "output_to_port": ")" + out + R"(" } })";
}

// Both directions between two ports.
std::vector<std::string> both(const std::string& id, const std::string& a, const std::string& b) {
  return {rule(id + "-f", a, b), rule(id + "-r", b, a)};
}

std::string sap(const std::string& id) { return "service-access-point:" + id; }

std::string graph(const std::string& id, const std::vector<std::string>& sfs,
                  const std::vector<std::string>& saps, const std::vector<std::string>& rules) {
  return R"({ "sffg": { "id": ")" + id + R"(", "name": ")" + id + R"(", "SFs": [)" + join(sfs) +
         R"(], "saps": [)" + join(saps) + R"(], "flowrules": [)" + join(rules) + "] } }";
}

std::string bridgeSf(const std::string& id) {
  return R"({ "id": ")" + id +
         R"(", "name": "bridge", "ports": [ { "id": "1" }, { "id": "2" } ] })";
}

std::string iface(const std::string& id, const std::string& ifname) {
  return R"({ "id": ")" + id + R"(", "type": "interface", "interface": { "if-name": ")" + ifname +
         R"(" } })";
}

std::string vlan(const std::string& id, const std::string& ifname, int vid) {
  return R"({ "id": ")" + id + R"(", "type": "vlan", "vlan": { "if-name": ")" + ifname +
         R"(", "vlan-id": ")" + std::to_string(vid) + R"(" } })";
}

std::string internal(const std::string& id, const std::string& group) {
  return R"({ "id": ")" + id + R"(", "type": "internal", "internal": { "group": ")" + group +
         R"(" } })";
}

class Node : public DemoNode {
 public:
  explicit Node(const std::string& name, int hosts = 2) : DemoNode("s", name, {}, hosts) {
    auto started = start();
    BOOST_REQUIRE_MESSAGE(started.ok(), (started.ok() ? std::string() : started.error().message()));
  }
  void put(const std::string& id, const std::string& body, int expect = 201) {
    auto r = request("PUT", "/graphs/" + id, body);
    BOOST_REQUIRE_MESSAGE(r.status == expect, "PUT " << id << ": " << r.status << " " << r.body
                                                     << "\n"
                                                     << log());
  }
  void del(const std::string& id) {
    auto r = request("DELETE", "/graphs/" + id);
    BOOST_REQUIRE_MESSAGE(r.status == 204, "DELETE " << id << ": " << r.status << " " << r.body);
  }
  // A single ping that must fail (nothing answers within a second).
  bool unreachable(const std::string& from, const std::string& ip) {
    return !sandbox().runIn(from, "ping -c 2 -i 0.3 -W 1 " + ip).ok();
  }
  void expectNothingLeft() {
    std::string left = leftovers();
    BOOST_TEST(left.empty(), "left behind: " << left);
  }
  // Runs a command and requires it to succeed.
  void must(const std::string& command) {
    auto r = sandbox().run(command);
    BOOST_REQUIRE_MESSAGE(r.ok(), command << ": " << r.output);
  }
};

// A TCP service in the node's own stack (this process is in the sandbox namespace): answers
// every connection with a line, until destroyed.
class HostService {
 public:
  HostService() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    BOOST_REQUIRE(::listen(fd_, 8) == 0);
    thread_ = std::thread([this] {
      while (!stop_) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) break;
        const char reply[] = "hello from the node\n";
        (void)::write(c, reply, sizeof reply - 1);
        ::close(c);
      }
    });
  }
  ~HostService() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

// Two graphs on VLANs 10 and 20 of demo0 and demo1, each through a bridge function; VLAN 30 of
// demo0 reaches nothing until a third graph takes it to demo1 untagged.
BOOST_AUTO_TEST_CASE(vlan_saps_keep_vlans_apart) {
  Node node("vlan");
  Sandbox& sb = node.sandbox();
  const std::string me = std::to_string(::getpid());
  // Each demo port becomes the trunk of a learning bridge with one host per VLAN behind it:
  // h0's end of demo0 comes back to the sandbox as "tk0" (h1's as "tk1").
  for (int side = 0; side < 2; ++side) {
    const std::string h = "h" + std::to_string(side);
    const std::string tk = "tk" + std::to_string(side);
    const std::string br = "hv" + std::to_string(side) + "-" + me;
    BOOST_REQUIRE(sb.runIn(h, "ip link set eth0 down && ip link set eth0 name " + tk +
                                  " && ip link set " + tk + " netns " + me)
                      .ok());
    node.must("ip link set " + tk + " up && ovs-vsctl add-br " + br + " -- set bridge " + br +
              " datapath_type=netdev -- add-port " + br + " " + tk);
    for (int vid : {10, 20, 30}) {
      if (side == 1 && vid == 30) continue;
      const std::string host = "v" + std::to_string(side) + std::to_string(vid);
      auto phys =
          sb.addHost(host, "10." + std::to_string(vid) + ".0." + std::to_string(side + 1) + "/24");
      BOOST_REQUIRE_MESSAGE(phys.ok(), (phys.ok() ? "" : phys.error().message()));
      node.must("ovs-vsctl add-port " + br + " " + *phys + " tag=" + std::to_string(vid));
    }
  }
  // VLAN 30 of the far side: h1's untagged traffic on demo1 (the host v130 is not there).
  auto v1u = sb.addHost("v1u", "10.30.0.2/24");
  BOOST_REQUIRE(v1u.ok());
  node.must("ovs-vsctl add-port hv1-" + me + " " + *v1u);

  for (int vid : {10, 20}) {
    const std::string id = "vlan" + std::to_string(vid);
    node.put(id,
             graph(id, {bridgeSf("b")}, {vlan("a", "demo0", vid), vlan("z", "demo1", vid)}, [&] {
               auto r = both("in", sap("a"), "sf:b:1");
               for (auto& x : both("out", "sf:b:2", sap("z"))) r.push_back(x);
               return r;
             }()));
  }
  BOOST_TEST(node.ping("v010", "10.10.0.2"));
  BOOST_TEST(node.ping("v020", "10.20.0.2"));
  BOOST_TEST(node.unreachable("v030", "10.30.0.2"));
  // Inside the graph the traffic is untagged: the bridge function's port sees plain IPv4.
  {
    const std::string ns = node.prefix() + "-vlan10-b";
    auto cap = sb.run("timeout 5 ip netns exec " + ns +
                      " tcpdump -c 2 -e -nn -i eth0 icmp 2>/dev/null & sleep 0.5; "
                      "ip netns exec " +
                      sb.hostNetns("v010") + " ping -c 3 -i 0.2 -W 1 10.10.0.2 >/dev/null; wait");
    BOOST_TEST(cap.output.find("ethertype IPv4") != std::string::npos, cap.output);
    BOOST_TEST(cap.output.find("802.1Q") == std::string::npos, cap.output);
  }
  // VLAN 30 of demo0 to demo1 without a tag: stripped in, pushed out, on LSI-0 alone.
  node.put("vlan30", graph("vlan30", {}, {vlan("a", "demo0", 30), iface("z", "demo1")},
                           both("p", sap("a"), sap("z"))));
  BOOST_TEST(node.ping("v030", "10.30.0.2"));
  // Without VLAN 10's graph VLAN 10 is cut; VLAN 20 is not.
  node.del("vlan10");
  BOOST_TEST(node.unreachable("v010", "10.10.0.2"));
  BOOST_TEST(node.ping("v020", "10.20.0.2"));
  node.del("vlan20");
  node.del("vlan30");
  for (int side = 0; side < 2; ++side) {
    (void)sb.run("ovs-vsctl --if-exists del-br hv" + std::to_string(side) + "-" + me +
                 "; ip link del tk" + std::to_string(side));
  }
  for (const char* host : {"v010", "v020", "v030", "v110", "v120", "v1u"}) {
    (void)sb.removeHost(host);
  }
  node.expectNothingLeft();
}

// A graph's flowrule that matches the vlan SAP's own VLAN cannot be: 422 naming the field.
BOOST_AUTO_TEST_CASE(vlan_sap_conflicts_are_refused) {
  Node node("vlanbad");
  auto r = node.request(
      "PUT", "/graphs/bad",
      graph("bad", {}, {vlan("a", "demo0", 10), iface("z", "demo1")},
            {R"({ "id": "r", "priority": "1", "match": { "port_in": "service-access-point:a",
                 "vlan_id": "10" }, "actions": { "output_to_port": "service-access-point:z" } })"}));
  BOOST_TEST(r.status == 422, r.body);
  BOOST_TEST(r.body.find("/sffg/flowrules/0/match/vlan_id") != std::string::npos, r.body);
  node.expectNothingLeft();
}

// Three graphs joined at internal group "mgmt": h0 reaches h1 and h2 through it; the rules of
// the two graphs on the far side are identical and still kept apart, so deleting one cuts only
// its own host.
BOOST_AUTO_TEST_CASE(internal_saps_join_graphs) {
  Node node("internal", 3);
  node.put("ia", graph("ia", {}, {iface("d", "demo0"), internal("i", "mgmt")},
                       both("p", sap("d"), sap("i"))));
  node.put("ib", graph("ib", {}, {internal("i", "mgmt"), iface("d", "demo1")},
                       both("p", sap("i"), sap("d"))));
  node.put("ic", graph("ic", {bridgeSf("b")}, {internal("i", "mgmt"), iface("d", "demo2")}, [] {
             auto r = both("in", sap("i"), "sf:b:1");
             for (auto& x : both("out", "sf:b:2", sap("d"))) r.push_back(x);
             return r;
           }()));
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h0", "10.0.0.3"));
  BOOST_TEST(node.ping("h1", "10.0.0.3"));
  // corchd killed and started again adopts the three graphs and their group, which still counts
  // them: it goes with the last one, not before.
  node.corchd().kill();
  BOOST_REQUIRE(node.corchd().restart().ok());
  for (const char* id : {"ia", "ib", "ic"}) {
    BOOST_TEST(node.log().find(std::string("graph ") + id + " adopted") != std::string::npos, id);
  }
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h1", "10.0.0.3"));
  node.del("ib");
  BOOST_TEST(node.unreachable("h0", "10.0.0.2"));
  BOOST_TEST(node.ping("h0", "10.0.0.3"));
  node.del("ic");
  node.del("ia");
  node.expectNothingLeft();  // the group's LSI went with its last member
}

// h0 reaches a service of the node's own stack through a firewall and a host-stack SAP: the
// port the firewall allows connects, another service of the node does not.
BOOST_AUTO_TEST_CASE(host_stack_sap_reaches_the_node) {
  Node node("hoststack");
  HostService service;
  HostService blocked;
  const std::string port = std::to_string(service.port());
  const std::string fw = R"({ "id": "fw", "name": "firewall", "ports": [ { "id": "in" },
      { "id": "out" } ], "config": { "allowed-tcp-ports": [)" +
                         port + R"(], "allow-icmp": true } })";
  const std::string host = R"({ "id": "node", "type": "host-stack", "host-stack": {
      "configuration": "static", "ipv4": "10.0.0.254/24" } })";
  // The node is inside the firewall, h0 outside.
  auto rules = both("in", sap("node"), "sf:fw:in");
  for (auto& x : both("out", "sf:fw:out", sap("d"))) rules.push_back(x);
  node.put("hs", graph("hs", {fw}, {iface("d", "demo0"), host}, rules));
  BOOST_TEST(node.ping("h0", "10.0.0.254"));
  auto ok = node.sandbox().runIn("h0", "nc -w 3 10.0.0.254 " + port + " </dev/null");
  BOOST_TEST(ok.output.find("hello from the node") != std::string::npos, ok.output);
  auto no = node.sandbox().runIn(
      "h0", "nc -w 2 10.0.0.254 " + std::to_string(blocked.port()) + " </dev/null");
  BOOST_TEST(no.output.find("hello") == std::string::npos, no.output);
  // corchd killed and started again adopts the graph with its host-stack port and address.
  node.corchd().kill();
  BOOST_REQUIRE(node.corchd().restart().ok());
  BOOST_TEST(node.log().find("graph hs adopted") != std::string::npos, node.log());
  ok = node.sandbox().runIn("h0", "nc -w 3 10.0.0.254 " + port + " </dev/null");
  BOOST_TEST(ok.output.find("hello from the node") != std::string::npos, ok.output);
  node.del("hs");
  BOOST_TEST(node.unreachable("h0", "10.0.0.254"));
  node.expectNothingLeft();
}

// A GRE tunnel from the graph to a far end: a second userspace Open vSwitch in its own network
// namespace, reached over an underlay veth. The far end holds 10.0.0.9 behind its tunnel port.
BOOST_AUTO_TEST_CASE(gre_sap_carries_traffic_both_ways) {
  Node node("gre");
  Sandbox& sb = node.sandbox();
  const std::string me = std::to_string(::getpid());
  const std::string far = "far-" + me;
  const std::string fd = sb.dir() + "/far";
  const std::string ul = "ul-" + me;  // the node's underlay bridge (not corchd's)
  const std::string farenv = "OVS_RUNDIR=" + fd + " OVS_DBDIR=" + fd + " OVS_LOGDIR=" + fd +
                             " OVS_PKGDATADIR=/usr/share/openvswitch ";
  const std::string inFar = "ip netns exec " + far + " env " + farenv;
  node.must("ip netns add " + far + " && mkdir -p " + fd);
  node.must("ip link add ulN type veth peer name ulF && ip link set ulF netns " + far +
            " && ip link set ulN up && ip link set ulN arp off");
  node.must("ovs-vsctl add-br " + ul + " -- set bridge " + ul +
            " datapath_type=netdev other-config:hwaddr=02:00:00:00:31:01 -- add-port " + ul +
            " ulN && ip addr add 172.31.0.1/24 dev " + ul + " && ip link set " + ul + " up");
  // The far end: its own ovsdb-server and ovs-vswitchd.
  node.must(inFar +
            "sh -c 'ip link set lo up && ip link set ulF up && ip link set ulF arp off"
            " && ovsdb-tool create " +
            fd +
            "/conf.db /usr/share/openvswitch/vswitch.ovsschema"
            " && ovsdb-server " +
            fd + "/conf.db --remote=punix:" + fd + "/db.sock --pidfile=" + fd +
            "/ovsdb.pid --log-file=" + fd +
            "/ovsdb.log --detach"
            " && ovs-vsctl --db=unix:" +
            fd +
            "/db.sock --no-wait init"
            " && ovs-vswitchd unix:" +
            fd + "/db.sock --pidfile=" + fd + "/vswitchd.pid --log-file=" + fd +
            "/vswitchd.log --detach'");
  const std::string farctl = inFar + "ovs-vsctl --db=unix:" + fd + "/db.sock ";
  node.must(farctl +
            "add-br fu -- set bridge fu datapath_type=netdev "
            "other-config:hwaddr=02:00:00:00:31:02 -- add-port fu ulF");
  node.must(farctl +
            "add-br fg -- set bridge fg datapath_type=netdev -- add-port fg tun -- set "
            "interface tun type=gre options:remote_ip=172.31.0.1 options:local_ip=172.31.0.2 "
            "options:key=77 -- add-port fg farh -- set interface farh type=internal");
  node.must(inFar +
            "sh -c 'ip addr add 172.31.0.2/24 dev fu && ip link set fu up && ip addr add "
            "10.0.0.9/24 dev farh && ip link set farh up && ethtool -K farh tx off >/dev/null'");
  node.must(inFar + "ovs-appctl -t " + fd + "/ovs-vswitchd.$(cat " + fd +
            "/vswitchd.pid).ctl tnl/neigh/set fu 172.31.0.1 02:00:00:00:31:01");
  node.must("ovs-appctl tnl/neigh/set " + ul + " 172.31.0.2 02:00:00:00:31:02");

  const std::string gre = R"({ "id": "t", "type": "gre", "gre": { "local-ip": "172.31.0.1",
      "remote-ip": "172.31.0.2", "gre-key": "77" } })";
  node.put("gre", graph("gre", {}, {iface("d", "demo0"), gre}, both("p", sap("d"), sap("t"))));
  // Both ways: h0 pings the far end (its answer comes back through the tunnel), and the far end
  // pings h0.
  BOOST_TEST(node.ping("h0", "10.0.0.9"));
  BOOST_TEST(sb.run(inFar + "ping -c 1 -W 2 10.0.0.1").ok());
  auto cap = sb.run(
      "timeout 5 tcpdump -c 2 -nn -v -i ulN proto gre 2>/dev/null & sleep 0.5; "
      "ip netns exec " +
      sb.hostNetns("h0") + " ping -c 3 -i 0.2 -W 1 10.0.0.9 >/dev/null; wait");
  BOOST_TEST(cap.output.find("key=0x4d") != std::string::npos, cap.output);
  // A local-ip that is not the node's is refused before anything is built.
  auto bad =
      node.request("PUT", "/graphs/gre2",
                   graph("gre2", {}, {iface("d", "demo1"), R"({ "id": "t", "type": "gre", "gre": {
          "local-ip": "172.31.9.9", "remote-ip": "172.31.0.2", "gre-key": "78" } })"},
                         both("p", sap("d"), sap("t"))));
  BOOST_TEST(bad.status == 422, bad.body);
  BOOST_TEST(bad.body.find("/sffg/saps/1/gre/local-ip") != std::string::npos, bad.body);
  node.del("gre");
  BOOST_TEST(!sb.run(inFar + "ping -c 1 -W 1 10.0.0.1").ok());
  (void)sb.run("kill $(cat " + fd + "/vswitchd.pid) $(cat " + fd + "/ovsdb.pid); ip netns del " +
               far + "; ovs-vsctl --if-exists del-br " + ul + "; ip link del ulN");
  node.expectNothingLeft();
}

// An update adds a host-stack SAP to a running chain and a later one removes it: the chain's
// function keeps running (same namespace) and its traffic keeps flowing.
BOOST_AUTO_TEST_CASE(saps_come_and_go_by_update) {
  Node node("sapupdate");
  Sandbox& sb = node.sandbox();
  auto chain = both("in", sap("d0"), "sf:b:1");
  for (auto& x : both("out", "sf:b:2", sap("d1"))) chain.push_back(x);
  const std::vector<std::string> ports = {iface("d0", "demo0"), iface("d1", "demo1")};
  node.put("u", graph("u", {bridgeSf("b")}, ports, chain));
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  const std::string inode_cmd = "stat -L -c %i /run/netns/" + node.prefix() + "-u-b";
  const std::string inode = sb.run(inode_cmd).output;

  auto more = chain;
  more.push_back(R"({ "id": "to-node", "priority": "10", "match": { "port_in":
      "service-access-point:d0", "ether_type": "0x0800", "dest_ip": "10.0.0.253" },
      "actions": { "output_to_port": "service-access-point:node" } })");
  more.push_back(R"({ "id": "arp", "priority": "10", "match": { "port_in":
      "service-access-point:d0", "ether_type": "0x0806" }, "actions": { "output_to_port":
      ["service-access-point:node", "sf:b:1"] } })");
  more.push_back(rule("from-node", sap("node"), sap("d0")));
  auto with_node = ports;
  with_node.push_back(R"({ "id": "node", "type": "host-stack", "host-stack": {
      "configuration": "static", "ipv4": "10.0.0.253/24" } })");
  node.put("u", graph("u", {bridgeSf("b")}, with_node, more), 200);
  BOOST_TEST(node.ping("h0", "10.0.0.253"));
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(sb.run(inode_cmd).output == inode, "the bridge function was restarted");

  node.put("u", graph("u", {bridgeSf("b")}, ports, chain), 200);
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(sb.run("ip -br addr | grep 10.0.0.253").output.empty());
  BOOST_TEST(sb.run(inode_cmd).output == inode, "the bridge function was restarted");
  node.del("u");
  node.expectNothingLeft();
}

// A host-stack SAP configured by DHCP: h0 serves leases (busybox udhcpd); the node's port gets
// one once the graph leads to it, and gives it back when the graph goes.
BOOST_AUTO_TEST_CASE(host_stack_sap_by_dhcp) {
  Node node("dhcp");
  Sandbox& sb = node.sandbox();
  const std::string conf = sb.dir() + "/udhcpd.conf";
  node.must("printf 'start 10.0.0.100\\nend 10.0.0.110\\ninterface eth0\\nlease_file " + sb.dir() +
            "/leases\\noption subnet 255.255.255.0\\n' >" + conf + " && touch " + sb.dir() +
            "/leases");
  BOOST_REQUIRE(sb.runIn("h0", "busybox udhcpd -f " + conf + " >" + sb.dir() +
                                   "/udhcpd.log 2>&1 & echo $! >" + sb.dir() + "/udhcpd.pid")
                    .ok());
  const std::string host = R"({ "id": "node", "type": "host-stack", "host-stack": {
      "configuration": "dhcp" } })";
  node.put("dh", graph("dh", {}, {iface("d", "demo0"), host}, both("p", sap("d"), sap("node"))));
  BOOST_TEST(
      waitUntil([&] { return !sb.run("ip -br addr | grep 10.0.0.1[01][0-9]/24").output.empty(); },
                20s, 200ms),
      "no lease: " << sb.run("ip -br addr; cat " + sb.dir() + "/udhcpd.log").output);
  BOOST_TEST(sb.run("ping -c 1 -W 2 10.0.0.1").ok());
  node.del("dh");
  BOOST_TEST(sb.run("ip -br addr | grep 10.0.0.1[01][0-9]/24").output.empty());
  (void)sb.run("kill $(cat " + sb.dir() + "/udhcpd.pid)");
  node.expectNothingLeft();
}

// A running function gains a port by update, then loses it (un-orchestrator issue 46): the native
// driver cannot change a running function, so it is started again on its new ports; the graph's
// other parts are untouched and traffic follows the new ports.
BOOST_AUTO_TEST_CASE(a_function_gains_and_loses_a_port_by_update) {
  Node node("portupdate", 3);
  const std::vector<std::string> saps = {iface("d0", "demo0"), iface("d1", "demo1"),
                                         iface("d2", "demo2")};
  auto two = both("in", sap("d0"), "sf:b:1");
  for (auto& x : both("out", "sf:b:2", sap("d1"))) two.push_back(x);
  node.put("p", graph("p", {bridgeSf("b")}, saps, two));
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.unreachable("h0", "10.0.0.3"));

  auto three = two;
  for (auto& x : both("third", "sf:b:3", sap("d2"))) three.push_back(x);
  const std::string b3 = R"({ "id": "b", "name": "bridge", "ports": [ { "id": "1" }, { "id": "2" },
      { "id": "3" } ] })";
  node.put("p", graph("p", {b3}, saps, three), 200);
  BOOST_TEST(node.ping("h0", "10.0.0.3"));
  BOOST_TEST(node.ping("h0", "10.0.0.2"));

  node.put("p", graph("p", {bridgeSf("b")}, saps, two), 200);
  BOOST_TEST(node.ping("h0", "10.0.0.2"));
  BOOST_TEST(node.unreachable("h0", "10.0.0.3"));
  node.del("p");
  node.expectNothingLeft();
}
