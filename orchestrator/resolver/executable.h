// For NodeView implementations: whether a template's dependency (an executable such as
// "iptables") exists on this node.
#pragma once

#include <string>

namespace corch::resolver {

// True if `name` is an executable regular file: looked up in each folder of $PATH and then in
// /usr/local/sbin, /usr/sbin and /sbin (where iptables, ip and tc live, often missing from a
// daemon's PATH); a name holding a '/' is checked as a path. Answers are cached per name for the
// life of the process, as the resolver asks for every candidate of every SF of every graph (so a
// tool installed later is seen after clearExecutableCache()). Thread-safe.
bool executableOnPath(const std::string& name);

// Forgets the cached answers, e.g. after packages were installed.
void clearExecutableCache();

}  // namespace corch::resolver
