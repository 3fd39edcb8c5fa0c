#include "network/network_manager.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <algorithm>
#include <cstring>

#include "corch/log.h"
#include "platform/netlink.h"

namespace corch::network {
namespace {

log::Logger lg("network");

// Whether an address is one of the node's own (in this network namespace).
bool isLocalAddress(const IpAddr& ip) {
  struct ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  bool found = false;
  for (struct ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (i->ifa_addr->sa_family == AF_INET && !ip.v6) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      found = std::memcmp(&a->sin_addr, ip.bytes.data(), 4) == 0;
    } else if (i->ifa_addr->sa_family == AF_INET6 && ip.v6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      found = std::memcmp(&a->sin6_addr, ip.bytes.data(), 16) == 0;
    }
  }
  ::freeifaddrs(list);
  return found;
}

// A SAP port's plan without its name: two are the same SAP port when these are equal.
SapPortPlan unnamed(SapPortPlan p) {
  p.spec.name.clear();
  return p;
}

}  // namespace

NetworkManager::NetworkManager(VSwitchDriver& driver, NetworkOptions options)
    : driver_(driver), options_(std::move(options)) {}

NetworkManager::~NetworkManager() {
  {
    std::lock_guard lock(dhcp_mu_);
    dhcp_.clear();  // kills the clients
  }
  if (!dhcp_script_.empty()) ::unlink(dhcp_script_.c_str());
}

std::string dhcpClient() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  for (const char* name : {"udhcpc", "busybox"}) {
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string candidate = dirs.substr(start, end - start) + "/" + name;
      if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate;
      start = end + 1;
    }
  }
  return "";
}

Result<void> NetworkManager::startDhcp(const std::string& ifname) {
  std::string client = dhcpClient();
  if (client.empty()) {
    return Error(ErrorCode::Unsupported, "a DHCP host-stack SAP needs udhcpc (busybox)");
  }
  std::lock_guard lock(dhcp_mu_);
  if (dhcp_script_.empty()) {
    // udhcpc hands the lease to a script in its environment ($interface, $ip, $mask).
    char path[] = "/tmp/corch-udhcpc-XXXXXX";
    int fd = ::mkstemp(path);
    if (fd < 0) return Error(ErrorCode::Internal, "cannot write the DHCP client's script");
    const std::string script = R"(#!/bin/sh
# Written by corchd: applies the lease of a host-stack SAP's DHCP client.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew) ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
)";
    bool written = ::write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size());
    ::fchmod(fd, 0700);
    ::close(fd);
    if (!written) {
      ::unlink(path);
      return Error(ErrorCode::Internal, "cannot write the DHCP client's script");
    }
    dhcp_script_ = path;
  }
  platform::ProcessSpec spec;
  if (client.ends_with("/busybox")) spec.argv.push_back(client);
  for (const char* arg : {"udhcpc", "-f", "-i"}) spec.argv.push_back(arg);
  if (!client.ends_with("/busybox")) spec.argv[0] = client;
  spec.argv.push_back(ifname);
  for (const char* arg : {"-s", ""}) spec.argv.push_back(arg);
  spec.argv.back() = dhcp_script_;
  // Ask every second, pause 2 s after 3 unanswered; release the lease when stopped.
  for (const char* arg : {"-T", "1", "-t", "3", "-A", "2", "-R"}) spec.argv.push_back(arg);
  auto child = platform::Child::spawn(spec);
  if (!child) return std::move(child).error().context("cannot start the DHCP client of " + ifname);
  dhcp_.insert_or_assign(ifname, std::move(*child));
  CORCH_LOG(lg, Info) << "DHCP client started on host-stack port " << ifname;
  return Ok();
}

void NetworkManager::stopDhcp(const std::string& ifname) {
  std::lock_guard lock(dhcp_mu_);
  auto it = dhcp_.find(ifname);
  if (it == dhcp_.end()) return;
  (void)it->second.signalGroup(SIGTERM);  // -R: it releases its lease
  auto done = it->second.waitFor(std::chrono::milliseconds(500));
  if (!done || !*done) it->second.kill();
  dhcp_.erase(it);
}

std::string NetworkManager::lsiName(uint32_t index) const {
  return options_.prefix + "-g" + std::to_string(index);
}

Result<bool> NetworkManager::start(const std::set<std::string>& keep_lsis) {
  auto existing = driver_.listLsis();
  if (!existing) return std::move(existing).error().context("cannot list LSIs");
  // LSI-0 is kept when it has every configured physical port (more ports are vlink ends).
  bool adopted = false;
  if (std::find(existing->begin(), existing->end(), options_.lsi0) != existing->end()) {
    auto ports = driver_.listPorts(options_.lsi0);
    if (ports) {
      std::map<std::string, uint32_t> numbers;
      for (const auto& p : *ports) numbers[p.name] = p.of_port;
      adopted = std::all_of(options_.physical_ports.begin(), options_.physical_ports.end(),
                            [&](const std::string& name) { return numbers.count(name) > 0; });
      if (adopted) {
        lsi0_ports_.clear();
        for (const auto& name : options_.physical_ports) lsi0_ports_[name] = numbers.at(name);
      } else {
        CORCH_LOG(lg, Info) << "LSI-0 " << options_.lsi0
                            << " left by an earlier run lacks a configured physical port";
      }
    } else if (ports.error().code() != ErrorCode::Unsupported) {
      CORCH_LOG(lg, Warn) << "cannot list the ports of LSI-0 " << options_.lsi0 << ": "
                          << ports.error().message();
    }
  }
  const std::set<std::string> keep = adopted ? keep_lsis : std::set<std::string>{};
  for (const auto& name : *existing) {
    if (name == options_.lsi0 && adopted) continue;
    if (keep.count(name)) continue;
    // Internal groups' LSIs stay while graph-LSIs are kept: adoptGraphLsi finds its group's
    // there, and removeStaleLsis removes those no adopted graph joined.
    if (adopted && !keep.empty() && name.starts_with(options_.prefix + "-i")) {
      const std::string number = name.substr(options_.prefix.size() + 2);
      if (!number.empty() && number.size() < 9 &&
          std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::lock_guard lock(groups_mu_);
        next_group_ =
            std::max<uint32_t>(next_group_, static_cast<uint32_t>(std::stoul(number)) + 1);
        continue;
      }
    }
    if (name == options_.lsi0 || isOurs(name)) {
      CORCH_LOG(lg, Info) << "removing stale LSI " << name << " left by an earlier run";
      CORCH_TRY(driver_.destroyLsi(name));
    }
  }
  if (adopted) {
    CORCH_LOG(lg, Info) << "LSI-0 " << options_.lsi0 << " kept from an earlier run with "
                        << lsi0_ports_.size() << " physical port(s); " << keep.size()
                        << " graph-LSI(s) kept";
    return true;
  }
  LsiSpec spec;
  spec.name = options_.lsi0;
  spec.interfaces = options_.physical_ports;
  auto info = driver_.createLsi(spec);
  if (!info) return std::move(info).error().context("cannot create LSI-0 " + options_.lsi0);
  lsi0_ports_.clear();
  for (const auto& port : info->interfaces) lsi0_ports_[port.name] = port.of_port;
  CORCH_LOG(lg, Info) << "LSI-0 " << options_.lsi0 << " up with " << lsi0_ports_.size()
                      << " physical port(s)";
  return false;
}

bool NetworkManager::isOurs(const std::string& lsi) const {
  return lsi.starts_with(options_.prefix + "-g") || lsi.starts_with(options_.prefix + "-i");
}

Result<void> NetworkManager::removeStaleLsis(const std::set<std::string>& keep) {
  auto existing = driver_.listLsis();
  if (!existing) return std::move(existing).error().context("cannot list LSIs");
  std::set<std::string> groups;
  {
    std::lock_guard lock(groups_mu_);
    for (const auto& [name, group] : groups_) groups.insert(group.lsi);
  }
  for (const auto& name : *existing) {
    if (!isOurs(name) || keep.count(name) || groups.count(name)) continue;
    CORCH_LOG(lg, Info) << "removing LSI " << name << ", kept from an earlier run for a graph "
                        << "that was then built anew";
    CORCH_TRY(driver_.destroyLsi(name));
  }
  return Ok();
}

Result<NetworkManager::Adopted> NetworkManager::adoptGraphLsi(
    const GraphNetworkPlan& plan,
    const std::vector<std::pair<std::string, std::string>>& vlink_names) {
  const std::string what = "cannot adopt graph-LSI " + plan.lsi;
  if (vlink_names.size() != plan.vlinks.count) {
    return Error(ErrorCode::Conflict, what + ": " + std::to_string(vlink_names.size()) +
                                          " vlinks stored, the plan has " +
                                          std::to_string(plan.vlinks.count));
  }
  auto listed = driver_.listPorts(plan.lsi);
  if (!listed) return std::move(listed).error().context(what);
  std::map<std::string, PortInfo> ports;
  for (auto& p : *listed) ports[p.name] = std::move(p);
  auto lsi0 = driver_.listPorts(options_.lsi0);
  if (!lsi0) return std::move(lsi0).error().context(what);
  std::map<std::string, uint32_t> lsi0_numbers;
  for (const auto& p : *lsi0) lsi0_numbers[p.name] = p.of_port;

  std::set<std::string> expected;
  auto take = [&](const std::string& name) -> Result<PortInfo> {
    auto it = ports.find(name);
    if (it == ports.end()) return Error(ErrorCode::Conflict, what + ": port " + name + " is gone");
    expected.insert(name);
    return it->second;
  };
  Adopted out;
  out.network.lsi.name = plan.lsi;
  for (const auto& sf_port : plan.sf_ports) {
    auto port = take(sf_port.spec.name);
    if (!port) return std::move(port).error();
    out.network.lsi.ports.push_back(*port);
    out.network.sf_ports[{sf_port.sf_id, sf_port.port_id}] = *port;
  }
  for (const auto& [name_a, name_b] : vlink_names) {
    auto b = take(name_b);
    if (!b) return std::move(b).error();
    auto a = lsi0_numbers.find(name_a);
    if (a == lsi0_numbers.end()) {
      return Error(ErrorCode::Conflict, what + ": vlink end " + name_a + " is gone from LSI-0");
    }
    out.network.lsi.vlinks.push_back(VlinkInfo{name_a, a->second, name_b, b->of_port});
  }
  // Groups joined: (group, its LSI), registered once everything else is found.
  std::vector<std::pair<std::string, std::string>> joined;
  for (const auto& sap : plan.sap_ports) {
    SapPortMade m;
    m.sap = sap;
    if (sap.type == graph::SapType::Gre || sap.type == graph::SapType::HostStack) {
      auto port = take(sap.spec.name);
      if (!port) return std::move(port).error();
      m.ports[sap.sap_id] = *port;
    } else if (sap.type == graph::SapType::Junction) {
      if (!sap.first) continue;  // the pair's first end has both (createSapPorts)
      // connectLsis(lsi, lsi, 1, name): "<name>0a" and "<name>0b", both on the graph-LSI.
      auto a = take(sap.spec.name + "0a");
      if (!a) return std::move(a).error();
      auto b = take(sap.spec.name + "0b");
      if (!b) return std::move(b).error();
      m.link = VlinkInfo{a->name, a->of_port, b->name, b->of_port};
      m.ports[sap.sap_id] = PortInfo{a->name, a->of_port, ""};
      m.ports[sap.peer] = PortInfo{b->name, b->of_port, ""};
    } else if (sap.type == graph::SapType::Internal) {
      // connectLsis(group's LSI, lsi, 1, name): "<name>0a" on the group's, "<name>0b" here.
      auto b = take(sap.spec.name + "0b");
      if (!b) return std::move(b).error();
      auto group = findGroupLsi(sap.group, sap.spec.name + "0a");
      if (!group) return std::move(group).error().context(what);
      m.link = VlinkInfo{sap.spec.name + "0a", group->second, b->name, b->of_port};
      m.ports[sap.sap_id] = PortInfo{b->name, b->of_port, ""};
      m.joined = true;
      joined.emplace_back(sap.group, group->first);
    } else {
      return Error(ErrorCode::Internal, what + ": SAP " + sap.sap_id + " has no port here");
    }
    for (const auto& [id, port] : m.ports) out.network.sap_ports[id] = port;
    out.sap_ports.push_back(std::move(m));
  }
  for (const auto& [name, port] : ports) {
    if (!expected.count(name)) {
      return Error(ErrorCode::Conflict,
                   what + ": it has port " + name + ", which the stored graph has not");
    }
  }
  std::vector<std::string> clients;
  for (const auto& sap : plan.sap_ports) {
    if (!sap.dhcp) continue;
    auto started = startDhcp(sap.spec.name);
    if (!started) {
      for (const auto& ifname : clients) stopDhcp(ifname);
      return std::move(started).error().context(what);
    }
    clients.push_back(sap.spec.name);
  }
  for (const auto& [group, lsi] : joined) adoptGroupMember(group, lsi);
  CORCH_LOG(lg, Info) << "graph-LSI " << plan.lsi << " kept from an earlier run ("
                      << plan.sf_ports.size() << " SF ports, " << vlink_names.size() << " vlinks, "
                      << plan.sap_ports.size() << " SAP ports)";
  return out;
}

Result<void> NetworkManager::syncRules(const std::string& lsi) {
  auto done = driver_.syncRules(lsi);
  if (!done) return std::move(done).error().context("cannot synchronise the rules of " + lsi);
  return Ok();
}

Result<uint32_t> NetworkManager::lsi0Port(const std::string& ifname) const {
  auto it = lsi0_ports_.find(ifname);
  if (it == lsi0_ports_.end()) {
    return Error(ErrorCode::NotFound, "interface " + ifname + " is not a port of LSI-0");
  }
  return it->second;
}

Result<GraphNetworkPlan> NetworkManager::plan(
    const graph::Graph& graph, uint32_t index,
    const std::function<PortTechnology(const std::string&)>& technology,
    const PlanBase& base) const {
  std::vector<FieldError> errors;
  std::map<std::string, std::string> plan_sap_interfaces;
  std::map<std::string, uint16_t> plan_sap_vlans;
  std::vector<SapPortPlan> plan_sap_ports;
  if (index == 0 || index > kMaxGraphIndex) {
    return Error(ErrorCode::ResourceExhausted,
                 "no free graph index (at most " + std::to_string(kMaxGraphIndex) + " graphs)");
  }
  if (graph.sfs.size() > kMaxSfsPerGraph) {
    errors.push_back({"/sffg/SFs", "a graph has at most " + std::to_string(kMaxSfsPerGraph) +
                                       " SFs on this node"});
  }
  // SAPs: where they live, and whether their interface is one of LSI-0's.
  for (size_t i = 0; i < graph.saps.size(); ++i) {
    const graph::Sap& sap = graph.saps[i];
    std::string ptr = "/sffg/saps/" + std::to_string(i);
    auto side = sideOf(graph, graph::PortRef{graph::PortRef::Kind::Sap, sap.id, "", ""});
    if (!side) {
      errors.push_back({ptr + "/type", side.error().message()});
      continue;
    }
    const std::string object = ptr + "/" + std::string(graph::toString(sap.type));
    SapPortPlan port;
    port.sap_id = sap.id;
    port.type = sap.type;
    switch (sap.type) {
      case graph::SapType::Interface:
      case graph::SapType::Vlan:
        if (!lsi0_ports_.count(sap.if_name)) {
          std::string known;
          for (const auto& [name, number] : lsi0_ports_) {
            known += (known.empty() ? "" : ", ") + name;
          }
          errors.push_back({object + "/if-name",
                            "interface '" + sap.if_name +
                                "' is not a physical port of this node (" +
                                (known.empty() ? "none configured" : "ports: " + known) + ")"});
          break;
        }
        if (sap.type == graph::SapType::Vlan && (sap.vlan_id == 0 || sap.vlan_id > 4094)) {
          errors.push_back({object + "/vlan-id",
                            "VLAN id " + std::to_string(sap.vlan_id) +
                                " cannot carry a SAP's traffic (1-4094; 0 and 4095 are reserved)"});
          break;
        }
        plan_sap_interfaces[sap.id] = sap.if_name;
        if (sap.type == graph::SapType::Vlan) plan_sap_vlans[sap.id] = sap.vlan_id;
        break;
      case graph::SapType::Gre:
        if (!isLocalAddress(sap.gre_local)) {
          errors.push_back({object + "/local-ip",
                            sap.gre_local.str() +
                                " is not an address of this node: a GRE tunnel starts at one"});
          break;
        }
        port.spec.technology = PortTechnology::Gre;
        port.spec.tunnel = TunnelSpec{sap.gre_local, sap.gre_remote, sap.gre_key};
        plan_sap_ports.push_back(port);
        break;
      case graph::SapType::HostStack:
        if (sap.host_configuration != "static" && dhcpClient().empty()) {
          errors.push_back({object + "/configuration",
                            "DHCP on a host-stack SAP needs a DHCP client on the node (udhcpc, "
                            "from busybox), which this node has not; give a static ipv4 address"});
          break;
        }
        port.spec.technology = PortTechnology::Internal;
        port.address = sap.host_ipv4;
        port.dhcp = sap.host_configuration != "static";
        plan_sap_ports.push_back(port);
        break;
      case graph::SapType::Internal:
        port.group = sap.internal_group;
        plan_sap_ports.push_back(port);
        break;
      case graph::SapType::Junction:
        port.peer = sap.junction_peer;
        port.first = sap.id < sap.junction_peer;
        if (!graph.findSap(sap.junction_peer)) {
          errors.push_back({ptr, "junction " + sap.id + " has no other end"});
          break;
        }
        plan_sap_ports.push_back(port);
        break;
      case graph::SapType::InternalPort:
        break;  // sideOf refused it
    }
  }
  if (!errors.empty()) {
    return Error(ErrorCode::Unsupported, "the graph's SAPs cannot be deployed here",
                 std::move(errors));
  }

  GraphNetworkPlan plan;
  plan.index = index;
  plan.lsi = lsiName(index);
  plan.sap_interfaces = std::move(plan_sap_interfaces);
  plan.sap_vlans = std::move(plan_sap_vlans);
  plan.sap_ports = std::move(plan_sap_ports);
  const GraphNetworkPlan* previous = base.previous;
  auto vlinks = createVlinks(graph, previous ? &previous->vlinks : nullptr);
  if (!vlinks) return std::move(vlinks).error();
  plan.vlinks = std::move(*vlinks);
  plan.rules = splitRules(graph, plan.vlinks);

  // Stable numbers: kept from the previous version, new ones the smallest used by neither
  // version (a removed SF's ports and a removed flowrule's rules still exist while the update
  // builds the new ones).
  std::set<uint32_t> sf_taken;
  std::set<uint32_t> rule_taken;
  if (previous) {
    for (const auto& [id, n] : previous->sf_numbers) sf_taken.insert(n);
    for (const auto& [id, n] : previous->flowrule_numbers) rule_taken.insert(n);
  }
  for (const auto& sf : graph.sfs) {
    if (!previous || base.renumber.count(sf.id)) continue;
    auto it = previous->sf_numbers.find(sf.id);
    if (it != previous->sf_numbers.end()) plan.sf_numbers[sf.id] = it->second;
  }
  for (const auto& rule : graph.rules) {
    if (!previous) continue;
    auto it = previous->flowrule_numbers.find(rule.id);
    if (it != previous->flowrule_numbers.end()) plan.flowrule_numbers[rule.id] = it->second;
  }
  uint32_t next_sf = 0;
  for (size_t s = 0; s < graph.sfs.size(); ++s) {
    const graph::Sf& sf = graph.sfs[s];
    if (plan.sf_numbers.count(sf.id)) continue;
    while (sf_taken.count(next_sf)) ++next_sf;
    if (next_sf >= kMaxSfsPerGraph) {
      errors.push_back({"/sffg/SFs/" + std::to_string(s),
                        "no free SF number on this node (at most " +
                            std::to_string(kMaxSfsPerGraph) +
                            " SFs per graph, counting those an update replaces)"});
      continue;
    }
    plan.sf_numbers[sf.id] = next_sf;
    sf_taken.insert(next_sf);
  }
  uint32_t next_rule = 1;
  for (const auto& rule : graph.rules) {
    if (plan.flowrule_numbers.count(rule.id)) continue;
    while (rule_taken.count(next_rule)) ++next_rule;
    plan.flowrule_numbers[rule.id] = next_rule;
    rule_taken.insert(next_rule);
  }
  for (auto& rule : plan.rules) {
    if (!rule.vlink_forwarder) rule.number = plan.flowrule_numbers.at(rule.flowrule_id);
  }
  // SAP ports keep their number (hence their port) while they stay the same.
  std::set<uint32_t> sap_taken;
  if (previous) {
    for (const auto& [id, n] : previous->sap_numbers) sap_taken.insert(n);
    for (const auto& port : plan.sap_ports) {
      for (const auto& old : previous->sap_ports) {
        if (old.sap_id == port.sap_id && unnamed(old) == unnamed(port)) {
          plan.sap_numbers[port.sap_id] = previous->sap_numbers.at(port.sap_id);
        }
      }
    }
  }
  uint32_t next_sap = 0;
  for (auto& port : plan.sap_ports) {
    if (!plan.sap_numbers.count(port.sap_id)) {
      while (sap_taken.count(next_sap)) ++next_sap;
      plan.sap_numbers[port.sap_id] = next_sap;
      sap_taken.insert(next_sap);
    }
    port.spec.name =
        "cg" + std::to_string(index) + "a" + std::to_string(plan.sap_numbers.at(port.sap_id));
    if (port.type == graph::SapType::Internal || port.type == graph::SapType::Junction) {
      port.spec.name += "-";
    }
  }
  // A junction pair is made by its first end, under its name.
  for (auto& port : plan.sap_ports) {
    if (port.type != graph::SapType::Junction || port.first) continue;
    for (const auto& other : plan.sap_ports) {
      if (other.sap_id == port.peer) port.spec.name = other.spec.name;
    }
  }

  for (size_t s = 0; s < graph.sfs.size(); ++s) {
    const graph::Sf& sf = graph.sfs[s];
    if (sf.ports.size() > kMaxPortsPerSf) {
      errors.push_back({"/sffg/SFs/" + std::to_string(s) + "/ports",
                        "an SF has at most " + std::to_string(kMaxPortsPerSf) + " ports"});
      continue;
    }
    auto number = plan.sf_numbers.find(sf.id);
    if (number == plan.sf_numbers.end()) continue;  // reported above
    // Port numbers: kept from the previous version when the SF keeps its number; new ports take
    // the smallest number neither version uses (an unplugged port still exists meanwhile).
    const bool keeps = previous && !base.renumber.count(sf.id) &&
                       previous->sf_numbers.count(sf.id) &&
                       previous->sf_numbers.at(sf.id) == number->second;
    std::set<uint32_t> port_taken;
    if (keeps) {
      for (const auto& [key, n] : previous->sf_port_numbers) {
        if (key.first == sf.id) port_taken.insert(n);
      }
    }
    uint32_t next_port = 0;
    for (size_t p = 0; p < sf.ports.size(); ++p) {
      std::pair<std::string, std::string> key{sf.id, sf.ports[p].id};
      if (keeps && previous->sf_port_numbers.count(key)) {
        plan.sf_port_numbers[key] = previous->sf_port_numbers.at(key);
      } else {
        while (port_taken.count(next_port)) ++next_port;
        plan.sf_port_numbers[key] = next_port;
        port_taken.insert(next_port);
      }
    }
    for (size_t p = 0; p < sf.ports.size(); ++p) {
      // "cg<graph>s<sf>p<port>": at most 13 characters, so drivers can suffix the peer's name.
      const uint32_t port_number = plan.sf_port_numbers.at({sf.id, sf.ports[p].id});
      PortSpec spec{"cg" + std::to_string(index) + "s" + std::to_string(number->second) + "p" +
                        std::to_string(port_number),
                    technology(sf.id)};
      plan.sf_ports.push_back(SfPortPlan{sf.id, sf.ports[p].id, std::move(spec)});
    }
  }
  if (!errors.empty()) {
    return Error(ErrorCode::Unsupported, "the graph is too large for this node", std::move(errors));
  }

  // Ask the driver whether it can express every rule, before anything is built.
  for (const auto& rule : plan.rules) {
    if (rule.vlink_forwarder) continue;
    TsRule ts;
    ts.priority = rule.priority;
    ts.fields = rule.fields;
    ts.mods = rule.mods;
    if (rule.side == Side::Lsi0) {
      ts.outputs.assign(rule.outputs.size(), 1);
      auto tagged = tagVlanSaps(plan, rule, ts);
      if (!tagged) {
        for (auto& e : tagged.error().fields()) errors.push_back(e);
        continue;
      }
    }
    auto checked = driver_.checkRules({ts});
    if (!checked) {
      errors.push_back(
          {"/sffg/flowrules/" + std::to_string(rule.flowrule_index), checked.error().message()});
    }
  }
  if (!errors.empty()) {
    return Error(ErrorCode::Unsupported, "the vSwitch cannot install some flowrules",
                 std::move(errors));
  }
  // Refuse early a rule another graph already has on LSI-0 (checked again at installation).
  GraphNetwork no_ports;
  std::vector<TsRule> lsi0_rules;
  for (const auto& rule : plan.rules) {
    if (rule.side != Side::Lsi0 || rule.vlink_forwarder ||
        rule.in.port.kind != graph::PortRef::Kind::Sap) {
      continue;
    }
    auto in = lsi0Port(plan.sap_interfaces.at(rule.in.port.sap_id));
    if (!in) continue;
    TsRule ts;
    ts.cookie = cookieOf(index, rule);
    ts.priority = rule.priority;
    ts.in_port = *in;
    ts.fields = rule.fields;
    ts.outputs.assign(rule.outputs.size(), 1);
    if (!tagVlanSaps(plan, rule, ts)) continue;
    ts.outputs.clear();
    ts.output_vlans.clear();
    ts.mods = {};
    lsi0_rules.push_back(ts);
  }
  CORCH_TRY(checkLsi0Conflicts(plan, lsi0_rules));
  return plan;
}

Result<GraphNetwork> NetworkManager::createGraphLsi(const GraphNetworkPlan& plan) {
  LsiSpec spec;
  spec.name = plan.lsi;
  for (const auto& port : plan.sf_ports) spec.ports.push_back(port.spec);
  spec.vlink_peer = options_.lsi0;
  spec.vlink_count = plan.vlinks.count;
  auto info = driver_.createLsi(spec);
  if (!info) return std::move(info).error().context("cannot create graph-LSI " + plan.lsi);
  GraphNetwork network;
  for (size_t i = 0; i < plan.sf_ports.size() && i < info->ports.size(); ++i) {
    network.sf_ports[{plan.sf_ports[i].sf_id, plan.sf_ports[i].port_id}] = info->ports[i];
  }
  network.lsi = std::move(*info);
  return network;
}

Result<void> NetworkManager::destroyGraphLsi(const GraphNetworkPlan& plan) {
  auto done = driver_.destroyLsi(plan.lsi);
  if (!done) return std::move(done).error().context("cannot destroy graph-LSI " + plan.lsi);
  return Ok();
}

uint64_t NetworkManager::cookieOf(uint32_t graph_index, const SplitRule& rule) {
  // Flowrules are numbered from 1 (stable across updates); forwarders carry their vlink with the
  // top bit set.
  uint64_t low = rule.vlink_forwarder ? 0x80000000u | rule.in.vlink : rule.number;
  return (static_cast<uint64_t>(graph_index) << 32) | low;
}

Result<std::vector<TsRule>> NetworkManager::resolveRules(const GraphNetworkPlan& plan,
                                                         const GraphNetwork& network,
                                                         Side side) const {
  auto number = [&](const Endpoint& end) -> Result<uint32_t> {
    if (end.kind == Endpoint::Kind::Vlink) {
      if (end.vlink >= network.lsi.vlinks.size()) {
        return Error(ErrorCode::Internal,
                     "vlink " + std::to_string(end.vlink) + " of " + plan.lsi + " is missing");
      }
      const VlinkInfo& v = network.lsi.vlinks[end.vlink];
      return side == Side::Lsi0 ? v.port_a : v.port_b;
    }
    if (end.port.kind == graph::PortRef::Kind::SfPort) {
      auto it = network.sf_ports.find({end.port.sf_id, end.port.port_id});
      if (it == network.sf_ports.end()) {
        return Error(ErrorCode::Internal, "port " + end.port.str() + " is missing");
      }
      return it->second.of_port;
    }
    auto own = network.sap_ports.find(end.port.sap_id);
    if (own != network.sap_ports.end()) return own->second.of_port;
    auto it = plan.sap_interfaces.find(end.port.sap_id);
    if (it == plan.sap_interfaces.end()) {
      return Error(ErrorCode::Internal, "SAP " + end.port.sap_id + " has no port");
    }
    return lsi0Port(it->second);
  };
  std::vector<TsRule> out;
  for (const auto& rule : plan.rules) {
    if (rule.side != side) continue;
    TsRule ts;
    ts.cookie = cookieOf(plan.index, rule);
    ts.priority = rule.priority;
    ts.fields = rule.fields;
    ts.mods = rule.mods;
    auto in = number(rule.in);
    if (!in) return std::move(in).error();
    ts.in_port = *in;
    for (const auto& end : rule.outputs) {
      auto port = number(end);
      if (!port) return std::move(port).error();
      ts.outputs.push_back(*port);
    }
    if (side == Side::Lsi0) CORCH_TRY(tagVlanSaps(plan, rule, ts));
    out.push_back(std::move(ts));
  }
  return out;
}

Result<void> NetworkManager::checkLsi0Conflicts(const GraphNetworkPlan& plan,
                                                const std::vector<TsRule>& rules) const {
  std::lock_guard lock(owners_mu_);
  std::vector<FieldError> errors;
  for (const auto& rule : rules) {
    Lsi0Key key{rule.in_port, rule.priority, rule.fields};
    for (const auto& [owned, graph_index] : lsi0_owners_) {
      if (owned == key && graph_index != plan.index) {
        // The cookie carries the flowrule's number; the pointer wants its position.
        size_t flowrule = 0;
        for (const auto& r : plan.rules) {
          if (!r.vlink_forwarder && cookieOf(plan.index, r) == rule.cookie) {
            flowrule = r.flowrule_index;
          }
        }
        errors.push_back(
            {"/sffg/flowrules/" + std::to_string(flowrule),
             "another graph (" + lsiName(graph_index) +
                 ") already has a rule with this input port, priority and match on LSI-0; "
                 "give this one another priority or a narrower match"});
        break;
      }
    }
  }
  if (!errors.empty()) {
    return Error(ErrorCode::Conflict, "the graph's rules collide with another graph's on LSI-0",
                 std::move(errors));
  }
  return Ok();
}

Result<void> NetworkManager::installGraphRules(const GraphNetworkPlan& plan,
                                               const GraphNetwork& network, Side side) {
  auto rules = resolveRules(plan, network, side);
  if (!rules) return std::move(rules).error();
  const std::string& lsi = side == Side::Lsi0 ? options_.lsi0 : plan.lsi;
  if (side == Side::Lsi0) {
    // Check and claim in one step, so that two graphs deployed at once cannot both pass.
    std::vector<TsRule> owned;
    for (const auto& r : *rules) {
      if (!(r.cookie & 0x80000000u)) owned.push_back(r);
    }
    CORCH_TRY(checkLsi0Conflicts(plan, owned));
    claimLsi0(plan.index, owned);
  }
  auto done = driver_.installRules(lsi, *rules);
  if (!done && side == Side::Lsi0) releaseLsi0(plan.index);
  if (!done) {
    return std::move(done).error().context("cannot install the rules of graph-LSI " + plan.lsi +
                                           " on " + lsi);
  }
  return Ok();
}

Result<void> NetworkManager::removeGraphRules(const GraphNetworkPlan& plan, Side side) {
  const std::string& lsi = side == Side::Lsi0 ? options_.lsi0 : plan.lsi;
  uint64_t cookie = static_cast<uint64_t>(plan.index) << 32;
  auto done = driver_.removeRulesByCookie(lsi, cookie, kGraphCookieMask);
  if (!done) return std::move(done).error().context("cannot remove rules of " + plan.lsi);
  if (side == Side::Lsi0) releaseLsi0(plan.index);
  return Ok();
}

Result<std::vector<VlinkInfo>> NetworkManager::addVlinks(const GraphNetworkPlan& plan,
                                                         const GraphNetwork& network) {
  const auto have = static_cast<uint32_t>(network.lsi.vlinks.size());
  if (plan.vlinks.count <= have) return std::vector<VlinkInfo>{};
  // Names unlike createLsi's ("<lsi>-vl<k>a") and unique per update: the first new index.
  auto made = driver_.connectLsis(options_.lsi0, plan.lsi, plan.vlinks.count - have,
                                  plan.lsi + "-vx" + std::to_string(have) + "-");
  if (!made) return std::move(made).error().context("cannot add vlinks to " + plan.lsi);
  return made;
}

Result<void> NetworkManager::removeVlinks(const std::vector<VlinkInfo>& vlinks) {
  if (vlinks.empty()) return Ok();
  return driver_.destroyVlinks(vlinks);
}

Result<std::vector<PortInfo>> NetworkManager::createSfPorts(const GraphNetworkPlan& plan,
                                                            const std::vector<SfPortPlan>& ports) {
  if (ports.empty()) return std::vector<PortInfo>{};
  std::vector<PortSpec> specs;
  for (const auto& p : ports) specs.push_back(p.spec);
  auto made = driver_.createPorts(plan.lsi, specs);
  if (!made) return std::move(made).error().context("cannot create SF ports on " + plan.lsi);
  if (made->size() != ports.size()) {
    return Error(ErrorCode::Internal, "the vSwitch made " + std::to_string(made->size()) + " of " +
                                          std::to_string(ports.size()) + " SF ports on " +
                                          plan.lsi);
  }
  return made;
}

Result<void> NetworkManager::destroySfPorts(const GraphNetworkPlan& plan,
                                            const std::vector<std::string>& names) {
  if (names.empty()) return Ok();
  auto done = driver_.destroyPorts(plan.lsi, names);
  if (!done) return std::move(done).error().context("cannot destroy SF ports of " + plan.lsi);
  return Ok();
}

Result<void> NetworkManager::installRules(const GraphNetworkPlan& plan, Side side,
                                          const std::vector<TsRule>& rules) {
  if (rules.empty()) return Ok();
  const std::string& lsi = side == Side::Lsi0 ? options_.lsi0 : plan.lsi;
  std::vector<TsRule> owned;
  if (side == Side::Lsi0) {
    for (const auto& r : rules) {
      if (!(r.cookie & 0x80000000u)) owned.push_back(r);
    }
    CORCH_TRY(checkLsi0Conflicts(plan, owned));
    claimLsi0(plan.index, owned);
  }
  auto done = driver_.installRules(lsi, rules);
  if (!done) {
    if (side == Side::Lsi0) releaseLsi0(plan.index, owned);
    return std::move(done).error().context("cannot install rules of graph-LSI " + plan.lsi +
                                           " on " + lsi);
  }
  return Ok();
}

Result<void> NetworkManager::removeRules(const GraphNetworkPlan& plan, Side side,
                                         const std::vector<TsRule>& rules) {
  if (rules.empty()) return Ok();
  const std::string& lsi = side == Side::Lsi0 ? options_.lsi0 : plan.lsi;
  auto done = driver_.removeRules(lsi, rules);
  if (!done) {
    return std::move(done).error().context("cannot remove rules of graph-LSI " + plan.lsi +
                                           " from " + lsi);
  }
  if (side == Side::Lsi0) releaseLsi0(plan.index, rules);
  return Ok();
}

Result<void> NetworkManager::tagVlanSaps(const GraphNetworkPlan& plan, const SplitRule& rule,
                                         TsRule& ts) const {
  auto vlanOf = [&](const Endpoint& end) -> uint16_t {
    if (end.kind != Endpoint::Kind::Port || end.port.kind != graph::PortRef::Kind::Sap) return 0;
    auto it = plan.sap_vlans.find(end.port.sap_id);
    return it == plan.sap_vlans.end() ? 0 : it->second;
  };
  const std::string at = "/sffg/flowrules/" + std::to_string(rule.flowrule_index);
  auto refuse = [&](const std::string& field, const std::string& why) {
    return Error(ErrorCode::Unsupported, "a flowrule conflicts with its vlan SAP's tag",
                 {FieldError{at + field, why}});
  };
  if (uint16_t vid = vlanOf(rule.in)) {
    const std::string sap = "traffic from vlan SAP " + rule.in.port.sap_id + " (VLAN " +
                            std::to_string(vid) + ") enters the graph untagged";
    Modifications& m = ts.mods;
    if (ts.fields.vlan_id) {
      return refuse("/match/vlan_id", sap + ": the SAP matches its VLAN, an inner tag cannot be");
    }
    if (m.pop_vlan) return refuse("/actions/pop_vlan", sap + ": there is no tag to pop");
    if (!m.push_vlan && m.set_vlan_id) {
      return refuse("/actions/set_vlan_id", sap + ": push_vlan a tag before setting its VLAN id");
    }
    ts.fields.vlan_id = vid;
    if (m.push_vlan) {
      // Remove the SAP's tag, push another: the same as rewriting the tag in place.
      m.set_vlan_id = m.set_vlan_id.value_or(*m.push_vlan);
      m.push_vlan.reset();
    } else {
      m.pop_vlan = true;
    }
  }
  std::vector<uint16_t> tags;
  bool tagged = false;
  for (size_t i = 0; i < rule.outputs.size(); ++i) {
    tags.push_back(vlanOf(rule.outputs[i]));
    tagged = tagged || tags.back() != 0;
  }
  if (tagged) ts.output_vlans = std::move(tags);
  return Ok();
}

Result<std::string> NetworkManager::joinGroup(const std::string& group) {
  std::lock_guard lock(groups_mu_);
  Group& g = groups_[group];
  if (g.members == 0) {
    g.lsi = options_.prefix + "-i" + std::to_string(next_group_++);
    auto made = driver_.createLsi(LsiSpec{g.lsi, {}, {}, "", 0});
    if (!made) {
      groups_.erase(group);
      return std::move(made).error().context("cannot create the LSI of internal group " + group);
    }
    // The group is one L2 segment joining its members: the switch learns where each MAC is.
    TsRule normal;
    normal.cookie = 0;
    normal.priority = 0;
    normal.outputs = {kPortNormal};
    auto installed = driver_.installRules(g.lsi, {normal});
    if (!installed) {
      (void)driver_.destroyLsi(g.lsi);
      groups_.erase(group);
      return std::move(installed).error().context("cannot forward on internal group " + group);
    }
    CORCH_LOG(lg, Info) << "internal group " << group << " up on " << g.lsi;
  }
  ++g.members;
  return g.lsi;
}

Result<std::pair<std::string, uint32_t>> NetworkManager::findGroupLsi(const std::string& group,
                                                                      const std::string& port) {
  std::string lsi;
  {
    std::lock_guard lock(groups_mu_);
    auto it = groups_.find(group);
    if (it != groups_.end()) lsi = it->second.lsi;
  }
  std::vector<std::string> candidates;
  if (!lsi.empty()) {
    candidates.push_back(lsi);
  } else {
    auto existing = driver_.listLsis();
    if (!existing) return std::move(existing).error();
    for (const auto& name : *existing) {
      if (name.starts_with(options_.prefix + "-i")) candidates.push_back(name);
    }
  }
  for (const auto& name : candidates) {
    auto ports = driver_.listPorts(name);
    if (!ports) continue;
    for (const auto& p : *ports) {
      if (p.name == port) return std::make_pair(name, p.of_port);
    }
  }
  return Error(ErrorCode::Conflict,
               "the link " + port + " to internal group " + group + " is gone");
}

void NetworkManager::adoptGroupMember(const std::string& group, const std::string& lsi) {
  std::lock_guard lock(groups_mu_);
  Group& g = groups_[group];
  if (g.members == 0) {
    g.lsi = lsi;
    // The group's rule, so that this driver wants it (syncRules, a heal after ovs-vswitchd
    // restarts): an add of the rule in place changes nothing.
    TsRule normal;
    normal.outputs = {kPortNormal};
    auto installed = driver_.installRules(lsi, {normal});
    if (!installed) CORCH_LOG(lg, Warn) << installed.error().message();
    CORCH_LOG(lg, Info) << "internal group " << group << " kept on " << lsi;
  }
  ++g.members;
}

Result<void> NetworkManager::leaveGroup(const std::string& group) {
  std::lock_guard lock(groups_mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return Ok();
  if (--it->second.members > 0) return Ok();
  auto done = driver_.destroyLsi(it->second.lsi);
  if (!done) {
    ++it->second.members;
    return std::move(done).error().context("cannot remove the LSI of internal group " + group);
  }
  CORCH_LOG(lg, Info) << "internal group " << group << " removed with its last member";
  groups_.erase(it);
  return Ok();
}

std::map<std::string, std::string> NetworkManager::internalGroups() const {
  std::lock_guard lock(groups_mu_);
  std::map<std::string, std::string> out;
  for (const auto& [name, g] : groups_) out[name] = g.lsi;
  return out;
}

Result<SapPortsMade> NetworkManager::createSapPorts(const GraphNetworkPlan& plan,
                                                    const std::vector<SapPortPlan>& saps) {
  SapPortsMade made;
  auto fail = [&](Error error) -> Error {
    auto undone = destroySapPorts(plan, made);
    if (!undone) {
      CORCH_LOG(lg, Error) << "cannot undo SAP ports of " << plan.lsi << ": "
                           << undone.error().message();
    }
    return error;
  };
  // Tunnel and internal ports: one batch.
  std::vector<PortSpec> specs;
  std::vector<const SapPortPlan*> owners;
  for (const auto& sap : saps) {
    if (sap.type == graph::SapType::Gre || sap.type == graph::SapType::HostStack) {
      specs.push_back(sap.spec);
      owners.push_back(&sap);
    }
  }
  if (!specs.empty()) {
    auto ports = driver_.createPorts(plan.lsi, specs);
    if (!ports) return std::move(ports).error().context("cannot create SAP ports on " + plan.lsi);
    for (size_t i = 0; i < owners.size() && i < ports->size(); ++i) {
      SapPortMade m;
      m.sap = *owners[i];
      m.ports[owners[i]->sap_id] = (*ports)[i];
      made.push_back(std::move(m));
    }
  }
  // Host-stack ports in the node's own stack: up, with their address.
  for (const auto* owner : owners) {
    if (owner->type != graph::SapType::HostStack) continue;
    const std::string& ifname = owner->spec.name;
    auto up = platform::setLinkUp(ifname);
    if (!up) return fail(std::move(up).error().context("host-stack SAP " + owner->sap_id));
    if (owner->address) {
      auto added = platform::addAddress(
          ifname, owner->address->addr.str() + "/" + std::to_string(owner->address->length));
      if (!added) return fail(std::move(added).error().context("host-stack SAP " + owner->sap_id));
    }
    if (owner->dhcp) {
      // Leased once the graph's rules lead to a server: not waited for.
      auto started = startDhcp(ifname);
      if (!started)
        return fail(std::move(started).error().context("host-stack SAP " + owner->sap_id));
    }
  }
  for (const auto& sap : saps) {
    if (sap.type == graph::SapType::Internal) {
      auto lsi = joinGroup(sap.group);
      if (!lsi) return fail(std::move(lsi).error());
      SapPortMade m;
      m.sap = sap;
      m.joined = true;
      made.push_back(m);
      auto link = driver_.connectLsis(*lsi, plan.lsi, 1, sap.spec.name);
      if (!link || link->size() != 1) {
        return fail(
            link ? Error(ErrorCode::Internal, "no link to internal group " + sap.group)
                 : std::move(link).error().context("cannot join internal group " + sap.group));
      }
      const VlinkInfo& v = link->front();
      made.back().link = v;
      made.back().ports[sap.sap_id] = PortInfo{v.name_b, v.port_b, ""};
    } else if (sap.type == graph::SapType::Junction && sap.first) {
      auto link = driver_.connectLsis(plan.lsi, plan.lsi, 1, sap.spec.name);
      if (!link || link->size() != 1) {
        return fail(link ? Error(ErrorCode::Internal, "no junction " + sap.sap_id)
                         : std::move(link).error().context("cannot make junction " + sap.sap_id));
      }
      const VlinkInfo& v = link->front();
      SapPortMade m;
      m.sap = sap;
      m.link = v;
      m.ports[sap.sap_id] = PortInfo{v.name_a, v.port_a, ""};
      m.ports[sap.peer] = PortInfo{v.name_b, v.port_b, ""};
      made.push_back(std::move(m));
    }
  }
  return made;
}

Result<void> NetworkManager::destroySapPorts(const GraphNetworkPlan& plan,
                                             const SapPortsMade& made) {
  Result<void> result = Ok();
  auto keep = [&](Result<void> r) {
    if (!r && result) result = std::move(r);
  };
  std::vector<VlinkInfo> links;
  std::vector<std::string> ports;
  for (const auto& m : made) {
    if (m.link) {
      links.push_back(*m.link);
    } else {
      for (const auto& [sap, port] : m.ports) ports.push_back(port.name);
    }
  }
  for (const auto& m : made) {
    if (m.sap.dhcp) stopDhcp(m.sap.spec.name);
  }
  if (!links.empty()) keep(driver_.destroyVlinks(links));
  if (!ports.empty()) keep(driver_.destroyPorts(plan.lsi, ports));
  for (const auto& m : made) {
    if (m.joined) keep(leaveGroup(m.sap.group));
  }
  if (!result) return std::move(result).error().context("cannot remove SAP ports of " + plan.lsi);
  return Ok();
}

void NetworkManager::claimLsi0(uint32_t graph_index, const std::vector<TsRule>& rules) {
  std::lock_guard lock(owners_mu_);
  for (const auto& r : rules) {
    std::pair<Lsi0Key, uint32_t> owner{{r.in_port, r.priority, r.fields}, graph_index};
    if (std::find(lsi0_owners_.begin(), lsi0_owners_.end(), owner) == lsi0_owners_.end()) {
      lsi0_owners_.push_back(std::move(owner));
    }
  }
}

void NetworkManager::releaseLsi0(uint32_t graph_index, const std::vector<TsRule>& rules) {
  std::lock_guard lock(owners_mu_);
  for (const auto& r : rules) {
    Lsi0Key key{r.in_port, r.priority, r.fields};
    std::erase_if(lsi0_owners_, [&](const auto& owner) {
      return owner.second == graph_index && owner.first == key;
    });
  }
}

void NetworkManager::releaseLsi0(uint32_t graph_index) {
  std::lock_guard lock(owners_mu_);
  std::erase_if(lsi0_owners_, [&](const auto& owner) { return owner.second == graph_index; });
}

}  // namespace corch::network
