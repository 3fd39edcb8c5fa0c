// Placeholder: the 'kvm' compute driver (issue 5).
#include "corch/driver_registry.h"

namespace corch::drivers::kvm {
void registerDriver(DriverRegistry& registry) { (void)registry; }
}  // namespace corch::drivers::kvm
