#include "resolver/resolver.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>

#include "corch/log.h"
#include "resolver/config.h"
#include "resolver/sha256.h"

namespace corch::resolver {
namespace {

namespace fs = std::filesystem;

const log::Logger lg("resolver");

// Resource comparisons in cores tolerate rounding: 0.1 + 0.2 must fit in 0.3.
constexpr double kCpuEpsilon = 1e-9;

// The cost order of DESIGN section 4: the cheapest execution environment first.
int typeRank(const std::string& type) {
  if (type == "native") return 0;
  if (type == "docker") return 1;
  if (type == "dpdk") return 2;
  if (type == "kvm") return 3;
  return 4;
}

// Cores in messages, rounded so that sums of tenths do not show as 0.30000000000000004.
std::string number(double value) {
  std::ostringstream out;
  out << std::round(value * 1e6) / 1e6;
  return out.str();
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

// Why a template's resources do not fit in `free`; empty if they do.
std::vector<std::string> resourceShortage(const Template& t, const Resources& free) {
  std::vector<std::string> out;
  if (t.cpu_cores > free.cpu_cores + kCpuEpsilon) {
    out.push_back("needs " + number(t.cpu_cores) + " CPU cores, " + number(free.cpu_cores) +
                  " free");
  }
  if (t.memory_mb > free.memory_mb) {
    out.push_back("needs " + std::to_string(t.memory_mb) + " MB of memory, " +
                  std::to_string(free.memory_mb) + " MB free");
  }
  if (t.disk_mb > free.disk_mb) {
    out.push_back("needs " + std::to_string(t.disk_mb) + " MB of disk, " +
                  std::to_string(free.disk_mb) + " MB free");
  }
  return out;
}

// The problems of one SF, each to be reported with its own pointer and code.
struct Problem {
  ErrorCode code;
  FieldError field;
};

// Higher is more permanent: a client may retry a 409 later, not a bad document.
int permanence(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return 3;
    case ErrorCode::Unsupported:
      return 2;
    case ErrorCode::ResourceExhausted:
      return 1;
    default:
      return 0;
  }
}

}  // namespace

struct Resolver::DigestCache {
  struct Entry {
    off_t size;
    struct timespec mtime;
    std::string digest;
  };
  std::mutex mu;
  std::map<std::string, Entry> by_path;
};

Resolver::Resolver(Repository& repository, std::string image_root)
    : repository_(repository), digests_(std::make_shared<DigestCache>()) {
  std::error_code ec;
  fs::path root = image_root.empty() ? fs::current_path(ec) : fs::absolute(image_root, ec);
  image_root_ = (ec ? fs::path(image_root) : root).lexically_normal().string();
}

std::string Resolver::imagePath(const Template& tmpl) const {
  const std::string& uri = tmpl.image_uri;
  if (tmpl.type == "docker" || uri.starts_with("/") || uri.find("://") != std::string::npos) {
    return uri;
  }
  return (fs::path(image_root_) / uri).lexically_normal().string();
}

std::string Resolver::imageRefusal(const Template& tmpl) const {
  std::string path = imagePath(tmpl);
  if (tmpl.image_sha256.empty() || !path.starts_with("/")) return "";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    CORCH_LOG(lg, Debug) << "image " << path << " of template " << tmpl.id
                         << " is not on disk: its SHA-256 is not checked";
    return "";
  }
  if (!S_ISREG(st.st_mode)) {
    CORCH_LOG(lg, Debug) << "image " << path << " of template " << tmpl.id
                         << " is not a regular file: its SHA-256 is not checked";
    return "";
  }
  std::string digest;
  {
    std::lock_guard lock(digests_->mu);
    auto it = digests_->by_path.find(path);
    if (it != digests_->by_path.end() && it->second.size == st.st_size &&
        it->second.mtime.tv_sec == st.st_mtim.tv_sec &&
        it->second.mtime.tv_nsec == st.st_mtim.tv_nsec) {
      digest = it->second.digest;
    }
  }
  if (digest.empty()) {
    // Hashed outside the lock: a VM image takes seconds, other graphs need not wait for it.
    auto hashed = sha256File(path);
    if (!hashed.ok()) return hashed.error().message();
    digest = *hashed;
    std::lock_guard lock(digests_->mu);
    digests_->by_path[path] = {st.st_size, st.st_mtim, digest};
  }
  if (digest != tmpl.image_sha256) {
    return "image " + path + " has SHA-256 " + digest + ", the template names " + tmpl.image_sha256;
  }
  return "";
}

Result<std::vector<Resolution>> Resolver::resolve(const graph::Graph& graph,
                                                  const NodeView& node) const {
  std::vector<Resolution> resolutions;
  std::vector<Problem> problems;
  Resources left = node.freeResources();

  for (size_t i = 0; i < graph.sfs.size(); ++i) {
    const graph::Sf& sf = graph.sfs[i];
    const std::string at = "/sffg/SFs/" + std::to_string(i);

    std::vector<Template> candidates;
    if (sf.template_id) {
      auto found = repository_.findById(*sf.template_id);
      if (!found.ok()) {
        if (found.error().code() != ErrorCode::NotFound) return std::move(found).error();
        problems.push_back({ErrorCode::InvalidArgument,
                            {at + "/template", "no template '" + *sf.template_id + "'"}});
        continue;
      }
      candidates.push_back(std::move(found).value());
    } else {
      auto found = repository_.findByCapability(sf.name);
      if (!found.ok()) return std::move(found).error();
      if (found->empty()) {
        problems.push_back({ErrorCode::Unsupported,
                            {at, "no template implements the capability '" + sf.name + "'"}});
        continue;
      }
      candidates = std::move(found).value();
    }
    std::sort(candidates.begin(), candidates.end(), [](const Template& a, const Template& b) {
      int ra = typeRank(a.type), rb = typeRank(b.type);
      return ra != rb ? ra < rb : a.id < b.id;
    });

    const Template* chosen = nullptr;
    std::vector<std::string> refusals;
    bool only_resources = true;
    for (const Template& t : candidates) {
      std::vector<std::string> reasons;
      if (t.isSubGraph()) {
        reasons.push_back("sub-graph templates are not supported yet");
      } else if (auto usable = node.driverUsable(t.type); !usable.ok()) {
        reasons.push_back("driver '" + t.type + "' is not usable: " + usable.error().message());
      }
      const size_t ports = sf.ports.size();
      if (ports < t.ports_min || ports > t.ports_max) {
        reasons.push_back("needs " + std::to_string(t.ports_min) + "-" +
                          std::to_string(t.ports_max) + " ports, the SF has " +
                          std::to_string(ports));
      }
      for (const std::string& dependency : t.dependencies) {
        if (!node.dependencyPresent(dependency)) {
          reasons.push_back("dependency '" + dependency + "' is missing");
        }
      }
      const bool other_reasons = !reasons.empty();
      std::vector<std::string> shortage = resourceShortage(t, left);
      reasons.insert(reasons.end(), shortage.begin(), shortage.end());
      // Hashing an image is slow: only for a template that passed every other test.
      if (reasons.empty()) {
        std::string image = imageRefusal(t);
        if (!image.empty()) reasons.push_back(image);
      }
      if (reasons.empty()) {
        chosen = &t;
        break;
      }
      if (other_reasons || shortage.empty()) only_resources = false;
      refusals.push_back(t.id + ": " + join(reasons, ", "));
      CORCH_LOG(lg, Debug) << "SF " << sf.id << " of graph " << graph.id << ": template " << t.id
                           << " refused: " << join(reasons, ", ");
    }

    if (chosen == nullptr) {
      std::string what;
      if (sf.template_id) {
        what = "template '" + *sf.template_id + "' cannot be used";
      } else {
        what = "no implementation of '" + sf.name + "' fits";
      }
      if (only_resources) what += " in the free resources";
      problems.push_back({only_resources ? ErrorCode::ResourceExhausted : ErrorCode::Unsupported,
                          {at, what + ": " + join(refusals, "; ")}});
      continue;
    }

    // Taken even if the configuration is wrong: the SF has its template, and the next SFs are
    // judged as they will be once the configuration is fixed.
    left.cpu_cores = std::max(0.0, left.cpu_cores - chosen->cpu_cores);
    left.memory_mb -= std::min(left.memory_mb, chosen->memory_mb);
    left.disk_mb -= std::min(left.disk_mb, chosen->disk_mb);
    auto config = mergeConfig(*chosen, sf.config_json, at + "/config");
    if (!config.ok()) {
      for (const FieldError& f : config.error().fields()) {
        problems.push_back({config.error().code(), f});
      }
      continue;
    }
    CORCH_LOG(lg, Debug) << "SF " << sf.id << " of graph " << graph.id << " ('" << sf.name
                         << "') resolved to template " << chosen->id;
    resolutions.push_back(
        Resolution{sf.id, *chosen, std::move(config).value(), imagePath(*chosen)});
  }

  if (!problems.empty()) {
    ErrorCode code = problems.front().code;
    std::vector<FieldError> fields;
    std::vector<std::string> lines;
    for (Problem& p : problems) {
      if (permanence(p.code) > permanence(code)) code = p.code;
      lines.push_back(p.field.pointer + ": " + p.field.message);
      fields.push_back(std::move(p.field));
    }
    return Error(code, join(lines, "; "), std::move(fields));
  }
  return resolutions;
}

}  // namespace corch::resolver
