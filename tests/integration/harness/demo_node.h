// The demo node of the end-to-end tests, as `make run` builds it: hosts h0 (10.0.0.1/24) and h1
// (10.0.0.2/24) behind the "physical" ports demo0 and demo1 of the sandbox (more hosts on demand:
// h<i> at 10.0.0.<i+1>/24 behind demo<i>), and corchd on them with a repository holding the
// shipped templates and functions plus broken functions of the test's choosing. Everything it makes
// is removed by its destructor (and by start(), should an earlier test case have died halfway).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "corch/error.h"
#include "harness/corchd.h"
#include "harness/sandbox.h"

namespace corch::test {

class DemoNode {
 public:
  // `prefix_letter` starts corchd's name prefix (the pid follows), `name` its folder in the
  // sandbox; `broken` maps extra function names to the body of their start script (each gets a
  // template "<name>-nsf" of capability "<name>", two ports); `hosts` is the number of hosts and
  // physical ports (2 to 9, clamped).
  DemoNode(const std::string& prefix_letter, const std::string& name,
           std::map<std::string, std::string> broken = {}, int hosts = 2);
  ~DemoNode();
  DemoNode(const DemoNode&) = delete;
  DemoNode& operator=(const DemoNode&) = delete;

  // Before start(): the "compute" "drivers" object of corchd's configuration, as JSON (default:
  // native only), e.g. R"({"native": {}, "docker": {"socket": "unix:///run/p.sock"}})".
  void setComputeDrivers(std::string drivers_json) { compute_drivers_ = std::move(drivers_json); }
  // Before start(): more top-level members of corchd's configuration, as JSON text without the
  // braces, e.g. R"("resources": {"cpu-cores": 4})".
  void setExtraConfig(std::string members) { extra_config_ = std::move(members); }
  // Before start(): an extra template file (<file_name>.json) in the node's repository.
  void addTemplate(const std::string& file_name, std::string json) {
    extra_templates_[file_name] = std::move(json);
  }

  // Builds the hosts and starts corchd; the error says what failed (with corchd's log).
  Result<void> start();

  // The node's folder: corchd's working directory and image root (relative image URIs of
  // templates, such as "nsf/bridge", are found here).
  const std::string& dir() const { return dir_; }

  Sandbox& sandbox() { return sb_; }
  const std::string& prefix() const { return prefix_; }
  const std::string& url() const { return corchd_->url(); }
  // corchd itself, after start(): kill() it as a crash would, restart() it on the same state.
  Corchd& corchd() { return *corchd_; }
  std::string log() const { return corchd_ ? corchd_->log() : std::string(); }
  HttpResponse request(const std::string& method, const std::string& path,
                       const std::string& body = "") const {
    return corchd_->request(method, path, body);
  }

  // A ping from one host to an address gets an answer within a few seconds.
  bool ping(const std::string& from, const std::string& to_ip);
  // What is left of any graph: bridges but LSI-0, flows on LSI-0, SF ports, function
  // namespaces. Empty when nothing is.
  std::string leftovers();

 private:
  void makeRepository();
  void cleanUp();

  Sandbox& sb_;
  std::string prefix_;
  std::string dir_;
  std::map<std::string, std::string> broken_;
  std::string compute_drivers_;
  std::string extra_config_;
  std::map<std::string, std::string> extra_templates_;
  int hosts_;
  std::optional<Corchd> corchd_;
};

}  // namespace corch::test
