// Reading the CPU topology from sysfs (see cpu_topology.h for the files). Everything is read once,
// at construction of the scheduler; CPU hotplug while corchd runs is not followed.
#include "compute/cpu_topology.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

namespace corch::compute {

namespace fs = std::filesystem;

namespace {

// Far above any real NR_CPUS (8192): bounds what a malformed range can make us allocate.
constexpr unsigned kMaxCpu = 65535;

std::string_view trim(std::string_view s) {
  const char* space = " \t\r\n";
  std::size_t begin = s.find_first_not_of(space);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(space) - begin + 1);
}

// A whole decimal number, or nothing.
std::optional<long> parseNumber(std::string_view s) {
  long value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

Result<unsigned> parseCpuNumber(std::string_view s, std::string_view list, std::size_t item) {
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::InvalidArgument, "bad CPU list \"" + std::string(list) + "\": item " +
                                                 std::to_string(item) + " " + std::string(why));
  };
  if (s.empty()) return bad("has an empty number");
  std::optional<long> n = parseNumber(s);
  if (!n || *n < 0) return bad("has \"" + std::string(s) + "\", not a CPU number");
  if (*n > static_cast<long>(kMaxCpu)) {
    return bad("has CPU " + std::string(s) + ", beyond " + std::to_string(kMaxCpu));
  }
  return static_cast<unsigned>(*n);
}

Result<std::string> readSysfs(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return errnoError("cannot read " + path.string(), errno);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<std::vector<unsigned>> readCpuListFile(const fs::path& path) {
  Result<std::string> text = readSysfs(path);
  if (!text) return std::move(text).error();
  Result<std::vector<unsigned>> list = parseCpuList(*text);
  if (!list) return list.error().context(path.string());
  return list;
}

// A topology id (core_id, physical_package_id). Some arm64 kernels report -1 for a package they
// cannot name; that is one package, taken as 0.
Result<unsigned> readTopologyId(const fs::path& path) {
  Result<std::string> text = readSysfs(path);
  if (!text) return std::move(text).error();
  std::optional<long> n = parseNumber(trim(*text));
  if (!n || *n < -1 || *n > 0xffffffffL) {
    return Error(ErrorCode::InvalidArgument,
                 path.string() + ": \"" + std::string(trim(*text)) + "\" is not a topology id");
  }
  return *n < 0 ? 0u : static_cast<unsigned>(*n);
}

Result<Cpu> readCpu(const fs::path& cpu_dir, unsigned id, const std::set<unsigned>& online) {
  Cpu cpu;
  cpu.id = id;
  const fs::path topology = cpu_dir / ("cpu" + std::to_string(id)) / "topology";
  Result<unsigned> core = readTopologyId(topology / "core_id");
  if (!core) return std::move(core).error();
  Result<unsigned> package = readTopologyId(topology / "physical_package_id");
  if (!package) return std::move(package).error();
  Result<std::vector<unsigned>> threads = readCpuListFile(topology / "thread_siblings_list");
  if (!threads) return std::move(threads).error();
  cpu.core = *core;
  cpu.package = *package;
  // Offline threads are not ours to use; the CPU itself is always one of its core's threads.
  for (unsigned t : *threads) {
    if (online.count(t) != 0) cpu.threads.push_back(t);
  }
  if (!std::binary_search(cpu.threads.begin(), cpu.threads.end(), id)) {
    cpu.threads.insert(std::upper_bound(cpu.threads.begin(), cpu.threads.end(), id), id);
  }
  return cpu;
}

// cpu -> NUMA node from node/nodeM/cpulist; an empty map when the kernel has no NUMA support.
Result<std::map<unsigned, unsigned>> readNumaNodes(const fs::path& node_dir) {
  std::map<unsigned, unsigned> numa_of;
  std::error_code ec;
  if (!fs::is_directory(node_dir, ec)) return numa_of;
  // Sorted so that a CPU listed by two nodes (a broken tree) lands on the lower one every time.
  std::map<unsigned, fs::path> nodes;
  for (const fs::directory_entry& entry : fs::directory_iterator(node_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("node", 0) != 0) continue;
    std::optional<long> n = parseNumber(std::string_view(name).substr(4));
    if (n && *n >= 0) nodes.emplace(static_cast<unsigned>(*n), entry.path());
  }
  if (ec) return errnoError("cannot list " + node_dir.string(), ec.value());
  for (const auto& [node, path] : nodes) {
    Result<std::vector<unsigned>> cpus = readCpuListFile(path / "cpulist");
    if (!cpus) return std::move(cpus).error();
    for (unsigned cpu : *cpus) numa_of.emplace(cpu, node);
  }
  return numa_of;
}

}  // namespace

Result<std::vector<unsigned>> parseCpuList(std::string_view text) {
  const std::string_view list = trim(text);
  std::set<unsigned> cpus;
  if (list.empty()) return std::vector<unsigned>{};
  std::size_t item = 0;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    ++item;
    std::size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view part = list.substr(pos, comma - pos);
    pos = comma + 1;
    std::size_t dash = part.find('-');
    Result<unsigned> first = parseCpuNumber(part.substr(0, dash), list, item);
    if (!first) return std::move(first).error();
    unsigned last = *first;
    if (dash != std::string_view::npos) {
      Result<unsigned> end = parseCpuNumber(part.substr(dash + 1), list, item);
      if (!end) return std::move(end).error();
      if (*end < *first) {
        return Error(ErrorCode::InvalidArgument, "bad CPU list \"" + std::string(list) +
                                                     "\": item " + std::to_string(item) +
                                                     " is a decreasing range");
      }
      last = *end;
    }
    for (unsigned cpu = *first; cpu <= last; ++cpu) cpus.insert(cpu);
  }
  return std::vector<unsigned>(cpus.begin(), cpus.end());
}

std::string formatCpuList(const std::vector<unsigned>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

const Cpu* CpuTopology::find(unsigned id) const {
  auto it = std::lower_bound(cpus.begin(), cpus.end(), id,
                             [](const Cpu& cpu, unsigned value) { return cpu.id < value; });
  return it != cpus.end() && it->id == id ? &*it : nullptr;
}

std::vector<unsigned> CpuTopology::ids() const {
  std::vector<unsigned> out;
  for (const Cpu& cpu : cpus) out.push_back(cpu.id);
  return out;
}

std::vector<unsigned> CpuTopology::siblingsOf(unsigned cpu) const {
  std::vector<unsigned> out;
  if (const Cpu* c = find(cpu)) {
    for (unsigned t : c->threads) {
      if (t != cpu) out.push_back(t);
    }
  }
  return out;
}

std::vector<unsigned> CpuTopology::cpusOfNuma(unsigned node) const {
  std::vector<unsigned> out;
  for (const Cpu& cpu : cpus) {
    if (cpu.numa == node) out.push_back(cpu.id);
  }
  return out;
}

std::vector<unsigned> CpuTopology::numaNodes() const {
  std::set<unsigned> nodes;
  for (const Cpu& cpu : cpus) nodes.insert(cpu.numa);
  return {nodes.begin(), nodes.end()};
}

std::size_t CpuTopology::coreCount() const {
  std::set<std::pair<unsigned, unsigned>> cores;
  for (const Cpu& cpu : cpus) cores.emplace(cpu.package, cpu.core);
  return cores.size();
}

bool CpuTopology::isIsolated(unsigned cpu) const {
  return std::binary_search(isolated.begin(), isolated.end(), cpu);
}

Result<CpuTopology> readCpuTopology(const fs::path& sysfs_root) {
  auto fail = [](const Error& e) { return e.context("cannot read CPU topology"); };
  const fs::path cpu_dir = sysfs_root / "devices/system/cpu";
  Result<std::vector<unsigned>> online = readCpuListFile(cpu_dir / "online");
  if (!online) return fail(online.error());
  if (online->empty()) {
    return fail(Error(ErrorCode::InvalidArgument, (cpu_dir / "online").string() + " is empty"));
  }
  const std::set<unsigned> online_set(online->begin(), online->end());

  Result<std::map<unsigned, unsigned>> numa_of = readNumaNodes(sysfs_root / "devices/system/node");
  if (!numa_of) return fail(numa_of.error());

  CpuTopology topology;
  for (unsigned id : *online) {
    Result<Cpu> cpu = readCpu(cpu_dir, id, online_set);
    if (!cpu) return fail(cpu.error());
    auto numa = numa_of->find(id);
    cpu->numa = numa == numa_of->end() ? 0 : numa->second;
    topology.cpus.push_back(std::move(*cpu));
  }

  std::error_code ec;
  if (fs::exists(cpu_dir / "isolated", ec)) {
    Result<std::vector<unsigned>> isolated = readCpuListFile(cpu_dir / "isolated");
    if (!isolated) return fail(isolated.error());
    for (unsigned cpu : *isolated) {
      if (online_set.count(cpu) != 0) topology.isolated.push_back(cpu);
    }
  }
  return topology;
}

}  // namespace corch::compute
