// The 'fake' compute driver: remembers which functions exist and run, for unit tests of the core.
// A function whose config contains "fake-fail": "start" (or "create", "stop", "adopt") fails at
// that step. adoptSf knows only what this very instance made: a fresh fake (a restarted corchd's)
// finds nothing to adopt (NotFound); a created but not started function is a Conflict.
#include <map>
#include <mutex>

#include "corch/driver_registry.h"

namespace corch::drivers::fake_compute {
namespace {

class FakeCompute final : public ComputeDriver {
 public:
  std::string_view name() const override { return "fake"; }
  Result<void> probe() override { return Ok(); }

  Result<void> createSf(const SfSpec& sf) override {
    CORCH_TRY(maybeFail(sf, "create"));
    std::lock_guard lock(mu_);
    if (!state_.emplace(sf.instance, "created").second) {
      return Error(ErrorCode::AlreadyExists, "fake: function " + sf.instance + " exists");
    }
    return Ok();
  }
  Result<void> startSf(const SfSpec& sf) override {
    return move(sf, "start", "created", "running");
  }
  Result<void> stopSf(const SfSpec& sf) override {
    std::lock_guard lock(mu_);
    auto it = state_.find(sf.instance);
    if (it != state_.end()) it->second = "created";
    return Ok();
  }
  Result<void> adoptSf(const SfSpec& sf) override {
    CORCH_TRY(maybeFail(sf, "adopt"));
    std::lock_guard lock(mu_);
    auto it = state_.find(sf.instance);
    if (it == state_.end()) {
      return Error(ErrorCode::NotFound, "fake: no function " + sf.instance + " to adopt");
    }
    if (it->second != "running") {
      return Error(ErrorCode::Conflict,
                   "fake: function " + sf.instance + " is " + it->second + ", not running");
    }
    return Ok();
  }
  Result<void> destroySf(const SfSpec& sf) override {
    std::lock_guard lock(mu_);
    state_.erase(sf.instance);
    return Ok();
  }

 private:
  static Result<void> maybeFail(const SfSpec& sf, const std::string& step) {
    if (sf.config_json.find("\"fake-fail\":\"" + step + "\"") != std::string::npos) {
      return Error(ErrorCode::Internal, "fake: " + step + " of " + sf.instance + " fails");
    }
    return Ok();
  }
  Result<void> move(const SfSpec& sf, const std::string& step, const std::string& from,
                    const std::string& to) {
    CORCH_TRY(maybeFail(sf, step));
    std::lock_guard lock(mu_);
    auto it = state_.find(sf.instance);
    if (it == state_.end() || it->second != from) {
      return Error(ErrorCode::Conflict, "fake: cannot " + step + " " + sf.instance);
    }
    it->second = to;
    return Ok();
  }

  std::mutex mu_;
  std::map<std::string, std::string> state_;
};

}  // namespace

void registerDriver(DriverRegistry& registry) {
  (void)registry.addCompute("fake",
                            [](const DriverOptions&) -> Result<std::unique_ptr<ComputeDriver>> {
                              return std::unique_ptr<ComputeDriver>(new FakeCompute);
                            });
}

}  // namespace corch::drivers::fake_compute
