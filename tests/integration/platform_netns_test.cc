// Integration tests of orchestrator/platform on the real kernel (root): named namespaces as seen
// by `ip netns`, veth pairs created, moved, renamed and brought up over rtnetlink, a ping across
// a veth pair between two namespaces, TX checksum offload, killing a namespace's processes.
// Every namespace and link is named after this test's pid and removed even when a check fails.
#define BOOST_TEST_MODULE platform_netns
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "platform/netlink.h"
#include "platform/netns.h"
#include "platform/process.h"
#include "util/files.h"

namespace corch {
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

namespace fs = std::filesystem;
namespace platform = corch::platform;
using corch::ErrorCode;
using namespace std::chrono_literals;

using corch::test::readFile;
using corch::test::TempDir;

namespace {

const std::string kPid = std::to_string(::getpid());

// "corch-pt<pid>-<what>": unique per test run.
std::string nsName(const std::string& what) { return "corch-pt" + kPid + "-" + what; }
// Interface names must fit in 15 characters: "pt<pid><tag>".
std::string ifName(const std::string& tag) { return "pt" + kPid + tag; }

// Deletes a link of the host namespace when the test ends.
struct LinkGuard {
  std::string name;
  ~LinkGuard() { (void)platform::deleteLink(name); }
};

// Runs a command (optionally inside a namespace) and returns its exit status and output.
struct Output {
  int code = -1;
  std::string text;
};
Output run(std::vector<std::string> argv, int netns_fd = -1,
           std::chrono::milliseconds timeout = 10s) {
  TempDir dir;
  platform::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.netns_fd = netns_fd;
  spec.log_path = (dir.path() / "out").string();
  spec.timeout = timeout;
  auto r = platform::runProcess(spec);
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
  return Output{r->timed_out ? -1 : r->exit_code, readFile(dir.path() / "out")};
}

// Polls `condition` until it holds or `deadline` passes.
template <class F>
bool eventually(F condition, std::chrono::milliseconds deadline = 10s) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(50ms);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(namespaces_are_visible_to_ip_netns_and_back) {
  const std::string ours = nsName("a");
  auto ns = platform::ScopedNetns::create(ours);
  BOOST_REQUIRE_MESSAGE(ns.ok(), (ns.ok() ? "" : ns.error().message()));
  BOOST_TEST(platform::netnsExists(ours));
  auto again = platform::createNetns(ours);
  BOOST_REQUIRE(!again.ok());
  BOOST_TEST(again.error().code() == ErrorCode::AlreadyExists);
  BOOST_TEST(again.error().message().find("cannot create namespace " + ours) == 0);

  Output listed = run({"ip", "netns", "list"});
  BOOST_TEST(listed.code == 0);
  BOOST_TEST(listed.text.find(ours) != std::string::npos);
  // `ip netns exec` enters it: its only link is a loopback.
  Output links = run({"ip", "netns", "exec", ours, "ip", "-o", "link"});
  BOOST_TEST(links.code == 0);
  BOOST_TEST(links.text.find("lo:") != std::string::npos);

  // One made by iproute2 is seen by us and deleted by us.
  const std::string theirs = nsName("b");
  platform::ScopedNetns theirs_guard = platform::ScopedNetns::adopt(theirs);
  BOOST_REQUIRE(run({"ip", "netns", "add", theirs}).code == 0);
  BOOST_TEST(platform::netnsExists(theirs));
  auto names = platform::listNetns();
  BOOST_REQUIRE(names.ok());
  BOOST_TEST((std::find(names->begin(), names->end(), theirs) != names->end()));
  BOOST_TEST(platform::openNetns(theirs).ok());
  BOOST_TEST(platform::deleteNetns(theirs).ok());
  BOOST_TEST(!platform::netnsExists(theirs));
  BOOST_TEST(run({"ip", "netns", "list"}).text.find(theirs) == std::string::npos);
  BOOST_TEST(platform::deleteNetns(theirs).ok());  // absent is Ok

  auto missing = platform::openNetns(nsName("none"));
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error().code() == ErrorCode::NotFound);
}

BOOST_AUTO_TEST_CASE(veth_pairs_are_created_found_and_deleted) {
  LinkGuard guard{ifName("x")};
  BOOST_REQUIRE(platform::createVethPair(ifName("x"), ifName("y")).ok());
  auto dup = platform::createVethPair(ifName("x"), ifName("z"));
  BOOST_REQUIRE(!dup.ok());
  BOOST_TEST(dup.error().code() == ErrorCode::AlreadyExists);
  BOOST_TEST(dup.error().message().find("cannot create veth pair") == 0);

  auto link = platform::findLink(ifName("x"));
  BOOST_REQUIRE(link.ok());
  BOOST_REQUIRE(link->has_value());
  BOOST_TEST((*link)->kind == "veth");
  BOOST_TEST(!(*link)->up);
  BOOST_TEST((*link)->mac.size() == 17u);
  BOOST_REQUIRE(platform::setLinkUp(ifName("x")).ok());
  BOOST_TEST((*platform::findLink(ifName("x")))->up);
  BOOST_TEST(run({"ip", "-o", "link", "show", ifName("y")}).code == 0);

  auto all = platform::listLinks();
  BOOST_REQUIRE(all.ok());
  int found = 0;
  for (const auto& l : *all) found += (l.name == ifName("x") || l.name == ifName("y")) ? 1 : 0;
  BOOST_TEST(found == 2);

  // Deleting one end deletes the pair; deleting again is Ok.
  BOOST_REQUIRE(platform::deleteLink(ifName("x")).ok());
  BOOST_TEST(!*platform::linkExists(ifName("x")));
  BOOST_TEST(!*platform::linkExists(ifName("y")));
  BOOST_TEST(platform::deleteLink(ifName("x")).ok());

  auto bad = platform::createVethPair("a-name-much-too-long", ifName("y"));
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error().code() == ErrorCode::InvalidArgument);
  auto up_missing = platform::setLinkUp(ifName("q"));
  BOOST_REQUIRE(!up_missing.ok());
  BOOST_TEST(up_missing.error().code() == ErrorCode::NotFound);
}

BOOST_AUTO_TEST_CASE(ping_across_a_veth_pair_between_two_namespaces) {
  auto left = platform::ScopedNetns::create(nsName("l"));
  BOOST_REQUIRE(left.ok());
  auto right = platform::ScopedNetns::create(nsName("r"));
  BOOST_REQUIRE(right.ok());
  auto lfd = left->open();
  auto rfd = right->open();
  BOOST_REQUIRE(lfd.ok());
  BOOST_REQUIRE(rfd.ok());

  LinkGuard guard{ifName("l")};
  BOOST_REQUIRE(platform::createVethPair(ifName("l"), ifName("r")).ok());
  auto moved = platform::moveLinkToNetns(ifName("l"), lfd->get(), "eth0");
  BOOST_REQUIRE_MESSAGE(moved.ok(), (moved.ok() ? "" : moved.error().message()));
  BOOST_REQUIRE(platform::moveLinkToNetns(ifName("r"), rfd->get(), "eth0").ok());
  BOOST_TEST(!*platform::linkExists(ifName("l")));

  struct Side {
    int fd;
    std::string addr;
  };
  for (const Side& side : {Side{lfd->get(), "10.231.0.1/24"}, Side{rfd->get(), "10.231.0.2/24"}}) {
    auto sock = platform::RouteSocket::openIn(side.fd);
    BOOST_REQUIRE(sock.ok());
    auto eth0 = sock->findLink("eth0");
    BOOST_REQUIRE(eth0.ok());
    BOOST_REQUIRE(eth0->has_value());
    BOOST_TEST((*eth0)->kind == "veth");
    BOOST_REQUIRE(sock->setLinkUp("lo").ok());
    BOOST_REQUIRE(sock->setLinkUp("eth0").ok());
    BOOST_REQUIRE(sock->addAddress("eth0", side.addr).ok());
    auto twice = sock->addAddress("eth0", side.addr);
    BOOST_REQUIRE(!twice.ok());
    BOOST_TEST(twice.error().code() == ErrorCode::AlreadyExists);
    BOOST_REQUIRE(platform::disableTxChecksum(side.fd, "eth0").ok());
  }
  Output features = run({"ethtool", "-k", "eth0"}, lfd->get());
  BOOST_TEST(features.text.find("tx-checksumming: off") != std::string::npos);

  // The first ping may wait for ARP and for the link to come up; retry within a deadline.
  BOOST_TEST(eventually([&] {
    return run({"ping", "-c", "1", "-W", "1", "10.231.0.2"}, lfd->get()).code == 0;
  }));
  BOOST_TEST(
      run({"ip", "netns", "exec", nsName("r"), "ping", "-c", "1", "-W", "1", "10.231.0.1"}).code ==
      0);
}

BOOST_AUTO_TEST_CASE(every_process_of_a_namespace_is_killed) {
  auto ns = platform::ScopedNetns::create(nsName("k"));
  BOOST_REQUIRE(ns.ok());
  auto fd = ns->open();
  BOOST_REQUIRE(fd.ok());

  // One child of ours in the namespace, which leaves a grandchild in a new session (not in any
  // group we know of), and one started by `ip netns exec`.
  TempDir dir;
  platform::ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", "setsid sleep 1000 & exec sleep 1000"};
  spec.netns_fd = fd->get();
  auto first = platform::Child::spawn(spec);
  BOOST_REQUIRE(first.ok());
  platform::ProcessSpec other;
  other.argv = {"ip", "netns", "exec", nsName("k"), "sleep", "1000"};
  auto second = platform::Child::spawn(other);
  BOOST_REQUIRE(second.ok());

  BOOST_TEST(eventually([&] {
    auto pids = platform::processesInNetns(fd->get());
    return pids.ok() && pids->size() == 3;
  }));
  auto killed = platform::killProcessesInNetns(fd->get());
  BOOST_REQUIRE_MESSAGE(killed.ok(), (killed.ok() ? "" : killed.error().message()));
  BOOST_TEST(*killed == 3);
  auto left = platform::processesInNetns(fd->get());
  BOOST_REQUIRE(left.ok());
  BOOST_TEST(left->empty());
  auto status = first->wait();
  BOOST_REQUIRE(status.ok());
  BOOST_TEST(status->signal == SIGKILL);
  BOOST_TEST(second->wait()->signal == SIGKILL);
  // Nothing left: killing again signals nobody.
  BOOST_TEST(*platform::killProcessesInNetns(fd->get()) == 0);
}
