#include "harness/demo_node.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace corch::test {

namespace fs = std::filesystem;

DemoNode::DemoNode(const std::string& prefix_letter, const std::string& name,
                   std::map<std::string, std::string> broken, int hosts)
    : sb_(Sandbox::get()),
      prefix_(prefix_letter + std::to_string(getpid() % 100000)),
      dir_(sb_.dir() + "/" + name),
      broken_(std::move(broken)),
      hosts_(std::clamp(hosts, 2, 9)) {}

DemoNode::~DemoNode() {
  if (corchd_) corchd_->stop();
  cleanUp();
}

Result<void> DemoNode::start() {
  fs::create_directories(dir_);
  // A new node: no graph stored by an earlier test case's corchd comes back.
  fs::remove_all(dir_ + "/state/graphs");
  makeRepository();
  cleanUp();
  std::string ports;
  for (int i = 0; i < hosts_; ++i) {
    auto phys = sb_.addHost("h" + std::to_string(i), "10.0.0." + std::to_string(i + 1) + "/24");
    if (!phys.ok()) return std::move(phys).error();
    auto renamed = sb_.run("ip link set " + *phys + " name demo" + std::to_string(i));
    if (!renamed.ok())
      return Error(ErrorCode::Internal, "cannot rename " + *phys + ": " + renamed.output);
    ports += (i ? ",demo" : "demo") + std::to_string(i);
  }
  auto corchd = Corchd::start(
      dir_, {"--config", dir_ + "/corchd.json", "--ovsdb", sb_.ovsdbEndpoint(), "--datapath",
             "netdev", "--physical-ports", ports, "--repository", dir_ + "/sf-repository",
             "--state-dir", dir_ + "/state", "--name-prefix", prefix_, "--log-level", "debug"});
  if (!corchd.ok()) return std::move(corchd).error();
  corchd_.emplace(std::move(*corchd));
  return Ok();
}

void DemoNode::cleanUp() {
  // Whatever a failing test left: functions' namespaces and processes, hosts, ports.
  (void)sb_.run("for ns in $(ip netns list | awk '{print $1}' | grep '^" + prefix_ +
                "-'); do ip netns pids $ns | xargs -r kill -9; ip netns del $ns; done");
  // And its LSIs: a new node makes its own LSI-0 (a restarted corchd would keep this one).
  (void)sb_.run("for br in $(ovs-vsctl list-br | grep '^" + prefix_ +
                "'); do ovs-vsctl --if-exists del-br $br; done");
  for (int i = 0; i < hosts_; ++i) {
    (void)sb_.removeHost("h" + std::to_string(i));
    (void)sb_.run("ip link del demo" + std::to_string(i) + " 2>/dev/null");
  }
}

void DemoNode::makeRepository() {
  const std::string source = CORCH_SOURCE_DIR;
  fs::remove_all(dir_ + "/sf-repository");
  fs::remove_all(dir_ + "/nsf");
  fs::create_directories(dir_ + "/sf-repository/templates");
  fs::create_directories(dir_ + "/nsf");
  for (const auto& entry : fs::directory_iterator(source + "/sf-repository/templates")) {
    fs::copy(entry.path(), dir_ + "/sf-repository/templates/" + entry.path().filename().string());
  }
  for (const auto& entry : fs::directory_iterator(source + "/nsf")) {
    if (entry.is_directory()) {
      fs::create_directory_symlink(entry.path(), dir_ + "/nsf/" + entry.path().filename().string());
    }
  }
  for (const auto& [name, start] : broken_) {
    std::string pkg = dir_ + "/nsf/" + name;
    fs::create_directories(pkg);
    std::ofstream(pkg + "/manifest.json")
        << R"({"name": ")" << name << R"(", "version": "1.0", "description": "broken on purpose"})";
    std::ofstream(pkg + "/start") << "#!/bin/sh\n" << start;
    std::ofstream(pkg + "/stop") << "#!/bin/sh\nexit 0\n";
    fs::permissions(pkg + "/start", fs::perms::owner_all, fs::perm_options::add);
    fs::permissions(pkg + "/stop", fs::perms::owner_all, fs::perm_options::add);
    std::ofstream(dir_ + "/sf-repository/templates/" + name + ".json")
        << R"({"id": ")" << name << R"(-nsf", "functional-capability": ")" << name
        << R"(", "type": "native", "image": {"uri": "nsf/)" << name
        << R"("}, "ports": {"min": 2, "max": 2}})";
  }
  for (const auto& [file_name, json] : extra_templates_) {
    std::ofstream(dir_ + "/sf-repository/templates/" + file_name + ".json") << json;
  }
  std::ofstream(dir_ + "/corchd.json")
      << R"({"compute": {"timeout-ms": 3000)"
      << (compute_drivers_.empty() ? "" : R"(, "drivers": )" + compute_drivers_) << "}"
      << (extra_config_.empty() ? "" : ", " + extra_config_) << "}";
}

bool DemoNode::ping(const std::string& from, const std::string& to_ip) {
  return waitUntil([&] { return sb_.runIn(from, "ping -c 1 -W 1 " + to_ip).ok(); },
                   std::chrono::seconds(10), std::chrono::milliseconds(200));
}

std::string DemoNode::leftovers() {
  std::string out;
  auto bridges = sb_.run("ovs-vsctl list-br");
  if (bridges.output != prefix_ + "0\n") out += "bridges: " + bridges.output;
  auto flows = sb_.run("ovs-ofctl -O OpenFlow13 --no-names dump-flows " + prefix_ +
                       "0 | grep -v 'OFPST_FLOW\\|reply' | grep -c . || true");
  if (flows.output != "0\n") out += "flows on LSI-0: " + flows.output;
  auto links = sb_.run("ip -br link | awk '{print $1}' | grep '^cg' || true");
  if (!links.output.empty()) out += "SF ports: " + links.output;
  auto ns = sb_.run("ip netns list | grep '^" + prefix_ + "-' || true");
  if (!ns.output.empty()) out += "namespaces: " + ns.output;
  return out;
}

}  // namespace corch::test
