// Placeholder: the 'docker' compute driver (issue 5).
#include "corch/driver_registry.h"

namespace corch::drivers::docker {
void registerDriver(DriverRegistry& registry) { (void)registry; }
}  // namespace corch::drivers::docker
