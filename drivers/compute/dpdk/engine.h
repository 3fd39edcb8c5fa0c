// The "engine" object of a dpdk template (SfSpec::engine_json): which DPDK program runs and how.
// See the key list at the top of dpdk_driver.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "corch/error.h"

namespace corch::drivers::dpdk {

struct Engine {
  // A DPDK program other than testpmd (a path, or a name looked up in PATH); empty: testpmd.
  std::string program;
  // The program's own arguments (after "--"); for testpmd, after the driver's.
  std::vector<std::string> args;
  // More EAL arguments, after the driver's (so that they win where EAL takes the last one).
  std::vector<std::string> extra_eal;
  // testpmd only: the forwarding mode ("io" or "mac"), the mbuf pool size, and the seconds
  // between its port statistics in the log.
  std::string forward_mode = "io";
  uint64_t mbufs = 8192;
  uint64_t stats_period = 3600;
  // A text of the program's output meaning "ready" (startSf waits for it); empty: for testpmd
  // its forwarding banner, for another program "the process is still running".
  std::string ready_text;

  bool isTestpmd() const { return program.empty(); }
};

// Parses and checks the engine object (empty text: all defaults). InvalidArgument naming
// "engine/<key>" for an unknown key or a bad value.
Result<Engine> parseEngine(const std::string& json);

}  // namespace corch::drivers::dpdk
