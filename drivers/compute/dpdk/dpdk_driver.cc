// Placeholder: the 'dpdk' compute driver (issue 5).
#include "corch/driver_registry.h"

namespace corch::drivers::dpdk {
void registerDriver(DriverRegistry& registry) { (void)registry; }
}  // namespace corch::drivers::dpdk
