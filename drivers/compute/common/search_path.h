// The PATH that compute drivers give the programs they run and search their programs in.
#pragma once

#include <string>

namespace corch::drivers::common {

// corchd's PATH (or /usr/local/bin:/usr/bin:/bin when it has none) with /usr/local/sbin,
// /usr/sbin and /sbin appended when missing: ip, iptables, sysctl and setsid live there, and a
// daemon's PATH often lacks them.
std::string pathWithSbin();

}  // namespace corch::drivers::common
