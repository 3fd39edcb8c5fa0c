// The SF repository (paper 5.6.1, DESIGN section 4): templates, one per implementation of a
// functional capability. The default backend is a folder of JSON files; a remote HTTP service
// shared by several nodes can implement the same interface.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "corch/error.h"

namespace corch::resolver {

// One configuration parameter a template accepts, with its type and default.
struct ConfigParam {
  std::string type;          // "list", "bool", "int", "string"
  std::string items;         // for "list": "int" or "string" (empty: any scalar)
  std::string default_json;  // the default as compact JSON text ("[]", "false"), or empty: none
  std::string description;
};

struct Template {
  std::string id;
  std::string capability;  // "functional-capability"
  std::string type;        // "native", "docker", "kvm", "dpdk"
  std::string description;
  std::string image_uri;     // relative to the image root, or absolute
  std::string image_sha256;  // optional
  uint32_t ports_min = 0;
  uint32_t ports_max = 0;
  std::string port_technology = "veth";
  double cpu_cores = 0;
  uint64_t memory_mb = 0;
  uint64_t disk_mb = 0;
  std::vector<std::string> dependencies;
  std::map<std::string, ConfigParam> config;
  std::string source;  // where it came from (file path or URL), for messages
};

class Repository {
 public:
  virtual ~Repository() = default;
  // All templates implementing a capability (possibly none), sorted by id.
  virtual Result<std::vector<Template>> findByCapability(const std::string& capability) = 0;
  // NotFound if no template has this id.
  virtual Result<Template> findById(const std::string& id) = 0;
  virtual Result<std::vector<Template>> all() = 0;
};

// A repository backed by a folder of *.json template files (read at open; reload() re-reads).
// A file that is not a valid template is an error naming the file and the field.
Result<std::unique_ptr<Repository>> openFolderRepository(const std::string& dir);

}  // namespace corch::resolver
