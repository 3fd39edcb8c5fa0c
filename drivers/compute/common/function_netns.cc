// A function's network namespace and its ports (function_netns.h).
#include "compute/common/function_netns.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <set>
#include <utility>

#include "platform/netlink.h"
#include "platform/netns.h"

namespace corch::drivers::common {

using platform::RouteSocket;
using platform::UniqueFd;

// Everything the rollback needs, behind one pointer so that a moved-from FunctionNetns owns
// nothing and undoes nothing.
struct FunctionNetns::State {
  UniqueFd node_fd;
  UniqueFd ns_fd;
  std::optional<RouteSocket> inner;  // a netlink socket inside the function's namespace
  std::string created;               // the name of the namespace create() made, else empty
  std::vector<std::pair<std::string, std::string>> moved;  // (name inside, name outside)
  bool committed = false;
};

std::string ifnameInside(size_t port_index) { return "eth" + std::to_string(port_index); }

Result<UniqueFd> openNodeNetns(const std::string& name) {
  if (!name.empty()) return platform::openNetns(name);
  UniqueFd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!fd) return errnoError("cannot open corchd's own network namespace", errno);
  return fd;
}

Result<void> checkVethPorts(std::string_view driver, const std::vector<SfPortBinding>& ports) {
  for (const auto& port : ports) {
    if (port.technology != PortTechnology::Veth) {
      return Error(ErrorCode::Unsupported,
                   "port " + port.port_id + " is a " + std::string(toString(port.technology)) +
                       " port; the " + std::string(driver) + " driver takes veth ends only");
    }
    CORCH_TRY(platform::checkIfname(port.ifname));
  }
  return Ok();
}

Result<void> checkVethEnds(int node_fd, const std::vector<SfPortBinding>& ports) {
  auto node = RouteSocket::openIn(node_fd);
  if (!node.ok()) return std::move(node).error();
  for (const auto& port : ports) {
    if (port.technology != PortTechnology::Veth) continue;
    auto exists = node->linkExists(port.ifname);
    if (!exists.ok()) return std::move(exists).error();
    if (!*exists) {
      return Error(ErrorCode::NotFound,
                   "the interface " + port.ifname + " of port " + port.port_id + " does not exist");
    }
  }
  return Ok();
}

Result<void> checkPortsInside(int ns_fd, const std::string& instance,
                              const std::vector<SfPortBinding>& ports) {
  auto inner = RouteSocket::openIn(ns_fd);
  if (!inner.ok()) return std::move(inner).error();
  auto links = inner->listLinks();
  if (!links.ok()) return std::move(links).error();
  auto veth = [&](const std::string& name) {
    return std::any_of(links->begin(), links->end(), [&](const platform::LinkInfo& link) {
      return link.name == name && link.kind == "veth";
    });
  };
  std::set<std::string> expected;
  for (size_t i = 0; i < ports.size(); ++i) {
    if (ports[i].technology != PortTechnology::Veth) continue;
    const std::string inside = ifnameInside(i);
    if (!veth(inside)) {
      return Error(ErrorCode::Conflict, "port " + ports[i].port_id +
                                            " is not attached to function " + instance +
                                            ": its namespace has no veth " + inside);
    }
    expected.insert(inside);
  }
  // A veth eth<k> beyond the spec's: the function has a port the spec has not (a script's own
  // links have other names).
  for (const auto& link : *links) {
    const std::string_view name = link.name;
    if (link.kind != "veth" || !name.starts_with("eth") || name.size() == 3 ||
        name.find_first_not_of("0123456789", 3) != std::string_view::npos) {
      continue;
    }
    if (!expected.count(link.name)) {
      return Error(ErrorCode::Conflict, "function " + instance + " has an interface " + link.name +
                                            " that is no port of its spec");
    }
  }
  return Ok();
}

Result<std::string> netnsIdentity(int ns_fd) {
  struct stat st;
  if (::fstat(ns_fd, &st) != 0) return errnoError("cannot look at a network namespace", errno);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

Result<void> probeNetns(std::string_view driver, const std::string& node_netns) {
  if (auto r = platform::prepareNetnsDir(); !r) {
    return Error(ErrorCode::Unavailable,
                 "named network namespaces are not usable here: " + r.error().message());
  }
  if (node_netns.empty()) return Ok();
  if (auto fd = platform::openNetns(node_netns); !fd) {
    return Error(ErrorCode::Unavailable, "the node namespace of the " + std::string(driver) +
                                             " driver is not usable: " + fd.error().message());
  }
  return Ok();
}

FunctionNetns::FunctionNetns(std::unique_ptr<State> state) : state_(std::move(state)) {}

FunctionNetns::FunctionNetns(FunctionNetns&&) noexcept = default;

FunctionNetns::~FunctionNetns() {
  if (state_ && !state_->committed) rollback();
}

Result<FunctionNetns> FunctionNetns::create(const std::string& name, UniqueFd node_fd) {
  CORCH_TRY(platform::createNetns(name));
  // From here on, an early return deletes the namespace again (the destructor of `ns`).
  FunctionNetns ns(std::make_unique<State>());
  ns.state_->node_fd = std::move(node_fd);
  ns.state_->created = name;
  auto ns_fd = platform::openNetns(name);
  if (!ns_fd.ok()) return std::move(ns_fd).error();
  ns.state_->ns_fd = std::move(ns_fd).value();
  auto inner = RouteSocket::openIn(ns.state_->ns_fd.get());
  if (!inner.ok()) return std::move(inner).error();
  ns.state_->inner.emplace(std::move(inner).value());
  CORCH_TRY(ns.state_->inner->setLinkUp("lo"));
  return ns;
}

Result<FunctionNetns> FunctionNetns::createWithPorts(const std::string& name,
                                                     const std::string& node_netns,
                                                     const std::vector<SfPortBinding>& ports) {
  auto node_fd = openNodeNetns(node_netns);
  if (!node_fd.ok()) return std::move(node_fd).error();
  CORCH_TRY(checkVethEnds(node_fd->get(), ports));
  auto ns = create(name, std::move(node_fd).value());
  if (!ns.ok()) return ns;
  CORCH_TRY(ns->attachPorts(ports));
  return ns;
}

Result<FunctionNetns> FunctionNetns::adopt(UniqueFd ns_fd, UniqueFd node_fd) {
  FunctionNetns ns(std::make_unique<State>());
  ns.state_->node_fd = std::move(node_fd);
  ns.state_->ns_fd = std::move(ns_fd);
  auto inner = RouteSocket::openIn(ns.state_->ns_fd.get());
  if (!inner.ok()) return std::move(inner).error();
  ns.state_->inner.emplace(std::move(inner).value());
  return ns;
}

Result<void> FunctionNetns::attachPorts(const std::vector<SfPortBinding>& ports) {
  State& s = *state_;
  auto node = RouteSocket::openIn(s.node_fd.get());
  if (!node.ok()) return std::move(node).error();
  std::vector<std::string> attached;
  for (size_t i = 0; i < ports.size(); ++i) {
    if (ports[i].technology != PortTechnology::Veth) continue;
    const std::string inside = ifnameInside(i);
    CORCH_TRY(node->moveLinkToNetns(ports[i].ifname, s.ns_fd.get(), inside));
    s.moved.emplace_back(inside, ports[i].ifname);
    attached.push_back(inside);
  }
  for (const auto& inside : attached) {
    CORCH_TRY(s.inner->setLinkUp(inside));
    CORCH_TRY(platform::disableTxChecksum(s.ns_fd.get(), inside));
  }
  return Ok();
}

void FunctionNetns::commit() { state_->committed = true; }

void FunctionNetns::rollback() {
  State& s = *state_;
  if (s.inner) {
    for (auto it = s.moved.rbegin(); it != s.moved.rend(); ++it) {
      (void)s.inner->moveLinkToNetns(it->first, s.node_fd.get(), it->second);
    }
  }
  if (!s.created.empty()) (void)platform::deleteNetns(s.created);
}

namespace {

// Deletes every link of the namespace but lo; what fails is logged and skipped.
void deleteLinksIn(int ns_fd, const std::string& name, const log::Logger& lg) {
  auto inner = RouteSocket::openIn(ns_fd);
  auto links = inner.ok() ? inner->listLinks()
                          : Result<std::vector<platform::LinkInfo>>(std::move(inner).error());
  if (!links.ok()) {
    CORCH_LOG(lg, Warn) << "destroying " << name << ": " << links.error().message();
    return;
  }
  for (const auto& link : *links) {
    if (link.name == "lo") continue;
    if (auto r = inner->deleteLink(link.name); !r) {
      CORCH_LOG(lg, Warn) << "destroying " << name << ": " << r.error().message();
    }
  }
}

}  // namespace

Result<bool> destroyFunctionNetns(const std::string& name, const log::Logger& lg) {
  if (!platform::netnsExists(name)) return false;
  if (auto ns_fd = platform::openNetns(name); ns_fd.ok()) {
    auto killed = platform::killProcessesInNetns(ns_fd->get());
    if (!killed.ok()) return std::move(killed).error();
    deleteLinksIn(ns_fd->get(), name, lg);
  }
  CORCH_TRY(platform::deleteNetns(name));
  return true;
}

Result<std::vector<std::string>> functionNetnsNames(std::string_view prefix) {
  auto all = platform::listNetns();
  if (!all.ok()) return std::move(all).error();
  std::vector<std::string> out;
  for (auto& name : *all) {
    if (name.starts_with(prefix)) out.push_back(std::move(name));
  }
  return out;
}

Result<platform::UniqueFd> openFunctionNetnsToAdopt(const std::string& instance,
                                                    const std::string& doing) {
  if (auto r = platform::checkNetnsName(instance); !r) return r.error().context(doing);
  if (!platform::netnsExists(instance)) {
    return Error(ErrorCode::NotFound, doing + ": it has no namespace " + instance);
  }
  auto ns_fd = platform::openNetns(instance);
  if (!ns_fd.ok()) return ns_fd.error().context(doing);
  return std::move(*ns_fd);
}

}  // namespace corch::drivers::common
