#include "node/node_manager.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "corch/log.h"
#include "resolver/executable.h"

namespace corch::node {
namespace {

log::Logger lg("node");

constexpr size_t kMaxLogBytes = 1 << 20;  // functionLog returns at most the last 1 MiB

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

// What was built for a deployed graph, and how to undo it.
struct NodeManager::Deployed {
  graph::Graph graph;
  network::GraphNetworkPlan plan;
  network::GraphNetwork network;
  std::vector<compute::Function> functions;
  state::UndoLog undo;
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
      options_(std::move(options)) {}

NodeManager::~NodeManager() = default;

Result<void> NodeManager::start() {
  compute_.probeAll();
  return network_.start();
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
    auto done = record->deployed->undo.rollback();
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

Result<std::unique_ptr<NodeManager::Deployed>> NodeManager::deploy(
    const std::string& id, const graph::Graph& graph, Record& record,
    std::vector<std::string>& changes) {
  // Resolve and admit under one lock, so two graphs cannot both take the last free core.
  std::vector<resolver::Resolution> resolutions;
  uint32_t index = 0;
  {
    std::lock_guard admission(admission_mu_);
    auto resolved = resolver_.resolve(graph, *this);
    if (!resolved) return std::move(resolved).error();
    resolutions = std::move(*resolved);
    resolver::Resources sum;
    for (const auto& r : resolutions) {
      sum.cpu_cores += r.tmpl.cpu_cores;
      sum.memory_mb += r.tmpl.memory_mb;
      sum.disk_mb += r.tmpl.disk_mb;
    }
    std::lock_guard lock(mu_);
    record.reserved = sum;
    record.index = index = allocateIndexLocked();
  }
  auto unreserve = [&] {
    std::lock_guard lock(mu_);
    record.reserved = {};
    record.index = 0;
  };
  setProgress(record, 10);

  std::map<std::string, const resolver::Resolution*> by_sf;
  for (const auto& r : resolutions) by_sf[r.sf_id] = &r;
  auto plan = network_.plan(graph, index, [&](const std::string& sf_id) {
    auto it = by_sf.find(sf_id);
    return it == by_sf.end() ? PortTechnology::Veth
                             : technologyOf(it->second->tmpl.port_technology);
  });
  if (!plan) {
    unreserve();
    return std::move(plan).error();
  }
  setProgress(record, 20);

  auto d = std::make_unique<Deployed>();
  d->graph = graph;
  d->plan = std::move(*plan);
  auto fail = [&](Error error) -> Error {
    CORCH_LOG(lg, Info) << "graph " << id << ": " << error.message() << "; rolling back";
    auto rolled = d->undo.rollback();
    unreserve();
    if (!rolled)
      return Error(error.code(), error.message() + " (" + rolled.error().message() + ")",
                   error.fields());
    return error;
  };

  auto net = network_.createGraphLsi(d->plan);
  if (!net) return fail(std::move(net).error());
  d->network = std::move(*net);
  const network::GraphNetworkPlan& p = d->plan;
  d->undo.record("graph-LSI " + p.lsi, [this, p] { return network_.destroyGraphLsi(p); });
  changes.push_back("graph-LSI " + p.lsi + " created with " + std::to_string(p.sf_ports.size()) +
                    " SF port(s) and " + std::to_string(p.vlinks.count) + " vlink(s)");
  setProgress(record, 40);

  for (const auto& sf : graph.sfs) {
    const resolver::Resolution& r = *by_sf.at(sf.id);
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
    for (const auto& port : sf.ports) {
      const PortInfo& info = d->network.sf_ports.at({sf.id, port.id});
      s.ports.push_back(SfPortBinding{port.id, port.name, info.peer_ifname,
                                      technologyOf(r.tmpl.port_technology)});
    }
    d->functions.push_back(std::move(f));
  }
  auto outcome = compute_.createAndStart(d->functions);
  for (size_t i = 0; i < d->functions.size(); ++i) {
    const compute::Function& f = d->functions[i];
    if (outcome.created[i]) {
      d->undo.record("function " + f.spec.instance, [this, f] { return compute_.destroy(f); });
    }
    if (outcome.started[i]) {
      d->undo.record("function " + f.spec.instance + " running",
                     [this, f] { return compute_.stop(f); });
      changes.push_back("sf " + f.spec.sf_id + " started as " + f.spec.template_id + " (" + f.type +
                        ")");
    }
  }
  if (outcome.error) return fail(std::move(*outcome.error));
  setProgress(record, 80);

  for (network::Side side : {network::Side::GraphLsi, network::Side::Lsi0}) {
    auto installed = network_.installGraphRules(p, d->network, side);
    if (!installed) return fail(std::move(installed).error());
    d->undo.record(std::string("rules on ") + std::string(network::toString(side)),
                   [this, p, side] { return network_.removeGraphRules(p, side); });
  }
  size_t lsi0 = 0;
  for (const auto& rule : p.rules) lsi0 += rule.side == network::Side::Lsi0;
  changes.push_back(std::to_string(lsi0) + " rule(s) on LSI-0 and " +
                    std::to_string(p.rules.size() - lsi0) + " on " + p.lsi);
  return d;
}

Result<PutOutcome> NodeManager::putGraph(const std::string& id, graph::Graph graph) {
  graph.id = id;
  Result<void> refused;
  auto record = claim(id, GraphState::Deploying, refused);
  if (!record) return std::move(refused).error();

  PutOutcome outcome;
  std::unique_ptr<Deployed> previous;
  {
    std::lock_guard lock(mu_);
    outcome.created = !record->deployed;
    if (record->deployed && record->deployed->graph == graph) {
      record->busy = false;
      record->status = GraphStatus{GraphState::Deployed, 100, std::nullopt};
      outcome.changes.push_back("no change");
      return outcome;
    }
  }
  // An update replaces the whole graph for now: the old one is removed, the new one built, and
  // if that fails the old one is built again. (Diff-based updates keep unchanged parts running.)
  if (!outcome.created) {
    std::unique_ptr<Deployed> old;
    {
      std::lock_guard lock(mu_);
      old = std::move(record->deployed);
    }
    auto removed = old->undo.rollback();
    {
      std::lock_guard lock(mu_);
      record->reserved = {};
      record->index = 0;
    }
    if (!removed) {
      std::lock_guard lock(mu_);
      record->status = GraphStatus{GraphState::Failed, 0, removed.error()};
      record->busy = false;
      return std::move(removed).error().context("cannot remove the previous version of " + id);
    }
    previous = std::move(old);
    outcome.changes.push_back("previous version removed");
  }

  auto deployed = deploy(id, graph, *record, outcome.changes);
  if (!deployed) {
    Error error = std::move(deployed).error();
    GraphStatus status{GraphState::Failed, 0, error};
    if (previous) {
      std::vector<std::string> ignored;
      auto restored = deploy(id, previous->graph, *record, ignored);
      if (restored) {
        status = GraphStatus{GraphState::Deployed, 100, error};
        std::lock_guard lock(mu_);
        record->deployed = std::move(*restored);
      } else {
        CORCH_LOG(lg, Error) << "graph " << id << ": cannot restore the previous version: "
                             << restored.error().message();
      }
    }
    std::lock_guard lock(mu_);
    record->status = std::move(status);
    record->busy = false;
    return error;
  }
  std::lock_guard lock(mu_);
  record->deployed = std::move(*deployed);
  record->status = GraphStatus{GraphState::Deployed, 100, std::nullopt};
  record->busy = false;
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
  return it->second->status;
}

Result<void> NodeManager::deleteGraph(const std::string& id) {
  Result<void> refused;
  auto record = claim(id, GraphState::Deleting, refused);
  if (!record) return std::move(refused).error();
  std::unique_ptr<Deployed> deployed;
  {
    std::lock_guard lock(mu_);
    deployed = std::move(record->deployed);
  }
  if (deployed) {
    auto done = deployed->undo.rollback();
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
        !it->second->deployed->graph.findSf(sf_id)) {
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
