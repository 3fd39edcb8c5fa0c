// The vSwitch conformance suite on the fake driver (the same suite runs on ovs in
// tests/integration/ovs_driver_test.cc).
#define BOOST_TEST_MODULE fake_vswitch_conformance
#include <boost/test/unit_test.hpp>

#include <memory>

#include "corch/driver_registry.h"
#include "integration/vswitch_conformance.h"

namespace {

using namespace corch;
namespace conformance = corch::test::conformance;

std::unique_ptr<VSwitchDriver> makeFake(const DriverOptions& options = {}) {
  DriverRegistry registry;
  registerBuiltinDrivers(registry);
  auto made = registry.makeVSwitch("fake", options);
  BOOST_REQUIRE_MESSAGE(made.ok(), conformance::why(made));
  return std::move(*made);
}

VSwitchDriver& fake() {
  static std::unique_ptr<VSwitchDriver> driver = makeFake();
  return *driver;
}

conformance::Environment environment() {
  conformance::Environment env;
  env.prefix = "cf";
  env.interfaces = [](size_t n) {
    static int next = 0;  // any names do: the fake has no netdevs
    std::vector<std::string> names;
    for (size_t i = 0; i < n; ++i) names.push_back("cfi" + std::to_string(next++));
    return names;
  };
  return env;
}

}  // namespace

CORCH_VSWITCH_CONFORMANCE_TESTS(fake(), environment())

// The fake refuses nothing by itself; told to fail, a failed batch must still leave nothing.
BOOST_AUTO_TEST_CASE(failed_batch_of_a_failing_fake_leaves_nothing) {
  DriverOptions options;
  options.values["fail"] = "installRules:cfa6";
  auto failing = makeFake(options);
  conformance::checkFailedBatchLeavesNothing(*failing, environment(), /*bystander=*/false);
}
