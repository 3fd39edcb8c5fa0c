// The SF repository (paper 5.6.1, DESIGN section 4): templates, one per implementation of a
// functional capability. The default backend is a folder of JSON files; a remote HTTP service
// shared by several nodes can implement the same interface.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "graph/model.h"

namespace corch::resolver {

// One configuration parameter a template accepts, with its type and default.
struct ConfigParam {
  std::string type;          // "list", "bool", "int", "string"
  std::string items;         // for "list": "int" or "string" (empty: any scalar)
  std::string default_json;  // the default as compact JSON text ("[]", "false"), or empty: none
  std::string description;
};

// One template, as validated by parseTemplate(): every field of the file is represented here.
// A template is implemented either by an image that a compute driver runs (type and image), or
// by a graph of other SFs (a graph template, DESIGN section 4): the resolver splices that graph in
// place of the SF (Resolver::expand).
struct Template {
  std::string id;
  std::string capability;  // "functional-capability"
  std::string type;        // "native", "docker", "kvm", "dpdk"; empty for a graph template
  std::string description;
  std::string image_uri;     // relative to the image root, or absolute
  std::string image_sha256;  // optional, 64 lower-case hex digits
  // A graph template's "graph" document ({"sffg": {...}}), compact JSON; else empty.
  std::string graph_json;
  // The same, parsed. Its SAPs are all of type internal-port, their port indexes exactly
  // 0..ports_min-1 (ports_min == ports_max); its "measure" is empty. Null for other templates.
  std::shared_ptr<const graph::Graph> graph;
  uint32_t ports_min = 0;
  uint32_t ports_max = 0;
  std::string port_technology = "veth";
  double cpu_cores = 0;
  uint64_t memory_mb = 0;
  uint64_t disk_mb = 0;
  std::vector<std::string> dependencies;
  std::map<std::string, ConfigParam> config;
  // The compute driver's own settings ("engine": a VM's kernel and vCPUs, a container's command),
  // compact JSON of an object, or empty. Each driver documents and checks its keys.
  std::string engine_json;
  std::string source;  // where it came from (file path or URL), for messages

  bool isSubGraph() const { return graph != nullptr; }
};

// Parses and validates one template document against sf-repository/template.schema.json (unknown
// fields are rejected, not ignored) plus what the schema cannot say (ports.min <= ports.max,
// duplicate member names, and for a graph template: its "graph" is a valid SF-FG document,
// orchestrator/graph/sffg.schema.json, whose SAPs are all of type internal-port with the port
// indexes 0..n-1, n being both ports.min and ports.max, and without "measure"). `source` names the
// document in messages and is kept in Template::source. On failure: InvalidArgument whose message
// is "invalid template <source>: <pointer>: <why>; ..." and with one FieldError per problem, its
// pointer relative to the template document ("/ports/min", "/graph/sffg/saps/0/type").
Result<Template> parseTemplate(std::string_view json, const std::string& source);

class Repository {
 public:
  virtual ~Repository() = default;
  // All templates implementing a capability (possibly none), sorted by id.
  virtual Result<std::vector<Template>> findByCapability(const std::string& capability) = 0;
  // NotFound if no template has this id.
  virtual Result<Template> findById(const std::string& id) = 0;
  virtual Result<std::vector<Template>> all() = 0;
  // Re-reads the backing store. On failure the repository keeps what it held before. The default
  // does nothing, for backends that are always current.
  virtual Result<void> reload() { return Ok(); }
};

// A repository backed by a folder of *.json template files (read at open; reload() re-reads).
// Every regular file whose name ends in ".json" and does not start with "." is a template;
// sub-folders are not read. A file that is not a valid template is an error naming the file and
// the field; so is a template id used by two files (naming both). All problems of all files are
// reported at once (InvalidArgument); a folder that cannot be read is NotFound/PermissionDenied.
// Thread-safe: reload() may run while other threads look templates up.
Result<std::unique_ptr<Repository>> openFolderRepository(const std::string& dir);

}  // namespace corch::resolver
