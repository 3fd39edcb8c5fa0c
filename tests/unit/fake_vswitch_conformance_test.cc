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

// The fakes of the suite share one switch, so that another_driver() finds what fake() made.
DriverOptions sharedSwitch() {
  DriverOptions options;
  options.values["switch"] = "conformance";
  return options;
}

VSwitchDriver& fake() {
  static std::unique_ptr<VSwitchDriver> driver = makeFake(sharedSwitch());
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
  env.another_driver = [] { return makeFake(sharedSwitch()); };
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

// A fake made again on the switch of one that is gone (a restarted corchd) finds its LSIs, ports
// and rules, wants none of the rules until it installs them, and syncs the others away.
BOOST_AUTO_TEST_CASE(a_fake_made_again_on_its_switch_finds_what_the_earlier_one_left) {
  DriverOptions options;
  options.values["switch"] = "restart";
  LsiInfo info;
  std::vector<TsRule> rules;
  {
    auto earlier = makeFake(options);
    info = conformance::mustCreate(
        *earlier, LsiSpec{"rs", {"rsi0", "rsi1"}, {{"rsp", PortTechnology::Veth}}, "", 0});
    rules = conformance::sampleRules(info.interfaces[0].of_port, info.interfaces[1].of_port, 0x40);
    BOOST_REQUIRE(earlier->installRules("rs", rules).ok());
  }
  auto later = makeFake(options);
  BOOST_TEST((*later->listLsis() == std::vector<std::string>{"rs"}));
  auto ports = later->listPorts("rs");
  BOOST_REQUIRE_MESSAGE(ports.ok(), conformance::why(ports));
  std::vector<PortInfo> all = info.interfaces;
  all.push_back(info.ports[0]);
  BOOST_TEST(conformance::sortedText(*ports) == conformance::sortedText(all),
             boost::test_tools::per_element());
  BOOST_TEST(conformance::sortedText(*later->dumpRules("rs")) == conformance::sortedText(rules),
             boost::test_tools::per_element());
  BOOST_REQUIRE(later->installRules("rs", {rules[1]}).ok());
  BOOST_REQUIRE(later->syncRules("rs").ok());
  BOOST_TEST(conformance::sortedText(*later->dumpRules("rs")) ==
                 conformance::sortedText(std::vector<TsRule>{rules[1]}),
             boost::test_tools::per_element());
  BOOST_TEST(later->destroyLsi("rs").ok());
  // A fake without the option has a switch of its own.
  BOOST_TEST(makeFake()->listLsis()->empty());
}
