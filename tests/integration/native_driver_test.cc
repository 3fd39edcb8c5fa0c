// Integration tests of the 'native' compute driver with real namespaces and veth pairs (root).
// The test stands in for the vSwitch: for each function port it makes a veth pair, moves one end
// into a "host" namespace (eth0, an address in one subnet) and hands the other end to the driver.
// Traffic between the hosts then crosses the function: the bridge NSF, the firewall NSF (ping,
// TCP to allowed and blocked ports, ICMP from outside with and without allow-icmp), and test
// packages made in a temporary folder (failing, hanging, daemonising, reporting their arguments).
// A fresh driver (a restarted corchd) adopts a running function (same namespace, no script run
// again, traffic passing) and refuses what it cannot adopt. Every namespace, link, process and
// file is named after this test's pid and removed even when a check fails.
#define BOOST_TEST_MODULE native_driver
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "corch/compute.h"
#include "corch/driver_registry.h"
#include "platform/netlink.h"
#include "platform/netns.h"
#include "platform/process.h"
#include "util/files.h"

// The driver under test, registered by itself (not through registerBuiltinDrivers(), so that this
// test does not depend on the other drivers).
namespace corch::drivers::native {
void registerDriver(DriverRegistry& registry);
}

namespace corch {
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

namespace fs = std::filesystem;
namespace platform = corch::platform;
using corch::ErrorCode;
using corch::SfSpec;
using namespace std::chrono_literals;

using corch::test::readFile;
using corch::test::TempDir;
using corch::test::writeFile;

namespace {

const std::string kPid = std::to_string(::getpid());
const std::string kSource = CORCH_SOURCE_DIR;

std::string nsName(const std::string& what) { return "corch-nt" + kPid + "-" + what; }
// At most 15 characters: "nt" + pid (<= 7 digits) + a short tag.
std::string ifName(const std::string& tag) { return "nt" + kPid + tag; }

std::string errorText(const corch::Result<void>& r) { return r.ok() ? "" : r.error().message(); }

template <class F>
bool eventually(F condition, std::chrono::milliseconds deadline = 10s) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(50ms);
  }
}

// Exit status of a command run inside a namespace (-1: timed out or could not run).
int runIn(int netns_fd, std::vector<std::string> argv, std::chrono::milliseconds timeout = 10s) {
  platform::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.netns_fd = netns_fd;
  spec.timeout = timeout;
  auto r = platform::runProcess(spec);
  if (!r.ok() || r->timed_out) return -1;
  return r->exit_code;
}

bool pings(int netns_fd, const std::string& addr) {
  return runIn(netns_fd, {"ping", "-c", "1", "-W", "1", addr}) == 0;
}

// Whether a TCP connection from the namespace of `netns_fd` to addr:port opens within `timeout`.
bool tcpConnects(int netns_fd, const std::string& addr, uint16_t port,
                 std::chrono::milliseconds timeout) {
  auto r = platform::runInNetns(netns_fd, [&]() -> corch::Result<bool> {
    platform::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s) return corch::errnoError("socket", errno);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) return true;
    if (errno != EINPROGRESS) return false;
    pollfd p{s.get(), POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    return err == 0;
  });
  return r.ok() && *r;
}

// Whether process `pid` has exited (or exits within `deadline`).
bool exitsWithin(pid_t pid, std::chrono::milliseconds deadline) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;
  pollfd p{pidfd, POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(deadline.count()));
  ::close(pidfd);
  return n > 0;
}

std::unique_ptr<corch::ComputeDriver> makeDriver(const fs::path& run_dir,
                                                 const std::string& node_netns = "") {
  corch::DriverRegistry registry;
  corch::drivers::native::registerDriver(registry);
  corch::DriverOptions options;
  options.values["run-dir"] = run_dir.string();
  if (!node_netns.empty()) options.values["node-netns"] = node_netns;
  auto driver = registry.makeCompute("native", options);
  BOOST_REQUIRE_MESSAGE(driver.ok(), (driver.ok() ? "" : driver.error().message()));
  return std::move(driver).value();
}

// A host namespace joined to a function port: a veth pair, one end in the host as eth0 with an
// address, the other left in our namespace for the driver (port.ifname).
class Host {
 public:
  Host(const std::string& tag, const std::string& cidr) : fn_end_(ifName(tag + "f")) {
    auto ns = platform::ScopedNetns::create(nsName("h" + tag));
    BOOST_REQUIRE_MESSAGE(ns.ok(), (ns.ok() ? "" : ns.error().message()));
    ns_ = std::move(ns).value();
    auto fd = ns_.open();
    BOOST_REQUIRE(fd.ok());
    fd_ = std::move(fd).value();
    const std::string host_end = ifName(tag + "h");
    BOOST_REQUIRE(platform::createVethPair(host_end, fn_end_).ok());
    BOOST_REQUIRE(platform::moveLinkToNetns(host_end, fd_.get(), "eth0").ok());
    auto sock = platform::RouteSocket::openIn(fd_.get());
    BOOST_REQUIRE(sock.ok());
    BOOST_REQUIRE(sock->setLinkUp("lo").ok());
    BOOST_REQUIRE(sock->setLinkUp("eth0").ok());
    BOOST_REQUIRE(sock->addAddress("eth0", cidr).ok());
  }
  ~Host() {
    // If the function never took its end, the pair is still ours.
    (void)platform::deleteLink(fn_end_);
  }
  int fd() const { return fd_.get(); }
  const std::string& name() const { return ns_.name(); }
  corch::SfPortBinding port(const std::string& id) const {
    return corch::SfPortBinding{id, id, fn_end_, corch::PortTechnology::Veth};
  }
  bool hasEth0() const {
    auto sock = platform::RouteSocket::openIn(fd_.get());
    return sock.ok() && sock->linkExists("eth0").ok() && *sock->linkExists("eth0");
  }

 private:
  std::string fn_end_;
  platform::ScopedNetns ns_;
  platform::UniqueFd fd_;
};

// Destroys a function when the test ends, whatever happened.
struct SfGuard {
  corch::ComputeDriver& driver;
  SfSpec spec;
  ~SfGuard() { (void)driver.destroySf(spec); }
};

SfSpec makeSpec(const std::string& sf_id, const std::string& image, const fs::path& logs,
                const std::string& config = "{}") {
  SfSpec spec;
  spec.graph_id = "g" + kPid;
  spec.sf_id = sf_id;
  spec.instance = nsName(sf_id);
  spec.template_id = sf_id + "-test";
  spec.image = image;
  spec.config_json = config;
  spec.log_path = (logs / (sf_id + ".log")).string();
  spec.timeout = 10s;
  return spec;
}

// A test package in `dir` whose start script is `start_body`.
std::string makePackage(const fs::path& dir, const std::string& start_body,
                        const std::string& manifest_extra = "") {
  fs::create_directories(dir);
  writeFile(dir / "manifest.json", R"({"name": "test", "version": "0.1")" + manifest_extra + "}");
  writeFile(dir / "start", "#!/bin/sh\n" + start_body + "\n", 0755);
  writeFile(dir / "stop", "#!/bin/sh\necho stopped\n", 0755);
  return dir.string();
}

}  // namespace

BOOST_AUTO_TEST_CASE(probe_is_ok_as_root) {
  TempDir dir;
  auto driver = makeDriver(dir.path());
  BOOST_TEST(driver->name() == "native");
  auto r = driver->probe();
  BOOST_TEST(r.ok(), errorText(r));
}

BOOST_AUTO_TEST_CASE(bridge_nsf_forwards_between_its_ports) {
  TempDir dir;
  auto driver = makeDriver(dir.path());
  Host a("a", "10.9.1.1/24"), b("b", "10.9.1.2/24"), c("c", "10.9.1.3/24");
  SfSpec spec = makeSpec("br", kSource + "/nsf/bridge", dir.path());
  spec.ports = {a.port("p1"), b.port("p2"), c.port("p3")};
  SfGuard guard{*driver, spec};

  auto created = driver->createSf(spec);
  BOOST_REQUIRE_MESSAGE(created.ok(), errorText(created));
  BOOST_TEST(platform::netnsExists(spec.instance));
  auto started = driver->startSf(spec);
  BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started));

  BOOST_TEST(eventually([&] { return pings(a.fd(), "10.9.1.2"); }));
  BOOST_TEST(eventually([&] { return pings(c.fd(), "10.9.1.1"); }));
  BOOST_TEST(eventually([&] { return pings(b.fd(), "10.9.1.3"); }));
  BOOST_TEST(readFile(spec.log_path).find("bridge: forwarding between eth0 eth1 eth2") !=
             std::string::npos);

  // Stopped, it forwards nothing; started again, it forwards again.
  BOOST_REQUIRE(driver->stopSf(spec).ok());
  BOOST_TEST(!pings(a.fd(), "10.9.1.2"));
  BOOST_REQUIRE(driver->startSf(spec).ok());
  BOOST_TEST(eventually([&] { return pings(a.fd(), "10.9.1.2"); }));

  BOOST_REQUIRE(driver->stopSf(spec).ok());
  BOOST_REQUIRE(driver->destroySf(spec).ok());
  BOOST_TEST(!platform::netnsExists(spec.instance));
  // The veth pairs died with the function: the hosts lost their eth0.
  BOOST_TEST(!a.hasEth0());
  BOOST_TEST(!c.hasEth0());
  BOOST_TEST(driver->destroySf(spec).ok());  // idempotent
}

BOOST_AUTO_TEST_CASE(ports_can_come_from_another_node_namespace) {
  // The vSwitch (say, an ovs-vswitchd run in a namespace of its own) left the function's ends in
  // namespace "node"; option node-netns tells the driver where to take them from.
  auto node = platform::ScopedNetns::create(nsName("node"));
  BOOST_REQUIRE(node.ok());
  auto node_fd = node->open();
  BOOST_REQUIRE(node_fd.ok());
  TempDir dir;
  auto driver = makeDriver(dir.path(), node->name());
  BOOST_REQUIRE(driver->probe().ok());
  Host a("a", "10.9.5.1/24"), b("b", "10.9.5.2/24");
  for (const Host* h : {&a, &b}) {
    BOOST_REQUIRE(platform::moveLinkToNetns(h->port("p").ifname, node_fd->get()).ok());
  }
  SfSpec spec = makeSpec("nodens", kSource + "/nsf/bridge", dir.path());
  spec.ports = {a.port("p1"), b.port("p2")};
  SfGuard guard{*driver, spec};

  // A port that cannot move rolls back into the node namespace, not into ours.
  SfSpec stuck = spec;
  stuck.ports = {a.port("p1"), {"p2", "p2", "lo", corch::PortTechnology::Veth}};
  BOOST_REQUIRE(!driver->createSf(stuck).ok());
  auto in_node = platform::RouteSocket::openIn(node_fd->get());
  BOOST_REQUIRE(in_node.ok());
  BOOST_TEST(*in_node->linkExists(a.port("p1").ifname));

  auto created = driver->createSf(spec);
  BOOST_REQUIRE_MESSAGE(created.ok(), errorText(created));
  BOOST_TEST(!*in_node->linkExists(a.port("p1").ifname));
  BOOST_REQUIRE(driver->startSf(spec).ok());
  BOOST_TEST(eventually([&] { return pings(a.fd(), "10.9.5.2"); }));
  BOOST_REQUIRE(driver->destroySf(spec).ok());
  BOOST_TEST(!a.hasEth0());
}

BOOST_AUTO_TEST_CASE(a_restarted_driver_adopts_a_running_function) {
  // corchd killed and restarted: a fresh driver on the same run folder takes over the function
  // without touching it, then stops and destroys it as if it had started it itself.
  TempDir dir;
  auto driver = makeDriver(dir.path());
  Host a("a", "10.9.6.1/24"), b("b", "10.9.6.2/24"), c("c", "10.9.6.3/24");
  SfSpec spec = makeSpec("adopt", kSource + "/nsf/bridge", dir.path());
  spec.ports = {a.port("p1"), b.port("p2")};
  SfGuard guard{*driver, spec};
  auto netnsInode = [&]() -> ino_t {
    struct stat st {};
    return ::stat(("/run/netns/" + spec.instance).c_str(), &st) == 0 ? st.st_ino : 0;
  };
  auto runs = [&] {
    const std::string log = readFile(spec.log_path);
    size_t n = 0;
    for (size_t pos = log.find("==== corch"); pos != std::string::npos;
         pos = log.find("==== corch", pos + 1)) {
      ++n;
    }
    return n;
  };

  // Created, not started: there is nothing running to adopt.
  auto created = driver->createSf(spec);
  BOOST_REQUIRE_MESSAGE(created.ok(), errorText(created));
  auto idle = makeDriver(dir.path())->adoptSf(spec);
  BOOST_REQUIRE(!idle.ok());
  BOOST_TEST(idle.error().code() == ErrorCode::Conflict, errorText(idle));
  auto started = driver->startSf(spec);
  BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started));
  BOOST_REQUIRE(eventually([&] { return pings(a.fd(), "10.9.6.2"); }));
  const ino_t inode = netnsInode();
  const size_t scripts_run = runs();
  BOOST_REQUIRE(inode != 0);

  auto restarted = makeDriver(dir.path());
  auto adopted = restarted->adoptSf(spec);
  BOOST_REQUIRE_MESSAGE(adopted.ok(), errorText(adopted));
  // Nothing was redone: the same namespace, no script run, and traffic still passes.
  BOOST_TEST(netnsInode() == inode);
  BOOST_TEST(runs() == scripts_run);
  BOOST_TEST(pings(a.fd(), "10.9.6.2"));
  BOOST_TEST(restarted->adoptSf(spec).ok());  // reads only: again is the same

  // Never created: NotFound. A port the function does not have, or one the spec does not:
  // Conflict naming it.
  SfSpec other = spec;
  other.instance = nsName("never");
  auto missing = restarted->adoptSf(other);
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error().code() == ErrorCode::NotFound, errorText(missing));
  SfSpec more = spec;
  more.ports.push_back(c.port("p3"));
  auto extra = restarted->adoptSf(more);
  BOOST_REQUIRE(!extra.ok());
  BOOST_TEST(extra.error().code() == ErrorCode::Conflict);
  BOOST_TEST(errorText(extra).find("port p3") != std::string::npos, errorText(extra));
  SfSpec fewer = spec;
  fewer.ports.pop_back();
  auto gone = restarted->adoptSf(fewer);
  BOOST_REQUIRE(!gone.ok());
  BOOST_TEST(gone.error().code() == ErrorCode::Conflict);
  BOOST_TEST(errorText(gone).find("eth1") != std::string::npos, errorText(gone));
  BOOST_TEST(netnsInode() == inode);
  BOOST_TEST(pings(a.fd(), "10.9.6.2"));

  // The adopting driver stops it (a stopped function is not adoptable: the namespace stays),
  // starts it again, and destroys it: nothing is left.
  auto stopped = restarted->stopSf(spec);
  BOOST_REQUIRE_MESSAGE(stopped.ok(), errorText(stopped));
  BOOST_TEST(!pings(a.fd(), "10.9.6.2"));
  auto after_stop = makeDriver(dir.path())->adoptSf(spec);
  BOOST_REQUIRE(!after_stop.ok());
  BOOST_TEST(after_stop.error().code() == ErrorCode::Conflict, errorText(after_stop));
  BOOST_REQUIRE(restarted->startSf(spec).ok());
  BOOST_TEST(eventually([&] { return pings(a.fd(), "10.9.6.2"); }));
  BOOST_TEST(makeDriver(dir.path())->adoptSf(spec).ok());
  BOOST_REQUIRE(restarted->destroySf(spec).ok());
  BOOST_TEST(!platform::netnsExists(spec.instance));
  BOOST_TEST(!a.hasEth0());
  BOOST_TEST(!b.hasEth0());
  auto after_destroy = restarted->adoptSf(spec);
  BOOST_REQUIRE(!after_destroy.ok());
  BOOST_TEST(after_destroy.error().code() == ErrorCode::NotFound, errorText(after_destroy));
  // Only the log (and nothing of the function) is left in the run folder.
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    BOOST_TEST(entry.path().filename().string().find(spec.instance) == std::string::npos,
               entry.path());
  }
}

namespace {

// A firewall between an inside host (10.9.0.1) and an outside one (10.9.0.2), nc listeners on
// 8080 and 9090 inside and on 9090 outside.
struct FirewallBed {
  explicit FirewallBed(const std::string& config)
      : driver(makeDriver(dir.path())), in("i", "10.9.0.1/24"), out("o", "10.9.0.2/24") {
    spec = makeSpec("fw", kSource + "/nsf/firewall", dir.path(), config);
    spec.ports = {in.port("inside"), out.port("outside")};
    guard.reset(new SfGuard{*driver, spec});
    auto created = driver->createSf(spec);
    BOOST_REQUIRE_MESSAGE(created.ok(), errorText(created));
    auto started = driver->startSf(spec);
    BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started) + "\n" + readFile(spec.log_path));
    listeners.push_back(listen(in, 8080));
    listeners.push_back(listen(in, 9090));
    listeners.push_back(listen(out, 9090));
    // Inside to outside passes (and resolves ARP both ways).
    BOOST_REQUIRE(eventually([&] { return pings(in.fd(), "10.9.0.2"); }));
  }

  static platform::Child listen(const Host& host, int port) {
    platform::ProcessSpec nc;
    nc.argv = {"nc", "-lk", std::to_string(port)};
    nc.netns_fd = host.fd();
    auto child = platform::Child::spawn(nc);
    BOOST_REQUIRE_MESSAGE(child.ok(), (child.ok() ? "" : child.error().message()));
    // Ready when the host itself can connect to it.
    BOOST_REQUIRE(eventually(
        [&] { return tcpConnects(host.fd(), "127.0.0.1", static_cast<uint16_t>(port), 1s); }));
    return std::move(child).value();
  }

  TempDir dir;
  std::unique_ptr<corch::ComputeDriver> driver;
  Host in;
  Host out;
  SfSpec spec;
  std::unique_ptr<SfGuard> guard;
  std::vector<platform::Child> listeners;
};

}  // namespace

BOOST_AUTO_TEST_CASE(firewall_nsf_without_icmp) {
  FirewallBed bed(R"({"allowed-tcp-ports": [8080], "allow-icmp": false})");
  // Outside to an allowed port: connects. To another port, with a listener: does not.
  BOOST_TEST(eventually([&] { return tcpConnects(bed.out.fd(), "10.9.0.1", 8080, 2s); }));
  BOOST_TEST(!tcpConnects(bed.out.fd(), "10.9.0.1", 9090, 1500ms));
  // Inside to outside: every port.
  BOOST_TEST(tcpConnects(bed.in.fd(), "10.9.0.2", 9090, 2s));
  // No ICMP echo from outside.
  BOOST_TEST(!pings(bed.out.fd(), "10.9.0.1"));
  BOOST_TEST(readFile(bed.spec.log_path).find("allowed TCP ports: 8080") != std::string::npos);

  // update: allow ICMP and port 9090, without a restart.
  SfSpec after = bed.spec;
  after.config_json = R"({"allowed-tcp-ports": [8080, 9090], "allow-icmp": true})";
  auto updated = bed.driver->updateSf(bed.spec, after);
  BOOST_REQUIRE_MESSAGE(updated.ok(), errorText(updated));
  BOOST_TEST(eventually([&] { return pings(bed.out.fd(), "10.9.0.1"); }));
  BOOST_TEST(tcpConnects(bed.out.fd(), "10.9.0.1", 9090, 2s));
}

BOOST_AUTO_TEST_CASE(firewall_nsf_with_icmp) {
  FirewallBed bed(R"({"allowed-tcp-ports": [], "allow-icmp": true})");
  BOOST_TEST(eventually([&] { return pings(bed.out.fd(), "10.9.0.1"); }));
  BOOST_TEST(!tcpConnects(bed.out.fd(), "10.9.0.1", 8080, 1500ms));
  BOOST_TEST(tcpConnects(bed.in.fd(), "10.9.0.2", 9090, 2s));

  BOOST_REQUIRE(bed.driver->stopSf(bed.spec).ok());
  BOOST_REQUIRE(bed.driver->destroySf(bed.spec).ok());
  BOOST_TEST(!platform::netnsExists(bed.spec.instance));
  BOOST_TEST(!fs::exists(bed.spec.log_path + ".config.json"));
}

BOOST_AUTO_TEST_CASE(firewall_refuses_a_bad_configuration) {
  TempDir dir;
  auto driver = makeDriver(dir.path());
  Host in("i", "10.9.2.1/24"), out("o", "10.9.2.2/24");
  SfSpec spec =
      makeSpec("fw", kSource + "/nsf/firewall", dir.path(), R"({"allowed-tcp-ports": ["http"]})");
  spec.ports = {in.port("inside"), out.port("outside")};
  SfGuard guard{*driver, spec};
  BOOST_REQUIRE(driver->createSf(spec).ok());
  auto started = driver->startSf(spec);
  BOOST_REQUIRE(!started.ok());
  BOOST_TEST(started.error().message().find("exited with status 2") != std::string::npos,
             started.error().message());
  BOOST_TEST(started.error().message().find("'http' is not a port number") != std::string::npos,
             started.error().message());
}

BOOST_AUTO_TEST_CASE(scripts_get_their_arguments_environment_and_namespace) {
  TempDir dir;
  auto driver = makeDriver(dir.path());
  Host a("a", "10.9.3.1/24"), b("b", "10.9.3.2/24");
  const std::string pkg = makePackage(dir.path() / "pkg", R"sh(
echo "args: $*"
echo "ports: $CORCH_CFG_ALLOWED_TCP_PORTS icmp: $CORCH_CFG_ALLOW_ICMP name: $CORCH_CFG_NAME"
echo "ifs: $CORCH_INTERFACES ids: $CORCH_PORT_IDS instance: $CORCH_INSTANCE"
echo "cwd: $(pwd)"
echo "config: $(cat "$3")"
ip -o link show | awk -F': ' '{print "link: " $2}'
ethtool -k eth1 | grep '^tx-checksumming'
echo "to stderr" >&2)sh");
  SfSpec spec = makeSpec("env", pkg, dir.path(),
                         R"({"allowed-tcp-ports":[22,80],"allow-icmp":true,"name":"x y"})");
  spec.ports = {a.port("p1"), b.port("p2")};
  SfGuard guard{*driver, spec};
  BOOST_REQUIRE(driver->createSf(spec).ok());
  auto started = driver->startSf(spec);
  BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started));
  const std::string log = readFile(spec.log_path);
  const std::string config = spec.log_path + ".config.json";
  BOOST_TEST_MESSAGE(log);
  BOOST_TEST(log.find("args: g" + kPid + " env " + config + " eth0 eth1\n") != std::string::npos);
  BOOST_TEST(log.find("ports: 22 80 icmp: true name: x y\n") != std::string::npos);
  BOOST_TEST(log.find("ifs: eth0 eth1 ids: p1 p2 instance: " + spec.instance) != std::string::npos);
  BOOST_TEST(log.find("cwd: " + pkg + "\n") != std::string::npos);
  BOOST_TEST(log.find("config: " + spec.config_json + "\n") != std::string::npos);
  BOOST_TEST(log.find("link: eth0@") != std::string::npos);
  BOOST_TEST(log.find("link: eth1@") != std::string::npos);
  BOOST_TEST(log.find("link: " + a.port("p1").ifname) == std::string::npos);
  BOOST_TEST(log.find("tx-checksumming: off") != std::string::npos);
  BOOST_TEST(log.find("to stderr\n") != std::string::npos);
  BOOST_TEST(log.find("==== corch ") == 0u);
  BOOST_TEST(fs::exists(config));

  BOOST_REQUIRE(driver->destroySf(spec).ok());
  BOOST_TEST(!fs::exists(config));
  BOOST_TEST(fs::exists(spec.log_path));  // the log stays, readable after the function is gone
}

BOOST_AUTO_TEST_CASE(a_failing_start_script_is_an_error_with_its_output) {
  TempDir dir;
  auto driver = makeDriver(dir.path());
  const std::string pkg =
      makePackage(dir.path() / "pkg", "echo 'starting up'\necho 'no such thing' >&2\nexit 1");
  SfSpec spec = makeSpec("fail", pkg, dir.path());
  SfGuard guard{*driver, spec};
  BOOST_REQUIRE(driver->createSf(spec).ok());
  auto started = driver->startSf(spec);
  BOOST_REQUIRE(!started.ok());
  const std::string& msg = started.error().message();
  BOOST_TEST(msg.find("cannot start function " + spec.instance) == 0u, msg);
  BOOST_TEST(msg.find("exited with status 1") != std::string::npos, msg);
  BOOST_TEST(msg.find("starting up | no such thing") != std::string::npos, msg);
  BOOST_TEST(started.error().code() != ErrorCode::Timeout);
  BOOST_REQUIRE(driver->destroySf(spec).ok());
  BOOST_TEST(!platform::netnsExists(spec.instance));
}

BOOST_AUTO_TEST_CASE(a_hanging_start_script_is_killed_at_the_timeout) {
  TempDir dir;
  auto driver = makeDriver(dir.path());
  const fs::path pidfile = dir.path() / "bg.pid";
  const std::string pkg =
      makePackage(dir.path() / "pkg",
                  "sleep 1000 &\necho $! > " + pidfile.string() + "\necho hanging\nsleep 1000");
  SfSpec spec = makeSpec("hang", pkg, dir.path());
  spec.timeout = 500ms;
  SfGuard guard{*driver, spec};
  BOOST_REQUIRE(driver->createSf(spec).ok());
  auto begin = std::chrono::steady_clock::now();
  auto started = driver->startSf(spec);
  auto took = std::chrono::steady_clock::now() - begin;
  BOOST_REQUIRE(!started.ok());
  BOOST_TEST(started.error().code() == ErrorCode::Timeout);
  BOOST_TEST(started.error().message().find("did not finish within 500 ms") != std::string::npos,
             started.error().message());
  BOOST_TEST(started.error().message().find("hanging") != std::string::npos);
  BOOST_TEST(took < 5s);
  pid_t bg = std::atoi(readFile(pidfile).c_str());
  BOOST_REQUIRE(bg > 0);
  BOOST_TEST(exitsWithin(bg, 5s));
  BOOST_REQUIRE(driver->destroySf(spec).ok());
}

BOOST_AUTO_TEST_CASE(destroy_leaves_no_namespace_and_no_process) {
  TempDir dir;
  auto driver = makeDriver(dir.path());
  const fs::path pidfile = dir.path() / "daemon.pid";
  // A start script that leaves a daemon behind, in a session of its own, as real ones do.
  const std::string pkg =
      makePackage(dir.path() / "pkg",
                  "setsid sleep 1000 </dev/null >/dev/null 2>&1 &\necho $! > " + pidfile.string());
  SfSpec spec = makeSpec("daemon", pkg, dir.path());
  SfGuard guard{*driver, spec};
  BOOST_REQUIRE(driver->createSf(spec).ok());
  auto started = driver->startSf(spec);
  BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started));
  pid_t daemon = std::atoi(readFile(pidfile).c_str());
  BOOST_REQUIRE(daemon > 0);
  BOOST_TEST(!exitsWithin(daemon, 0ms));  // still running after start returned
  {
    auto fd = platform::openNetns(spec.instance);
    BOOST_REQUIRE(fd.ok());
    auto pids = platform::processesInNetns(fd->get());
    BOOST_REQUIRE(pids.ok());
    BOOST_TEST((std::find(pids->begin(), pids->end(), daemon) != pids->end()));
  }
  BOOST_REQUIRE(driver->destroySf(spec).ok());
  BOOST_TEST(exitsWithin(daemon, 5s));
  BOOST_TEST(!platform::netnsExists(spec.instance));
  auto names = platform::listNetns();
  BOOST_REQUIRE(names.ok());
  for (const auto& n : *names) BOOST_TEST(n != spec.instance);
  BOOST_TEST(driver->destroySf(spec).ok());
  BOOST_TEST(driver->stopSf(spec).ok());  // nothing to stop
}

BOOST_AUTO_TEST_CASE(create_checks_the_package_and_ports_and_leaves_nothing_on_failure) {
  TempDir dir;
  auto driver = makeDriver(dir.path());

  SfSpec no_pkg = makeSpec("nopkg", (dir.path() / "missing").string(), dir.path());
  auto r1 = driver->createSf(no_pkg);
  BOOST_REQUIRE(!r1.ok());
  BOOST_TEST(r1.error().code() == ErrorCode::NotFound);
  BOOST_TEST(!platform::netnsExists(no_pkg.instance));

  const std::string bad = makePackage(dir.path() / "bad", "exit 0", R"(, "colour": "red")");
  auto r2 = driver->createSf(makeSpec("bad", bad, dir.path()));
  BOOST_REQUIRE(!r2.ok());
  BOOST_TEST(r2.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(r2.error().message().find("unknown field 'colour'") != std::string::npos);

  const std::string dep =
      makePackage(dir.path() / "dep", "exit 0", R"(, "dependencies": ["corch-no-such-tool"])");
  auto r3 = driver->createSf(makeSpec("dep", dep, dir.path()));
  BOOST_REQUIRE(!r3.ok());
  BOOST_TEST(r3.error().code() == ErrorCode::Unavailable);

  // The bridge takes 2 to 16 ports.
  Host a("a", "10.9.4.1/24");
  SfSpec one_port = makeSpec("oneport", kSource + "/nsf/bridge", dir.path());
  one_port.ports = {a.port("p1")};
  auto r4 = driver->createSf(one_port);
  BOOST_REQUIRE(!r4.ok());
  BOOST_TEST(r4.error().message().find("takes 2 to 16 ports, not 1") != std::string::npos,
             r4.error().message());

  // An interface that does not exist.
  SfSpec ghost = makeSpec("ghost", kSource + "/nsf/bridge", dir.path());
  ghost.ports = {a.port("p1"), {"p2", "p2", ifName("zz"), corch::PortTechnology::Veth}};
  auto r5 = driver->createSf(ghost);
  BOOST_REQUIRE(!r5.ok());
  BOOST_TEST(r5.error().code() == ErrorCode::NotFound);
  BOOST_TEST(!platform::netnsExists(ghost.instance));

  // A second port that cannot be moved (lo): the first one comes back, the namespace goes.
  SfSpec stuck = makeSpec("stuck", kSource + "/nsf/bridge", dir.path());
  stuck.ports = {a.port("p1"), {"p2", "p2", "lo", corch::PortTechnology::Veth}};
  auto r6 = driver->createSf(stuck);
  BOOST_REQUIRE(!r6.ok());
  BOOST_TEST(!platform::netnsExists(stuck.instance));
  auto back = platform::linkExists(a.port("p1").ifname);
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(*back);

  // Twice the same instance.
  SfSpec twice = makeSpec("twice", makePackage(dir.path() / "ok", "exit 0"), dir.path());
  SfGuard guard{*driver, twice};
  BOOST_REQUIRE(driver->createSf(twice).ok());
  auto r7 = driver->createSf(twice);
  BOOST_REQUIRE(!r7.ok());
  BOOST_TEST(r7.error().code() == ErrorCode::AlreadyExists);
  BOOST_TEST(platform::netnsExists(twice.instance));  // the first one is untouched

  // Start without create.
  auto r8 =
      driver->startSf(makeSpec("never", makePackage(dir.path() / "ok2", "exit 0"), dir.path()));
  BOOST_REQUIRE(!r8.ok());
  BOOST_TEST(r8.error().code() == ErrorCode::NotFound);
}

BOOST_AUTO_TEST_CASE(a_tar_gz_package_is_unpacked_and_removed) {
  TempDir dir;
  auto driver = makeDriver(dir.path() / "run");
  makePackage(dir.path() / "src" / "tgz", "echo 'from the archive'");
  const std::string archive = (dir.path() / "tgz.tar.gz").string();
  BOOST_REQUIRE(runIn(-1, {"tar", "-czf", archive, "-C", (dir.path() / "src").string(), "tgz"}) ==
                0);
  SfSpec spec = makeSpec("tgz", archive, dir.path());
  SfGuard guard{*driver, spec};
  auto created = driver->createSf(spec);
  BOOST_REQUIRE_MESSAGE(created.ok(), errorText(created));
  auto started = driver->startSf(spec);
  BOOST_REQUIRE_MESSAGE(started.ok(), errorText(started));
  BOOST_TEST(readFile(spec.log_path).find("from the archive") != std::string::npos);
  BOOST_REQUIRE(driver->destroySf(spec).ok());
  BOOST_TEST(!fs::exists(dir.path() / "run" / (spec.instance + ".pkg")));
}
