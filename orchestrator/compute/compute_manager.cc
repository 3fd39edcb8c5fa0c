#include "compute/compute_manager.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
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

constexpr const char* kSpecFile = "/started-from";

// Everything of a spec that makes the function what it is, one field per line. Not the timeout or
// the log path: a function started with other ones is the same function.
std::string canonicalSpec(const Function& f) {
  const SfSpec& s = f.spec;
  std::ostringstream out;
  out << "type " << f.type << "\ninstance " << s.instance << "\ntemplate " << s.template_id
      << "\nimage " << s.image << "\nconfig " << s.config_json << "\nengine " << s.engine_json
      << "\ncpu " << s.cpu_cores << "\nmemory " << s.memory_mb << "\ndisk " << s.disk_mb
      << "\ncpus";
  for (unsigned c : s.cpus) out << ' ' << c;
  for (const auto& p : s.ports) {
    out << "\nport " << p.port_id << ' ' << p.port_name << ' ' << p.ifname << ' '
        << toString(p.technology) << ' ' << p.mac;
  }
  out << '\n';
  return out.str();
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
      rememberSpec(f);
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
  auto updated = (*drv)->updateSf(before.spec, after.spec);
  rememberSpec(updated ? after : before);
  return updated;
}

Result<void> ComputeManager::stop(const Function& f) {
  auto drv = driver(f.type);
  if (!drv) return std::move(drv).error();
  forgetSpec(f);  // first: a function being stopped is not one to adopt
  auto done = (*drv)->stopSf(f.spec);
  return done;
}

void ComputeManager::rememberSpec(const Function& f) const {
  if (f.spec.run_dir.empty()) return;
  // Replaced by a rename, so that a reader never sees a part. Not synced: it describes processes
  // that a power cut ends anyway, and without it the function is only rebuilt instead of adopted.
  const std::string path = f.spec.run_dir + kSpecFile;
  {
    std::ofstream out(path + ".new", std::ios::binary | std::ios::trunc);
    out << canonicalSpec(f);
    if (out.flush() && std::rename((path + ".new").c_str(), path.c_str()) == 0) return;
  }
  CORCH_LOG(lg, Warn) << "function " << f.spec.instance << ": cannot write " << path
                      << "; it will be rebuilt, not adopted, after a restart";
}

void ComputeManager::forgetSpec(const Function& f) const {
  if (!f.spec.run_dir.empty()) ::unlink((f.spec.run_dir + kSpecFile).c_str());
}

Result<void> ComputeManager::adopt(const Function& f) {
  auto drv = driver(f.type);
  if (!drv) return std::move(drv).error();
  std::ifstream in(f.spec.run_dir + kSpecFile, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (f.spec.run_dir.empty() || !in) {
    return Error(ErrorCode::NotFound, "function " + f.spec.instance +
                                          " was not left running by an earlier run (no " +
                                          f.spec.run_dir + kSpecFile + ")");
  }
  if (text.str() != canonicalSpec(f)) {
    return Error(ErrorCode::Conflict, "function " + f.spec.instance +
                                          " runs another version of the function (" +
                                          f.spec.run_dir + kSpecFile + " differs)");
  }
  auto adopted = (*drv)->adoptSf(f.spec);
  if (!adopted) return adopted;
  CORCH_LOG(lg, Info) << "function " << f.spec.instance << " (" << f.spec.template_id << ", "
                      << f.type << ") adopted: still running from an earlier run";
  return Ok();
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

std::vector<std::string> ComputeManager::destroyLeftovers(
    const std::function<bool(const std::string&)>& keep) {
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
    for (auto& instance : *instances) {
      if (!keep || !keep(instance)) found.push_back(Found{driver.get(), std::move(instance)});
    }
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
