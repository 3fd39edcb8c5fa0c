// The manifest of a native SF package (nsf/<name>/manifest.json), documented in nsf/README.md:
//
//   { "name": "firewall", "version": "1.0.0", "description": "...",
//     "ports": { "min": 2, "max": 2 },
//     "scripts": { "start": "start", "stop": "stop", "update": "update", "status": "status" },
//     "dependencies": ["iptables", "ip", "sysctl"] }
//
// name and version are required; everything else is optional (scripts default to the files
// "start" and "stop" of the package; update and status exist only when named). Unknown fields
// are refused, not ignored.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "corch/error.h"

namespace corch::drivers::native {

struct Manifest {
  std::string name;
  std::string version;
  std::string description;
  std::optional<unsigned> ports_min;
  std::optional<unsigned> ports_max;
  // Script paths relative to the package folder.
  std::string start = "start";
  std::string stop = "stop";
  std::string update;  // empty: none
  std::string status;  // empty: none
  std::vector<std::string> dependencies;
};

// Parses manifest text; InvalidArgument naming the offending field (`source` is put in front of
// every message, e.g. "/opt/nsf/firewall/manifest.json").
Result<Manifest> parseManifest(const std::string& text, const std::string& source);

// A package checked for use on this node: its folder, its manifest, its scripts' absolute paths.
struct Package {
  std::string dir;
  Manifest manifest;
  std::string start;
  std::string stop;
  std::string update;  // empty: none
  std::string status;  // empty: none
};

// Loads <dir>/manifest.json and checks that every named script is an executable file inside the
// package and that every dependency is an executable found in `path_var` (a PATH value).
// NotFound when there is no package there, InvalidArgument when it is malformed, Unavailable
// when a dependency is missing.
Result<Package> loadPackage(const std::string& dir, const std::string& path_var);

}  // namespace corch::drivers::native
