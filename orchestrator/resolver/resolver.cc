#include "resolver/resolver.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <utility>

#include <rapidjson/document.h>

#include "corch/log.h"
#include "resolver/config.h"
#include "resolver/sha256.h"

namespace corch::resolver {
namespace {

namespace fs = std::filesystem;

const log::Logger lg("resolver");

// Resource comparisons in cores tolerate rounding: 0.1 + 0.2 must fit in 0.3.
constexpr double kCpuEpsilon = 1e-9;

// The cost order of DESIGN section 4: the cheapest execution environment first, then graph
// templates (several functions where one would do, and a resolution of their graph to try).
int typeRank(const Template& t) {
  if (t.isSubGraph()) return 4;
  if (t.type == "native") return 0;
  if (t.type == "docker") return 1;
  if (t.type == "dpdk") return 2;
  if (t.type == "kvm") return 3;
  return 5;
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

// A problem of one SF (or SAP) of a graph, to be reported with its own pointer and code. The
// pointer is relative to the graph's document ("/sffg/SFs/2"); for a graph template's graph, whose
// pointers mean nothing to the client, the SF id says where instead.
struct Problem {
  ErrorCode code;
  FieldError field;
  std::string sf_id;  // the SF it is about; empty for a SAP
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

// The most permanent code of some problems (at least one).
ErrorCode codeOf(const std::vector<Problem>& problems) {
  ErrorCode code = problems.front().code;
  for (const Problem& p : problems) {
    if (permanence(p.code) > permanence(code)) code = p.code;
  }
  return code;
}

// The longest account of why a graph template's graph does not resolve. Nested graph templates
// repeat their SFs' reasons at every level: a repository where many could be made of each other
// must not produce a message of megabytes.
constexpr size_t kMaxGraphReasonLength = 2000;

// The problems of a graph template's graph, said by SF: "SF 'fw': no implementation ...; ...".
std::string describe(const std::vector<Problem>& problems) {
  std::vector<std::string> parts;
  for (const Problem& p : problems) {
    parts.push_back(p.sf_id.empty() ? p.field.message : "SF '" + p.sf_id + "': " + p.field.message);
  }
  std::string text = join(parts, "; ");
  if (text.size() > kMaxGraphReasonLength) {
    size_t cut = kMaxGraphReasonLength;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
    text = text.substr(0, cut) + " ...";
  }
  return text;
}

// "a -> b -> a": the graph templates being expanded, then the next one.
std::string chainText(const std::vector<std::string>& chain, const std::string& next) {
  std::vector<std::string> all = chain;
  all.push_back(next);
  return join(all, " -> ");
}

// Whether an SF's configuration (compact JSON) sets nothing.
bool emptyConfig(const std::string& json) {
  if (json.empty()) return true;
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  return !doc.HasParseError() && doc.IsObject() && doc.MemberCount() == 0;
}

// The templates an SF may use: the one it pins, or those of its capability, cheapest first. None:
// a problem is added and the list is empty. Errors of the repository are returned.
Result<std::vector<Template>> candidatesFor(Repository& repository, const graph::Sf& sf,
                                            const std::string& at, std::vector<Problem>& problems) {
  std::vector<Template> candidates;
  if (sf.template_id) {
    auto found = repository.findById(*sf.template_id);
    if (!found.ok()) {
      if (found.error().code() != ErrorCode::NotFound) return std::move(found).error();
      problems.push_back({ErrorCode::InvalidArgument,
                          {at + "/template", "no template '" + *sf.template_id + "'"},
                          sf.id});
      return candidates;
    }
    candidates.push_back(std::move(found).value());
  } else {
    auto found = repository.findByCapability(sf.name);
    if (!found.ok()) return std::move(found).error();
    if (found->empty()) {
      problems.push_back({ErrorCode::Unsupported,
                          {at, "no template implements the capability '" + sf.name + "'"},
                          sf.id});
      return candidates;
    }
    candidates = std::move(found).value();
  }
  std::stable_sort(candidates.begin(), candidates.end(), [](const Template& a, const Template& b) {
    int ra = typeRank(a), rb = typeRank(b);
    return ra != rb ? ra < rb : a.id < b.id;
  });
  return candidates;
}

// A reference of a graph template's graph, as it is once the graph is spliced in place of SF
// `prefix` minus its '.': SAPs by `saps` (internal-port SAPs become the inner junctions), SFs
// prefixed.
graph::PortRef splicedRef(const graph::PortRef& ref, const std::string& prefix,
                          const std::map<std::string, std::string>& saps) {
  graph::PortRef out = ref;
  if (ref.kind == graph::PortRef::Kind::Sap) {
    auto it = saps.find(ref.sap_id);
    out.sap_id = it != saps.end() ? it->second : prefix + ref.sap_id;
  } else {
    out.sf_id = prefix + ref.sf_id;
  }
  return out;
}

// What one SF of a graph became.
struct Choice {
  std::optional<Resolution> resolution;      // a template a driver runs,
  const Template* graph_template = nullptr;  // or a graph template
  Expansion inner;                           // and its graph, resolved and expanded
};

// `graph` with each SF replaced by what it became (Resolver::expand() says how), or problems: ids
// that clash, and in the client's graph (`top`), where they are final, SF ids too long.
Expansion splice(const graph::Graph& graph, std::vector<Choice>& choices, bool top,
                 std::vector<Problem>& problems) {
  // Which SF of `graph` each SF, SAP and rule of the result comes from (kOwn: the graph's own),
  // for the messages of clashing ids.
  constexpr size_t kOwn = std::string::npos;
  Expansion out;
  out.graph = graph;
  out.graph.sfs.clear();
  out.graph.rules.clear();
  std::vector<size_t> sf_owner, sap_owner(graph.saps.size(), kOwn),
      rule_owner(graph.rules.size(), kOwn);
  std::vector<graph::Sap> spliced_saps;
  std::vector<graph::FlowRule> spliced_rules;
  std::map<std::pair<std::string, std::string>, std::string> outer_of;  // (SF, port) -> SAP
  for (size_t i = 0; i < graph.sfs.size(); ++i) {
    const graph::Sf& sf = graph.sfs[i];
    Choice& choice = choices[i];
    if (choice.resolution) {
      out.graph.sfs.push_back(sf);
      out.resolutions.push_back(std::move(*choice.resolution));
      out.origin[sf.id] = sf.id;
      sf_owner.push_back(kOwn);
      continue;
    }
    Expansion& inner = choice.inner;
    const std::string prefix = sf.id + ".";
    for (size_t k = 0; k < inner.graph.sfs.size(); ++k) {
      graph::Sf sub = std::move(inner.graph.sfs[k]);
      sub.id = prefix + sub.id;
      Resolution resolution = std::move(inner.resolutions[k]);
      resolution.sf_id = sub.id;
      out.origin[sub.id] = sf.id;
      out.graph.sfs.push_back(std::move(sub));
      out.resolutions.push_back(std::move(resolution));
      sf_owner.push_back(i);
    }
    // The junction pairs, then the SAPs of the template's expanded graph but its internal-port
    // ones, which the inner junctions replace.
    std::map<std::string, std::string> sap_ids;  // in the template's graph -> here
    for (size_t p = 0; p < sf.ports.size(); ++p) {
      graph::Sap outer, inner_end;
      outer.type = inner_end.type = graph::SapType::Junction;
      outer.id = sf.id + "~" + std::to_string(p) + ".o";
      inner_end.id = sf.id + "~" + std::to_string(p) + ".i";
      outer.junction_peer = inner_end.id;
      inner_end.junction_peer = outer.id;
      outer_of[{sf.id, sf.ports[p].id}] = outer.id;
      for (const graph::Sap& sap : inner.graph.saps) {
        if (sap.type == graph::SapType::InternalPort && sap.port_index == p) {
          sap_ids[sap.id] = inner_end.id;
        }
      }
      spliced_saps.push_back(std::move(outer));
      spliced_saps.push_back(std::move(inner_end));
      sap_owner.push_back(i);
      sap_owner.push_back(i);
    }
    for (graph::Sap& sap : inner.graph.saps) {
      if (sap.type == graph::SapType::InternalPort) continue;
      sap_ids[sap.id] = prefix + sap.id;
      sap.id = prefix + sap.id;
      if (sap.type == graph::SapType::Junction) sap.junction_peer = prefix + sap.junction_peer;
      spliced_saps.push_back(std::move(sap));
      sap_owner.push_back(i);
    }
    for (graph::FlowRule& rule : inner.graph.rules) {
      rule.id = prefix + rule.id;
      rule.port_in = splicedRef(rule.port_in, prefix, sap_ids);
      for (graph::PortRef& output : rule.outputs) output = splicedRef(output, prefix, sap_ids);
      spliced_rules.push_back(std::move(rule));
      rule_owner.push_back(i);
    }
  }
  // The graph's own rules reach the spliced SFs' ports through the outer junctions.
  auto rewire = [&](graph::PortRef& ref) {
    if (ref.kind != graph::PortRef::Kind::SfPort) return;
    auto it = outer_of.find({ref.sf_id, ref.port_id});
    if (it == outer_of.end()) return;
    ref = graph::PortRef{graph::PortRef::Kind::Sap, it->second, "", ""};
  };
  for (graph::FlowRule rule : graph.rules) {
    rewire(rule.port_in);
    for (graph::PortRef& output : rule.outputs) rewire(output);
    out.graph.rules.push_back(std::move(rule));
  }
  out.graph.saps.insert(out.graph.saps.end(), std::make_move_iterator(spliced_saps.begin()),
                        std::make_move_iterator(spliced_saps.end()));
  out.graph.rules.insert(out.graph.rules.end(), std::make_move_iterator(spliced_rules.begin()),
                         std::make_move_iterator(spliced_rules.end()));

  // Spliced ids that clash with others, and (in the client's graph, where they are final) SF ids
  // too long to name a namespace.
  auto blame = [&](size_t owner, const std::string& what) {
    const graph::Sf& sf = graph.sfs[owner];
    problems.push_back({ErrorCode::InvalidArgument,
                        {"/sffg/SFs/" + std::to_string(owner),
                         "splicing graph template " + choices[owner].graph_template->id +
                             " in place of SF '" + sf.id + "' makes " + what},
                        sf.id});
  };
  auto clashes = [&](const auto& items, const std::vector<size_t>& owner, const char* kind) {
    std::map<std::string, size_t> seen;
    for (size_t k = 0; k < items.size(); ++k) {
      auto [it, inserted] = seen.emplace(items[k].id, k);
      if (inserted) continue;
      size_t culprit = owner[k] != kOwn ? owner[k] : owner[it->second];
      if (culprit == kOwn) continue;  // the graph's own ids: its parser checked them
      blame(culprit, std::string(kind) + " '" + items[k].id + "', which the graph already has");
    }
  };
  clashes(out.graph.sfs, sf_owner, "an SF");
  clashes(out.graph.saps, sap_owner, "a SAP");
  clashes(out.graph.rules, rule_owner, "a flowrule");
  if (top) {
    for (size_t k = 0; k < out.graph.sfs.size(); ++k) {
      const std::string& id = out.graph.sfs[k].id;
      if (sf_owner[k] != kOwn && id.size() > kMaxSplicedSfIdLength) {
        blame(sf_owner[k], "an SF id of " + std::to_string(id.size()) + " characters, more than " +
                               std::to_string(kMaxSplicedSfIdLength) + " ('" + id +
                               "'): its network namespace could not be named");
      }
    }
  }
  return out;
}

}  // namespace

// One resolve() or expand() call: what its graphs (the client's and the graph templates' being
// expanded) share.
struct Resolver::Walk {
  const NodeView& node;
  bool splice;                     // expand(): graph templates are candidates; resolve(): not
  Resources left;                  // free, less what the SFs resolved so far take
  std::string graph_id;            // the client's graph, for log lines
  std::vector<std::string> chain;  // the graph templates being expanded, outermost first
  size_t tries = 0;                // graph templates tried so far
};

struct Resolver::Level {
  Expansion expansion;  // valid only if there are no problems
  std::vector<Problem> problems;
};

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
  // A docker image is a registry reference; a dpdk program without a folder ("dpdk-testpmd") is
  // looked up in the driver's PATH.
  bool program = tmpl.type == "dpdk" && uri.find('/') == std::string::npos;
  if (tmpl.type == "docker" || program || uri.starts_with("/") ||
      uri.find("://") != std::string::npos) {
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

Result<Resolver::Level> Resolver::expandGraph(const graph::Graph& graph, Walk& walk) const {
  Level level;
  std::vector<Choice> choices(graph.sfs.size());
  std::vector<std::vector<Template>> candidates(graph.sfs.size());

  for (size_t i = 0; i < graph.sfs.size(); ++i) {
    const graph::Sf& sf = graph.sfs[i];
    const std::string at = "/sffg/SFs/" + std::to_string(i);
    auto found = candidatesFor(repository_, sf, at, level.problems);
    if (!found.ok()) return std::move(found).error();
    candidates[i] = std::move(found).value();
    if (candidates[i].empty()) continue;

    const Template* chosen = nullptr;
    std::vector<std::string> refusals;
    bool only_resources = true;
    const size_t ports = sf.ports.size();
    // For log lines: the SF, and the graph templates it is inside of.
    const std::string where =
        "SF " + sf.id + " of graph " + walk.graph_id +
        (walk.chain.empty() ? "" : " (in graph template " + join(walk.chain, " -> ") + ")");
    for (const Template& t : candidates[i]) {
      std::vector<std::string> reasons;   // anything but resources
      std::vector<std::string> shortage;  // resources, which may be freed later
      const bool ports_fit = ports >= t.ports_min && ports <= t.ports_max;
      const std::string ports_reason = "needs " + std::to_string(t.ports_min) + "-" +
                                       std::to_string(t.ports_max) + " ports, the SF has " +
                                       std::to_string(ports);
      if (t.isSubGraph()) {
        if (!ports_fit) reasons.push_back(ports_reason);
        if (!walk.splice) {
          reasons.push_back("a graph template, which resolve() does not splice (expand() does)");
        } else if (std::find(walk.chain.begin(), walk.chain.end(), t.id) != walk.chain.end()) {
          reasons.push_back("graph templates in a cycle: " + chainText(walk.chain, t.id));
        } else if (walk.chain.size() >= kMaxTemplateDepth) {
          reasons.push_back("graph templates nested more than " +
                            std::to_string(kMaxTemplateDepth) +
                            " deep: " + chainText(walk.chain, t.id));
        } else if (walk.tries >= kMaxTemplateTries) {
          reasons.push_back("not tried: " + std::to_string(kMaxTemplateTries) +
                            " graph templates were tried for this graph already");
        } else if (reasons.empty()) {
          ++walk.tries;
          const Resources before = walk.left;
          walk.chain.push_back(t.id);
          auto inner = expandGraph(*t.graph, walk);
          walk.chain.pop_back();
          if (!inner.ok()) return std::move(inner).error();
          if (inner->problems.empty()) {
            choices[i].inner = std::move(inner->expansion);
          } else {
            walk.left = before;  // what the SFs of its graph took is given back
            std::string why = "its graph does not resolve: [" + describe(inner->problems) + "]";
            if (codeOf(inner->problems) == ErrorCode::ResourceExhausted) {
              shortage.push_back(std::move(why));
            } else {
              reasons.push_back(std::move(why));
            }
          }
        }
      } else {
        if (auto usable = walk.node.driverUsable(t.type); !usable.ok()) {
          reasons.push_back("driver '" + t.type + "' is not usable: " + usable.error().message());
        }
        if (!ports_fit) reasons.push_back(ports_reason);
        for (const std::string& dependency : t.dependencies) {
          if (!walk.node.dependencyPresent(dependency)) {
            reasons.push_back("dependency '" + dependency + "' is missing");
          }
        }
        shortage = resourceShortage(t, walk.left);
        // Hashing an image is slow: only for a template that passed every other test.
        if (reasons.empty() && shortage.empty()) {
          std::string image = imageRefusal(t);
          if (!image.empty()) reasons.push_back(image);
        }
      }
      if (reasons.empty() && shortage.empty()) {
        chosen = &t;
        break;
      }
      if (!reasons.empty() || shortage.empty()) only_resources = false;
      reasons.insert(reasons.end(), shortage.begin(), shortage.end());
      refusals.push_back(t.id + ": " + join(reasons, ", "));
      CORCH_LOG(lg, Debug) << where << ": template " << t.id << " refused: " << join(reasons, ", ");
    }

    if (chosen == nullptr) {
      std::string what;
      if (sf.template_id) {
        what = "template '" + *sf.template_id + "' cannot be used";
      } else {
        what = "no implementation of '" + sf.name + "' fits";
      }
      if (only_resources) what += " in the free resources";
      level.problems.push_back(
          {only_resources ? ErrorCode::ResourceExhausted : ErrorCode::Unsupported,
           {at, what + ": " + join(refusals, "; ")},
           sf.id});
      continue;
    }

    if (chosen->isSubGraph()) {
      // Its functions took their resources as they were resolved.
      if (!emptyConfig(sf.config_json)) {
        level.problems.push_back({ErrorCode::InvalidArgument,
                                  {at + "/config", "template " + chosen->id +
                                                       " is a graph template: it takes no "
                                                       "configuration (its functions are "
                                                       "configured in its graph)"},
                                  sf.id});
      }
      choices[i].graph_template = chosen;
      CORCH_LOG(lg, Debug) << where << " ('" << sf.name << "') resolved to graph template "
                           << chosen->id << " (" << choices[i].inner.graph.sfs.size()
                           << " functions)";
      continue;
    }
    // Taken even if the configuration is wrong: the SF has its template, and the next SFs are
    // judged as they will be once the configuration is fixed.
    walk.left.cpu_cores = std::max(0.0, walk.left.cpu_cores - chosen->cpu_cores);
    walk.left.memory_mb -= std::min(walk.left.memory_mb, chosen->memory_mb);
    walk.left.disk_mb -= std::min(walk.left.disk_mb, chosen->disk_mb);
    auto config = mergeConfig(*chosen, sf.config_json, at + "/config");
    if (!config.ok()) {
      for (const FieldError& f : config.error().fields()) {
        level.problems.push_back({config.error().code(), f, sf.id});
      }
      continue;
    }
    CORCH_LOG(lg, Debug) << where << " ('" << sf.name << "') resolved to template " << chosen->id;
    choices[i].resolution =
        Resolution{sf.id, *chosen, std::move(config).value(), imagePath(*chosen)};
  }
  if (!level.problems.empty()) return level;

  level.expansion = splice(graph, choices, walk.chain.empty(), level.problems);
  return level;
}

Result<Expansion> Resolver::finish(const graph::Graph& graph, Result<Level> level) {
  if (!level.ok()) return std::move(level).error();
  std::vector<Problem> problems = std::move(level->problems);
  for (size_t i = 0; i < graph.saps.size(); ++i) {
    if (graph.saps[i].type == graph::SapType::InternalPort) {
      problems.push_back({ErrorCode::InvalidArgument,
                          {"/sffg/saps/" + std::to_string(i) + "/type",
                           "a SAP of type 'internal-port' only belongs in the graph of a graph "
                           "template (it stands for a port of the SF the template implements)"},
                          ""});
    }
  }
  if (!problems.empty()) {
    ErrorCode code = codeOf(problems);
    std::vector<FieldError> fields;
    std::vector<std::string> lines;
    for (Problem& p : problems) {
      lines.push_back(p.field.pointer + ": " + p.field.message);
      fields.push_back(std::move(p.field));
    }
    return Error(code, join(lines, "; "), std::move(fields));
  }
  return std::move(level->expansion);
}

Result<std::vector<Resolution>> Resolver::resolve(const graph::Graph& graph,
                                                  const NodeView& node) const {
  Walk walk{node, false, node.freeResources(), graph.id, {}, 0};
  auto expansion = finish(graph, expandGraph(graph, walk));
  if (!expansion.ok()) return std::move(expansion).error();
  return std::move(expansion->resolutions);
}

Result<Expansion> Resolver::expand(const graph::Graph& graph, const NodeView& node) const {
  Walk walk{node, true, node.freeResources(), graph.id, {}, 0};
  auto expansion = finish(graph, expandGraph(graph, walk));
  if (expansion.ok() && expansion->graph.sfs.size() != graph.sfs.size()) {
    CORCH_LOG(lg, Debug) << "graph " << graph.id << " expanded from " << graph.sfs.size() << " to "
                         << expansion->graph.sfs.size() << " SFs";
  }
  return expansion;
}

}  // namespace corch::resolver
