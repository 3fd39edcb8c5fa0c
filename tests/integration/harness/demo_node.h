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

  // Builds the hosts and starts corchd; the error says what failed (with corchd's log).
  Result<void> start();

  Sandbox& sandbox() { return sb_; }
  const std::string& prefix() const { return prefix_; }
  const std::string& url() const { return corchd_->url(); }
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
  int hosts_;
  std::optional<Corchd> corchd_;
};

}  // namespace corch::test
