// An in-memory GraphService for the tests of the northbound layer (the REST server, corchctl), as
// libvirt's test:///default is an in-memory hypervisor: it keeps what is put and answers from
// memory, and lets a test make the PUT of one graph block until released, or fail with a given
// error. It follows GraphService's contract: a second change of a graph while one is in progress
// is refused with Conflict; a graph whose PUT failed has status Failed (with the error) until it
// is deleted or put again. Header-only: nothing in corchd uses it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "node/graph_service.h"

namespace corch::rest::testing {

class FakeGraphService : public node::GraphService {
 public:
  Result<node::PutOutcome> putGraph(const std::string& id, graph::Graph graph) override {
    std::unique_lock lock(mu_);
    ++put_calls_;
    if (busy_.count(id)) {
      return Error(ErrorCode::Conflict, "another change of graph " + id + " is in progress");
    }
    busy_.insert(id);
    if (id == blocked_id_) {
      blocked_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return released_; });
    }
    busy_.erase(id);
    if (auto failure = failures_.find(id); failure != failures_.end()) {
      Error error = failure->second;
      failures_.erase(failure);
      graphs_.erase(id);
      statuses_[id] = node::GraphStatus{node::GraphState::Failed, 0, error};
      return error;
    }
    bool created = graphs_.count(id) == 0;
    std::vector<std::string> changes;
    for (const auto& sf : graph.sfs) {
      changes.push_back("sf " + sf.id + (created ? " created" : " updated"));
    }
    graphs_[id] = std::move(graph);
    statuses_[id] = node::GraphStatus{node::GraphState::Deployed, 100, std::nullopt};
    return node::PutOutcome{created, std::move(changes)};
  }

  Result<graph::Graph> getGraph(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = graphs_.find(id);
    if (it == graphs_.end()) return notFound(id);
    return it->second;
  }

  Result<std::vector<node::GraphSummary>> listGraphs() override {
    std::lock_guard lock(mu_);
    std::vector<node::GraphSummary> out;
    for (const auto& [id, status] : statuses_) {
      auto graph = graphs_.find(id);
      out.push_back({id, graph != graphs_.end() ? graph->second.name : "", status});
    }
    return out;
  }

  Result<node::GraphStatus> graphStatus(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = statuses_.find(id);
    if (it == statuses_.end()) return notFound(id);
    return it->second;
  }

  Result<void> deleteGraph(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (statuses_.erase(id) == 0) return notFound(id);
    graphs_.erase(id);
    return Ok();
  }

  Result<std::string> functionLog(const std::string& graph_id, const std::string& sf_id) override {
    std::lock_guard lock(mu_);
    auto it = logs_.find({graph_id, sf_id});
    if (it == logs_.end()) {
      return Error(ErrorCode::NotFound, "no function " + sf_id + " in graph " + graph_id);
    }
    return it->second;
  }

  // The next PUT of `id` fails with `error` (after the Conflict check).
  void failNextPut(const std::string& id, Error error) {
    std::lock_guard lock(mu_);
    failures_.insert_or_assign(id, std::move(error));
  }

  // PUTs of `id` wait inside putGraph() until release().
  void blockPutsOf(const std::string& id) {
    std::lock_guard lock(mu_);
    blocked_id_ = id;
    blocked_ = false;
    released_ = false;
  }
  // Waits until a PUT of the blocked id is waiting; false after `timeout`.
  bool waitUntilBlocked(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return blocked_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    blocked_id_.clear();
    cv_.notify_all();
  }

  void setLog(const std::string& graph_id, const std::string& sf_id, std::string text) {
    std::lock_guard lock(mu_);
    logs_[{graph_id, sf_id}] = std::move(text);
  }

  // Makes graphStatus(id) answer `status` (a deploy in progress, say) until the next change.
  void setStatus(const std::string& id, node::GraphStatus status) {
    std::lock_guard lock(mu_);
    statuses_[id] = std::move(status);
  }

  // The graph last put under `id`, as the service received it.
  std::optional<graph::Graph> stored(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = graphs_.find(id);
    if (it == graphs_.end()) return std::nullopt;
    return it->second;
  }

  int putCalls() {
    std::lock_guard lock(mu_);
    return put_calls_;
  }

 private:
  static Error notFound(const std::string& id) {
    return Error(ErrorCode::NotFound, "no graph " + id);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, graph::Graph> graphs_;
  std::map<std::string, node::GraphStatus> statuses_;
  std::map<std::pair<std::string, std::string>, std::string> logs_;
  std::map<std::string, Error> failures_;
  std::set<std::string> busy_;
  std::string blocked_id_;
  bool blocked_ = false;
  bool released_ = false;
  int put_calls_ = 0;
};

}  // namespace corch::rest::testing
