// bench_deploy: how long corchd takes to deploy and to delete a chain of native SFs, compared with
// "the floor": the same OVSDB transaction and OpenFlow flow batches, sent raw by this program with
// the ovs driver's own encoders. A benchmark, not a test: it prints figures and asserts nothing
// about time. What it measures and how to read it: bench/README.md.
//
// Set-up (all untimed): the integration sandbox (a private network namespace with its own
// ovsdb-server and ovs-vswitchd), two hosts whose "physical" veth ends become corchd's LSI-0 ports,
// two more for the floor's own LSI-0, and corchd started as a process with --log-level debug.
// Then, per graph size, one untimed warm-up and N timed repetitions, interleaved so that drift
// on the machine hits corchd and the floor alike: corchd PUT, corchd DELETE, floor deploy, floor
// delete.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cpprest/http_client.h>
#include <boost/asio/ssl/context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "corch/log.h"
#include "drivers/vswitch/ovs/of_connection.h"
#include "drivers/vswitch/ovs/openflow.h"
#include "drivers/vswitch/ovs/ovs_driver.h"
#include "drivers/vswitch/ovs/ovsdb_client.h"
#include "drivers/vswitch/ovs/stream.h"
#include "drivers/vswitch/ovs/vswitch_db.h"
#include "graph/sffg_codec.h"
#include "harness/corchd.h"
#include "harness/sandbox.h"
#include "network/network_manager.h"
#include "platform/netlink.h"

namespace {

using namespace std::chrono_literals;
using corch::Error;
using corch::ErrorCode;
using corch::Ok;
using corch::Result;
namespace ovs = corch::drivers::ovs;
namespace network = corch::network;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kSource = CORCH_SOURCE_DIR;
// Every call of the floor gets this long; a 100-SF transaction takes well under a second.
constexpr auto kCallTimeout = 30s;
// The floor's graph index: its port names ("cg9999s0p0") cannot meet corchd's (index 1).
constexpr uint32_t kFloorIndex = network::kMaxGraphIndex;
// How many threads delete the floor's veth pairs (as many as the ovs driver uses: the kernel
// spends ~25 ms per veth, and threads overlap that wait).
constexpr size_t kDeleteThreads = 8;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double epochMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------
// Cleaning up after a signal. The sandbox's own handler kills OVS and deletes the host
// namespaces, but knows nothing of corchd nor of the namespaces of its functions (named
// <prefix>-<graph>-<sf>, node-wide, so they would outlive us): this handler deals with those
// first, then hands the signal on to the sandbox's.

volatile sig_atomic_t g_corchd_pid = -1;
char g_cleanup_command[512] = {};
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[3];

void onSignal(int sig) {
  pid_t pid = g_corchd_pid;
  if (pid > 0) ::kill(pid, SIGKILL);
  if (g_cleanup_command[0]) {
    pid_t child = ::fork();
    if (child == 0) {
      ::execl("/bin/sh", "sh", "-c", g_cleanup_command, static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (child > 0) ::waitpid(child, nullptr, 0);
  }
  for (int i = 0; i < 3; ++i) {
    if (kSignals[i] == sig) ::sigaction(sig, &g_previous[i], nullptr);
  }
  ::raise(sig);  // delivered to the sandbox's handler once this one returns
}

void installSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &sa, &g_previous[i]);
}

// Deletes the namespaces (and whatever runs in them) whose name starts with "<prefix>-".
std::string namespaceCleanupCommand(const std::string& prefix) {
  return "for ns in $(ip netns list | awk '{print $1}' | grep '^" + prefix +
         "-'); do ip netns pids $ns | xargs -r kill -9 2>/dev/null; ip netns del $ns; done";
}

// ---------------------------------------------------------------------------------------------
// Figures

class Sample {
 public:
  void add(double v) { values_.push_back(v); }
  bool empty() const { return values_.empty(); }
  size_t size() const { return values_.size(); }
  double median() const {
    std::vector<double> v = values_;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  double min() const { return *std::min_element(values_.begin(), values_.end()); }
  double max() const { return *std::max_element(values_.begin(), values_.end()); }
  // "12.3 (11.0-15.2)": median (min-max).
  std::string str() const {
    if (empty()) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f (%.1f-%.1f)", median(), min(), max());
    return buf;
  }

 private:
  std::vector<double> values_;
};

// Named phases of one kind of operation, in the order they were first seen.
class Breakdown {
 public:
  void add(const std::string& phase, double ms) {
    if (!samples_.count(phase)) order_.push_back(phase);
    samples_[phase].add(ms);
  }
  void add(const std::vector<std::pair<std::string, double>>& phases) {
    for (const auto& [phase, ms] : phases) add(phase, ms);
  }
  const std::vector<std::string>& order() const { return order_; }
  const Sample* find(const std::string& phase) const {
    auto it = samples_.find(phase);
    return it == samples_.end() ? nullptr : &it->second;
  }

 private:
  std::vector<std::string> order_;
  std::map<std::string, Sample> samples_;
};

using Phases = std::vector<std::pair<std::string, double>>;

struct SizeResult {
  int sfs = 0;
  int reps = 0;
  Sample corchd_deploy, corchd_delete, floor_deploy, floor_delete;
  // corchd's deploy minus what the floor does not do: its SF phase and its veth pairs (kernel),
  // both from its log.
  Sample corchd_deploy_like_floor;
  Breakdown corchd_deploy_phases, corchd_delete_phases, floor_deploy_phases, floor_delete_phases;
  // What was built: the floor's plan, and the flows found on the switch after a deploy.
  size_t ports = 0, vlinks = 0, rules_lsi0 = 0, rules_graph = 0;
  int corchd_flows_lsi0 = -1, corchd_flows_graph = -1, floor_flows_lsi0 = -1,
      floor_flows_graph = -1;
};

// ---------------------------------------------------------------------------------------------
// The graph: SAP a -> sf1 -> ... -> sfN -> SAP b and back, each SF a bridge NSF with ports "in"
// (towards a) and "out" (towards b). With no SF, a and b are joined directly.

std::string chainGraph(const std::string& id, int sfs, const std::string& if_a,
                       const std::string& if_b) {
  auto sap = [](const std::string& s) { return "service-access-point:" + s; };
  auto port = [](int i, const char* p) { return "sf:sf" + std::to_string(i) + ":" + p; };
  std::ostringstream s;
  s << R"({"sffg": {"id": ")" << id << R"(", "name": "chain of )" << sfs << R"( bridges")";
  if (sfs > 0) {
    s << R"(, "SFs": [)";
    for (int i = 1; i <= sfs; ++i) {
      s << (i > 1 ? ", " : "") << R"({"id": "sf)" << i
        << R"(", "name": "bridge", "template": "bridge-nsf", )"
        << R"("ports": [{"id": "in"}, {"id": "out"}]})";
    }
    s << "]";
  }
  s << R"(, "saps": [{"id": "a", "type": "interface", "interface": {"if-name": ")" << if_a
    << R"("}}, {"id": "b", "type": "interface", "interface": {"if-name": ")" << if_b
    << R"("}}], "flowrules": [)";
  // Hops: from -> to, forward then back.
  std::vector<std::pair<std::string, std::string>> hops;
  for (int i = 0; i <= sfs; ++i) {
    hops.emplace_back(i == 0 ? sap("a") : port(i, "out"), i == sfs ? sap("b") : port(i + 1, "in"));
  }
  for (int i = sfs + 1; i >= 1; --i) {
    hops.emplace_back(i == sfs + 1 ? sap("b") : port(i, "in"),
                      i == 1 ? sap("a") : port(i - 1, "out"));
  }
  for (size_t k = 0; k < hops.size(); ++k) {
    s << (k ? ", " : "") << R"({"id": "r)" << k << R"(", "priority": 1, "match": {"port_in": ")"
      << hops[k].first << R"("}, "actions": {"output_to_port": ")" << hops[k].second << R"("}})";
  }
  s << "]}}";
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// corchd's debug log: lines "2026-11-23T14:00:00.123Z DEBUG ovs: transaction applied at 3 ms".

struct LogLine {
  double epoch_ms = 0;  // millisecond resolution
  std::string module;
  std::string text;
};

// The lines appended to a file since `offset`, which moves past them.
std::vector<LogLine> readLogSince(const std::string& path, std::streamoff& offset) {
  std::vector<LogLine> lines;
  std::ifstream in(path, std::ios::binary);
  if (!in) return lines;
  in.seekg(offset);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a line still being written: read it next time
    offset += static_cast<std::streamoff>(line.size()) + 1;
    std::tm tm{};
    int ms = 0;
    char level[8] = {};
    char module[32] = {};
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%d-%d-%dT%d:%d:%d.%dZ %7s %31[^:]: %n", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, level, module,
                    &consumed) < 9 ||
        consumed == 0) {
      continue;  // not a log line (a function's output, a continuation)
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    lines.push_back(LogLine{static_cast<double>(::timegm(&tm)) * 1000 + ms, module,
                            line.substr(static_cast<size_t>(consumed))});
  }
  return lines;
}

// When (ms after t0) the first or last line of a module starting with `prefix` was written.
std::optional<double> firstAt(const std::vector<LogLine>& lines, const std::string& module,
                              const std::string& prefix, double t0) {
  for (const auto& l : lines) {
    if (l.module == module && l.text.starts_with(prefix)) return l.epoch_ms - t0;
  }
  return std::nullopt;
}
std::optional<double> lastAt(const std::vector<LogLine>& lines, const std::string& module,
                             const std::string& prefix, double t0) {
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->module == module && it->text.starts_with(prefix)) return it->epoch_ms - t0;
  }
  return std::nullopt;
}
// The N of the first line "<prefix>N ms".
std::optional<double> numberIn(const std::vector<LogLine>& lines, const std::string& module,
                               const std::string& prefix) {
  for (const auto& l : lines) {
    if (l.module == module && l.text.starts_with(prefix)) {
      return std::atof(l.text.c_str() + prefix.size());
    }
  }
  return std::nullopt;
}

// Turns milestones (ms after the request was sent; absent ones skipped) into the phases between
// them: a phase is named after the milestone that ends it. The request's own end closes the last
// phase. Milestones are taken in the order they happened, so that a corchd that reorders its
// steps gives phases that still add up (under names that may then fit less well).
Phases phasesOf(const std::vector<std::pair<std::string, std::optional<double>>>& milestones,
                double end_ms, const std::string& last_phase) {
  std::vector<std::pair<double, std::string>> seen;
  for (const auto& [name, when] : milestones) {
    if (when) seen.emplace_back(*when, name);
  }
  std::stable_sort(seen.begin(), seen.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Phases phases;
  double at = 0;
  for (const auto& [when, name] : seen) {
    phases.emplace_back(name, std::max(0.0, when - at));
    at = std::max(at, when);
  }
  phases.emplace_back(last_phase, std::max(0.0, end_ms - at));
  return phases;
}

const char* kPhaseSfs = "SFs: namespaces, ports moved, start scripts";
const char* kPhaseVeths = "veth pairs (kernel)";

// Where a corchd deploy spent its time. The log has one line per step of the deploy: the ovs
// driver's "veth pairs made at" / "transaction applied at" (ms since its createLsi began
// creating), then the undo log's "recorded: ..." once each step is done.
Phases deployPhases(const std::vector<LogLine>& log, double t0, double end_ms) {
  auto veths_ms = numberIn(log, "ovs", "veth pairs made at ");
  auto veths_at = firstAt(log, "ovs", "veth pairs made at ", t0);
  std::optional<double> create_at;
  if (veths_ms && veths_at) create_at = *veths_at - *veths_ms;
  return phasesOf(
      {
          {"HTTP in, parse, resolve, plan, OVSDB read", create_at},
          {kPhaseVeths, veths_at},
          {"OVSDB transaction + vswitchd apply",
           firstAt(log, "ovs", "transaction applied at ", t0)},
          {"port check, OF connect, flow flush", firstAt(log, "undo", "recorded: graph-LSI", t0)},
          {kPhaseSfs, lastAt(log, "undo", "recorded: function ", t0)},
          {"flows on graph-LSI (1 batch)",
           firstAt(log, "undo", "recorded: rules on graph-LSI", t0)},
          {"flows on LSI-0 (1 batch)", firstAt(log, "undo", "recorded: rules on LSI-0", t0)},
      },
      end_ms, "state, HTTP answer");
}

// Where a corchd delete spent its time: the undo log runs backwards ("undone: ..."), and the ovs
// driver says how long the removal transaction took.
Phases deletePhases(const std::vector<LogLine>& log, double t0, double end_ms) {
  auto txn_ms = numberIn(log, "ovs", "removal applied in ");
  auto txn_at = firstAt(log, "ovs", "removal applied in ", t0);
  std::optional<double> txn_start;
  if (txn_ms && txn_at) txn_start = *txn_at - *txn_ms;
  return phasesOf(
      {
          {"HTTP in, flows off LSI-0", firstAt(log, "undo", "undone: rules on LSI-0", t0)},
          {"flows off graph-LSI", firstAt(log, "undo", "undone: rules on graph-LSI", t0)},
          {"SFs: stop scripts, namespaces deleted", lastAt(log, "undo", "undone: function ", t0)},
          {"OVSDB read", txn_start},
          {"OVSDB transaction + vswitchd apply", txn_at},
          {"veth pairs deleted (kernel)", firstAt(log, "undo", "undone: graph-LSI", t0)},
      },
      end_ms, "state, HTTP answer");
}

// ---------------------------------------------------------------------------------------------
// corchd over REST: one keep-alive connection, in this process (a curl per request would add
// a process start to every figure). It works in the sandbox because the sandbox gives its
// namespace an IPv4 address: without one, glibc's getaddrinfo(AI_ADDRCONFIG), which cpprest
// uses, does not resolve 127.0.0.1.

class RestClient {
 public:
  struct Answer {
    int status = 0;
    std::string body;
    double ms = 0;       // request sent -> whole answer read
    double sent_at = 0;  // epoch ms, to place corchd's log lines
  };

  // corchd's HTTPS certificate (`ca_cert`, empty for plain HTTP) and the token of its admin
  // (test/harness/corchd.h makes both).
  RestClient(const std::string& url, std::string token, const std::string& ca_cert)
      : token_(std::move(token)), client_(url, config(ca_cert)) {}

  Result<Answer> send(const web::http::method& method, const std::string& path,
                      const std::string& body = "") {
    web::http::http_request request(method);
    request.set_request_uri(path);
    if (!body.empty()) request.set_body(body, "application/json");
    if (!token_.empty()) request.headers().add("X-Auth-Token", token_);
    Answer answer;
    answer.sent_at = epochMs();
    auto t0 = Clock::now();
    try {
      auto response = client_.request(request).get();
      answer.body = response.extract_utf8string(true).get();
      answer.ms = msSince(t0);
      answer.status = response.status_code();
    } catch (const std::exception& e) {
      return Error(ErrorCode::Unavailable, method + " " + path + " failed: " + e.what());
    }
    return answer;
  }

 private:
  static web::http::client::http_client_config config(const std::string& ca_cert) {
    web::http::client::http_client_config c;
    c.set_timeout(std::chrono::seconds(600));  // a 100-SF graph takes seconds, not minutes
    if (!ca_cert.empty()) {
      c.set_ssl_context_callback(
          [ca_cert](boost::asio::ssl::context& ctx) { ctx.load_verify_file(ca_cert); });
    }
    return c;
  }
  std::string token_;
  web::http::client::http_client client_;
};

// ---------------------------------------------------------------------------------------------
// The floor: what corchd sends to Open vSwitch for a graph, sent raw. The graph is planned by the
// same code corchd runs (NetworkManager::plan: Algorithms 1 and 2; planCreateLsi: the bridge,
// its ports and vlinks; resolveRules: the flows with their port numbers and cookies), on an LSI-0
// of the floor's own ("fl0", with two physical ports of its own). Timed: only the switch's work.

class Floor {
 public:
  struct Built {
    size_t ports = 0, vlinks = 0, rules_lsi0 = 0, rules_graph = 0;
    Phases phases;        // timed phases; their sum is the floor
    double veths_ms = 0;  // kernel work, timed apart
  };
  struct Removed {
    Phases phases;
    double veths_ms = 0;
  };

  static Result<std::unique_ptr<Floor>> create(const corch::test::Sandbox& sb,
                                               const std::string& phys_a,
                                               const std::string& phys_b) {
    auto options = ovs::OvsOptions::parse(sb.ovsDriverOptions());
    if (!options.ok()) return std::move(options).error();
    std::unique_ptr<Floor> f(new Floor(*options, phys_a, phys_b));
    // LSI-0 is made by the driver itself, as corchd makes its own: untimed set-up.
    if (auto started = f->network_.start(); !started.ok()) {
      return started.error().context("cannot create the floor's LSI-0");
    }
    if (auto c = f->lsi0_of_.connect(deadline()); !c.ok()) {
      return c.error().context("cannot connect to the floor's LSI-0");
    }
    return Result<std::unique_ptr<Floor>>(std::move(f));
  }

  const std::string& lsi0() const { return lsi0_; }
  std::string graphLsi() const { return "fl-g" + std::to_string(kFloorIndex); }

  // Deploys a graph: untimed planning and veth pairs, then timed: the one OVSDB transaction and
  // the wait until ovs-vswitchd applied it, and the flow batches (graph-LSI, then LSI-0, as
  // corchd sends them), each closed by its barrier.
  Result<Built> deploy(const corch::graph::Graph& graph) {
    Built built;
    auto plan = network_.plan(graph, kFloorIndex,
                              [](const std::string&) { return corch::PortTechnology::Veth; });
    if (!plan.ok()) return plan.error().context("the floor cannot plan the graph");
    plan_ = *plan;
    // The LSI as NetworkManager::createGraphLsi asks the driver for it.
    corch::LsiSpec spec;
    spec.name = plan_.lsi;
    for (const auto& port : plan_.sf_ports) spec.ports.push_back(port.spec);
    spec.vlink_peer = lsi0_;
    spec.vlink_count = plan_.vlinks.count;
    auto db = snapshot();
    if (!db.ok()) return std::move(db).error();
    ovs::PortNumbering numbering(*db, {});
    auto lsi = ovs::planCreateLsi(*db, spec, ovs::PlanContext{options_.datapath, options_.rundir},
                                  numbering);
    if (!lsi.ok()) return lsi.error().context("the floor cannot plan LSI " + plan_.lsi);
    built.ports = lsi->info.ports.size();
    built.vlinks = lsi->info.vlinks.size();

    // The flows, exactly as corchd computes them (same rules, cookies, port numbers).
    network::GraphNetwork net;
    net.lsi = lsi->info;
    for (size_t i = 0; i < plan_.sf_ports.size(); ++i) {
      net.sf_ports[{plan_.sf_ports[i].sf_id, plan_.sf_ports[i].port_id}] = lsi->info.ports[i];
    }
    auto rules0 = network_.resolveRules(plan_, net, network::Side::Lsi0);
    auto rules_g = network_.resolveRules(plan_, net, network::Side::GraphLsi);
    if (!rules0.ok()) return std::move(rules0).error();
    if (!rules_g.ok()) return std::move(rules_g).error();
    built.rules_lsi0 = rules0->size();
    built.rules_graph = rules_g->size();
    graph_of_ = std::make_unique<ovs::OfConnection>(
        ovs::Endpoint::unixPath(options_.rundir + "/" + plan_.lsi + ".mgmt"), "LSI " + plan_.lsi);
    auto batch_g = encode(*graph_of_, *rules_g);
    auto batch0 = encode(lsi0_of_, *rules0);
    if (!batch_g.ok()) return std::move(batch_g).error();
    if (!batch0.ok()) return std::move(batch0).error();
    rapidjson::Document transaction = ovs::buildTransaction(lsi->change);

    // Kernel work, timed apart: the veth pairs (LSI end up, as the driver leaves them).
    auto t_veths = Clock::now();
    auto nl = corch::platform::RouteSocket::open();
    if (!nl.ok()) return std::move(nl).error();
    for (const auto& [lsi_end, function_end] : lsi->change.newVeths()) {
      CORCH_TRY(nl->createVethPair(lsi_end, function_end));
      CORCH_TRY(nl->setLinkUp(lsi_end));
    }
    built.veths_ms = msSince(t_veths);

    // --- timed: the switch's work ---
    auto t0 = Clock::now();
    CORCH_TRY(commit(transaction));
    built.phases.emplace_back("OVSDB transaction + vswitchd apply", msSince(t0));
    if (batch_g->count > 0) {
      auto t1 = Clock::now();
      CORCH_TRY(graph_of_->connect(deadline()));
      built.phases.emplace_back("OF connect to the new LSI", msSince(t1));
      auto t2 = Clock::now();
      CORCH_TRY(send(*graph_of_, *batch_g));
      built.phases.emplace_back("flows on graph-LSI (1 batch)", msSince(t2));
    }
    auto t3 = Clock::now();
    CORCH_TRY(send(lsi0_of_, *batch0));
    built.phases.emplace_back("flows on LSI-0 (1 batch)", msSince(t3));
    // --- end of timed work ---

    // The flows used the numbers asked for: check that ovs-vswitchd gave them (untimed).
    auto names = lsi->change.newPortNames();
    if (!names.empty()) {
      auto rows = ovsdb_.transact(ovs::kDatabase, ovs::interfacesQuery(names), deadline());
      if (!rows.ok()) return std::move(rows).error();
      auto interfaces = ovs::parseInterfaces(*rows);
      if (!interfaces.ok()) return std::move(interfaces).error();
      for (const auto& add : lsi->change.add) {
        for (const auto& p : add.ports) {
          if (p.number == 0) continue;
          auto it = interfaces->find(p.name);
          if (it == interfaces->end() || !it->second.ofport ||
              *it->second.ofport != static_cast<int64_t>(p.number)) {
            return Error(ErrorCode::Internal,
                         "floor: port " + p.name + " did not get number " +
                             std::to_string(p.number) +
                             (it == interfaces->end() ? "" : " (" + it->second.error + ")"));
          }
        }
      }
    }
    return built;
  }

  // Deletes what deploy() built: timed, the flows' removal from LSI-0 (one delete by the graph's
  // cookie and a barrier; the graph-LSI's flows go with the bridge) and the one OVSDB transaction
  // that destroys the graph-LSI with its vlinks, and the wait until ovs-vswitchd applied it.
  Result<Removed> remove() {
    Removed removed;
    graph_of_.reset();  // the bridge is going: close our end first, as corchd does
    auto db = snapshot();
    if (!db.ok()) return std::move(db).error();
    ovs::RemovalPlan removal = ovs::planDestroyLsi(*db, plan_.lsi);
    rapidjson::Document transaction = ovs::buildTransaction(removal.change);
    uint32_t xid = lsi0_of_.reserveXids(2);
    Batch del{ovs::openflow::encodeDeleteByCookie(uint64_t{kFloorIndex} << 32,
                                                  network::NetworkManager::kGraphCookieMask, xid),
              xid, 1};

    // --- timed ---
    auto t0 = Clock::now();
    CORCH_TRY(send(lsi0_of_, del));
    removed.phases.emplace_back("flows off LSI-0 (1 batch)", msSince(t0));
    auto t1 = Clock::now();
    if (!removal.change.empty()) CORCH_TRY(commit(transaction));
    removed.phases.emplace_back("OVSDB transaction + vswitchd apply", msSince(t1));
    // --- end of timed work ---

    auto t2 = Clock::now();
    CORCH_TRY(deleteVeths(removal.veths));
    removed.veths_ms = msSince(t2);
    return removed;
  }

 private:
  struct Batch {
    std::string bytes;
    uint32_t first = 0;
    uint32_t count = 0;
  };

  Floor(ovs::OvsOptions options, const std::string& phys_a, const std::string& phys_b)
      : options_(options),
        driver_(options),
        lsi0_("fl0"),
        network_(driver_, network::NetworkOptions{lsi0_, "fl", {phys_a, phys_b}}),
        ovsdb_(options.ovsdb),
        lsi0_of_(ovs::Endpoint::unixPath(options.rundir + "/" + lsi0_ + ".mgmt"), "LSI " + lsi0_) {}

  static ovs::Deadline deadline() { return Clock::now() + kCallTimeout; }

  Result<ovs::DbSnapshot> snapshot() {
    auto result = ovsdb_.transact(ovs::kDatabase, ovs::DbSnapshot::query(), deadline());
    if (!result.ok()) return result.error().context("floor: cannot read the database");
    return ovs::DbSnapshot::parse(*result);
  }

  // One transaction, then the wait until ovs-vswitchd has applied it: cur_cfg reaches the
  // next_cfg the transaction set (what OvsDriver::commit does, and ovs-vsctl without --no-wait).
  Result<void> commit(const rapidjson::Value& transaction) {
    auto d = deadline();
    auto result = ovsdb_.transact(ovs::kDatabase, transaction, d);
    if (!result.ok()) return result.error().context("floor: transaction failed");
    auto counters = ovs::parseCfgCounters(*result);
    if (!counters.ok()) return std::move(counters).error();
    int64_t cur = counters->cur_cfg;
    while (cur < counters->next_cfg) {
      int64_t left = ovs::remainingMs(d);
      if (left <= 0) return Error(ErrorCode::Timeout, "floor: ovs-vswitchd did not apply a change");
      auto now = ovsdb_.transact(ovs::kDatabase, ovs::curCfgChangeQuery(cur, left), d + 1s);
      if (!now.ok()) return now.error().context("floor: waiting for ovs-vswitchd failed");
      auto c = ovs::parseCfgCounters(*now);
      if (!c.ok()) return std::move(c).error();
      cur = c->cur_cfg;
    }
    return Ok();
  }

  // The FLOW_MODs of a batch, as OvsDriver::installRules encodes them.
  static Result<Batch> encode(ovs::OfConnection& of, const std::vector<corch::TsRule>& rules) {
    Batch b;
    b.count = static_cast<uint32_t>(rules.size());
    if (rules.empty()) return b;
    b.first = of.reserveXids(b.count + 1);
    for (uint32_t i = 0; i < b.count; ++i) {
      auto normalized = ovs::openflow::normalizeRule(rules[i]);
      if (!normalized.ok()) return std::move(normalized).error();
      b.bytes += ovs::openflow::encodeFlowMod(*normalized, ovs::openflow::FlowModCommand::Add,
                                              b.first + i);
    }
    return b;
  }

  static Result<void> send(ovs::OfConnection& of, const Batch& batch) {
    if (batch.count == 0) return Ok();
    auto errors = of.sendWithBarrier(batch.bytes, batch.first, batch.count, deadline());
    if (!errors.ok()) return errors.error().context("floor: flow batch failed");
    if (!errors->empty()) {
      const auto& e = errors->front().error;
      return Error(ErrorCode::Internal, "floor: the switch refused a flow: " +
                                            ovs::openflow::describeError(e.type, e.code));
    }
    return Ok();
  }

  static Result<void> deleteVeths(const std::vector<std::string>& names) {
    if (names.empty()) return Ok();
    const size_t workers = std::min(kDeleteThreads, names.size());
    std::vector<std::optional<Error>> failures(workers);
    {
      std::vector<std::jthread> threads;
      for (size_t w = 0; w < workers; ++w) {
        threads.emplace_back([&, w] {
          auto nl = corch::platform::RouteSocket::open();
          if (!nl.ok()) {
            failures[w] = nl.error();
            return;
          }
          for (size_t i = w; i < names.size(); i += workers) {
            auto r = nl->deleteLink(names[i]);
            if (!r.ok() && !failures[w]) failures[w] = r.error();
          }
        });
      }
    }
    for (auto& f : failures) {
      if (f) return *f;
    }
    return Ok();
  }

  ovs::OvsOptions options_;
  ovs::OvsDriver driver_;  // set-up only (LSI-0), never timed
  std::string lsi0_;
  network::NetworkManager network_;
  ovs::OvsdbClient ovsdb_;  // the floor's own connection
  ovs::OfConnection lsi0_of_;
  std::unique_ptr<ovs::OfConnection> graph_of_;
  network::GraphNetworkPlan plan_;  // of the graph deployed last
};

// ---------------------------------------------------------------------------------------------
// The benchmark

struct Options {
  std::vector<int> sizes = {0, 10, 100};
  std::vector<int> reps = {9, 5, 3};
  int warmup = 1;
  bool help = false;
};

// Flows on a bridge, by ovs-ofctl (untimed; -1 when it cannot tell).
int flowCount(const corch::test::Sandbox& sb, const std::string& bridge) {
  auto r = sb.run("ovs-ofctl -O OpenFlow13 dump-flows " + corch::test::shellQuote(bridge) +
                  " | grep -c cookie= || true");
  return r.ok() ? std::atoi(r.output.c_str()) : -1;
}

class Bench {
 public:
  Bench(corch::test::Sandbox& sb, Options options) : sb_(sb), options_(std::move(options)) {}

  ~Bench() {
    // corchd removes its graphs when it stops (SIGTERM); namespaces left by a corchd that had to
    // be killed go here.
    if (corchd_) corchd_->stop();
    g_corchd_pid = -1;
    (void)sb_.run(namespaceCleanupCommand(prefix_));
    g_cleanup_command[0] = 0;
  }

  Result<void> setUp() {
    prefix_ = "b" + std::to_string(::getpid() % 100000);
    std::snprintf(g_cleanup_command, sizeof g_cleanup_command, "%s",
                  namespaceCleanupCommand(prefix_).c_str());
    // Two hosts behind corchd's physical ports, two behind the floor's.
    std::vector<std::string> phys;
    const std::pair<const char*, const char*> hosts[] = {
        {"a", "10.0.0.1/24"}, {"b", "10.0.0.2/24"}, {"fa", "10.0.1.1/24"}, {"fb", "10.0.1.2/24"}};
    for (const auto& [host, cidr] : hosts) {
      auto p = sb_.addHost(host, cidr);
      if (!p.ok()) return p.error().context("cannot create host " + std::string(host));
      phys.push_back(*p);
    }
    dir_ = sb_.dir() + "/corchd";
    fs::create_directories(dir_);
    // Admission is not what is measured: room for 100 functions on any machine.
    std::ofstream(dir_ + "/corchd.json")
        << R"({"resources": {"cpu-cores": 1000, "memory-mb": 1000000, "disk-mb": 1000000}})";
    auto corchd = corch::test::Corchd::start(
        dir_,
        {"--config", dir_ + "/corchd.json", "--ovsdb", sb_.ovsdbEndpoint(), "--datapath", "netdev",
         "--physical-ports", phys[0] + "," + phys[1], "--repository", kSource + "/sf-repository",
         "--state-dir", dir_ + "/state", "--name-prefix", prefix_, "--log-level", "debug"});
    if (!corchd.ok()) return corchd.error().context("cannot start corchd");
    corchd_.emplace(std::move(*corchd));
    g_corchd_pid = corchd_->pid();
    phys_ = phys;
    rest_ = std::make_unique<RestClient>(corchd_->url(), corchd_->token(), corchd_->caCert());

    auto floor = Floor::create(sb_, phys[2], phys[3]);
    if (!floor.ok()) return std::move(floor).error();
    floor_ = std::move(*floor);
    return Ok();
  }

  Result<SizeResult> measure(int sfs, int reps) {
    SizeResult result;
    result.sfs = sfs;
    result.reps = reps;
    const std::string id = "chain" + std::to_string(sfs);
    const std::string body = chainGraph(id, sfs, phys_[0], phys_[1]);
    auto floor_graph = corch::graph::parseSffg(chainGraph(id, sfs, phys_[2], phys_[3]));
    if (!floor_graph.ok()) return floor_graph.error().context("the benchmark's graph is invalid");

    for (int rep = -options_.warmup; rep < reps; ++rep) {
      const bool timed = rep >= 0;
      const bool first = rep == -options_.warmup;
      // corchd: PUT until its 201, DELETE until its 204.
      auto log_offset = logSize();
      auto put = rest_->send(web::http::methods::PUT, "/graphs/" + id, body);
      if (!put.ok()) return std::move(put).error();
      if (put->status != 201) {
        return Error(ErrorCode::Internal, "PUT of " + std::to_string(sfs) + " SFs answered " +
                                              std::to_string(put->status) + ": " + put->body);
      }
      auto deploy_log = readLogSince(logPath(), log_offset);
      if (first) {
        result.corchd_flows_lsi0 = flowCount(sb_, prefix_ + "0");
        result.corchd_flows_graph = flowCount(sb_, prefix_ + "-g1");
      }
      auto del = rest_->send(web::http::methods::DEL, "/graphs/" + id);
      if (!del.ok()) return std::move(del).error();
      if (del->status != 204) {
        return Error(ErrorCode::Internal, "DELETE of " + std::to_string(sfs) + " SFs answered " +
                                              std::to_string(del->status) + ": " + del->body);
      }
      auto delete_log = readLogSince(logPath(), log_offset);

      // The floor, right after.
      auto built = floor_->deploy(*floor_graph);
      if (!built.ok()) return built.error().context("floor deploy");
      if (first) {
        result.ports = built->ports;
        result.vlinks = built->vlinks;
        result.rules_lsi0 = built->rules_lsi0;
        result.rules_graph = built->rules_graph;
        result.floor_flows_lsi0 = flowCount(sb_, floor_->lsi0());
        result.floor_flows_graph = flowCount(sb_, floor_->graphLsi());
      }
      auto removed = floor_->remove();
      if (!removed.ok()) return removed.error().context("floor delete");

      double floor_deploy = 0, floor_delete = 0;
      for (const auto& [phase, ms] : built->phases) floor_deploy += ms;
      for (const auto& [phase, ms] : removed->phases) floor_delete += ms;
      std::fprintf(stderr,
                   "  %3d SFs %s %d/%d: corchd deploy %7.1f delete %7.1f | floor deploy %6.1f "
                   "delete %6.1f ms\n",
                   sfs, timed ? "rep   " : "warmup", timed ? rep + 1 : rep + options_.warmup + 1,
                   timed ? reps : options_.warmup, put->ms, del->ms, floor_deploy, floor_delete);
      if (!timed) continue;

      result.corchd_deploy.add(put->ms);
      result.corchd_delete.add(del->ms);
      result.floor_deploy.add(floor_deploy);
      result.floor_delete.add(floor_delete);
      Phases dp = deployPhases(deploy_log, put->sent_at, put->ms);
      result.corchd_deploy_phases.add(dp);
      double not_in_floor = 0;
      for (const auto& [phase, ms] : dp) {
        if (phase == kPhaseSfs || phase == kPhaseVeths) not_in_floor += ms;
      }
      result.corchd_deploy_like_floor.add(put->ms - not_in_floor);
      result.corchd_delete_phases.add(deletePhases(delete_log, del->sent_at, del->ms));
      result.floor_deploy_phases.add(built->phases);
      result.floor_deploy_phases.add("(apart) veth pairs made (kernel)", built->veths_ms);
      result.floor_delete_phases.add(removed->phases);
      result.floor_delete_phases.add("(apart) veth pairs deleted (kernel)", removed->veths_ms);
    }
    return result;
  }

 private:
  std::string logPath() const { return dir_ + "/corchd.log"; }
  std::streamoff logSize() const {
    std::error_code ec;
    auto size = fs::file_size(logPath(), ec);
    return ec ? 0 : static_cast<std::streamoff>(size);
  }

  corch::test::Sandbox& sb_;
  Options options_;
  std::string prefix_ = "bnone";
  std::string dir_;
  std::vector<std::string> phys_;  // corchd's two physical ports, then the floor's
  std::optional<corch::test::Corchd> corchd_;
  std::unique_ptr<RestClient> rest_;
  std::unique_ptr<Floor> floor_;
};

// ---------------------------------------------------------------------------------------------
// Output

void printBreakdown(const char* title, const std::vector<SizeResult>& results,
                    Breakdown SizeResult::*which, Sample SizeResult::*total,
                    const char* total_name) {
  std::printf("\n%s; medians, ms:\n", title);
  // Every phase seen at any size, each after the phase it followed where it was seen (a graph
  // without SFs has no SF phase).
  std::vector<std::string> order;
  for (const auto& r : results) {
    const auto& seen = (r.*which).order();
    for (size_t k = 0; k < seen.size(); ++k) {
      if (std::find(order.begin(), order.end(), seen[k]) != order.end()) continue;
      auto at = k == 0 ? order.begin() : std::find(order.begin(), order.end(), seen[k - 1]) + 1;
      order.insert(at, seen[k]);
    }
  }
  std::printf("  %-46s", "");
  for (const auto& r : results) std::printf(" %9d SFs", r.sfs);
  std::printf("\n");
  for (const auto& phase : order) {
    std::printf("  %-46s", phase.c_str());
    for (const auto& r : results) {
      const Sample* s = (r.*which).find(phase);
      if (s && !s->empty()) {
        std::printf(" %13.1f", s->median());
      } else {
        std::printf(" %13s", "-");
      }
    }
    std::printf("\n");
  }
  std::printf("  %-46s", total_name);
  for (const auto& r : results) std::printf(" %13.1f", (r.*total).median());
  std::printf("\n");
}

void printResults(const std::vector<SizeResult>& results, int warmup, const std::string& machine) {
  std::printf(
      "\nbench_deploy: corchd (REST, PUT -> 201 / DELETE -> 204) vs the floor (the same OVSDB\n"
      "transaction and OpenFlow flow batches sent raw); graph: SAP a -> N bridge NSFs -> SAP b\n"
      "and back. Times in ms: median (min-max) over the timed repetitions (after %d untimed\n"
      "warm-up each). ratio = corchd deploy median / floor deploy median.\n"
      "Machine: %s\n\n",
      warmup, machine.c_str());
  std::printf("  %4s %4s  %-26s %-26s %-22s %-22s %6s %7s\n", "SFs", "reps", "corchd deploy",
              "corchd delete", "floor deploy", "floor delete", "ratio", "ratio*");
  for (const auto& r : results) {
    std::printf("  %4d %4d  %-26s %-26s %-22s %-22s %6.2f %7.2f\n", r.sfs, r.reps,
                r.corchd_deploy.str().c_str(), r.corchd_delete.str().c_str(),
                r.floor_deploy.str().c_str(), r.floor_delete.str().c_str(),
                r.corchd_deploy.median() / r.floor_deploy.median(),
                r.corchd_deploy_like_floor.median() / r.floor_deploy.median());
  }
  std::printf(
      "  * ratio*: like for like: corchd's deploy minus what the floor does not do (its SF phase:\n"
      "    namespaces and start scripts; and making the veth pairs, kernel work), both read from\n"
      "    its debug log, over the floor.\n");

  std::printf(
      "\nWhat one deploy sends (floor's plan, same code as corchd) and the flows found after\n"
      "it (ovs-ofctl dump-flows):\n");
  std::printf("  %4s %9s %7s %16s %16s %16s\n", "SFs", "SF ports", "vlinks", "rules LSI-0/gLSI",
              "corchd flows", "floor flows");
  for (const auto& r : results) {
    char rules[32], cflows[32], fflows[32];
    std::snprintf(rules, sizeof rules, "%zu / %zu", r.rules_lsi0, r.rules_graph);
    std::snprintf(cflows, sizeof cflows, "%d / %d", r.corchd_flows_lsi0, r.corchd_flows_graph);
    std::snprintf(fflows, sizeof fflows, "%d / %d", r.floor_flows_lsi0, r.floor_flows_graph);
    bool same = r.corchd_flows_lsi0 == r.floor_flows_lsi0 &&
                r.corchd_flows_graph == r.floor_flows_graph &&
                r.floor_flows_lsi0 == static_cast<int>(r.rules_lsi0) &&
                r.floor_flows_graph == static_cast<int>(r.rules_graph);
    std::printf("  %4d %9zu %7zu %16s %16s %16s%s\n", r.sfs, r.ports, r.vlinks, rules, cflows,
                fflows, same ? "" : "   MISMATCH: the floor is not comparable");
  }

  printBreakdown("corchd deploy, where the time goes: from its debug log, 1 ms resolution", results,
                 &SizeResult::corchd_deploy_phases, &SizeResult::corchd_deploy,
                 "total (PUT -> 201, measured by the client)");
  printBreakdown("corchd delete, where the time goes: from its debug log, 1 ms resolution", results,
                 &SizeResult::corchd_delete_phases, &SizeResult::corchd_delete,
                 "total (DELETE -> 204, measured by the client)");
  printBreakdown("floor deploy: rows marked (apart) are kernel work, not in the floor", results,
                 &SizeResult::floor_deploy_phases, &SizeResult::floor_deploy, "floor total");
  printBreakdown("floor delete: rows marked (apart) are kernel work, not in the floor", results,
                 &SizeResult::floor_delete_phases, &SizeResult::floor_delete, "floor total");

  std::printf("\nTargets:\n");
  for (const auto& r : results) {
    if (r.sfs != 0) continue;
    double m = r.corchd_deploy.median();
    std::printf("  empty graph (0 SFs) deployed end to end in < 50 ms: %.1f ms -> %s\n", m,
                m < 50 ? "met" : "NOT met");
  }
  for (const auto& r : results) {
    double ratio = r.corchd_deploy.median() / r.floor_deploy.median();
    std::printf("  corchd / floor deploy ratio < 1.5, %3d SFs: %.2f -> %s\n", r.sfs, ratio,
                ratio < 1.5 ? "met" : "NOT met");
  }
}

Result<std::vector<int>> parseList(const std::string& text) {
  std::vector<int> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || v < 0 || v > 999) {
      return Error(ErrorCode::InvalidArgument, "'" + text + "' is not a list of numbers 0-999");
    }
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) return Error(ErrorCode::InvalidArgument, "an empty list");
  return out;
}

const char* kUsage =
    "usage: bench_deploy [--sizes 0,10,100] [--reps 9,5,3] [--warmup 1]\n"
    "  --sizes   numbers of bridge NSFs in the chain, one graph per number\n"
    "  --reps    timed repetitions per size (one number for all, or one per size)\n"
    "  --warmup  untimed repetitions before them (default 1)\n"
    "Runs as root; needs Open vSwitch installed and corchd built (see bench/README.md).\n";

Result<Options> parseOptions(int argc, char** argv) {
  Options o;
  bool reps_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      o.help = true;
      return o;
    }
    if (i + 1 >= argc) return Error(ErrorCode::InvalidArgument, flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--sizes") {
      auto l = parseList(value);
      if (!l.ok()) return l.error().context("--sizes");
      o.sizes = *l;
    } else if (flag == "--reps") {
      auto l = parseList(value);
      if (!l.ok()) return l.error().context("--reps");
      o.reps = *l;
      reps_given = true;
    } else if (flag == "--warmup") {
      auto l = parseList(value);
      if (!l.ok() || l->size() != 1)
        return Error(ErrorCode::InvalidArgument, "--warmup wants a number");
      o.warmup = l->front();
    } else {
      return Error(ErrorCode::InvalidArgument, "unknown option " + flag);
    }
  }
  // Default repetitions follow the default sizes; other sizes get 3 unless told.
  if (!reps_given && o.sizes != std::vector<int>{0, 10, 100}) o.reps = {3};
  if (o.reps.size() == 1) o.reps.resize(o.sizes.size(), o.reps.front());
  if (o.reps.size() != o.sizes.size()) {
    return Error(ErrorCode::InvalidArgument, "--reps needs one number, or one per size");
  }
  for (int r : o.reps) {
    if (r < 1) return Error(ErrorCode::InvalidArgument, "--reps must be at least 1");
  }
  return o;
}

// The 1-minute load average: other work on the machine (2 cores here) skews every figure.
std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string first;
  in >> first;
  return first.empty() ? "?" : first;
}

int run(corch::test::Sandbox& sb, const Options& options) {
  const std::string load_before = loadAverage();
  Bench bench(sb, options);
  auto ready = bench.setUp();
  if (!ready.ok()) {
    std::fprintf(stderr, "bench_deploy: set-up failed: %s\n", ready.error().message().c_str());
    return 1;
  }
  std::vector<SizeResult> results;
  for (size_t i = 0; i < options.sizes.size(); ++i) {
    std::fprintf(stderr, "bench_deploy: %d SFs, %d timed repetitions\n", options.sizes[i],
                 options.reps[i]);
    auto r = bench.measure(options.sizes[i], options.reps[i]);
    if (!r.ok()) {
      std::fprintf(stderr, "bench_deploy: %d SFs: %s\n", options.sizes[i],
                   r.error().message().c_str());
      return 1;
    }
    results.push_back(std::move(*r));
  }
  // What the figures depend on most, for comparing runs across machines.
  auto machine =
      sb.run("echo \"$(nproc) CPUs, kernel $(uname -r), $(ovs-vswitchd --version | head -1)\"");
  std::string about = machine.ok() ? machine.output.substr(0, machine.output.find('\n')) : "?";
  about += "; load average " + load_before + " before, " + loadAverage() + " after";
  printResults(results, options.warmup, about);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parseOptions(argc, argv);
  if (!options.ok()) {
    if (!options.error().message().empty()) {
      std::fprintf(stderr, "bench_deploy: %s\n", options.error().message().c_str());
    }
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (options->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // First, while this is the only thread: the sandbox moves the process into its namespace (and
  // exits with the reason when it cannot).
  auto& sb = corch::test::Sandbox::get();
  installSignalHandlers();
  // The floor's set-up goes through the ovs driver, whose progress lines would mix with ours.
  corch::log::setLevel(corch::log::Level::Warn);
  int rc = 1;
  try {
    rc = run(sb, *options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_deploy: %s\n", e.what());
  }
  corch::test::Sandbox::shutdown();
  return rc;
}
