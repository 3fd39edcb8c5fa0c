// Unit tests of the CPU scheduler (paper 5.3): the CPU list syntax, the topology read from the fake
// sysfs trees of tests/data/cpu-topology/ (see its README), and placement on them: dedicated
// cores for dpdk and kvm, siblings and NUMA locality for neighbours, isolated CPUs, exhaustion
// (best effort and strict), release, restore and determinism. Pure logic: no privileges.
#define BOOST_TEST_MODULE scheduler
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <set>
#include <thread>

#include "compute/cpu_topology.h"
#include "compute/scheduler.h"

namespace corch {
// Lets Boost.Test print error codes in failed comparisons.
std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << codeName(code); }
}  // namespace corch

namespace corch::compute {
// Placements print as "{a: 2 (dedicated 2 (NUMA 1)), ...}" in failed comparisons.
std::ostream& operator<<(std::ostream& os, const SfPlacement& sf) {
  return os << formatCpuList(sf.cpus) << " (" << sf.note << ")";
}
std::ostream& operator<<(std::ostream& os, const Placement& p) {
  os << "{";
  for (const auto& [id, sf] : p.functions) os << id << ": " << sf << "; ";
  return os << "}";
}
}  // namespace corch::compute

namespace fs = std::filesystem;
using corch::ErrorCode;
using namespace corch::compute;
using Cpus = std::vector<unsigned>;

namespace {

const fs::path kTrees = fs::path(CORCH_SOURCE_DIR) / "tests/data/cpu-topology";

CpuTopology tree(const std::string& name) {
  corch::Result<CpuTopology> t = readCpuTopology(kTrees / name);
  BOOST_TEST_REQUIRE(t.ok(), (t.ok() ? "" : t.error().message()));
  return *t;
}

std::unique_ptr<CpuScheduler> scheduler(const std::string& name, SchedulerOptions options = {}) {
  auto s = CpuScheduler::create(tree(name), std::move(options));
  BOOST_TEST_REQUIRE(s.ok(), (s.ok() ? "" : s.error().message()));
  return std::move(*s);
}

FunctionRequest fn(const std::string& id, const std::string& type, unsigned cores = 1,
                   bool dedicated = false) {
  return FunctionRequest{id, type, cores, dedicated};
}

PlacementRequest request(const std::string& graph, std::vector<FunctionRequest> functions,
                         std::vector<std::pair<std::string, std::string>> adjacency = {},
                         bool best_effort = true) {
  return PlacementRequest{graph, std::move(functions), std::move(adjacency), best_effort};
}

Placement placeOk(CpuScheduler& s, const PlacementRequest& r) {
  corch::Result<Placement> p = s.place(r);
  BOOST_TEST_REQUIRE(p.ok(), (p.ok() ? "" : p.error().message()));
  return *p;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cpu_list)

BOOST_AUTO_TEST_CASE(parses_ranges_and_numbers) {
  auto l = parseCpuList("0-3,8,10-11\n");
  BOOST_TEST_REQUIRE(l.ok());
  BOOST_TEST(*l == (Cpus{0, 1, 2, 3, 8, 10, 11}));
  BOOST_TEST(*parseCpuList("5,1,1-2") == (Cpus{1, 2, 5}));  // sorted, without duplicates
  BOOST_TEST(parseCpuList("\n")->empty());                  // the kernel's "nothing isolated"
  BOOST_TEST(parseCpuList("")->empty());
  BOOST_TEST(*parseCpuList("7") == (Cpus{7}));
}

BOOST_AUTO_TEST_CASE(formats_back) {
  BOOST_TEST(formatCpuList({0, 1, 2, 3, 8, 10, 11}) == "0-3,8,10-11");
  BOOST_TEST(formatCpuList({4}) == "4");
  BOOST_TEST(formatCpuList({}) == "");
  BOOST_TEST(formatCpuList(*parseCpuList("1,3-5,9")) == "1,3-5,9");
}

BOOST_AUTO_TEST_CASE(malformed_lists_are_refused_with_the_reason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0-", "item 1 has an empty number"},
      {"1,,2", "item 2 has an empty number"},
      {"0,x", "item 2 has \"x\", not a CPU number"},
      {"3-1", "item 1 is a decreasing range"},
      {"-1", "item 1 has an empty number"},
      {"1-2-3", "item 1 has \"2-3\", not a CPU number"},
      {"0-99999999", "beyond 65535"},
      {"0,", "item 2 has an empty number"},
  };
  for (const auto& [text, reason] : cases) {
    auto l = parseCpuList(text);
    BOOST_TEST_REQUIRE(!l.ok(), text);
    BOOST_TEST(l.error().code() == ErrorCode::InvalidArgument);
    BOOST_TEST(contains(l.error().message(), "bad CPU list \"" + text + "\""), l.error().message());
    BOOST_TEST(contains(l.error().message(), reason), l.error().message());
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(topology)

BOOST_AUTO_TEST_CASE(two_cores_without_smt) {
  CpuTopology t = tree("two-cores");
  BOOST_TEST(t.ids() == (Cpus{0, 1}));
  BOOST_TEST(t.coreCount() == 2u);
  BOOST_TEST(t.numaNodes() == (Cpus{0}));
  BOOST_TEST(t.siblingsOf(0).empty());
  BOOST_TEST(t.isolated.empty());
  BOOST_TEST(t.find(1)->core == 1u);
  BOOST_TEST(t.find(2) == nullptr);
}

BOOST_AUTO_TEST_CASE(smt_and_two_numa_nodes) {
  CpuTopology t = tree("smt-numa");
  BOOST_TEST(t.ids() == (Cpus{0, 1, 2, 3, 4, 5, 6, 7}));
  BOOST_TEST(t.coreCount() == 4u);  // core ids 0 and 1 repeat in package 1
  BOOST_TEST(t.siblingsOf(1) == (Cpus{5}));
  BOOST_TEST(t.siblingsOf(6) == (Cpus{2}));
  BOOST_TEST(t.find(6)->threads == (Cpus{2, 6}));
  BOOST_TEST(t.find(6)->package == 1u);
  BOOST_TEST(t.find(6)->numa == 1u);
  BOOST_TEST(t.numaNodes() == (Cpus{0, 1}));
  BOOST_TEST(t.cpusOfNuma(0) == (Cpus{0, 1, 4, 5}));
  BOOST_TEST(t.cpusOfNuma(1) == (Cpus{2, 3, 6, 7}));
  BOOST_TEST(t.isolated.empty());
}

BOOST_AUTO_TEST_CASE(isolated_cpus_and_no_numa_folder) {
  CpuTopology t = tree("isolated");
  BOOST_TEST(t.isolated == (Cpus{2, 3}));
  BOOST_TEST(t.isIsolated(3));
  BOOST_TEST(!t.isIsolated(1));
  BOOST_TEST(t.numaNodes() == (Cpus{0}));  // no devices/system/node: everything on node 0
}

BOOST_AUTO_TEST_CASE(errors_name_the_file) {
  auto bad = readCpuTopology(kTrees / "bad-online");
  BOOST_TEST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(contains(bad.error().message(), "cannot read CPU topology: "), bad.error().message());
  BOOST_TEST(contains(bad.error().message(), "devices/system/cpu/online: bad CPU list \"0-\""),
             bad.error().message());

  auto missing = readCpuTopology(kTrees / "missing-core-id");
  BOOST_TEST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.error().code() == ErrorCode::NotFound);
  BOOST_TEST(contains(missing.error().message(), "cpu1/topology/core_id"),
             missing.error().message());

  auto none = readCpuTopology(kTrees / "no-such-tree");
  BOOST_TEST_REQUIRE(!none.ok());
  BOOST_TEST(none.error().code() == ErrorCode::NotFound);
}

BOOST_AUTO_TEST_CASE(this_node) {
  auto t = readCpuTopology();
  BOOST_TEST_REQUIRE(t.ok(), (t.ok() ? "" : t.error().message()));
  BOOST_TEST(!t->cpus.empty());
  BOOST_TEST(t->coreCount() >= 1u);
  BOOST_TEST_MESSAGE("this node: CPUs " << formatCpuList(t->ids()) << ", " << t->coreCount()
                                        << " cores, isolated " << formatCpuList(t->isolated));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(placement)

BOOST_AUTO_TEST_CASE(default_and_configured_reservation) {
  BOOST_TEST(scheduler("two-cores")->reservedCpus().empty());         // 2 cores: none
  BOOST_TEST(scheduler("smt-numa")->reservedCpus() == (Cpus{0, 4}));  // core 0, both threads
  BOOST_TEST(scheduler("isolated")->reservedCpus() == (Cpus{0}));
  BOOST_TEST(scheduler("smt-numa", {Cpus{1, 5, 1}, 1})->reservedCpus() == (Cpus{1, 5}));
  BOOST_TEST(scheduler("smt-numa", {Cpus{}, 1})->reservedCpus().empty());

  auto bad = CpuScheduler::create(tree("two-cores"), {Cpus{9}, 1});
  BOOST_TEST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(contains(bad.error().message(), "reserved CPU 9 is not online"));
}

BOOST_AUTO_TEST_CASE(dpdk_and_kvm_get_dedicated_cores) {
  auto s = scheduler("smt-numa");
  Placement p =
      placeOk(*s, request("g1", {fn("fwd", "dpdk"), fn("vm", "kvm", 2), fn("fw", "native"),
                                 fn("ids", "docker", 0, true), fn("web", "docker", 4)}));
  // No neighbours: each takes whole free cores, on the NUMA node with the most free CPUs.
  BOOST_TEST(p.cpusOf("fwd") == (Cpus{2}));
  BOOST_TEST(p.functions["fwd"].note == "dedicated 2 (NUMA 1)");
  BOOST_TEST(p.cpusOf("vm") == (Cpus{3, 7}));  // both threads of one core, not 6 next to fwd
  BOOST_TEST(p.cpusOf("ids") == (Cpus{1}));    // docker asking for a dedicated core
  BOOST_TEST(p.cpusOf("fw").empty());
  BOOST_TEST(p.functions["fw"].note == "shared: native functions are not pinned");
  BOOST_TEST(p.cpusOf("web").empty());  // docker without `dedicated`: cores are not a pin
  BOOST_TEST(s->sharedCpus() == (Cpus{0, 4, 5, 6}));
  BOOST_TEST(s->current("g1") == p);

  // Nothing reserved or dedicated twice, across graphs too.
  placeOk(*s, request("g2", {fn("a", "dpdk", 2)}));
  std::set<unsigned> seen;
  for (const char* g : {"g1", "g2"}) {
    for (const auto& [id, sf] : s->current(g).functions) {
      for (unsigned cpu : sf.cpus) {
        BOOST_TEST(seen.insert(cpu).second, "CPU " << cpu << " given twice");
        BOOST_TEST(cpu != 0u);
        BOOST_TEST(cpu != 4u);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(neighbours_go_on_sibling_threads) {
  auto s = scheduler("smt-numa");
  Placement p = placeOk(*s, request("g", {fn("a", "dpdk"), fn("b", "dpdk")}, {{"b", "a"}}));
  BOOST_TEST(p.cpusOf("a") == (Cpus{2}));
  BOOST_TEST(p.cpusOf("b") == (Cpus{6}));
  BOOST_TEST(p.functions["b"].note == "dedicated 6 (NUMA 1, sibling of a's 2)");
}

BOOST_AUTO_TEST_CASE(neighbours_are_placed_first) {
  // c (3 cores) comes before b in graph order; were it placed first it would take a's sibling.
  auto s = scheduler("smt-numa");
  Placement p = placeOk(
      *s, request("g", {fn("a", "dpdk"), fn("c", "kvm", 3), fn("b", "dpdk")}, {{"a", "b"}}));
  BOOST_TEST(p.cpusOf("a") == (Cpus{2}));
  BOOST_TEST(p.cpusOf("b") == (Cpus{6}));
  BOOST_TEST(p.cpusOf("c") == (Cpus{1, 3, 5}));
  BOOST_TEST(p.functions["c"].note == "dedicated 1,3,5 (NUMA 0-1)");
}

BOOST_AUTO_TEST_CASE(neighbours_stay_on_the_numa_node) {
  // a takes core 2+6 whole; b cannot be a sibling but stays on NUMA 1, although NUMA 0 has as
  // many free CPUs (and wins ties otherwise).
  auto s = scheduler("smt-numa");
  Placement p = placeOk(*s, request("g", {fn("a", "kvm", 2), fn("b", "dpdk")}, {{"a", "b"}}));
  BOOST_TEST(p.cpusOf("a") == (Cpus{2, 6}));
  BOOST_TEST(p.cpusOf("b") == (Cpus{3}));
  BOOST_TEST(p.functions["b"].note == "dedicated 3 (NUMA 1, same NUMA node as a)");

  Placement lone = placeOk(*s, request("h", {fn("x", "dpdk")}));
  BOOST_TEST(lone.cpusOf("x") == (Cpus{1}));  // NUMA 0 now has the most free CPUs
}

BOOST_AUTO_TEST_CASE(isolated_cpus_first_and_never_shared) {
  auto s = scheduler("isolated");  // CPUs 0-3, reserved 0, isolated 2-3
  BOOST_TEST(s->sharedCpus() == (Cpus{0, 1}));
  Placement p = placeOk(*s, request("g", {fn("a", "dpdk")}));
  BOOST_TEST(p.cpusOf("a") == (Cpus{2}));
  BOOST_TEST(p.functions["a"].note == "dedicated 2 (NUMA 0, isolated)");
  p = placeOk(*s, request("h", {fn("b", "dpdk", 2)}));
  BOOST_TEST(p.cpusOf("b") == (Cpus{1, 3}));
  BOOST_TEST(s->sharedCpus() == (Cpus{0}));
}

BOOST_AUTO_TEST_CASE(exhaustion_falls_back_to_shared) {
  auto s = scheduler("two-cores");  // nothing reserved, one CPU always left shared
  Placement p =
      placeOk(*s, request("g", {fn("big", "dpdk", 2), fn("fwd", "dpdk"), fn("late", "kvm")}));
  BOOST_TEST(p.cpusOf("big").empty());
  BOOST_TEST(p.functions["big"].note == "shared: no free core (needs 2 dedicated cores, 1 free)");
  BOOST_TEST(p.cpusOf("fwd") == (Cpus{0}));
  BOOST_TEST(p.cpusOf("late").empty());
  BOOST_TEST(p.functions["late"].note == "shared: no free core (needs 1 dedicated core, 0 free)");
  BOOST_TEST(s->sharedCpus() == (Cpus{1}));
}

BOOST_AUTO_TEST_CASE(min_shared_zero_gives_every_cpu_away) {
  auto s = scheduler("two-cores", {std::nullopt, 0});
  Placement p = placeOk(*s, request("g", {fn("big", "dpdk", 2)}));
  BOOST_TEST(p.cpusOf("big") == (Cpus{0, 1}));
  BOOST_TEST(s->sharedCpus().empty());
}

BOOST_AUTO_TEST_CASE(strict_refusal_keeps_nothing) {
  auto s = scheduler("two-cores");
  auto r = s->place(request("g", {fn("small", "dpdk"), fn("fwd", "dpdk", 2)}, {}, false));
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::ResourceExhausted);
  BOOST_TEST(r.error().message() ==
             "cannot place graph g: function fwd needs 2 dedicated cores, 0 free");
  BOOST_TEST(s->current("g").functions.empty());  // small's CPU was not kept
  BOOST_TEST(s->sharedCpus() == (Cpus{0, 1}));

  r = s->place(request("g", {fn("fwd", "dpdk", 2)}, {}, false));
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(contains(r.error().message(), "function fwd needs 2 dedicated cores, 1 free"));
}

BOOST_AUTO_TEST_CASE(release_and_place_again) {
  auto s = scheduler("smt-numa");
  placeOk(*s, request("g1", {fn("hog", "dpdk", 5)}));
  Placement p = placeOk(*s, request("g2", {fn("y", "dpdk"), fn("z", "dpdk")}));
  BOOST_TEST(p.cpusOf("y") == (Cpus{7}));  // 5 + 1 leave 0 and 4 (reserved) shared
  BOOST_TEST(p.cpusOf("z").empty());

  s->release("g1");
  BOOST_TEST(s->current("g1").functions.empty());
  // z was placed (unpinned) and is running: placing the graph again does not move it ...
  p = placeOk(*s, request("g2", {fn("y", "dpdk"), fn("z", "dpdk")}));
  BOOST_TEST(p.cpusOf("z").empty());
  // ... until the caller releases it (it restarts the function).
  s->release("g2", "z");
  p = placeOk(*s, request("g2", {fn("y", "dpdk"), fn("z", "dpdk")}));
  BOOST_TEST(p.cpusOf("y") == (Cpus{7}));
  BOOST_TEST(p.cpusOf("z") == (Cpus{2}));  // NUMA 1 has the most free CPUs again

  s->release("g2");
  s->release("unknown");
  s->release("g2", "unknown");
  BOOST_TEST(s->sharedCpus() == (Cpus{0, 1, 2, 3, 4, 5, 6, 7}));
}

BOOST_AUTO_TEST_CASE(an_update_keeps_running_functions_and_adds_neighbours) {
  auto s = scheduler("smt-numa");
  Placement before = placeOk(*s, request("g", {fn("a", "dpdk")}));
  Placement after = placeOk(*s, request("g", {fn("a", "dpdk", 2), fn("b", "dpdk")}, {{"a", "b"}}));
  BOOST_TEST(after.functions["a"] == before.functions["a"]);  // cores changed, not moved
  BOOST_TEST(after.cpusOf("b") == (Cpus{6}));
  // A neighbour placed by an earlier call counts: c is next to b only.
  after = placeOk(*s, request("g", {fn("c", "dpdk")}, {{"c", "b"}}));
  BOOST_TEST(after.cpusOf("c") == (Cpus{3}));
  BOOST_TEST(after.functions.size() == 3u);
}

BOOST_AUTO_TEST_CASE(bad_requests) {
  auto s = scheduler("smt-numa");
  auto twice = s->place(request("g", {fn("a", "dpdk"), fn("a", "kvm")}));
  BOOST_TEST_REQUIRE(!twice.ok());
  BOOST_TEST(twice.error().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(twice.error().message() == "cannot place graph g: function a is listed twice");
  auto unknown = s->place(request("g", {fn("a", "dpdk")}, {{"a", "zz"}}));
  BOOST_TEST_REQUIRE(!unknown.ok());
  BOOST_TEST(unknown.error().message() ==
             "cannot place graph g: adjacency names unknown function zz");
}

BOOST_AUTO_TEST_CASE(restore_after_restart) {
  auto s = scheduler("smt-numa");
  Placement saved;
  saved.functions["a"] = {{6, 2}, "dedicated 2,6 (NUMA 1)"};
  saved.functions["n"] = {{}, "shared: native functions are not pinned"};
  BOOST_TEST_REQUIRE(s->restore("g", saved).ok());
  BOOST_TEST(s->current("g").cpusOf("a") == (Cpus{2, 6}));
  BOOST_TEST(s->sharedCpus() == (Cpus{0, 1, 3, 4, 5, 7}));

  Placement clash;
  clash.functions["b"] = {{2}, ""};
  auto r = s->restore("h", clash);
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code() == ErrorCode::Conflict);
  BOOST_TEST(r.error().message() ==
             "cannot restore the placement of function b of graph h: CPU 2 is dedicated to "
             "function a of graph g");
  clash.functions["b"] = {{0}, ""};
  BOOST_TEST(contains(s->restore("h", clash).error().message(), "CPU 0 is reserved for the node"));
  clash.functions["b"] = {{8}, ""};
  BOOST_TEST(contains(s->restore("h", clash).error().message(), "CPU 8 is not online"));
  BOOST_TEST(s->current("h").functions.empty());
}

BOOST_AUTO_TEST_CASE(deterministic) {
  auto make = [] {
    return request("g",
                   {fn("a", "dpdk", 2), fn("b", "kvm"), fn("c", "native"), fn("d", "dpdk"),
                    fn("e", "docker", 1, true)},
                   {{"a", "b"}, {"d", "e"}, {"b", "c"}});
  };
  auto first = scheduler("smt-numa");
  auto second = scheduler("smt-numa");
  Placement p1 = placeOk(*first, make());
  Placement p2 = placeOk(*second, make());
  BOOST_TEST(p1 == p2);
  // The adjacency's order and direction do not matter.
  PlacementRequest reversed = make();
  reversed.adjacency = {{"b", "c"}, {"e", "d"}, {"b", "a"}};
  auto third = scheduler("smt-numa");
  BOOST_TEST(placeOk(*third, reversed) == p1);
  for (const auto& [id, sf] : p1.functions) BOOST_TEST_MESSAGE(id << ": " << sf.note);
}

BOOST_AUTO_TEST_CASE(concurrent_graphs_never_share_a_cpu) {
  auto s = scheduler("smt-numa", {Cpus{}, 0});
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back(
        [&s, i] { (void)s->place(request("g" + std::to_string(i), {fn("f", "dpdk")}, {}, true)); });
  }
  for (std::thread& t : threads) t.join();
  std::set<unsigned> seen;
  for (int i = 0; i < 8; ++i) {
    Cpus cpus = s->current("g" + std::to_string(i)).cpusOf("f");
    BOOST_TEST(cpus.size() == 1u);
    for (unsigned cpu : cpus) BOOST_TEST(seen.insert(cpu).second);
  }
  BOOST_TEST(s->sharedCpus().empty());
}

BOOST_AUTO_TEST_SUITE_END()
