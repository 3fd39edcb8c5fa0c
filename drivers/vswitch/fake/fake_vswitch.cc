// The 'fake' vSwitch driver: an in-memory switch for fast unit tests of the core (DESIGN 7,
// STYLE "fake drivers"). It keeps LSIs, ports, vlinks and rules as the contract of vswitch.h says
// a real switch would, and can be told to fail: option "fail" = "createLsi", "installRules:<lsi>"
// makes that call fail once it is reached.
//
// A restart: option "switch" = a name makes the fakes given that name share one switch, which
// lives as long as the process (as a real switch outlives corchd). A fake made after another one
// is gone finds its LSIs, ports and rules and, like a restarted driver, wants no rule on them
// (syncRules() removes them) until its own installRules() calls. Without the option, each fake
// has a switch of its own.
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "corch/driver_registry.h"

namespace corch::drivers::fake_vswitch {
namespace {

// Whether two rules are the same flow for OpenFlow (an add of one replaces the other, a strict
// delete of one removes the other): the same priority and match.
bool sameFlow(const TsRule& x, const TsRule& y) {
  return x.priority == y.priority && x.in_port == y.in_port && x.fields == y.fields;
}

// Puts a rule in a table, in place of the one of the same flow.
void putRule(std::vector<TsRule>& table, const TsRule& rule) {
  std::erase_if(table, [&](const TsRule& x) { return sameFlow(x, rule); });
  table.push_back(rule);
}

struct Lsi {
  std::map<std::string, PortInfo> ports;  // by name
  uint32_t next_port = 1;
  std::vector<TsRule> rules;
};

struct Peer {
  std::string lsi_a, lsi_b, name_b;
};

// What a real switch would keep across a restart of corchd.
struct Switch {
  std::mutex mu;
  std::map<std::string, Lsi> lsis;
  std::map<std::string, Peer> peers;  // vlink (its end on lsi a) -> where it runs
};

// The switch of a fake: a new one, or the one of that name.
std::shared_ptr<Switch> switchNamed(const std::string& name) {
  if (name.empty()) return std::make_shared<Switch>();
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<Switch>> named;
  std::lock_guard lock(mu);
  auto& slot = named[name];
  if (!slot) slot = std::make_shared<Switch>();
  return slot;
}

class FakeVSwitch final : public VSwitchDriver {
 public:
  explicit FakeVSwitch(const DriverOptions& options)
      : fail_(options.getOr("fail", "")),
        sw_(switchNamed(options.getOr("switch", ""))),
        mu_(sw_->mu),
        lsis_(sw_->lsis),
        peers_(sw_->peers) {}

  std::string_view name() const override { return "fake"; }
  Result<void> probe() override { return Ok(); }

  Result<LsiInfo> createLsi(const LsiSpec& spec) override {
    std::lock_guard lock(mu_);
    if (fail_ == "createLsi") return Error(ErrorCode::Unavailable, "fake: createLsi fails");
    if (lsis_.count(spec.name)) {
      return Error(ErrorCode::AlreadyExists, "fake: LSI " + spec.name + " exists");
    }
    if (!spec.vlink_peer.empty() && !lsis_.count(spec.vlink_peer)) {
      return Error(ErrorCode::NotFound, "fake: no LSI " + spec.vlink_peer);
    }
    wanted_.erase(spec.name);  // a new LSI starts empty
    Lsi& lsi = lsis_[spec.name];
    LsiInfo info{spec.name, {}, {}, {}};
    for (const auto& ifname : spec.interfaces) info.interfaces.push_back(addPort(lsi, ifname, ""));
    for (const auto& port : spec.ports)
      info.ports.push_back(addPort(lsi, port.name, port.name + "f"));
    for (uint32_t i = 0; i < spec.vlink_count; ++i) {
      info.vlinks.push_back(
          addVlink(spec.vlink_peer, spec.name, spec.name + "-vl" + std::to_string(i)));
    }
    return info;
  }

  Result<void> destroyLsi(const std::string& name) override {
    std::lock_guard lock(mu_);
    wanted_.erase(name);
    if (!lsis_.erase(name)) return Ok();
    // Remove the far ends of vlinks.
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (it->second.lsi_a == name || it->second.lsi_b == name) {
        for (auto& [lsi_name, lsi] : lsis_) {
          lsi.ports.erase(it->first);
          lsi.ports.erase(it->second.name_b);
        }
        it = peers_.erase(it);
      } else {
        ++it;
      }
    }
    return Ok();
  }

  Result<std::vector<std::string>> listLsis() override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [name, lsi] : lsis_) out.push_back(name);
    return out;
  }

  Result<std::vector<VlinkInfo>> connectLsis(const std::string& a, const std::string& b, uint32_t n,
                                             const std::string& prefix) override {
    std::lock_guard lock(mu_);
    if (!lsis_.count(a) || !lsis_.count(b)) return Error(ErrorCode::NotFound, "fake: no such LSI");
    std::vector<VlinkInfo> out;
    for (uint32_t i = 0; i < n; ++i) out.push_back(addVlink(a, b, prefix + std::to_string(i)));
    return out;
  }

  Result<void> destroyVlinks(const std::vector<VlinkInfo>& vlinks) override {
    std::lock_guard lock(mu_);
    for (const auto& v : vlinks) {
      for (auto& [name, lsi] : lsis_) {
        lsi.ports.erase(v.name_a);
        lsi.ports.erase(v.name_b);
      }
      peers_.erase(v.name_a);
    }
    return Ok();
  }

  Result<std::vector<PortInfo>> createPorts(const std::string& lsi_name,
                                            const std::vector<PortSpec>& ports) override {
    std::lock_guard lock(mu_);
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Error(ErrorCode::NotFound, "fake: no LSI " + lsi_name);
    std::vector<PortInfo> out;
    for (const auto& p : ports) {
      if (it->second.ports.count(p.name)) {
        return Error(ErrorCode::AlreadyExists, "fake: port " + p.name + " exists on " + lsi_name);
      }
    }
    for (const auto& p : ports) out.push_back(addPort(it->second, p.name, p.name + "f"));
    return out;
  }

  Result<void> destroyPorts(const std::string& lsi_name,
                            const std::vector<std::string>& names) override {
    std::lock_guard lock(mu_);
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Ok();
    for (const auto& n : names) it->second.ports.erase(n);
    return Ok();
  }

  Result<uint32_t> portNumber(const std::string& lsi_name, const std::string& port) override {
    std::lock_guard lock(mu_);
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Error(ErrorCode::NotFound, "fake: no LSI " + lsi_name);
    auto p = it->second.ports.find(port);
    if (p == it->second.ports.end()) {
      return Error(ErrorCode::NotFound, "fake: no port " + port + " on " + lsi_name);
    }
    return p->second.of_port;
  }

  Result<std::vector<PortInfo>> listPorts(const std::string& lsi_name) override {
    std::lock_guard lock(mu_);
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Error(ErrorCode::NotFound, "fake: no LSI " + lsi_name);
    std::vector<PortInfo> out;
    for (const auto& [name, port] : it->second.ports) out.push_back(port);
    std::sort(out.begin(), out.end(),
              [](const PortInfo& x, const PortInfo& y) { return x.of_port < y.of_port; });
    return out;
  }

  Result<void> checkRules(const std::vector<TsRule>&) override { return Ok(); }

  Result<void> installRules(const std::string& lsi_name,
                            const std::vector<TsRule>& rules) override {
    std::lock_guard lock(mu_);
    if (fail_ == "installRules:" + lsi_name) {
      return Error(ErrorCode::Unavailable, "fake: installRules fails on " + lsi_name);
    }
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Error(ErrorCode::NotFound, "fake: no LSI " + lsi_name);
    // An OpenFlow add: a rule with the same priority and match replaces the installed one.
    for (const auto& r : rules) {
      putRule(it->second.rules, r);
      putRule(wanted_[lsi_name], r);
    }
    return Ok();
  }

  Result<void> removeRules(const std::string& lsi_name, const std::vector<TsRule>& rules) override {
    std::lock_guard lock(mu_);
    if (auto wanted = wanted_.find(lsi_name); wanted != wanted_.end()) {
      for (const auto& r : rules) {
        std::erase_if(wanted->second, [&](const TsRule& x) { return sameFlow(x, r); });
      }
    }
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Ok();
    for (const auto& r : rules) {
      std::erase_if(it->second.rules, [&](const TsRule& x) { return sameFlow(x, r); });
    }
    return Ok();
  }

  Result<void> removeRulesByCookie(const std::string& lsi_name, uint64_t cookie,
                                   uint64_t mask) override {
    std::lock_guard lock(mu_);
    auto matches = [&](const TsRule& x) { return (x.cookie & mask) == (cookie & mask); };
    if (auto wanted = wanted_.find(lsi_name); wanted != wanted_.end()) {
      std::erase_if(wanted->second, matches);
    }
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Ok();
    std::erase_if(it->second.rules, matches);
    return Ok();
  }

  Result<std::vector<TsRule>> dumpRules(const std::string& lsi_name) override {
    std::lock_guard lock(mu_);
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Error(ErrorCode::NotFound, "fake: no LSI " + lsi_name);
    return it->second.rules;
  }

  Result<void> syncRules(const std::string& lsi_name) override {
    std::lock_guard lock(mu_);
    auto it = lsis_.find(lsi_name);
    if (it == lsis_.end()) return Error(ErrorCode::NotFound, "fake: no LSI " + lsi_name);
    const auto& wanted = wanted_[lsi_name];
    auto& installed = it->second.rules;
    // Flows not wanted, or not as wanted, go; the wanted ones missing then come; the others stay
    // as they are.
    std::erase_if(installed, [&](const TsRule& x) {
      return std::none_of(wanted.begin(), wanted.end(), [&](const TsRule& w) { return w == x; });
    });
    for (const auto& w : wanted) {
      if (std::find(installed.begin(), installed.end(), w) == installed.end()) {
        installed.push_back(w);
      }
    }
    return Ok();
  }

 private:
  PortInfo addPort(Lsi& lsi, const std::string& name, const std::string& peer) {
    PortInfo port{name, lsi.next_port++, peer};
    lsi.ports[name] = port;
    return port;
  }

  VlinkInfo addVlink(const std::string& a, const std::string& b, const std::string& name) {
    VlinkInfo v;
    v.name_a = name + "a";
    v.port_a = addPort(lsis_[a], v.name_a, "").of_port;
    v.name_b = name + "b";
    v.port_b = addPort(lsis_[b], v.name_b, "").of_port;
    peers_[v.name_a] = Peer{a, b, v.name_b};
    return v;
  }

  const std::string fail_;
  const std::shared_ptr<Switch> sw_;
  // The switch's, by their old names.
  std::mutex& mu_;
  std::map<std::string, Lsi>& lsis_;
  std::map<std::string, Peer>& peers_;
  // This fake's wanted flow table of each LSI (syncRules()), as the ovs driver keeps it: what its
  // installRules() calls installed minus what its removals removed. Guarded by mu_.
  std::map<std::string, std::vector<TsRule>> wanted_;
};

}  // namespace

void registerDriver(DriverRegistry& registry) {
  (void)registry.addVSwitch(
      "fake", [](const DriverOptions& options) -> Result<std::unique_ptr<VSwitchDriver>> {
        return std::unique_ptr<VSwitchDriver>(new FakeVSwitch(options));
      });
}

}  // namespace corch::drivers::fake_vswitch
