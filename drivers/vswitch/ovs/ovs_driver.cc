#include "ovs_driver.h"

#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <set>
#include <thread>

#include "corch/driver_registry.h"
#include "corch/log.h"
#include "openflow.h"
#include "platform/netlink.h"

namespace corch::drivers::ovs {
namespace {

corch::log::Logger lg("ovs");

using openflow::FlowModCommand;

// How long an undo after a failure may take: it has a deadline of its own, the call's being
// spent when the failure was a timeout.
constexpr std::chrono::milliseconds kUndoTimeout{5000};
// Extra time for an OVSDB "wait" to answer "timed out" itself before the client gives up.
constexpr std::chrono::milliseconds kWaitGrace{1000};
// How many threads delete veth pairs at once (see deleteVeths()).
constexpr size_t kDeleteThreads = 8;
// The backoff of heals: the first attempt at once, the next after 20 ms, doubling up to 100 ms (an
// attempt costs a connect to a unix socket and at most one small OVSDB read; what matters is
// noticing at once that ovs-vswitchd is back).
constexpr std::chrono::milliseconds kHealFirstBackoff{20};
constexpr std::chrono::milliseconds kHealMaxBackoff{100};
// A failing heal says so again every this many attempts (about every 10 s).
constexpr int kHealWarnEvery = 100;

int64_t msSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

std::string dirOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The code of a rule the switch refused.
ErrorCode codeOf(const openflow::ErrorReply& e) {
  constexpr uint16_t kFlowModFailed = 5;
  constexpr uint16_t kTableFull = 1;
  if (e.type == kFlowModFailed && e.code == kTableFull) return ErrorCode::ResourceExhausted;
  return ErrorCode::InvalidArgument;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Options

Result<OvsOptions> OvsOptions::parse(const DriverOptions& options) {
  OvsOptions out;
  auto endpoint = Endpoint::parse(options.getOr("ovsdb", "unix:/var/run/openvswitch/db.sock"));
  if (!endpoint.ok()) return endpoint.error().context("invalid ovs option \"ovsdb\"");
  out.ovsdb = *endpoint;
  if (auto rundir = options.get("rundir")) {
    if (rundir->empty()) {
      return Error(ErrorCode::InvalidArgument, "invalid ovs option \"rundir\": it is empty");
    }
    out.rundir = *rundir;
  } else if (out.ovsdb.kind == Endpoint::Kind::Unix) {
    out.rundir = dirOf(out.ovsdb.path);
  } else {
    out.rundir = "/var/run/openvswitch";
  }
  out.datapath = options.getOr("datapath", "netdev");
  if (out.datapath != "netdev" && out.datapath != "system") {
    return Error(ErrorCode::InvalidArgument, "invalid ovs option \"datapath\": \"" + out.datapath +
                                                 "\" is neither netdev nor system");
  }
  if (auto timeout = options.get("timeout-ms")) {
    auto ms = parseNumber(*timeout, 3600 * 1000);
    if (!ms || *ms == 0) {
      return Error(ErrorCode::InvalidArgument,
                   "invalid ovs option \"timeout-ms\": \"" + *timeout +
                       "\" is not a number of milliseconds (1 to 3600000)");
    }
    out.timeout = std::chrono::milliseconds(*ms);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Driver

OvsDriver::OvsDriver(OvsOptions options)
    : options_(std::move(options)),
      context_{options_.datapath, options_.rundir},
      ovsdb_(options_.ovsdb) {
  ovsdb_.setLostHandler([this](const Error& why) { onOvsdbLost(why); });
  healer_ = std::thread([this] { healerLoop(); });
}

OvsDriver::~OvsDriver() {
  {
    std::lock_guard lock(heal_mu_);
    stopping_ = true;
  }
  heal_cv_.notify_all();
  healer_.join();
  // The connections close as members go; they report nothing when closed so, and heal_mu_
  // outlives them for a loss reported meanwhile.
}

Result<void> OvsDriver::probe() {
  auto d = deadline();
  auto db = snapshot(d);
  if (!db.ok()) return db.error().context("the ovs driver cannot use Open vSwitch");
  if (db->datapath_types.empty()) {
    return Error(ErrorCode::Unavailable,
                 "the ovs driver cannot use Open vSwitch: ovs-vswitchd has not registered its "
                 "datapath types (is it running?)");
  }
  if (!db->datapath_types.count(options_.datapath)) {
    std::string have;
    for (const auto& t : db->datapath_types) have += (have.empty() ? "" : ", ") + t;
    return Error(ErrorCode::Unsupported,
                 "the ovs driver cannot use Open vSwitch: it has no "
                 "datapath type " +
                     options_.datapath + " (only " + have + ")");
  }
  struct stat st {};
  if (::stat(options_.rundir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(ErrorCode::Unavailable, "the ovs driver cannot use Open vSwitch: its run folder " +
                                             options_.rundir + " (option rundir) does not exist");
  }
  return Ok();
}

Result<rapidjson::Document> OvsDriver::read(const rapidjson::Value& ops, Deadline deadline) {
  auto result = ovsdb_.transact(kDatabase, ops, deadline);
  if (!result.ok() && result.error().code() == ErrorCode::Unavailable) {
    result = ovsdb_.transact(kDatabase, ops, deadline);
  }
  return result;
}

Result<DbSnapshot> OvsDriver::snapshot(Deadline deadline) {
  auto result = read(DbSnapshot::query(), deadline);
  if (!result.ok()) return std::move(result).error();
  return DbSnapshot::parse(*result);
}

Result<CfgCounters> OvsDriver::transactChange(const DbChange& change, Deadline deadline) {
  auto result = ovsdb_.transact(kDatabase, buildTransaction(change), deadline);
  if (!result.ok()) return std::move(result).error();
  return parseCfgCounters(*result);
}

Result<void> OvsDriver::commit(const DbChange& change, Deadline deadline, bool* committed,
                               size_t ports) {
  if (committed) *committed = false;
  auto counters = transactChange(change, deadline);
  if (!counters.ok()) return std::move(counters).error();
  if (committed) *committed = true;
  // ovs-vswitchd needs time in proportion to the ports it adds or removes (2.6 s for 200 netdev
  // ports here, several times that on a loaded machine): a fixed deadline fails large graphs.
  Deadline applied_by = std::max<Deadline>(
      deadline, Clock::now() + options_.timeout + static_cast<int64_t>(ports) * kApplyPerPort);
  return waitApplied(*counters, applied_by);
}

Result<void> OvsDriver::waitApplied(CfgCounters counters, Deadline deadline) {
  // cur_cfg reaches (or passes, when another client bumped next_cfg too) the next_cfg of our
  // transaction once ovs-vswitchd has applied it. ovsdb-server holds each "wait" until cur_cfg
  // changes: no polling.
  const int64_t target = counters.next_cfg;
  int64_t cur = counters.cur_cfg;
  while (cur < target) {
    int64_t left = remainingMs(deadline);
    auto timeout = [&] {
      return Error(ErrorCode::Timeout, "ovs-vswitchd did not apply the change within " +
                                           std::to_string(options_.timeout.count()) +
                                           " ms (cur_cfg " + std::to_string(cur) +
                                           ", waiting for " + std::to_string(target) +
                                           "): is ovs-vswitchd running?");
    };
    if (left <= 0) return timeout();
    auto result = ovsdb_.transact(kDatabase, curCfgChangeQuery(cur, left), deadline + kWaitGrace);
    if (!result.ok()) {
      if (result.error().code() == ErrorCode::Timeout) return timeout();
      return std::move(result).error();
    }
    auto now = parseCfgCounters(*result);
    if (!now.ok()) return std::move(now).error();
    cur = now->cur_cfg;
  }
  return Ok();
}

Result<std::map<std::string, uint32_t>> OvsDriver::checkNewPorts(const DbChange& change,
                                                                 Deadline deadline) {
  std::map<std::string, uint32_t> numbers;
  auto names = change.newPortNames();
  if (names.empty()) return numbers;
  auto result = ovsdb_.transact(kDatabase, interfacesQuery(names), deadline);
  if (!result.ok()) return std::move(result).error();
  auto rows = parseInterfaces(*result);
  if (!rows.ok()) return std::move(rows).error();
  for (const auto& on : change.add) {
    for (const auto& p : on.ports) {
      if (p.number == 0) continue;
      auto it = rows->find(p.name);
      if (it == rows->end()) {
        return Error(ErrorCode::Conflict, "port " + p.name + " disappeared as it was created");
      }
      const InterfaceRow& row = it->second;
      if (!row.error.empty() || !row.ofport || *row.ofport <= 0) {
        std::string why = row.error.empty() ? "ovs-vswitchd gave it no port number" : row.error;
        ErrorCode code = why.find("No such device") != std::string::npos ? ErrorCode::NotFound
                                                                         : ErrorCode::Internal;
        return Error(code,
                     "Open vSwitch cannot add port " + p.name + " to " + on.bridge + ": " + why);
      }
      if (*row.ofport != p.number) {
        CORCH_LOG(lg, Info) << "port " << p.name << " on " << on.bridge << " got number "
                            << *row.ofport << " instead of " << p.number;
      }
      numbers[p.name] = static_cast<uint32_t>(*row.ofport);
    }
  }
  return numbers;
}

Result<void> OvsDriver::createVeths(const DbChange& change) {
  auto veths = change.newVeths();
  if (veths.empty() && change.newTaps().empty()) return Ok();
  // One netlink socket for the whole batch (a graph may bring hundreds of ports).
  auto nl = platform::RouteSocket::open();
  if (!nl.ok()) return std::move(nl).error();
  std::vector<std::string> made;
  for (const auto& [lsi_end, function_end] : veths) {
    Result<void> r = nl->createVethPair(lsi_end, function_end);
    if (r.ok()) {
      made.push_back(lsi_end);
      r = nl->setLinkUp(lsi_end);
    }
    if (!r.ok()) {
      (void)deleteVeths(made);
      return r;
    }
  }
  for (const auto& tap : change.newTaps()) {
    Result<void> r = platform::createTap(tap);
    if (r.ok()) {
      made.push_back(tap);
      r = nl->setLinkUp(tap);
    }
    if (!r.ok()) {
      (void)deleteVeths(made);
      return r;
    }
  }
  return Ok();
}

Result<void> OvsDriver::deleteVeths(const std::vector<std::string>& lsi_ends) {
  if (lsi_ends.empty()) return Ok();
  // The kernel spends ~25 ms on each veth it unregisters (a synchronize_net each), one after the
  // other when asked by one thread: a graph of 100 functions would take seconds to destroy.
  // Several threads overlap most of that wait. Each has its own netlink socket; threads start in
  // this thread's network namespace.
  const size_t workers = std::min<size_t>(kDeleteThreads, lsi_ends.size());
  std::vector<std::optional<Error>> failures(workers);
  auto work = [&](size_t w) {
    auto nl = platform::RouteSocket::open();
    if (!nl.ok()) {
      failures[w] = nl.error();
      return;
    }
    for (size_t i = w; i < lsi_ends.size(); i += workers) {
      auto r = nl->deleteLink(lsi_ends[i]);
      if (!r.ok() && !failures[w]) failures[w] = r.error();
    }
  };
  {
    std::vector<std::jthread> threads;
    for (size_t w = 1; w < workers; ++w) threads.emplace_back(work, w);
    work(0);
  }
  for (auto& f : failures) {
    if (f) return *f;
  }
  return Ok();
}

void OvsDriver::undoCreation(const UndoPlanner& make_undo, const std::vector<std::string>& veths,
                             bool wait) {
  // A deadline of its own: the call's may be spent (when the failure was a timeout).
  auto d = Clock::now() + kUndoTimeout;
  auto db = snapshot(d);
  if (db.ok()) {
    RemovalPlan removal = make_undo(*db);
    if (!removal.change.empty()) {
      // Without waiting when ovs-vswitchd did not answer before: it would not now either.
      Result<void> undone = Ok();
      if (wait) {
        undone = commit(removal.change, d);
      } else if (auto sent = transactChange(removal.change, d); !sent.ok()) {
        undone = std::move(sent).error();
      }
      if (!undone.ok()) CORCH_LOG(lg, Warn) << "cannot undo a change: " << undone.error().message();
    }
  } else {
    CORCH_LOG(lg, Warn) << "cannot undo a change: " << db.error().message();
  }
  auto deleted = deleteVeths(veths);
  if (!deleted.ok()) CORCH_LOG(lg, Warn) << "cannot undo a change: " << deleted.error().message();
}

Result<std::map<std::string, uint32_t>> OvsDriver::applyCreation(const DbChange& change,
                                                                 Deadline deadline,
                                                                 const UndoPlanner& make_undo) {
  auto t0 = Clock::now();
  auto ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  };
  CORCH_TRY(createVeths(change));
  CORCH_LOG(lg, Debug) << "veth pairs made at " << ms() << " ms";
  std::vector<std::string> veths = change.newKernelLinks();

  bool committed = false;
  auto applied = commit(change, deadline, &committed, change.newPortNames().size());
  if (!applied.ok()) {
    if (committed) {
      undoCreation(make_undo, veths, /*wait=*/false);
    } else {
      (void)deleteVeths(veths);  // nothing else was made
    }
    return std::move(applied).error();
  }
  CORCH_LOG(lg, Debug) << "transaction applied at " << ms() << " ms";
  auto numbers = checkNewPorts(change, deadline);
  if (!numbers.ok()) {
    undoCreation(make_undo, veths, /*wait=*/true);
    return std::move(numbers).error();
  }
  return numbers;
}

Result<void> OvsDriver::applyRemoval(const RemovalPlan& plan, Deadline deadline) {
  auto t0 = Clock::now();
  if (!plan.change.empty()) {
    bool committed = false;
    auto applied = commit(plan.change, deadline, &committed, plan.veths.size());
    if (!applied.ok() && !committed) return applied;
    // Committed, but ovs-vswitchd is slow to apply it: the rows are gone, and it will let go of
    // the ports when it catches up. Failing the removal would leave a graph nobody can delete.
    if (!applied.ok()) {
      CORCH_LOG(lg, Warn) << "removal committed; " << applied.error().message();
    }
  }
  CORCH_LOG(lg, Debug)
      << "removal applied in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms";
  // After the commit: ovs-vswitchd has let go of the ports before their devices go.
  return deleteVeths(plan.veths);
}

// --- Management ---

Result<LsiInfo> OvsDriver::createLsi(const LsiSpec& spec) {
  const std::string what = "cannot create LSI " + spec.name;
  std::lock_guard lock(mgmt_mu_);
  auto d = deadline();
  auto db = snapshot(d);
  if (!db.ok()) return db.error().context(what);
  // A new bridge starts at port 1 whatever an earlier bridge of that name used.
  auto hints = port_hints_;
  hints.erase(spec.name);
  PortNumbering numbering(*db, std::move(hints));
  auto plan = planCreateLsi(*db, spec, context_, numbering);
  if (!plan.ok()) return plan.error().context(what);

  UndoPlanner undo = [&](const DbSnapshot& now) { return planDestroyLsi(now, spec.name); };
  auto numbers = applyCreation(plan->change, d, undo);
  if (!numbers.ok()) return numbers.error().context(what);

  // A new LSI forwards nothing until its rules are installed (fail_mode secure installs no flow,
  // but make sure: the flow table is the contract).
  auto flushed = deleteAllFlows(spec.name, d);
  if (!flushed.ok()) {
    dropChannel(spec.name);
    std::vector<std::string> veths = plan->change.newKernelLinks();
    undoCreation(undo, veths, /*wait=*/true);
    return flushed.error().context(what);
  }

  port_hints_ = numbering.hints();
  LsiInfo info = plan->info;
  for (auto& p : info.interfaces) p.of_port = (*numbers)[p.name];
  for (auto& p : info.ports) p.of_port = (*numbers)[p.name];
  for (auto& v : info.vlinks) {
    v.port_a = (*numbers)[v.name_a];
    v.port_b = (*numbers)[v.name_b];
  }
  CORCH_LOG(lg, Info) << "created LSI " << spec.name << " (" << info.interfaces.size()
                      << " interfaces, " << info.ports.size() << " ports, " << info.vlinks.size()
                      << " vlinks)";
  return info;
}

Result<void> OvsDriver::destroyLsi(const std::string& lsi) {
  const std::string what = "cannot destroy LSI " + lsi;
  auto valid = checkLsiName(lsi);
  if (!valid.ok()) return valid.error().context(what);
  std::lock_guard lock(mgmt_mu_);
  dropChannel(lsi);
  auto d = deadline();
  auto db = snapshot(d);
  if (!db.ok()) return db.error().context(what);
  RemovalPlan plan = planDestroyLsi(*db, lsi);
  port_hints_.erase(lsi);
  if (plan.change.empty()) return Ok();
  auto r = applyRemoval(plan, d);
  // A rule call may have opened a channel meanwhile: it leads nowhere now.
  dropChannel(lsi);
  if (!r.ok()) return r.error().context(what);
  CORCH_LOG(lg, Info) << "destroyed LSI " << lsi;
  return Ok();
}

Result<std::vector<std::string>> OvsDriver::listLsis() {
  auto result = read(bridgeNamesQuery(), deadline());
  if (!result.ok()) return result.error().context("cannot list the LSIs");
  return parseBridgeNames(*result);
}

Result<std::vector<VlinkInfo>> OvsDriver::connectLsis(const std::string& lsi_a,
                                                      const std::string& lsi_b, uint32_t n,
                                                      const std::string& name_prefix) {
  const std::string what = "cannot connect LSIs " + lsi_a + " and " + lsi_b;
  std::lock_guard lock(mgmt_mu_);
  auto d = deadline();
  auto db = snapshot(d);
  if (!db.ok()) return db.error().context(what);
  PortNumbering numbering(*db, port_hints_);
  auto plan = planConnectLsis(*db, lsi_a, lsi_b, n, name_prefix, numbering);
  if (!plan.ok()) return plan.error().context(what);
  if (plan->change.empty()) return std::vector<VlinkInfo>{};
  auto vlinks = plan->vlinks;
  auto numbers = applyCreation(
      plan->change, d, [&](const DbSnapshot& now) { return planDestroyVlinks(now, vlinks); });
  if (!numbers.ok()) return numbers.error().context(what);
  port_hints_ = numbering.hints();
  for (auto& v : vlinks) {
    v.port_a = (*numbers)[v.name_a];
    v.port_b = (*numbers)[v.name_b];
  }
  return vlinks;
}

Result<void> OvsDriver::destroyVlinks(const std::vector<VlinkInfo>& vlinks) {
  std::lock_guard lock(mgmt_mu_);
  auto d = deadline();
  auto db = snapshot(d);
  if (!db.ok()) return db.error().context("cannot destroy vlinks");
  auto r = applyRemoval(planDestroyVlinks(*db, vlinks), d);
  if (!r.ok()) return r.error().context("cannot destroy vlinks");
  return Ok();
}

Result<std::vector<PortInfo>> OvsDriver::createPorts(const std::string& lsi,
                                                     const std::vector<PortSpec>& ports) {
  const std::string what = "cannot create ports on LSI " + lsi;
  std::lock_guard lock(mgmt_mu_);
  auto d = deadline();
  auto db = snapshot(d);
  if (!db.ok()) return db.error().context(what);
  PortNumbering numbering(*db, port_hints_);
  auto plan = planCreatePorts(*db, lsi, ports, context_, numbering);
  if (!plan.ok()) return plan.error().context(what);
  if (plan->change.empty()) return std::vector<PortInfo>{};
  std::vector<std::string> names;
  for (const auto& p : ports) names.push_back(p.name);
  auto numbers = applyCreation(
      plan->change, d, [&](const DbSnapshot& now) { return planDestroyPorts(now, lsi, names); });
  if (!numbers.ok()) return numbers.error().context(what);
  port_hints_ = numbering.hints();
  std::vector<PortInfo> out = plan->ports;
  for (auto& p : out) p.of_port = (*numbers)[p.name];
  return out;
}

Result<void> OvsDriver::destroyPorts(const std::string& lsi,
                                     const std::vector<std::string>& names) {
  const std::string what = "cannot destroy ports on LSI " + lsi;
  std::lock_guard lock(mgmt_mu_);
  auto d = deadline();
  auto db = snapshot(d);
  if (!db.ok()) return db.error().context(what);
  auto r = applyRemoval(planDestroyPorts(*db, lsi, names), d);
  if (!r.ok()) return r.error().context(what);
  return Ok();
}

Result<uint32_t> OvsDriver::portNumber(const std::string& lsi, const std::string& port) {
  const std::string what = "cannot find the number of port " + port + " on LSI " + lsi;
  auto result = read(portNumberQuery(lsi, port), deadline());
  if (!result.ok()) return result.error().context(what);
  auto n = parsePortNumber(*result, lsi, port);
  if (!n.ok()) return n.error().context(what);
  return n;
}

Result<std::vector<PortInfo>> OvsDriver::listPorts(const std::string& lsi) {
  const std::string what = "cannot list the ports of LSI " + lsi;
  auto valid = checkLsiName(lsi);
  if (!valid.ok()) return valid.error().context(what);
  auto db = snapshot(deadline());
  if (!db.ok()) return db.error().context(what);
  std::vector<std::string> unnumbered;
  auto listed = listBridgePorts(*db, lsi, &unnumbered);
  if (!listed.ok()) return listed.error().context(what);
  for (const auto& name : unnumbered) {
    CORCH_LOG(lg, Info) << "LSI " << lsi << ": port " << name << " has no number; not listed";
  }
  // The database keeps a port whose veth (or tap) was deleted behind the driver's back, and with
  // a userspace datapath may still show its number: the kernel says whether the device is there.
  std::set<std::string> links;
  if (std::any_of(listed->begin(), listed->end(),
                  [](const ListedPort& p) { return !p.kernel_link.empty(); })) {
    auto nl = platform::RouteSocket::open();
    if (!nl.ok()) return nl.error().context(what);
    auto all = nl->listLinks();
    if (!all.ok()) return all.error().context(what);
    for (auto& l : *all) links.insert(std::move(l.name));
  }
  std::vector<PortInfo> out;
  for (auto& p : *listed) {
    if (!p.kernel_link.empty() && !links.count(p.kernel_link)) {
      CORCH_LOG(lg, Info) << "LSI " << lsi << ": port " << p.info.name << " lost its device "
                          << p.kernel_link << "; not listed";
      continue;
    }
    out.push_back(std::move(p.info));
  }
  return out;
}

// --- Control ---

std::shared_ptr<OvsDriver::Channel> OvsDriver::channel(const std::string& lsi) {
  std::lock_guard lock(channels_mu_);
  auto& slot = channels_[lsi];
  if (!slot) {
    slot = std::make_shared<Channel>(Endpoint::unixPath(options_.rundir + "/" + lsi + ".mgmt"),
                                     "LSI " + lsi);
    slot->of.setLostHandler([this, lsi](const Error& why) { onChannelLost(lsi, why); });
  }
  return slot;
}

std::shared_ptr<OvsDriver::Channel> OvsDriver::findChannel(const std::string& lsi) {
  std::lock_guard lock(channels_mu_);
  auto it = channels_.find(lsi);
  return it == channels_.end() ? nullptr : it->second;
}

void OvsDriver::dropChannel(const std::string& lsi) {
  std::shared_ptr<Channel> gone;
  {
    std::lock_guard lock(channels_mu_);
    auto it = channels_.find(lsi);
    if (it == channels_.end()) return;
    gone = std::move(it->second);
    channels_.erase(it);
  }
  // After a batch in progress (a call that holds the channel finishes on a forgotten table).
  std::lock_guard lock(gone->mu);
  gone->flows.clear();
  gone->of.close();
}

void OvsDriver::releaseChannelLocked(const std::string& lsi, const std::shared_ptr<Channel>& ch) {
  ch->of.close();
  if (!ch->flows.empty()) return;
  std::lock_guard lock(channels_mu_);
  auto it = channels_.find(lsi);
  if (it != channels_.end() && it->second == ch) channels_.erase(it);
}

Result<void> OvsDriver::deleteAllFlows(const std::string& lsi, Deadline deadline) {
  auto ch = channel(lsi);
  std::lock_guard lock(ch->mu);
  ch->flows.clear();
  uint32_t xid = ch->of.reserveXids(2);
  auto errors = ch->of.sendWithBarrier(openflow::encodeDeleteByCookie(0, 0, xid), xid, 1, deadline);
  if (!errors.ok()) return std::move(errors).error();
  if (!errors->empty()) {
    const auto& e = errors->front().error;
    return Error(ErrorCode::Internal, "the switch refused to delete the flows of LSI " + lsi +
                                          ": " + openflow::describeError(e.type, e.code));
  }
  return Ok();
}

Result<void> OvsDriver::checkRules(const std::vector<TsRule>& rules) {
  for (const auto& rule : rules) {
    auto normalized = openflow::normalizeRule(rule);
    if (!normalized.ok()) return std::move(normalized).error();
  }
  return Ok();
}

Result<void> OvsDriver::installRules(const std::string& lsi, const std::vector<TsRule>& rules) {
  const std::string what = "cannot install rules on LSI " + lsi;
  auto valid = checkLsiName(lsi);
  if (!valid.ok()) return valid.error().context(what);
  std::vector<TsRule> normalized;
  normalized.reserve(rules.size());
  for (const auto& rule : rules) {
    auto n = openflow::normalizeRule(rule);
    if (!n.ok()) return n.error().context(what);
    normalized.push_back(std::move(*n));
  }
  if (normalized.empty()) return Ok();

  auto ch = channel(lsi);
  std::lock_guard lock(ch->mu);
  const auto n = static_cast<uint32_t>(normalized.size());
  const uint32_t first = ch->of.reserveXids(n + 1);
  std::string bytes;
  bytes.reserve(normalized.size() * 128);
  for (uint32_t i = 0; i < n; ++i) {
    bytes += openflow::encodeFlowMod(normalized[i], FlowModCommand::Add, first + i);
  }

  // Takes rules of this batch out again (delete_strict, one barrier), as best it can. They are
  // not wanted any more either: a heal takes out what this could not.
  auto takeOut = [&](const std::vector<size_t>& which) {
    if (which.empty()) return;
    for (size_t i : which) ch->flows.erase(openflow::flowKey(normalized[i]));
    uint32_t x = ch->of.reserveXids(static_cast<uint32_t>(which.size()) + 1);
    std::string del;
    for (size_t k = 0; k < which.size(); ++k) {
      del += openflow::encodeFlowMod(normalized[which[k]], FlowModCommand::DeleteStrict,
                                     x + static_cast<uint32_t>(k));
    }
    auto r = ch->of.sendWithBarrier(del, x, static_cast<uint32_t>(which.size()),
                                    Clock::now() + kUndoTimeout);
    if (!r.ok()) {
      CORCH_LOG(lg, Warn) << "cannot take a failed batch out of LSI " << lsi << ": "
                          << r.error().message();
    }
  };

  auto errors = ch->of.sendWithBarrier(bytes, first, n, deadline());
  if (!errors.ok()) {
    if (errors.error().code() == ErrorCode::NotFound) {
      releaseChannelLocked(lsi, ch);
      return Error(ErrorCode::NotFound,
                   what + ": there is no such LSI (" + errors.error().message() + ")");
    }
    // The connection failed mid-batch: part of it may be in.
    std::vector<size_t> all(normalized.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    takeOut(all);
    return errors.error().context(what);
  }
  if (errors->empty()) {
    for (auto& rule : normalized) {
      std::string key = openflow::flowKey(rule);
      ch->flows.insert_or_assign(std::move(key), std::move(rule));
    }
    return Ok();
  }

  std::set<size_t> failed;
  for (const auto& e : *errors) {
    if (e.xid >= first && e.xid - first < n) failed.insert(e.xid - first);
  }
  std::vector<size_t> in;
  for (size_t i = 0; i < normalized.size(); ++i) {
    if (!failed.count(i)) in.push_back(i);
  }
  takeOut(in);
  const auto& e = errors->front();
  size_t index = e.xid - first;
  std::string message = what + ": the switch refused rule " +
                        toString(index < rules.size() ? rules[index] : TsRule{}) + ": " +
                        openflow::describeError(e.error.type, e.error.code);
  if (errors->size() > 1) {
    message += " (and " + std::to_string(errors->size() - 1) + " more rules of the batch)";
  }
  return Error(codeOf(e.error), message);
}

Result<void> OvsDriver::removeRules(const std::string& lsi, const std::vector<TsRule>& rules) {
  const std::string what = "cannot remove rules from LSI " + lsi;
  auto valid = checkLsiName(lsi);
  if (!valid.ok()) return valid.error().context(what);
  std::string bytes;
  auto ch = channel(lsi);
  std::lock_guard lock(ch->mu);
  const auto n = static_cast<uint32_t>(rules.size());
  if (n == 0) return Ok();
  const uint32_t first = ch->of.reserveXids(n + 1);
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < n; ++i) {
    auto normalized = openflow::normalizeRule(rules[i]);
    if (!normalized.ok()) return normalized.error().context(what);
    bytes += openflow::encodeFlowMod(*normalized, FlowModCommand::DeleteStrict, first + i);
    keys.push_back(openflow::flowKey(*normalized));
  }
  // Not wanted any more, whatever happens to the batch (see Channel::flows).
  for (const auto& key : keys) ch->flows.erase(key);
  auto errors = ch->of.sendWithBarrier(bytes, first, n, deadline());
  if (!errors.ok()) {
    if (errors.error().code() == ErrorCode::NotFound) {  // no LSI, no rules
      releaseChannelLocked(lsi, ch);
      return Ok();
    }
    return errors.error().context(what);
  }
  if (!errors->empty()) {
    const auto& e = errors->front();
    return Error(ErrorCode::Internal, what + ": the switch refused to remove rule " +
                                          toString(rules[e.xid - first < n ? e.xid - first : 0]) +
                                          ": " +
                                          openflow::describeError(e.error.type, e.error.code));
  }
  return Ok();
}

Result<void> OvsDriver::removeRulesByCookie(const std::string& lsi, uint64_t cookie,
                                            uint64_t mask) {
  const std::string what = "cannot remove rules by cookie from LSI " + lsi;
  auto valid = checkLsiName(lsi);
  if (!valid.ok()) return valid.error().context(what);
  auto ch = channel(lsi);
  std::lock_guard lock(ch->mu);
  std::erase_if(ch->flows,
                [&](const auto& flow) { return (flow.second.cookie & mask) == (cookie & mask); });
  uint32_t xid = ch->of.reserveXids(2);
  auto errors =
      ch->of.sendWithBarrier(openflow::encodeDeleteByCookie(cookie, mask, xid), xid, 1, deadline());
  if (!errors.ok()) {
    if (errors.error().code() == ErrorCode::NotFound) {
      releaseChannelLocked(lsi, ch);
      return Ok();
    }
    return errors.error().context(what);
  }
  if (!errors->empty()) {
    const auto& e = errors->front().error;
    return Error(ErrorCode::Internal,
                 what + ": the switch refused: " + openflow::describeError(e.type, e.code));
  }
  return Ok();
}

Result<std::vector<TsRule>> OvsDriver::dumpRules(const std::string& lsi) {
  const std::string what = "cannot dump the rules of LSI " + lsi;
  auto valid = checkLsiName(lsi);
  if (!valid.ok()) return valid.error().context(what);
  auto ch = channel(lsi);
  std::lock_guard lock(ch->mu);
  uint32_t xid = ch->of.reserveXids(1);
  auto parts = ch->of.multipart(openflow::encodeFlowStatsRequest(xid), xid, deadline());
  if (!parts.ok()) {
    if (parts.error().code() == ErrorCode::NotFound) {
      releaseChannelLocked(lsi, ch);
      return Error(ErrorCode::NotFound, what + ": there is no such LSI");
    }
    return parts.error().context(what);
  }
  std::vector<TsRule> rules;
  std::vector<std::string> skipped;
  for (const auto& part : *parts) {
    auto reply = openflow::parseMultipartReply(part);
    if (!reply) return Error(ErrorCode::Internal, what + ": the switch sent a malformed reply");
    auto flows = openflow::parseFlowStats(reply->body, &skipped);
    if (!flows.ok()) return flows.error().context(what);
    for (auto& f : *flows) rules.push_back(std::move(f.rule));
  }
  for (const auto& s : skipped) {
    CORCH_LOG(lg, Warn) << "LSI " << lsi << " has a flow corch did not install: " << s;
  }
  return rules;
}

Result<void> OvsDriver::syncRules(const std::string& lsi) {
  const std::string what = "cannot synchronise the rules of LSI " + lsi;
  auto valid = checkLsiName(lsi);
  if (!valid.ok()) return valid.error().context(what);
  auto ch = channel(lsi);
  std::lock_guard lock(ch->mu);
  auto synced = syncLocked(lsi, *ch, deadline());
  if (!synced.ok()) {
    if (synced.error().code() == ErrorCode::NotFound) {
      releaseChannelLocked(lsi, ch);
      // No socket: no such bridge, or no ovs-vswitchd to open it. Only the first is NotFound (a
      // restarted corchd would build the LSI anew).
      if (bridgeExists(lsi) == false) {
        return Error(ErrorCode::NotFound, what + ": there is no such LSI");
      }
      return Error(ErrorCode::Unavailable,
                   what + ": " + synced.error().message() + " (is ovs-vswitchd running?)");
    }
    return synced.error().context(what);
  }
  if (synced->refused) return synced->refused->context(what);
  CORCH_LOG(lg, Info) << "LSI " << lsi << " synchronised: " << synced->added << " rules added, "
                      << synced->removed << " stale ones removed (" << ch->flows.size()
                      << " wanted, " << synced->found << " found)";
  return Ok();
}

Result<OvsDriver::SyncOutcome> OvsDriver::syncLocked(const std::string& lsi, Channel& ch,
                                                     Deadline deadline) {
  // What the switch has: nothing after a restart; the same table when only the connection
  // dropped; in between when a call installed rules on the restarted switch before this; the
  // flows of an earlier run on an LSI a restarted corchd adopted.
  uint32_t xid = ch.of.reserveXids(1);
  auto parts = ch.of.multipart(openflow::encodeFlowStatsRequest(xid), xid, deadline);
  if (!parts.ok()) return parts.error().context("cannot read the flows");
  std::map<std::string, TsRule> have;
  std::vector<std::string> skipped;  // flows corch did not install: left alone
  for (const auto& part : *parts) {
    auto reply = openflow::parseMultipartReply(part);
    if (!reply) return Error(ErrorCode::Internal, "the switch sent a malformed flow reply");
    auto flows = openflow::parseFlowStats(reply->body, &skipped);
    if (!flows.ok()) return flows.error().context("cannot read the flows");
    for (auto& f : *flows) {
      auto normalized = openflow::normalizeRule(f.rule);
      if (f.table_id != 0 || !normalized.ok()) {
        skipped.push_back(toString(f.rule) + " in table " + std::to_string(f.table_id));
        continue;
      }
      have.emplace(openflow::flowKey(*normalized), std::move(*normalized));
    }
  }
  for (const auto& s : skipped) {
    CORCH_LOG(lg, Warn) << "LSI " << lsi << " has a flow corch did not install, left alone: " << s;
  }

  SyncOutcome outcome;
  outcome.found = have.size();
  std::string bytes;
  std::vector<const TsRule*> sent;
  const uint32_t max = static_cast<uint32_t>(ch.flows.size() + have.size());
  const uint32_t first = ch.of.reserveXids(max + 1);
  for (const auto& [key, rule] : ch.flows) {
    auto it = have.find(key);
    if (it != have.end() && it->second == rule) continue;
    bytes += openflow::encodeFlowMod(rule, FlowModCommand::Add,
                                     first + static_cast<uint32_t>(sent.size()));
    sent.push_back(&rule);
    ++outcome.added;
  }
  for (const auto& [key, rule] : have) {
    if (ch.flows.count(key)) continue;
    bytes += openflow::encodeFlowMod(rule, FlowModCommand::DeleteStrict,
                                     first + static_cast<uint32_t>(sent.size()));
    sent.push_back(&rule);
    ++outcome.removed;
  }
  if (sent.empty()) return outcome;
  // The barrier takes the xid after the last message: xids past it are reserved and unused.
  const auto n = static_cast<uint32_t>(sent.size());
  auto errors = ch.of.sendWithBarrier(bytes, first, n, deadline);
  if (!errors.ok()) return errors.error().context("cannot send the difference");
  for (const auto& e : *errors) {
    // The switch took these rules before (a driver installs only what it accepted); refusing them
    // now is the switch's change (a port type it lost, a datapath without a feature).
    const TsRule* rule = e.xid >= first && e.xid - first < n ? sent[e.xid - first] : nullptr;
    std::string message = "the switch refused rule " + (rule ? toString(*rule) : std::string("?")) +
                          ": " + openflow::describeError(e.error.type, e.error.code);
    CORCH_LOG(lg, Warn) << "LSI " << lsi << ": " << message;
    if (!outcome.refused) outcome.refused = Error(codeOf(e.error), message);
  }
  return outcome;
}

// --- Healing ---

void OvsDriver::schedule(Heal& heal, bool fresh) {
  ++heal.generation;
  if (fresh) {
    heal.since = Clock::now();
    heal.next = heal.since;
    heal.backoff = std::chrono::milliseconds(0);
    heal.attempts = 0;
  }
}

void OvsDriver::onChannelLost(const std::string& lsi, const Error& why) {
  {
    std::lock_guard lock(heal_mu_);
    // A loss while a heal is pending keeps its schedule: the heal's own failed attempts must not
    // make it spin.
    auto [it, fresh] = heal_lsis_.try_emplace(lsi);
    schedule(it->second, fresh);
  }
  CORCH_LOG(lg, Debug) << "LSI " << lsi << ": OpenFlow connection lost (" << why.message()
                       << "); checking its flows";
  heal_cv_.notify_all();
}

void OvsDriver::onOvsdbLost(const Error& why) {
  {
    std::lock_guard lock(heal_mu_);
    bool fresh = !heal_ovsdb_;
    if (fresh) heal_ovsdb_.emplace();
    schedule(*heal_ovsdb_, fresh);
  }
  CORCH_LOG(lg, Warn) << "lost the connection to ovsdb-server (" << why.message()
                      << "); reconnecting";
  heal_cv_.notify_all();
}

void OvsDriver::healerLoop() {
  // After a failed attempt: the next one later, up to kHealMaxBackoff.
  auto later = [](Heal& heal) {
    heal.backoff = heal.backoff.count() == 0
                       ? kHealFirstBackoff
                       : std::min(heal.backoff * 2, std::chrono::milliseconds(kHealMaxBackoff));
    heal.next = Clock::now() + heal.backoff;
    ++heal.attempts;
  };
  std::unique_lock lock(heal_mu_);
  while (!stopping_) {
    std::optional<Clock::time_point> due;
    if (heal_ovsdb_) due = heal_ovsdb_->next;
    for (const auto& [lsi, heal] : heal_lsis_) {
      if (!due || heal.next < *due) due = heal.next;
    }
    if (!due) {
      heal_cv_.wait(lock);
      continue;
    }
    if (Clock::now() < *due) {
      heal_cv_.wait_until(lock, *due);
      continue;
    }
    // The database first: finding whether a bridge still exists needs it.
    if (heal_ovsdb_ && heal_ovsdb_->next <= Clock::now()) {
      Heal heal = *heal_ovsdb_;
      lock.unlock();
      HealResult r = healOvsdb(heal);
      lock.lock();
      if (r == HealResult::Done && heal_ovsdb_->generation == heal.generation) {
        heal_ovsdb_.reset();
      } else if (r == HealResult::Retry) {
        later(*heal_ovsdb_);
      }
    }
    std::vector<std::string> lsis;
    for (const auto& [lsi, heal] : heal_lsis_) {
      if (heal.next <= Clock::now()) lsis.push_back(lsi);
    }
    for (const auto& lsi : lsis) {
      if (stopping_) break;
      Heal heal = heal_lsis_.at(lsi);
      lock.unlock();
      HealResult r = healLsi(lsi, heal);
      lock.lock();
      auto it = heal_lsis_.find(lsi);
      if (it == heal_lsis_.end()) continue;
      if (r == HealResult::Done && it->second.generation == heal.generation) {
        heal_lsis_.erase(it);
      } else if (r == HealResult::Retry) {
        later(it->second);
      }
      // Done but lost again meanwhile: the entry stays, due at once.
    }
  }
}

OvsDriver::HealResult OvsDriver::healOvsdb(const Heal& heal) {
  auto connected = ovsdb_.connect(Clock::now() + options_.timeout);
  if (!connected.ok()) {
    if (heal.attempts % kHealWarnEvery == 0 && heal.attempts > 0) {
      CORCH_LOG(lg, Warn) << "still cannot reconnect to ovsdb-server after " << msSince(heal.since)
                          << " ms: " << connected.error().message();
    }
    return HealResult::Retry;
  }
  // Nothing read from the database is kept between calls (each reads its own snapshot; port
  // hints are this process's own), so there is nothing to read again.
  CORCH_LOG(lg, Info) << "reconnected to ovsdb-server " << msSince(heal.since)
                      << " ms after losing it";
  return HealResult::Done;
}

std::optional<bool> OvsDriver::bridgeExists(const std::string& lsi) {
  auto result = read(bridgeNamesQuery(), Clock::now() + options_.timeout);
  if (!result.ok()) return std::nullopt;
  auto names = parseBridgeNames(*result);
  if (!names.ok()) return std::nullopt;
  return std::find(names->begin(), names->end(), lsi) != names->end();
}

OvsDriver::HealResult OvsDriver::healLsi(const std::string& lsi, const Heal& heal) {
  auto ch = findChannel(lsi);
  if (!ch) return HealResult::Done;  // destroyed meanwhile
  std::lock_guard lock(ch->mu);
  if (ch->flows.empty()) return HealResult::Done;  // nothing to restore
  if (heal.attempts == 0) {
    CORCH_LOG(lg, Warn) << "LSI " << lsi
                        << " lost its OpenFlow connection (ovs-vswitchd restarted or stopped?): "
                           "restoring its "
                        << ch->flows.size() << " rules once it is back";
  }
  const Deadline d = Clock::now() + options_.timeout;
  auto connected = ch->of.connect(d);
  if (!connected.ok()) {
    if (connected.error().code() == ErrorCode::NotFound || heal.attempts % kHealWarnEvery == 0) {
      // No socket: ovs-vswitchd is not back yet, or the bridge is gone for good.
      if (bridgeExists(lsi) == false) {
        CORCH_LOG(lg, Warn) << "LSI " << lsi << " is gone from the database; forgetting its "
                            << ch->flows.size() << " rules";
        ch->flows.clear();
        return HealResult::Done;
      }
    }
    if (heal.attempts > 0 && heal.attempts % kHealWarnEvery == 0) {
      CORCH_LOG(lg, Warn) << "LSI " << lsi << " still unreachable after " << msSince(heal.since)
                          << " ms: " << connected.error().message();
    }
    return HealResult::Retry;
  }

  auto synced = syncLocked(lsi, *ch, d);
  if (!synced.ok()) {
    CORCH_LOG(lg, Debug) << "LSI " << lsi
                         << ": cannot restore the rules: " << synced.error().message();
    return HealResult::Retry;
  }
  // A rule the switch refused is logged; nothing better to do than say so.
  if (synced->added == 0 && synced->removed == 0) {
    CORCH_LOG(lg, Info) << "LSI " << lsi << " still had its " << ch->flows.size() << " rules";
    return HealResult::Done;
  }
  CORCH_LOG(lg, Info) << "LSI " << lsi << " healed " << msSince(heal.since)
                      << " ms after losing its OpenFlow connection: " << synced->added
                      << " rules restored, " << synced->removed << " stale ones removed ("
                      << ch->flows.size() << " wanted, " << synced->found << " found)";
  return HealResult::Done;
}

void registerDriver(DriverRegistry& registry) {
  (void)registry.addVSwitch(
      "ovs", [](const DriverOptions& options) -> Result<std::unique_ptr<VSwitchDriver>> {
        auto parsed = OvsOptions::parse(options);
        if (!parsed.ok()) return parsed.error().context("cannot create the ovs driver");
        return std::unique_ptr<VSwitchDriver>(new OvsDriver(std::move(*parsed)));
      });
}

}  // namespace corch::drivers::ovs
