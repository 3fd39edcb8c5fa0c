// parseTemplate(): the template format of sf-repository/template.schema.json, checked by hand so
// that every problem gets its own JSON pointer and a sentence, and so that what a schema cannot
// say (ports.min <= ports.max, duplicate member names) is checked too. Keep the two in step:
// tests/unit/resolver_test.cc runs every test template through both and expects the same verdict.
#include "resolver/repository.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <set>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "graph/json_schema.h"
#include "graph/sffg_codec.h"
#include "resolver/config.h"

namespace corch::resolver {
namespace {

using rapidjson::Value;

constexpr std::string_view kTypes[] = {"native", "docker", "kvm", "dpdk"};
constexpr std::string_view kTechnologies[] = {"veth", "internal", "tap", "vhost-user"};

template <size_t N>
bool oneOf(const std::string& s, const std::string_view (&set)[N]) {
  return std::find(std::begin(set), std::end(set), s) != std::end(set);
}

template <size_t N>
std::string listOf(const std::string_view (&set)[N]) {
  std::string out;
  for (auto s : set) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

std::string toJson(const Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

bool isId(const std::string& s) {
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool isSha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

// Walks one template document, collecting every problem with its pointer.
class Checker {
 public:
  std::vector<FieldError> errors;

  void fail(std::string pointer, std::string message) {
    errors.push_back({std::move(pointer), std::move(message)});
  }

  // Checks that `v` is an object whose members are all in `allowed`, each once, and that the
  // `required` ones are there. False if `v` is not an object at all (nothing more to check).
  bool object(const Value& v, const std::string& ptr,
              std::initializer_list<std::string_view> allowed,
              std::initializer_list<std::string_view> required) {
    if (!v.IsObject()) {
      fail(ptr, "must be an object");
      return false;
    }
    std::set<std::string, std::less<>> seen;
    for (const auto& m : v.GetObject()) {
      std::string name(m.name.GetString(), m.name.GetStringLength());
      std::string at = ptr + "/" + escapePointerToken(name);
      if (!seen.insert(name).second) {
        fail(at, "member '" + name + "' is given twice");
      } else if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string known;
        for (auto a : allowed) known += (known.empty() ? "" : ", ") + std::string(a);
        fail(at, "unknown field '" + name + "' (known: " + known + ")");
      }
    }
    for (auto r : required) {
      if (!seen.contains(r)) fail(ptr + "/" + std::string(r), "is required");
    }
    return true;
  }

  // A string member, if present and a string ("" if absent or wrong; the wrong case is reported).
  std::string string(const Value& obj, const char* name, const std::string& ptr, bool non_empty) {
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd()) return "";
    if (!it->value.IsString() || (non_empty && it->value.GetStringLength() == 0)) {
      fail(ptr + "/" + name, non_empty ? "must be a non-empty string" : "must be a string");
      return "";
    }
    return std::string(it->value.GetString(), it->value.GetStringLength());
  }

  // An unsigned integer member no larger than `max`, if present.
  template <class T>
  void integer(const Value& obj, const char* name, const std::string& ptr, T& out) {
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd()) return;
    constexpr uint64_t max = std::numeric_limits<T>::max();
    if (!it->value.IsUint64() || it->value.GetUint64() > max) {
      fail(ptr + "/" + name, max == std::numeric_limits<uint64_t>::max()
                                 ? std::string("must be an integer >= 0")
                                 : "must be an integer from 0 to " + std::to_string(max));
      return;
    }
    out = static_cast<T>(it->value.GetUint64());
  }
};

void checkImage(Checker& c, const Value& image, Template& t) {
  if (!c.object(image, "/image", {"uri", "sha256"}, {"uri"})) return;
  t.image_uri = c.string(image, "uri", "/image", true);
  auto sha = image.FindMember("sha256");
  if (sha != image.MemberEnd()) {
    std::string digest = sha->value.IsString() ? sha->value.GetString() : "";
    if (!isSha256(digest)) {
      c.fail("/image/sha256", "must be a SHA-256 digest: 64 hexadecimal digits");
    } else {
      std::transform(digest.begin(), digest.end(), digest.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      t.image_sha256 = digest;
    }
  }
}

void checkPorts(Checker& c, const Value& ports, Template& t) {
  if (!c.object(ports, "/ports", {"min", "max", "technology"}, {"min", "max"})) return;
  bool has_min = ports.HasMember("min"), has_max = ports.HasMember("max");
  size_t before = c.errors.size();
  c.integer(ports, "min", "/ports", t.ports_min);
  c.integer(ports, "max", "/ports", t.ports_max);
  if (has_min && has_max && c.errors.size() == before && t.ports_min > t.ports_max) {
    c.fail("/ports/min", "must not exceed ports/max (" + std::to_string(t.ports_min) + " > " +
                             std::to_string(t.ports_max) + ")");
  }
  if (ports.HasMember("technology")) {
    std::string tech = c.string(ports, "technology", "/ports", true);
    if (!tech.empty() && !oneOf(tech, kTechnologies)) {
      c.fail("/ports/technology", "must be one of " + listOf(kTechnologies));
    } else if (!tech.empty()) {
      t.port_technology = tech;
    }
  }
}

void checkResources(Checker& c, const Value& res, Template& t) {
  if (!c.object(res, "/resources", {"cpu-cores", "memory-mb", "disk-mb"}, {})) return;
  auto cpu = res.FindMember("cpu-cores");
  if (cpu != res.MemberEnd()) {
    if (!cpu->value.IsNumber() || cpu->value.GetDouble() < 0 ||
        !std::isfinite(cpu->value.GetDouble())) {
      c.fail("/resources/cpu-cores", "must be a number >= 0");
    } else {
      t.cpu_cores = cpu->value.GetDouble();
    }
  }
  c.integer(res, "memory-mb", "/resources", t.memory_mb);
  c.integer(res, "disk-mb", "/resources", t.disk_mb);
}

// The compute driver's own settings: an object the driver reads (compute.h, SfSpec::engine_json).
void checkEngine(Checker& c, const Value& engine, Template& t) {
  if (!engine.IsObject()) {
    c.fail("/engine", "must be an object (the settings of the template's compute driver)");
    return;
  }
  t.engine_json = toJson(engine);
}

void checkDependencies(Checker& c, const Value& deps, Template& t) {
  if (!deps.IsArray()) {
    c.fail("/dependencies", "must be a list of names");
    return;
  }
  for (rapidjson::SizeType i = 0; i < deps.Size(); ++i) {
    std::string at = "/dependencies/" + std::to_string(i);
    if (!deps[i].IsString() || deps[i].GetStringLength() == 0) {
      c.fail(at, "must be a non-empty string");
      continue;
    }
    std::string name = deps[i].GetString();
    if (std::find(t.dependencies.begin(), t.dependencies.end(), name) != t.dependencies.end()) {
      c.fail(at, "dependency '" + name + "' is listed twice");
      continue;
    }
    t.dependencies.push_back(name);
  }
}

void checkParams(Checker& c, const Value& config, Template& t) {
  if (!config.IsObject()) {
    c.fail("/config", "must be an object");
    return;
  }
  for (const auto& m : config.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    std::string at = "/config/" + escapePointerToken(name);
    if (name.empty()) {
      c.fail(at, "a parameter needs a non-empty name");
      continue;
    }
    if (t.config.contains(name)) {
      c.fail(at, "parameter '" + name + "' is declared twice");
      continue;
    }
    const Value& p = m.value;
    if (!c.object(p, at, {"type", "items", "default", "description"}, {"type"})) continue;
    ConfigParam param;
    size_t before = c.errors.size();
    param.type = c.string(p, "type", at, true);
    if (!param.type.empty() && !isParamType(param.type)) {
      c.fail(at + "/type", "must be one of list, bool, int, string");
    }
    if (p.HasMember("items")) {
      param.items = c.string(p, "items", at, true);
      if (param.type != "list") {
        c.fail(at + "/items", "only a parameter of type list takes 'items'");
      } else if (!param.items.empty() && !isItemType(param.items)) {
        c.fail(at + "/items", "must be int or string");
      }
    }
    param.description = c.string(p, "description", at, false);
    auto def = p.FindMember("default");
    if (def != p.MemberEnd() && c.errors.size() == before) {
      auto mismatches = typeMismatches(def->value, param);
      for (const auto& mm : mismatches) {
        c.fail(at + "/default" + mm.pointer_suffix, "default of '" + name + "': " + mm.message);
      }
      if (mismatches.empty()) param.default_json = toJson(def->value);
    }
    t.config.emplace(name, std::move(param));
  }
}

// A graph template's "graph": an SF-FG document whose SAPs stand for the ports of the SF the
// template implements. Its agreement with "ports" is checkGraphPorts()'s part.
void checkGraph(Checker& c, const Value& graph, Template& t) {
  if (!graph.IsObject()) {
    c.fail("/graph", "must be an object: an SF-FG document {\"sffg\": {...}}");
    return;
  }
  t.graph_json = toJson(graph);
  auto parsed = graph::parseSffg(t.graph_json);
  if (!parsed.ok()) {
    if (parsed.error().fields().empty()) c.fail("/graph", parsed.error().message());
    for (const FieldError& f : parsed.error().fields()) c.fail("/graph" + f.pointer, f.message);
    return;
  }
  const size_t before = c.errors.size();
  if (!parsed->measure.empty()) {
    c.fail("/graph/sffg/measure",
           "is not allowed in a template's graph: the graph it is spliced into has its own");
  }
  const size_t n = parsed->saps.size();
  for (size_t i = 0; i < n; ++i) {
    const graph::Sap& sap = parsed->saps[i];
    const std::string at = "/graph/sffg/saps/" + std::to_string(i);
    if (sap.type != graph::SapType::InternalPort) {
      c.fail(at + "/type", "must be 'internal-port', not '" + std::string(toString(sap.type)) +
                               "': the SAPs of a template's graph are the ports of the SF it "
                               "implements");
    } else if (sap.port_index >= n) {
      // With every index below n and none twice (the SF-FG parser refuses that), they are 0..n-1.
      c.fail(at + "/internal-port/port-index",
             "is " + std::to_string(sap.port_index) + ", but the graph has " + std::to_string(n) +
                 " SAPs: their port indexes must be 0 to " + std::to_string(n - 1));
    }
  }
  if (c.errors.size() == before) {
    t.graph = std::make_shared<const graph::Graph>(std::move(parsed).value());
  }
}

// What a graph template may not have besides "image" and "type", and its port count, which is
// the number of SAPs of its graph: the SF it implements has exactly that many ports.
void checkGraphTemplate(Checker& c, const Value& doc, Template& t, bool ports_read) {
  if (doc.HasMember("resources")) {
    c.fail("/resources",
           "is not allowed with 'graph': a graph template takes what its graph's functions take");
  }
  if (doc.HasMember("dependencies")) {
    c.fail("/dependencies",
           "is not allowed with 'graph': the templates of its graph's functions name their own");
  }
  if (doc.HasMember("config")) {
    c.fail("/config", "is not allowed with 'graph': its functions are configured in its graph");
  }
  if (doc.HasMember("engine")) {
    c.fail("/engine", "is not allowed with 'graph': its functions' templates say how they run");
  }
  if (doc.HasMember("ports") && doc["ports"].IsObject() && doc["ports"].HasMember("technology")) {
    c.fail("/ports/technology",
           "is not allowed with 'graph': its ports are joined to its graph by the vSwitch");
  }
  if (t.graph == nullptr || !ports_read) return;
  const size_t n = t.graph->saps.size();
  const std::string why = ", the number of internal-port SAPs of the template's graph";
  if (t.ports_min != n) c.fail("/ports/min", "must be " + std::to_string(n) + why);
  if (t.ports_max != n) c.fail("/ports/max", "must be " + std::to_string(n) + why);
}

constexpr size_t kMaxTemplateDepth = 64;

}  // namespace

Result<Template> parseTemplate(std::string_view json, const std::string& source) {
  rapidjson::Document doc;
  // Iterative, and no deeper than a graph may be: templates may come from a remote repository,
  // and what walks them (toJson, the config checks) recurses.
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    size_t offset = std::min(doc.GetErrorOffset(), json.size());
    size_t line = 1 + std::count(json.begin(), json.begin() + offset, '\n');
    size_t last_nl = json.rfind('\n', offset == 0 ? 0 : offset - 1);
    size_t column =
        offset - (last_nl == std::string_view::npos || offset == 0 ? 0 : last_nl + 1) + 1;
    std::string why = std::string("not valid JSON: ") +
                      rapidjson::GetParseError_En(doc.GetParseError()) + " (line " +
                      std::to_string(line) + ", column " + std::to_string(column) + ")";
    return Error(ErrorCode::InvalidArgument, "invalid template " + source + ": " + why,
                 {FieldError{"", why}});
  }
  if (auto deep = graph::findTooDeep(doc, kMaxTemplateDepth)) {
    const std::string why = "nested deeper than " + std::to_string(kMaxTemplateDepth) + " levels";
    return Error(ErrorCode::InvalidArgument,
                 "invalid template " + source + ": " + *deep + ": " + why,
                 {FieldError{*deep, why}});
  }

  Template t;
  t.source = source;
  Checker c;
  if (c.object(doc, "",
               {"id", "functional-capability", "type", "description", "image", "graph", "ports",
                "resources", "dependencies", "config", "engine"},
               {"id", "functional-capability", "ports"})) {
    if (doc.HasMember("id")) {
      t.id = c.string(doc, "id", "", true);
      if (!t.id.empty() && !isId(t.id)) {
        c.fail("/id",
               "must start with a letter or digit and hold only letters, digits, '.', '_', '-'");
      }
    }
    t.capability = c.string(doc, "functional-capability", "", true);
    t.description = c.string(doc, "description", "", false);

    bool has_image = doc.HasMember("image"), has_graph = doc.HasMember("graph");
    if (has_image && has_graph) {
      c.fail("/graph", "a template has either 'image' or 'graph', not both");
    } else if (!has_image && !has_graph) {
      c.fail("/image", "is required (or 'graph', for a template implemented by a sub-graph)");
    }
    if (has_image) checkImage(c, doc["image"], t);
    if (has_graph) checkGraph(c, doc["graph"], t);
    if (doc.HasMember("type")) {
      t.type = c.string(doc, "type", "", true);
      if (has_graph) {
        c.fail("/type", "is not allowed with 'graph': the sub-graph's functions have their own");
      } else if (!t.type.empty() && !oneOf(t.type, kTypes)) {
        c.fail("/type", "must be one of " + listOf(kTypes));
      }
    } else if (!has_graph) {
      c.fail("/type", "is required");
    }
    size_t before_ports = c.errors.size();
    if (doc.HasMember("ports")) checkPorts(c, doc["ports"], t);
    if (has_graph) {
      checkGraphTemplate(c, doc, t, doc.HasMember("ports") && c.errors.size() == before_ports);
    }
    if (doc.HasMember("resources")) checkResources(c, doc["resources"], t);
    if (doc.HasMember("dependencies")) checkDependencies(c, doc["dependencies"], t);
    if (doc.HasMember("config")) checkParams(c, doc["config"], t);
    if (doc.HasMember("engine")) checkEngine(c, doc["engine"], t);
  }

  if (!c.errors.empty()) {
    std::string message = "invalid template " + source + ": ";
    for (size_t i = 0; i < c.errors.size(); ++i) {
      if (i > 0) message += "; ";
      message += (c.errors[i].pointer.empty() ? "(document)" : c.errors[i].pointer) + ": " +
                 c.errors[i].message;
    }
    return Error(ErrorCode::InvalidArgument, std::move(message), std::move(c.errors));
  }
  return t;
}

}  // namespace corch::resolver
