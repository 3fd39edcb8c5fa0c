#include "node/node_manager.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "corch/log.h"
#include "graph/diff.h"
#include "graph/sffg_codec.h"
#include "resolver/executable.h"

namespace corch::node {
namespace {

log::Logger lg("node");

constexpr size_t kMaxLogBytes = 1 << 20;  // functionLog returns at most the last 1 MiB

resolver::Resources sumOf(const std::vector<resolver::Resolution>& resolutions) {
  resolver::Resources sum;
  for (const auto& r : resolutions) {
    sum.cpu_cores += r.tmpl.cpu_cores;
    sum.memory_mb += r.tmpl.memory_mb;
    sum.disk_mb += r.tmpl.disk_mb;
  }
  return sum;
}

// The node as the resolver sees it for an update: what the graph holds is free for its new
// version.
class OwnResourcesFree final : public resolver::NodeView {
 public:
  OwnResourcesFree(const resolver::NodeView& node, resolver::Resources own)
      : node_(node), own_(own) {}
  Result<void> driverUsable(const std::string& type) const override {
    return node_.driverUsable(type);
  }
  bool dependencyPresent(const std::string& dependency) const override {
    return node_.dependencyPresent(dependency);
  }
  resolver::Resources freeResources() const override {
    resolver::Resources free = node_.freeResources();
    free.cpu_cores += own_.cpu_cores;
    free.memory_mb += own_.memory_mb;
    free.disk_mb += own_.disk_mb;
    return free;
  }

 private:
  const resolver::NodeView& node_;
  resolver::Resources own_;
};

PortTechnology technologyOf(const std::string& name) {
  if (name == "tap") return PortTechnology::Tap;
  if (name == "vhost-user") return PortTechnology::VhostUser;
  if (name == "internal") return PortTechnology::Internal;
  return PortTechnology::Veth;
}

}  // namespace

std::string_view toString(GraphState state) {
  switch (state) {
    case GraphState::Deploying:
      return "deploying";
    case GraphState::Deployed:
      return "deployed";
    case GraphState::Updating:
      return "updating";
    case GraphState::Failed:
      return "failed";
    case GraphState::Deleting:
      return "deleting";
  }
  return "?";
}

resolver::Resources probeCapacity(const std::string& path) {
  resolver::Resources r;
  r.cpu_cores = std::max(1u, std::thread::hardware_concurrency());
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    r.memory_mb = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) >> 20;
  }
  struct statvfs fs {};
  if (statvfs(path.c_str(), &fs) == 0) {
    r.disk_mb = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize >> 20;
  }
  return r;
}

// What a deployed graph owns (see node_manager.h): the undo of all of it is rebuilt from this.
struct NodeManager::Deployed {
  graph::Graph graph;     // as the client sent it (GET returns it)
  graph::Graph expanded;  // with graph templates spliced in: what is built

  network::GraphNetworkPlan plan;
  network::GraphNetwork network;
  network::SapPortsMade sap_ports;                     // graph-LSI SAPs' ports and links
  std::map<std::string, compute::Function> functions;  // by SF id
  compute::Placement placement;                        // their CPUs (the scheduler's choice)
  // Removals an update could not finish after it committed (a function or ports that would not
  // go): retried by DELETE.
  state::UndoLog leftovers;
};

struct NodeManager::Record {
  std::string id;
  GraphStatus status;
  bool busy = false;
  uint32_t index = 0;            // graph index in use (0: none)
  resolver::Resources reserved;  // resources promised to this graph
  std::unique_ptr<Deployed> deployed;
};

NodeManager::NodeManager(network::NetworkManager& network, compute::ComputeManager& compute,
                         resolver::Repository& repository, NodeOptions options)
    : network_(network),
      compute_(compute),
      repository_(repository),
      resolver_(repository, options.image_root),
      options_(std::move(options)) {
  if (!options_.graphs_dir.empty()) store_.emplace(options_.graphs_dir);
}

NodeManager::~NodeManager() = default;

Result<void> NodeManager::start() {
  compute_.probeAll();
  std::vector<GraphStore::Loaded> stored;
  if (store_) {
    auto loaded = store_->load();
    if (loaded) {
      stored = std::move(*loaded);
    } else {
      CORCH_LOG(lg, Error) << "cannot restore the stored graphs: " << loaded.error().message();
    }
  }
  // What the stored graphs may own: their graph-LSIs and functions are kept for adoption. A
  // function is kept by its graph's instance prefix (the SFs of a graph template are only known
  // once it is resolved); step 5 removes what no graph then owns.
  std::set<std::string> keep_lsis;
  std::vector<std::string> keep_prefixes;
  for (const auto& entry : stored) {
    if (!entry.graph || !entry.built) continue;
    keep_lsis.insert(network_.lsiName(entry.built->index));
    std::string prefix = compute_.instanceName(entry.id, "x");  // "<prefix>-<graph>-x"
    prefix.pop_back();
    keep_prefixes.push_back(std::move(prefix));
  }
  auto kept = [&](const std::string& instance) {
    return std::any_of(keep_prefixes.begin(), keep_prefixes.end(),
                       [&](const std::string& prefix) { return instance.starts_with(prefix); });
  };
  // Functions first: their namespaces hold veth ends of the stale LSIs' ports.
  auto removed = compute_.destroyLeftovers(kept);
  if (!removed.empty()) {
    CORCH_LOG(lg, Info) << "removed " << removed.size() << " function(s) left by an earlier run";
  }
  auto adopting = network_.start(keep_lsis);
  if (!adopting) return std::move(adopting).error();
  restore(std::move(stored), *adopting);

  // What was kept for adoption but no graph owns now.
  std::set<std::string> owned_instances;
  std::set<std::string> owned_lsis;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, record] : graphs_) {
      if (!record->deployed) continue;
      owned_lsis.insert(record->deployed->plan.lsi);
      for (const auto& [sf, f] : record->deployed->functions)
        owned_instances.insert(f.spec.instance);
    }
  }
  if (!keep_prefixes.empty()) {
    compute_.destroyLeftovers(
        [&](const std::string& instance) { return owned_instances.count(instance) > 0; });
  }
  if (*adopting) {
    auto swept = network_.removeStaleLsis(owned_lsis);
    if (!swept) CORCH_LOG(lg, Error) << swept.error().message();
    auto synced = network_.syncRules(network_.options().lsi0);
    if (!synced) CORCH_LOG(lg, Error) << synced.error().message();
  }
  return Ok();
}

void NodeManager::markFailed(const std::string& id, Error error) {
  std::lock_guard lock(mu_);
  auto& record = graphs_[id];
  if (!record) {
    record = std::make_shared<Record>();
    record->id = id;
  }
  record->status = GraphStatus{GraphState::Failed, 0, std::move(error)};
}

void NodeManager::restore(std::vector<GraphStore::Loaded> stored_graphs, bool adopting) {
  std::set<std::string> stored;
  for (auto& entry : stored_graphs) {
    stored.insert(entry.id);
    if (!entry.graph) {
      CORCH_LOG(lg, Error) << "cannot restore graph " << entry.id << ": "
                           << entry.graph.error().message();
      markFailed(entry.id, std::move(entry.graph).error());
      continue;
    }
    if (adopting && entry.built) {
      auto adopted = adoptGraph(entry.id, *entry.graph, *entry.built);
      if (adopted) continue;
      CORCH_LOG(lg, Info) << "graph " << entry.id
                          << " is deployed anew: " << adopted.error().message();
    }
    CORCH_LOG(lg, Info) << "restoring graph " << entry.id;
    auto done = putGraph(entry.id, std::move(*entry.graph));
    if (!done) {
      CORCH_LOG(lg, Error) << "cannot restore graph " << entry.id << ": " << done.error().message();
    }
  }
  for (const auto& [id, file] : options_.initial_graphs) {
    if (stored.count(id)) continue;  // the stored version is newer: the API may have changed it
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      markFailed(id, Error(ErrorCode::NotFound, "cannot read initial graph file " + file));
      CORCH_LOG(lg, Error) << "initial graph " << id << ": cannot read " << file;
      continue;
    }
    auto graph = graph::parseSffg(text.str());
    if (!graph) {
      CORCH_LOG(lg, Error) << "initial graph " << id << " (" << file
                           << "): " << graph.error().message();
      markFailed(id, std::move(graph).error().context("initial graph " + file));
      continue;
    }
    CORCH_LOG(lg, Info) << "deploying initial graph " << id << " from " << file;
    auto done = putGraph(id, std::move(*graph));
    if (!done) {
      CORCH_LOG(lg, Error) << "initial graph " << id << ": " << done.error().message();
    }
  }
}

void NodeManager::shutdown() {
  std::map<std::string, std::shared_ptr<Record>> graphs;
  {
    std::lock_guard lock(mu_);
    graphs = graphs_;
  }
  for (auto& [id, record] : graphs) {
    if (!record->deployed) continue;
    CORCH_LOG(lg, Info) << "removing graph " << id;
    auto done = teardownLog(*record->deployed).rollback();
    if (!done) CORCH_LOG(lg, Error) << "graph " << id << ": " << done.error().message();
  }
  std::lock_guard lock(mu_);
  graphs_.clear();
}

std::shared_ptr<NodeManager::Record> NodeManager::claim(const std::string& id, GraphState state,
                                                        Result<void>& refused) {
  std::lock_guard lock(mu_);
  auto it = graphs_.find(id);
  if (it == graphs_.end()) {
    if (state == GraphState::Deleting) {
      refused = Error(ErrorCode::NotFound, "no graph '" + id + "'");
      return nullptr;
    }
    it = graphs_.emplace(id, std::make_shared<Record>()).first;
    it->second->id = id;
  }
  Record& record = *it->second;
  if (record.busy) {
    refused = Error(ErrorCode::Conflict, "graph '" + id + "' is being " +
                                             std::string(toString(record.status.state)) +
                                             " by another request; try again when it is done");
    return nullptr;
  }
  if (state == GraphState::Deploying && record.deployed) state = GraphState::Updating;
  record.busy = true;
  record.status.state = state;
  record.status.progress = 0;
  return it->second;
}

void NodeManager::release(const std::shared_ptr<Record>& record) {
  std::lock_guard lock(mu_);
  record->busy = false;
}

void NodeManager::setProgress(Record& record, int progress) {
  std::lock_guard lock(mu_);
  record.status.progress = progress;
}

uint32_t NodeManager::allocateIndexLocked() const {
  std::vector<bool> used(network::kMaxGraphIndex + 1, false);
  for (const auto& [id, record] : graphs_) {
    if (record->index) used[record->index] = true;
  }
  for (uint32_t i = 1; i <= network::kMaxGraphIndex; ++i) {
    if (!used[i]) return i;
  }
  return 0;  // plan() refuses index 0 with ResourceExhausted
}

namespace {

// The port technology each SF's chosen implementation wants (veth for an SF not resolved).
std::function<PortTechnology(const std::string&)> technologiesOf(
    const std::map<std::string, const resolver::Resolution*>& by_sf) {
  return [&by_sf](const std::string& sf_id) {
    auto it = by_sf.find(sf_id);
    return it == by_sf.end() ? PortTechnology::Veth
                             : technologyOf(it->second->tmpl.port_technology);
  };
}

}  // namespace

state::UndoLog NodeManager::teardownLog(const Deployed& d) {
  // The entries a deploy records, in its order (rollback runs them backwards).
  state::UndoLog log;
  const network::GraphNetworkPlan p = d.plan;
  log.record("CPUs of graph " + d.graph.id, [this, id = d.graph.id] {
    releaseCpus(id);
    return Ok();
  });
  log.record("graph-LSI " + p.lsi, [this, p] { return network_.destroyGraphLsi(p); });
  if (!d.sap_ports.empty()) {
    log.record("SAP ports of " + p.lsi,
               [this, p, made = d.sap_ports] { return network_.destroySapPorts(p, made); });
  }
  for (const auto& e : d.leftovers.entries()) log.record(e.what, e.undo);
  // The functions are stopped and destroyed together, in parallel (each stopped before it is
  // destroyed), as they were started.
  std::vector<compute::Function> functions;
  for (const auto& sf : d.expanded.sfs) {
    auto it = d.functions.find(sf.id);
    if (it != d.functions.end()) functions.push_back(it->second);
  }
  if (!functions.empty()) {
    log.record(std::to_string(functions.size()) + " function(s) of " + p.lsi,
               [this, functions]() -> Result<void> {
                 auto outcome = compute_.stopAndDestroy(functions);
                 if (outcome.error) return std::move(*outcome.error);
                 return Ok();
               });
  }
  for (network::Side side : {network::Side::GraphLsi, network::Side::Lsi0}) {
    log.record(std::string("rules on ") + std::string(network::toString(side)),
               [this, p, side] { return network_.removeGraphRules(p, side); });
  }
  return log;
}

Result<compute::Placement> NodeManager::place(
    const std::string& id, const graph::Graph& graph,
    const std::map<std::string, const resolver::Resolution*>& by_sf) {
  if (!options_.scheduler) return compute::Placement{};
  compute::PlacementRequest request;
  request.graph_id = id;
  for (const auto& sf : graph.sfs) {
    const resolver::Template& t = by_sf.at(sf.id)->tmpl;
    request.functions.push_back(compute::FunctionRequest{
        sf.id, t.type, static_cast<unsigned>(std::ceil(t.cpu_cores)), false});
  }
  // Functions joined by a rule (one's port in, the other's out) are neighbours.
  std::set<std::pair<std::string, std::string>> pairs;
  for (const auto& rule : graph.rules) {
    if (rule.port_in.kind != graph::PortRef::Kind::SfPort) continue;
    for (const auto& out : rule.outputs) {
      if (out.kind != graph::PortRef::Kind::SfPort || out.sf_id == rule.port_in.sf_id) continue;
      pairs.insert(std::minmax(rule.port_in.sf_id, out.sf_id));
    }
  }
  request.adjacency.assign(pairs.begin(), pairs.end());
  request.best_effort = !options_.strict_pinning;
  return options_.scheduler->place(request);
}

void NodeManager::releaseCpus(const std::string& id, const std::vector<std::string>& sf_ids) {
  if (!options_.scheduler) return;
  if (sf_ids.empty()) {
    options_.scheduler->release(id);
    return;
  }
  for (const auto& sf : sf_ids) options_.scheduler->release(id, sf);
}

compute::Function NodeManager::functionOf(const std::string& id, const graph::Sf& sf,
                                          const resolver::Resolution& r,
                                          const network::GraphNetwork& network) const {
  compute::Function f;
  f.type = r.tmpl.type;
  SfSpec& s = f.spec;
  s.graph_id = id;
  s.sf_id = sf.id;
  s.instance = compute_.instanceName(id, sf.id);
  s.template_id = r.tmpl.id;
  s.image = r.image_path;
  s.config_json = r.config_json;
  s.timeout = compute_.options().timeout;
  s.log_path = compute_.logPath(id, sf.id);
  s.cpu_cores = r.tmpl.cpu_cores;
  s.memory_mb = r.tmpl.memory_mb;
  s.disk_mb = r.tmpl.disk_mb;
  s.engine_json = r.tmpl.engine_json;
  s.run_dir = compute_.runDir(id, sf.id);
  for (const auto& port : sf.ports) {
    const PortInfo& info = network.sf_ports.at({sf.id, port.id});
    s.ports.push_back(
        SfPortBinding{port.id, port.name, info.peer_ifname, technologyOf(r.tmpl.port_technology)});
  }
  return f;
}

Result<std::unique_ptr<NodeManager::Deployed>> NodeManager::deploy(
    const std::string& id, const graph::Graph& user_graph, Record& record,
    std::vector<std::string>& changes) {
  // Resolve and admit under one lock, so two graphs cannot both take the last free core.
  std::vector<resolver::Resolution> resolutions;
  graph::Graph expanded;
  uint32_t index = 0;
  {
    std::lock_guard admission(admission_mu_);
    auto resolved = resolver_.expand(user_graph, *this);
    if (!resolved) return std::move(resolved).error();
    resolutions = std::move(resolved->resolutions);
    expanded = std::move(resolved->graph);
    std::lock_guard lock(mu_);
    record.reserved = sumOf(resolutions);
    record.index = index = allocateIndexLocked();
  }
  const graph::Graph& graph = expanded;
  auto unreserve = [&] {
    std::lock_guard lock(mu_);
    record.reserved = {};
    record.index = 0;
  };
  setProgress(record, 10);

  std::map<std::string, const resolver::Resolution*> by_sf;
  for (const auto& r : resolutions) by_sf[r.sf_id] = &r;
  auto plan = network_.plan(graph, index, technologiesOf(by_sf));
  if (!plan) {
    unreserve();
    return std::move(plan).error();
  }
  setProgress(record, 20);

  auto d = std::make_unique<Deployed>();
  d->graph = user_graph;
  d->expanded = graph;
  d->plan = std::move(*plan);
  state::UndoLog undo;  // this PUT's transaction
  auto fail = [&](Error error) -> Error {
    CORCH_LOG(lg, Info) << "graph " << id << ": " << error.message() << "; rolling back";
    auto rolled = undo.rollback();
    unreserve();
    if (!rolled)
      return Error(error.code(), error.message() + " (" + rolled.error().message() + ")",
                   error.fields());
    return error;
  };

  auto placed = place(id, graph, by_sf);
  if (!placed) return fail(std::move(placed).error());
  d->placement = std::move(*placed);
  undo.record("CPUs of graph " + id, [this, id] {
    releaseCpus(id);
    return Ok();
  });

  auto net = network_.createGraphLsi(d->plan);
  if (!net) return fail(std::move(net).error());
  d->network = std::move(*net);
  const network::GraphNetworkPlan& p = d->plan;
  undo.record("graph-LSI " + p.lsi, [this, p] { return network_.destroyGraphLsi(p); });
  changes.push_back("graph-LSI " + p.lsi + " created with " + std::to_string(p.sf_ports.size()) +
                    " SF port(s) and " + std::to_string(p.vlinks.count) + " vlink(s)");
  if (!p.sap_ports.empty()) {
    auto saps = network_.createSapPorts(p, p.sap_ports);
    if (!saps) return fail(std::move(saps).error());
    d->sap_ports = std::move(*saps);
    for (const auto& m : d->sap_ports) {
      for (const auto& [sap, port] : m.ports) d->network.sap_ports[sap] = port;
    }
    undo.record("SAP ports of " + p.lsi,
                [this, p, made = d->sap_ports] { return network_.destroySapPorts(p, made); });
    changes.push_back(std::to_string(p.sap_ports.size()) + " SAP(s) attached to " + p.lsi);
  }
  setProgress(record, 40);

  std::vector<compute::Function> functions;
  for (const auto& sf : graph.sfs) {
    functions.push_back(functionOf(id, sf, *by_sf.at(sf.id), d->network));
    functions.back().spec.cpus = d->placement.cpusOf(sf.id);
  }
  auto outcome = compute_.createAndStart(functions);
  recordFunctions(undo, functions, outcome, changes, "started");
  if (outcome.error) return fail(std::move(*outcome.error));
  for (auto& f : functions) d->functions[f.spec.sf_id] = std::move(f);
  setProgress(record, 80);

  for (network::Side side : {network::Side::GraphLsi, network::Side::Lsi0}) {
    auto installed = network_.installGraphRules(p, d->network, side);
    if (!installed) return fail(std::move(installed).error());
    undo.record(std::string("rules on ") + std::string(network::toString(side)),
                [this, p, side] { return network_.removeGraphRules(p, side); });
  }
  size_t lsi0 = 0;
  for (const auto& rule : p.rules) lsi0 += rule.side == network::Side::Lsi0;
  changes.push_back(std::to_string(lsi0) + " rule(s) on LSI-0 and " +
                    std::to_string(p.rules.size() - lsi0) + " on " + p.lsi);
  return d;
}

void NodeManager::recordFunctions(state::UndoLog& undo, const std::vector<compute::Function>& fs,
                                  const compute::BatchOutcome& outcome,
                                  std::vector<std::string>& changes, const std::string& verb) {
  for (size_t i = 0; i < fs.size(); ++i) {
    const compute::Function& f = fs[i];
    if (outcome.created[i]) {
      undo.record("function " + f.spec.instance, [this, f] { return compute_.destroy(f); });
    }
    if (outcome.started[i]) {
      undo.record("function " + f.spec.instance + " running",
                  [this, f] { return compute_.stop(f); });
      changes.push_back("sf " + f.spec.sf_id + " " + verb + " as " + f.spec.template_id + " (" +
                        f.type + ")");
    }
  }
}

Result<std::unique_ptr<NodeManager::Deployed>> NodeManager::update(
    const std::string& id, const graph::Graph& user_graph, Record& record, Deployed& old,
    std::vector<std::string>& changes) {
  using network::Side;
  // Resolve and admit: the graph's own reservation is free for its new version. Until the update
  // is over the graph holds the larger of the two, so that a rollback finds room.
  std::vector<resolver::Resolution> resolutions;
  graph::Graph expanded;
  resolver::Resources before_reserved;
  resolver::Resources after_reserved;
  {
    std::lock_guard admission(admission_mu_);
    {
      std::lock_guard lock(mu_);
      before_reserved = record.reserved;
    }
    OwnResourcesFree view(*this, before_reserved);
    auto resolved = resolver_.expand(user_graph, view);
    if (!resolved) return std::move(resolved).error();
    resolutions = std::move(resolved->resolutions);
    expanded = std::move(resolved->graph);
    after_reserved = sumOf(resolutions);
    std::lock_guard lock(mu_);
    record.reserved =
        resolver::Resources{std::max(before_reserved.cpu_cores, after_reserved.cpu_cores),
                            std::max(before_reserved.memory_mb, after_reserved.memory_mb),
                            std::max(before_reserved.disk_mb, after_reserved.disk_mb)};
  }
  auto restoreReservation = [&] {
    std::lock_guard lock(mu_);
    record.reserved = before_reserved;
  };
  setProgress(record, 10);

  std::map<std::string, const resolver::Resolution*> by_sf;
  for (const auto& r : resolutions) by_sf[r.sf_id] = &r;
  const graph::GraphDiff gd = graph::diff(old.graph, user_graph);
  // What is built is the expanded graph: its SFs, SAPs and rules are compared.
  const graph::Graph& graph = expanded;

  // Which SFs are kept running, which keep running with ports plugged or unplugged, which are
  // (re)built and which go.
  std::set<std::string> kept;
  std::set<std::string> replugged;
  std::set<std::string> added;
  std::set<std::string> changed;
  std::vector<std::string> removed;
  for (const auto& sf : graph.sfs) {
    auto running = old.functions.find(sf.id);
    const graph::Sf* before = old.expanded.findSf(sf.id);
    if (running == old.functions.end() || !before) {
      added.insert(sf.id);
      continue;
    }
    graph::Sf before_without_ports = *before;
    graph::Sf after_without_ports = sf;
    before_without_ports.ports.clear();
    after_without_ports.ports.clear();
    if (before_without_ports != after_without_ports) {
      changed.insert(sf.id);
      continue;
    }
    // Same but maybe for the ports; also the same implementation and configuration after
    // resolution?
    const compute::Function& now = running->second;
    const resolver::Resolution& r = *by_sf.at(sf.id);
    bool same_function = now.type == r.tmpl.type && now.spec.template_id == r.tmpl.id &&
                         now.spec.image == r.image_path && now.spec.config_json == r.config_json &&
                         now.spec.cpu_cores == r.tmpl.cpu_cores &&
                         now.spec.memory_mb == r.tmpl.memory_mb &&
                         now.spec.engine_json == r.tmpl.engine_json;
    if (!same_function) {
      changed.insert(sf.id);
    } else if (*before == sf) {
      kept.insert(sf.id);
    } else if (compute_.updatesPorts(now.type)) {
      replugged.insert(sf.id);
    } else {
      changed.insert(sf.id);
    }
  }
  for (const auto& sf : old.expanded.sfs) {
    if (!graph.findSf(sf.id) && old.functions.count(sf.id)) removed.push_back(sf.id);
  }

  auto plan = network_.plan(graph, record.index, technologiesOf(by_sf),
                            network::PlanBase{&old.plan, changed});
  if (!plan) {
    restoreReservation();
    return std::move(plan).error();
  }
  setProgress(record, 20);

  auto d = std::make_unique<Deployed>();
  d->graph = user_graph;
  d->expanded = graph;
  d->plan = std::move(*plan);
  d->network.lsi = old.network.lsi;
  for (const auto& [key, port] : old.network.sf_ports) {
    const graph::Sf* sf = graph.findSf(key.first);
    bool still = sf && std::any_of(sf->ports.begin(), sf->ports.end(),
                                   [&](const graph::SfPort& p) { return p.id == key.second; });
    if (kept.count(key.first) || (replugged.count(key.first) && still)) {
      d->network.sf_ports[key] = port;
    }
  }
  for (const auto& sfid : kept) d->functions[sfid] = old.functions.at(sfid);
  for (const auto& e : old.leftovers.entries()) d->leftovers.record(e.what, e.undo);

  state::UndoLog undo;            // this update's transaction
  std::vector<std::string> done;  // changes, reported only if the update commits
  auto fail = [&](Error error) -> Error {
    CORCH_LOG(lg, Info) << "graph " << id << ": update failed: " << error.message()
                        << "; returning to the previous version";
    auto rolled = undo.rollback();
    restoreReservation();
    if (!rolled) {
      return Error(error.code(), error.message() + " (" + rolled.error().message() + ")",
                   error.fields());
    }
    return error;
  };

  // 0. CPUs: kept and changed functions keep theirs (the scheduler knows them); added ones get
  // theirs now, given back if the update fails.
  auto placed = place(id, graph, by_sf);
  if (!placed) return fail(std::move(placed).error());
  d->placement = std::move(*placed);
  for (const auto& sf_id : removed) d->placement.functions.erase(sf_id);
  if (!added.empty()) {
    undo.record("CPUs of the functions added to graph " + id,
                [this, id, ids = std::vector<std::string>(added.begin(), added.end())] {
                  releaseCpus(id, ids);
                  return Ok();
                });
  }

  // 1. More vlinks, if Algorithm 1 needs them; the existing ones keep their index.
  auto vlinks = network_.addVlinks(d->plan, d->network);
  if (!vlinks) return fail(std::move(vlinks).error());
  if (!vlinks->empty()) {
    undo.record("vlinks added to " + d->plan.lsi,
                [this, v = *vlinks] { return network_.removeVlinks(v); });
    for (const auto& v : *vlinks) d->network.lsi.vlinks.push_back(v);
    done.push_back(std::to_string(vlinks->size()) + " vlink(s) added");
  }

  // 1b. Ports of graph-LSI SAPs that are new or changed (changed ones took a new number); the
  // others are kept.
  std::set<std::string> old_sap_names;
  for (const auto& s : old.plan.sap_ports) old_sap_names.insert(s.spec.name);
  std::set<std::string> new_sap_names;
  std::vector<network::SapPortPlan> new_saps;
  for (const auto& s : d->plan.sap_ports) {
    new_sap_names.insert(s.spec.name);
    if (!old_sap_names.count(s.spec.name)) new_saps.push_back(s);
  }
  network::SapPortsMade gone_saps;
  for (const auto& m : old.sap_ports) {
    if (new_sap_names.count(m.sap.spec.name)) {
      d->sap_ports.push_back(m);
      for (const auto& [sap, port] : m.ports) d->network.sap_ports[sap] = port;
    } else {
      gone_saps.push_back(m);
    }
  }
  if (!new_saps.empty()) {
    auto saps = network_.createSapPorts(d->plan, new_saps);
    if (!saps) return fail(std::move(saps).error());
    undo.record("SAP ports added to " + d->plan.lsi,
                [this, p = d->plan, made = *saps] { return network_.destroySapPorts(p, made); });
    for (const auto& m : *saps) {
      for (const auto& [sap, port] : m.ports) d->network.sap_ports[sap] = port;
      d->sap_ports.push_back(m);
    }
    done.push_back(std::to_string(new_saps.size()) + " SAP(s) attached");
  }

  // 2. Ports of the SFs to build (changed ones have new names: the old ports still exist).
  std::vector<network::SfPortPlan> new_ports;
  std::vector<std::string> new_names;
  for (const auto& port : d->plan.sf_ports) {
    bool plugged =
        replugged.count(port.sf_id) && !d->network.sf_ports.count({port.sf_id, port.port_id});
    if (added.count(port.sf_id) || changed.count(port.sf_id) || plugged) {
      new_ports.push_back(port);
      new_names.push_back(port.spec.name);
    }
  }
  auto made = network_.createSfPorts(d->plan, new_ports);
  if (!made) return fail(std::move(made).error());
  if (!new_ports.empty()) {
    undo.record("SF ports added to " + d->plan.lsi,
                [this, p = d->plan, new_names] { return network_.destroySfPorts(p, new_names); });
  }
  for (size_t i = 0; i < new_ports.size(); ++i) {
    d->network.sf_ports[{new_ports[i].sf_id, new_ports[i].port_id}] = (*made)[i];
  }
  d->network.lsi.ports.clear();
  for (const auto& [key, port] : d->network.sf_ports) d->network.lsi.ports.push_back(port);
  setProgress(record, 30);

  // 3. Changed SFs: the old function goes first (the new one has its instance name). Its undo
  // builds the old one again, on its old port names, and fixes the graph-LSI's rules if the
  // recreated ports got other numbers.
  for (const auto& sf : graph.sfs) {
    if (!changed.count(sf.id)) continue;
    const compute::Function f = old.functions.at(sf.id);
    auto stopped = compute_.stop(f);
    if (!stopped) return fail(std::move(stopped).error());
    const std::string sf_id = sf.id;
    undo.record("function " + f.spec.instance + " (previous version)",
                [this, &old, sf_id]() -> Result<void> {
                  compute::Function f = old.functions.at(sf_id);
                  CORCH_TRY(compute_.destroy(f));
                  auto stale = network_.resolveRules(old.plan, old.network, Side::GraphLsi);
                  if (!stale) return std::move(stale).error();
                  std::vector<network::SfPortPlan> ports;
                  std::vector<std::string> names;
                  for (const auto& p : old.plan.sf_ports) {
                    if (p.sf_id != sf_id) continue;
                    ports.push_back(p);
                    names.push_back(p.spec.name);
                  }
                  CORCH_TRY(network_.destroySfPorts(old.plan, names));
                  auto made = network_.createSfPorts(old.plan, ports);
                  if (!made) return std::move(made).error();
                  for (size_t i = 0; i < ports.size(); ++i) {
                    old.network.sf_ports[{sf_id, ports[i].port_id}] = (*made)[i];
                  }
                  for (auto& b : f.spec.ports) {
                    b.ifname = old.network.sf_ports.at({sf_id, b.port_id}).peer_ifname;
                  }
                  old.functions[sf_id] = f;
                  auto outcome = compute_.createAndStart({f});
                  if (outcome.error) return std::move(*outcome.error);
                  auto fresh = network_.resolveRules(old.plan, old.network, Side::GraphLsi);
                  if (!fresh) return std::move(fresh).error();
                  auto rules = network::diffRules(*stale, *fresh);
                  CORCH_TRY(network_.removeRules(old.plan, Side::GraphLsi, rules.remove));
                  return network_.installRules(old.plan, Side::GraphLsi, rules.install);
                });
    auto destroyed = compute_.destroy(f);
    if (!destroyed) return fail(std::move(destroyed).error());
  }

  // 3b. Running functions whose ports changed: their driver plugs the new ones in and unplugs
  // the removed ones (those are destroyed once the update has committed).
  for (const auto& sf_id : replugged) {
    const compute::Function& before = old.functions.at(sf_id);
    compute::Function after = functionOf(id, *graph.findSf(sf_id), *by_sf.at(sf_id), d->network);
    after.spec.cpus = before.spec.cpus;
    auto updated = compute_.update(before, after);
    if (!updated) return fail(std::move(updated).error());
    undo.record("ports of function " + after.spec.instance,
                [this, before, after] { return compute_.update(after, before); });
    done.push_back("sf " + sf_id + ": ports changed while it runs (" + after.type + " hot-plug)");
    d->functions[sf_id] = std::move(after);
  }

  // 4. Added and changed SFs, in parallel.
  std::vector<compute::Function> functions;
  for (const auto& sf : graph.sfs) {
    if (added.count(sf.id) || changed.count(sf.id)) {
      functions.push_back(functionOf(id, sf, *by_sf.at(sf.id), d->network));
      functions.back().spec.cpus = d->placement.cpusOf(sf.id);
    }
  }
  if (!functions.empty()) {
    auto outcome = compute_.createAndStart(functions);
    std::vector<std::string> started;
    recordFunctions(undo, functions, outcome, started, "started");
    if (outcome.error) return fail(std::move(*outcome.error));
    for (size_t i = 0; i < functions.size(); ++i) {
      const compute::Function& f = functions[i];
      done.push_back(changed.count(f.spec.sf_id)
                         ? "sf " + f.spec.sf_id + " restarted as " + f.spec.template_id + " (" +
                               f.type + ") on new ports: the " + f.type +
                               " driver cannot change a running function"
                         : started[i]);
      d->functions[f.spec.sf_id] = f;
    }
  }
  setProgress(record, 70);

  // 5-6. Rules: the difference only. Installs first (graph-LSI, then LSI-0, as a deploy), so
  // that traffic moved to new paths finds them; then removals (LSI-0 first).
  std::map<Side, network::RuleDiff> diffs;
  for (Side side : {Side::GraphLsi, Side::Lsi0}) {
    auto before = network_.resolveRules(old.plan, old.network, side);
    if (!before) return fail(std::move(before).error());
    auto after = network_.resolveRules(d->plan, d->network, side);
    if (!after) return fail(std::move(after).error());
    diffs[side] = network::diffRules(*before, *after);
  }
  for (Side side : {Side::GraphLsi, Side::Lsi0}) {
    const network::RuleDiff& rd = diffs[side];
    auto installed = network_.installRules(d->plan, side, rd.install);
    if (!installed) return fail(std::move(installed).error());
    std::vector<TsRule> fresh;
    for (const auto& r : rd.install) {
      bool replaces = false;
      for (const auto& x : rd.replaced) replaces = replaces || network::sameKey(x, r);
      if (!replaces) fresh.push_back(r);
    }
    undo.record(std::string("rules installed on ") + std::string(network::toString(side)),
                [this, p = d->plan, side, fresh, replaced = rd.replaced]() -> Result<void> {
                  CORCH_TRY(network_.removeRules(p, side, fresh));
                  return network_.installRules(p, side, replaced);
                });
  }
  for (Side side : {Side::Lsi0, Side::GraphLsi}) {
    const network::RuleDiff& rd = diffs[side];
    auto removed_rules = network_.removeRules(old.plan, side, rd.remove);
    if (!removed_rules) return fail(std::move(removed_rules).error());
    undo.record(std::string("rules removed from ") + std::string(network::toString(side)),
                [this, p = old.plan, side, rules = rd.remove] {
                  return network_.installRules(p, side, rules);
                });
  }
  for (Side side : {Side::Lsi0, Side::GraphLsi}) {
    const network::RuleDiff& rd = diffs[side];
    done.push_back("rules on " + std::string(network::toString(side)) + ": " +
                   std::to_string(rd.install.size()) + " installed, " +
                   std::to_string(rd.remove.size()) + " removed, " + std::to_string(rd.unchanged) +
                   " untouched");
  }
  setProgress(record, 90);

  // Committed. What is left are removals, which cannot break the new version: one that fails is
  // kept as a leftover for DELETE.
  for (auto it = removed.rbegin(); it != removed.rend(); ++it) {
    const compute::Function f = old.functions.at(*it);
    auto stopped = compute_.stop(f);
    if (!stopped) {
      CORCH_LOG(lg, Warn) << "graph " << id << ": " << stopped.error().message()
                          << "; destroying it anyway";
    }
    auto destroyed = compute_.destroy(f);
    if (!destroyed) {
      CORCH_LOG(lg, Error) << "graph " << id << ": " << destroyed.error().message();
      d->leftovers.record("function " + f.spec.instance + " (removed)",
                          [this, f] { return compute_.destroy(f); });
      done.push_back("sf " + *it + " removed, but its function could not be destroyed (" +
                     destroyed.error().message() + "); DELETE retries");
    } else {
      done.push_back("sf " + *it + " stopped and removed");
    }
  }
  if (!removed.empty()) releaseCpus(id, removed);
  std::vector<std::string> old_names;
  for (const auto& port : old.plan.sf_ports) {
    if (kept.count(port.sf_id)) continue;
    if (replugged.count(port.sf_id) && d->network.sf_ports.count({port.sf_id, port.port_id})) {
      continue;  // still plugged in
    }
    old_names.push_back(port.spec.name);
  }
  auto ports_gone = network_.destroySfPorts(old.plan, old_names);
  if (!ports_gone) {
    CORCH_LOG(lg, Error) << "graph " << id << ": " << ports_gone.error().message();
    d->leftovers.record(
        "SF ports of " + old.plan.lsi + " (removed)",
        [this, p = old.plan, old_names] { return network_.destroySfPorts(p, old_names); });
  }
  if (!gone_saps.empty()) {
    auto saps_gone = network_.destroySapPorts(old.plan, gone_saps);
    if (!saps_gone) {
      CORCH_LOG(lg, Error) << "graph " << id << ": " << saps_gone.error().message();
      d->leftovers.record(
          "SAP ports of " + old.plan.lsi + " (removed)",
          [this, p = old.plan, gone_saps] { return network_.destroySapPorts(p, gone_saps); });
    }
    done.push_back(std::to_string(gone_saps.size()) + " SAP(s) detached");
  }
  {
    std::lock_guard lock(mu_);
    record.reserved = after_reserved;
  }
  for (auto& line : gd.describe()) changes.push_back(std::move(line));
  for (auto& line : done) changes.push_back(std::move(line));
  return d;
}

BuiltState NodeManager::builtOf(const Deployed& d) {
  BuiltState b;
  b.index = d.plan.index;
  b.sf_numbers = d.plan.sf_numbers;
  b.sf_port_numbers = d.plan.sf_port_numbers;
  b.flowrule_numbers = d.plan.flowrule_numbers;
  b.sap_numbers = d.plan.sap_numbers;
  b.vlinks = d.plan.vlinks;
  for (const auto& v : d.network.lsi.vlinks) b.vlink_names.emplace_back(v.name_a, v.name_b);
  b.placement = d.placement;
  return b;
}

Result<void> NodeManager::adoptGraph(const std::string& id, graph::Graph graph,
                                     const BuiltState& built) {
  graph.id = id;
  Result<void> refused;
  auto record = claim(id, GraphState::Deploying, refused);
  if (!record) return std::move(refused).error();
  auto adopted = adopt(id, graph, built, *record);
  std::lock_guard lock(mu_);
  record->busy = false;
  if (!adopted) return std::move(adopted).error();
  record->deployed = std::move(*adopted);
  record->status = GraphStatus{GraphState::Deployed, 100, std::nullopt};
  CORCH_LOG(lg, Info) << "graph " << id << " adopted: it kept running through the restart";
  return Ok();
}

Result<std::unique_ptr<NodeManager::Deployed>> NodeManager::adopt(const std::string& id,
                                                                  const graph::Graph& user_graph,
                                                                  const BuiltState& built,
                                                                  Record& record) {
  // What the earlier run left for this graph goes on any failure: the graph-LSI (and with it its
  // ports and vlinks), the graph's rules on LSI-0, its functions.
  network::GraphNetworkPlan left = planOf(built);
  left.lsi = network_.lsiName(built.index);
  std::set<std::string> instances;
  for (const auto& sf : user_graph.sfs) instances.insert(compute_.instanceName(id, sf.id));
  state::UndoLog undo;
  undo.record("graph-LSI " + left.lsi + " of an earlier run",
              [this, left] { return network_.destroyGraphLsi(left); });
  undo.record("rules of " + left.lsi + " on LSI-0 of an earlier run",
              [this, left] { return network_.removeGraphRules(left, network::Side::Lsi0); });
  undo.record("functions of graph " + id + " of an earlier run", [this, &instances] {
    compute_.destroyLeftovers(
        [&](const std::string& instance) { return instances.count(instance) == 0; });
    return Ok();
  });
  auto fail = [&](Error error) -> Error {
    auto rolled = undo.rollback();
    if (!rolled) CORCH_LOG(lg, Error) << "graph " << id << ": " << rolled.error().message();
    std::lock_guard lock(mu_);
    record.reserved = {};
    record.index = 0;
    return error.context("cannot adopt graph " + id);
  };

  std::vector<resolver::Resolution> resolutions;
  graph::Graph expanded;
  {
    std::lock_guard admission(admission_mu_);
    auto resolved = resolver_.expand(user_graph, *this);
    if (!resolved) return fail(std::move(resolved).error());
    resolutions = std::move(resolved->resolutions);
    expanded = std::move(resolved->graph);
    for (const auto& sf : expanded.sfs) instances.insert(compute_.instanceName(id, sf.id));
    std::lock_guard lock(mu_);
    for (const auto& [other, r] : graphs_) {
      if (r.get() != &record && r->index == built.index) {
        return fail(Error(ErrorCode::Conflict, "its graph index " + std::to_string(built.index) +
                                                   " is taken by graph " + other));
      }
    }
    record.reserved = sumOf(resolutions);
    record.index = built.index;
  }
  const graph::Graph& graph = expanded;
  std::map<std::string, const resolver::Resolution*> by_sf;
  for (const auto& r : resolutions) by_sf[r.sf_id] = &r;
  // The previous version is this very graph: its SAP ports (which keep their numbers when they
  // stay the same) are those of a plan of it.
  auto fresh = network_.plan(graph, built.index, technologiesOf(by_sf));
  if (!fresh) return fail(std::move(fresh).error());
  left.sap_ports = fresh->sap_ports;
  network::PlanBase base;
  base.previous = &left;
  auto plan = network_.plan(graph, built.index, technologiesOf(by_sf), base);
  if (!plan) return fail(std::move(plan).error());
  if (plan->sf_numbers != built.sf_numbers || plan->flowrule_numbers != built.flowrule_numbers ||
      plan->sap_numbers != built.sap_numbers || plan->vlinks.count != built.vlinks.count) {
    return fail(Error(ErrorCode::Conflict, "its plan does not give the stored numbers"));
  }

  auto d = std::make_unique<Deployed>();
  d->graph = user_graph;
  d->expanded = graph;
  d->plan = std::move(*plan);
  const network::GraphNetworkPlan& p = d->plan;
  if (options_.scheduler) {
    auto placed = options_.scheduler->restore(id, built.placement);
    if (!placed) return fail(std::move(placed).error());
    undo.record("CPUs of graph " + id, [this, id] {
      releaseCpus(id);
      return Ok();
    });
  }
  d->placement = built.placement;

  auto net = network_.adoptGraphLsi(p, built.vlink_names);
  if (!net) return fail(std::move(net).error());
  d->network = std::move(net->network);
  d->sap_ports = std::move(net->sap_ports);
  if (!d->sap_ports.empty()) {
    undo.record("SAP ports of " + p.lsi,
                [this, p, made = d->sap_ports] { return network_.destroySapPorts(p, made); });
  }

  for (const auto& sf : graph.sfs) {
    compute::Function f = functionOf(id, sf, *by_sf.at(sf.id), d->network);
    f.spec.cpus = d->placement.cpusOf(sf.id);
    auto adopted = compute_.adopt(f);
    if (!adopted) return fail(std::move(adopted).error());
    d->functions[sf.id] = std::move(f);
  }

  // The rules again (each is in place already, or put back), then nothing else on the graph-LSI.
  for (network::Side side : {network::Side::GraphLsi, network::Side::Lsi0}) {
    auto installed = network_.installGraphRules(p, d->network, side);
    if (!installed) return fail(std::move(installed).error());
  }
  auto synced = network_.syncRules(p.lsi);
  if (!synced) return fail(std::move(synced).error());
  return d;
}

Result<PutOutcome> NodeManager::putGraph(const std::string& id, graph::Graph graph) {
  graph.id = id;
  Result<void> refused;
  auto record = claim(id, GraphState::Deploying, refused);
  if (!record) return std::move(refused).error();

  PutOutcome outcome;
  Deployed* old = nullptr;
  {
    std::lock_guard lock(mu_);
    outcome.created = !record->deployed;
    old = record->deployed.get();
    if (record->deployed && record->deployed->graph == graph) {
      record->busy = false;
      record->status = GraphStatus{GraphState::Deployed, 100, std::nullopt};
      outcome.changes.push_back("no change");
      return outcome;
    }
  }
  // The record is ours (busy) until release: `old` stays in it, unchanged by others.
  auto deployed = old ? update(id, graph, *record, *old, outcome.changes)
                      : deploy(id, graph, *record, outcome.changes);
  if (!deployed) {
    std::lock_guard lock(mu_);
    record->busy = false;
    Error error = std::move(deployed).error();
    // A failed update leaves the previous version deployed; a failed deploy leaves nothing.
    record->status =
        GraphStatus{old ? GraphState::Deployed : GraphState::Failed, old ? 100 : 0, error};
    return error;
  }
  if (store_) {
    // Durable before the answer; not under mu_ (a write is synced to disk, and every other
    // graph's requests would wait for it). A new graph that cannot be stored is torn down again
    // (it would not survive a restart); an update that cannot be stored keeps running (its
    // previous version is gone already) and the error says so.
    const BuiltState built = builtOf(**deployed);
    auto saved = store_->save(id, graph, &built);
    if (!saved && !old) {
      auto undone = teardownLog(**deployed).rollback();
      if (!undone) CORCH_LOG(lg, Error) << "graph " << id << ": " << undone.error().message();
      Error error = std::move(saved).error().context("cannot deploy graph " + id);
      std::lock_guard lock(mu_);
      record->busy = false;
      record->status = GraphStatus{GraphState::Failed, 0, error};
      return error;
    }
    if (!saved) {
      Error error = std::move(saved).error().context(
          "graph " + id + " was updated but the new version could not be stored");
      std::lock_guard lock(mu_);
      record->busy = false;
      record->deployed = std::move(*deployed);
      record->status = GraphStatus{GraphState::Deployed, 100, error};
      return error;
    }
  }
  std::lock_guard lock(mu_);
  record->busy = false;
  record->deployed = std::move(*deployed);
  record->status = GraphStatus{GraphState::Deployed, 100, std::nullopt};
  CORCH_LOG(lg, Info) << "graph " << id << (outcome.created ? " deployed" : " updated");
  return outcome;
}

Result<graph::Graph> NodeManager::getGraph(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = graphs_.find(id);
  if (it == graphs_.end() || !it->second->deployed) {
    return Error(ErrorCode::NotFound, "no graph '" + id + "'");
  }
  return it->second->deployed->graph;
}

Result<std::vector<GraphSummary>> NodeManager::listGraphs() {
  std::lock_guard lock(mu_);
  std::vector<GraphSummary> out;
  for (const auto& [id, record] : graphs_) {
    out.push_back(
        GraphSummary{id, record->deployed ? record->deployed->graph.name : "", record->status});
  }
  return out;
}

Result<GraphStatus> NodeManager::graphStatus(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = graphs_.find(id);
  if (it == graphs_.end()) return Error(ErrorCode::NotFound, "no graph '" + id + "'");
  GraphStatus status = it->second->status;
  if (const Deployed* d = it->second->deployed.get()) {
    for (const auto& sf : d->expanded.sfs) {
      auto f = d->functions.find(sf.id);
      if (f == d->functions.end()) continue;
      FunctionStatus fs{sf.id, f->second.spec.template_id, f->second.type, f->second.spec.cpus, ""};
      auto p = d->placement.functions.find(sf.id);
      if (p != d->placement.functions.end()) fs.placement = p->second.note;
      status.functions.push_back(std::move(fs));
    }
  }
  return status;
}

Result<void> NodeManager::deleteGraph(const std::string& id) {
  Result<void> refused;
  auto record = claim(id, GraphState::Deleting, refused);
  if (!record) return std::move(refused).error();
  if (store_) {
    // Forgotten first: a crash while tearing down must not bring the graph back.
    if (auto forgotten = store_->remove(id); !forgotten) {
      std::lock_guard lock(mu_);
      record->busy = false;
      record->status.state = record->deployed ? GraphState::Deployed : GraphState::Failed;
      return std::move(forgotten).error().context("cannot delete graph " + id);
    }
  }
  std::unique_ptr<Deployed> deployed;
  {
    std::lock_guard lock(mu_);
    deployed = std::move(record->deployed);
  }
  if (deployed) {
    auto done = teardownLog(*deployed).rollback();
    if (!done) {
      std::lock_guard lock(mu_);
      record->status = GraphStatus{GraphState::Failed, 0, done.error()};
      record->busy = false;
      return std::move(done).error().context("cannot delete graph " + id);
    }
  }
  std::lock_guard lock(mu_);
  graphs_.erase(id);
  CORCH_LOG(lg, Info) << "graph " << id << " deleted";
  return Ok();
}

Result<std::string> NodeManager::functionLog(const std::string& graph_id,
                                             const std::string& sf_id) {
  {
    std::lock_guard lock(mu_);
    auto it = graphs_.find(graph_id);
    if (it == graphs_.end() || !it->second->deployed ||
        !it->second->deployed->expanded.findSf(sf_id)) {
      return Error(ErrorCode::NotFound, "no function '" + sf_id + "' in graph '" + graph_id + "'");
    }
  }
  std::ifstream in(compute_.logPath(graph_id, sf_id), std::ios::binary);
  if (!in) return std::string();
  in.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(in.tellg());
  size_t skip = size > kMaxLogBytes ? size - kMaxLogBytes : 0;
  in.seekg(static_cast<std::streamoff>(skip));
  std::string text(size - skip, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

Result<void> NodeManager::driverUsable(const std::string& type) const {
  return compute_.usable(type);
}

bool NodeManager::dependencyPresent(const std::string& dependency) const {
  return resolver::executableOnPath(dependency);
}

resolver::Resources NodeManager::freeResources() const {
  std::lock_guard lock(mu_);
  resolver::Resources free = options_.capacity;
  for (const auto& [id, record] : graphs_) {
    free.cpu_cores -= record->reserved.cpu_cores;
    free.memory_mb -= std::min(free.memory_mb, record->reserved.memory_mb);
    free.disk_mb -= std::min(free.disk_mb, record->reserved.disk_mb);
  }
  if (free.cpu_cores < 0) free.cpu_cores = 0;
  return free;
}

}  // namespace corch::node
