#include "compute/compute_manager.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "corch/log.h"

namespace corch::compute {
namespace {

log::Logger lg("compute");

std::string fileSafe(const std::string& text) {
  std::string out;
  for (char c : text) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.';
    out += safe ? c : '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

}  // namespace

ComputeManager::ComputeManager(std::map<std::string, std::unique_ptr<ComputeDriver>> drivers,
                               ComputeOptions options)
    : drivers_(std::move(drivers)), options_(std::move(options)) {}

void ComputeManager::probeAll() {
  probes_.clear();
  for (const auto& [type, driver] : drivers_) {
    auto probe = driver->probe();
    if (probe) {
      CORCH_LOG(lg, Info) << "compute driver '" << type << "' is usable";
    } else {
      CORCH_LOG(lg, Warn) << "compute driver '" << type
                          << "' is not usable: " << probe.error().message();
    }
    probes_.emplace(type, std::move(probe));
  }
}

Result<void> ComputeManager::usable(const std::string& type) const {
  auto it = probes_.find(type);
  if (it != probes_.end()) return it->second;
  if (drivers_.count(type))
    return Error(ErrorCode::Unavailable, "driver '" + type + "' not probed");
  return Error(ErrorCode::Unsupported, "no compute driver '" + type + "' is loaded");
}

std::vector<std::string> ComputeManager::types() const {
  std::vector<std::string> out;
  for (const auto& [type, driver] : drivers_) out.push_back(type);
  return out;
}

std::string ComputeManager::instanceName(const std::string& graph_id,
                                         const std::string& sf_id) const {
  return options_.prefix + "-" + fileSafe(graph_id) + "-" + fileSafe(sf_id);
}

std::string ComputeManager::logPath(const std::string& graph_id, const std::string& sf_id) const {
  return options_.log_dir + "/" + fileSafe(graph_id) + "/" + fileSafe(sf_id) + ".log";
}

std::string ComputeManager::runRoot() const {
  return options_.run_dir.empty() ? options_.log_dir + "/../run" : options_.run_dir;
}

std::string ComputeManager::runDir(const std::string& graph_id, const std::string& sf_id) const {
  return runRoot() + "/" + instanceName(graph_id, sf_id);
}

Result<ComputeDriver*> ComputeManager::driver(const std::string& type) const {
  auto it = drivers_.find(type);
  if (it == drivers_.end()) {
    return Error(ErrorCode::Unsupported, "no compute driver '" + type + "' is loaded");
  }
  return it->second.get();
}

void ComputeManager::forEach(size_t n, const std::function<bool(size_t)>& work) const {
  std::atomic<size_t> next{0};
  std::atomic<bool> stopped{false};
  auto worker = [&] {
    for (size_t i = next++; i < n && !stopped; i = next++) {
      if (!work(i)) stopped = true;
    }
  };
  size_t workers = std::min<size_t>(std::max(1u, options_.parallelism), n);
  std::vector<std::jthread> threads;
  for (size_t i = 1; i < workers; ++i) threads.emplace_back(worker);
  worker();
}

BatchOutcome ComputeManager::createAndStart(const std::vector<Function>& functions) {
  BatchOutcome outcome;
  outcome.created.assign(functions.size(), false);
  outcome.started.assign(functions.size(), false);
  std::mutex mu;
  forEach(functions.size(), [&](size_t i) {
    const Function& f = functions[i];
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(f.spec.log_path).parent_path(), ec);
    if (!f.spec.run_dir.empty()) std::filesystem::create_directories(f.spec.run_dir, ec);
    auto step = [&]() -> Result<void> {
      auto drv = driver(f.type);
      if (!drv) return std::move(drv).error();
      auto created = (*drv)->createSf(f.spec);
      // Drivers' messages name the function and the step (compute.h).
      if (!created) return std::move(created).error();
      {
        std::lock_guard lock(mu);
        outcome.created[i] = true;
      }
      auto started = (*drv)->startSf(f.spec);
      if (!started) return std::move(started).error();
      std::lock_guard lock(mu);
      outcome.started[i] = true;
      return Ok();
    };
    auto done = step();
    if (!done) {
      std::lock_guard lock(mu);
      if (!outcome.error) outcome.error = std::move(done).error();
      return false;  // a sibling failed: the deploy is being rolled back
    }
    CORCH_LOG(lg, Info) << "function " << f.spec.instance << " (" << f.spec.template_id << ", "
                        << f.type << ") started";
    return true;
  });
  return outcome;
}

BatchOutcome ComputeManager::stopAndDestroy(const std::vector<Function>& functions) {
  BatchOutcome outcome;
  outcome.created.assign(functions.size(), true);
  outcome.started.assign(functions.size(), true);
  std::mutex mu;
  forEach(functions.size(), [&](size_t i) {
    auto stopped = stop(functions[i]);
    auto destroyed = destroy(functions[i]);
    std::lock_guard lock(mu);
    outcome.started[i] = !stopped.ok();
    outcome.created[i] = !destroyed.ok();
    if (!outcome.error && !stopped) outcome.error = stopped.error();
    if (!outcome.error && !destroyed) outcome.error = destroyed.error();
    return true;
  });
  return outcome;
}

bool ComputeManager::updatesPorts(const std::string& type) const {
  auto drv = driver(type);
  return drv && (*drv)->updatesPorts();
}

Result<void> ComputeManager::update(const Function& before, const Function& after) {
  auto drv = driver(after.type);
  if (!drv) return std::move(drv).error();
  return (*drv)->updateSf(before.spec, after.spec);
}

Result<void> ComputeManager::stop(const Function& f) {
  auto drv = driver(f.type);
  if (!drv) return std::move(drv).error();
  auto done = (*drv)->stopSf(f.spec);
  return done;
}

Result<void> ComputeManager::destroy(const Function& f) {
  auto drv = driver(f.type);
  if (!drv) return std::move(drv).error();
  auto done = (*drv)->destroySf(f.spec);
  if (done && !f.spec.run_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(f.spec.run_dir, ec);
  }
  return done;
}

std::vector<std::string> ComputeManager::destroyLeftovers() {
  struct Found {
    ComputeDriver* driver;
    std::string instance;
  };
  std::vector<Found> found;
  for (const auto& [type, driver] : drivers_) {
    auto probe = probes_.find(type);
    if (probe == probes_.end() || !probe->second.ok()) continue;
    auto instances = driver->listInstances(options_.prefix + "-");
    if (!instances) {
      CORCH_LOG(lg, Warn) << "compute driver '" << type << "': " << instances.error().message();
      continue;
    }
    for (auto& instance : *instances) found.push_back(Found{driver.get(), std::move(instance)});
  }
  std::mutex mu;
  std::vector<std::string> destroyed;
  forEach(found.size(), [&](size_t i) {
    SfSpec spec;
    spec.instance = found[i].instance;
    spec.timeout = options_.timeout;
    auto done = found[i].driver->destroySf(spec);
    if (!done) {
      CORCH_LOG(lg, Error) << "cannot remove " << spec.instance
                           << " left by an earlier run: " << done.error().message();
      return true;
    }
    std::error_code ec;
    std::filesystem::remove_all(runRoot() + "/" + spec.instance, ec);
    std::lock_guard lock(mu);
    if (std::find(destroyed.begin(), destroyed.end(), spec.instance) == destroyed.end()) {
      CORCH_LOG(lg, Info) << "removed " << found[i].driver->name() << " function " << spec.instance
                          << " left by an earlier run";
      destroyed.push_back(spec.instance);
    }
    return true;
  });
  return destroyed;
}

}  // namespace corch::compute
