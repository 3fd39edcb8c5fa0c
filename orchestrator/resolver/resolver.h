// The SF resolver (paper 5.6, DESIGN section 4): picks one template for each SF of a graph.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "corch/error.h"
#include "graph/model.h"
#include "resolver/repository.h"

namespace corch::resolver {

struct Resources {
  double cpu_cores = 0;
  uint64_t memory_mb = 0;
  uint64_t disk_mb = 0;
};

// What the resolver needs to know of the node; implemented by the node manager (and by tests).
class NodeView {
 public:
  virtual ~NodeView() = default;
  // Ok if a loaded driver for this template type ("native", ...) is usable; else why not.
  virtual Result<void> driverUsable(const std::string& type) const = 0;
  // Whether a dependency named by a template (an executable such as "iptables") is present.
  virtual bool dependencyPresent(const std::string& dependency) const = 0;
  // Resources not yet promised to deployed graphs.
  virtual Resources freeResources() const = 0;
};

struct Resolution {
  std::string sf_id;
  Template tmpl;
  std::string config_json;  // template defaults overlaid with the SF's config, compact JSON
  std::string image_path;   // image_uri made absolute against the image root; see imagePath()
};

class Resolver {
 public:
  // image_root: the folder relative image URIs are resolved against (itself made absolute
  // against the working directory; empty means the working directory).
  Resolver(Repository& repository, std::string image_root);

  // One Resolution per SF, in the graph's order. Candidates for an SF are the template it pins,
  // or all templates of its capability (Sf::name); kept are those whose driver is usable, whose
  // port range holds the SF's port count, whose dependencies are present and whose resources fit
  // in what is free (less what earlier SFs of this graph took); the cheapest type wins (native,
  // docker, dpdk, kvm), ties by id. No candidate: Unsupported (422) with one FieldError for the
  // SF ("/sffg/SFs/<i>") whose message lists why each candidate was refused. A config key the
  // chosen template does not declare, or of the wrong type: InvalidArgument at
  // "/sffg/SFs/<i>/config/<key>".
  //
  // Details. A pinned template that does not exist is InvalidArgument at "/sffg/SFs/<i>/template".
  // When every candidate of an SF was refused only for lack of resources the error is
  // ResourceExhausted (409) instead, saying what is missing. Problems of all SFs are reported
  // together, one FieldError each; the code is the most permanent of theirs (InvalidArgument,
  // then Unsupported, then ResourceExhausted). A template whose image names a SHA-256 and is a
  // regular file is refused if the file's digest differs (digests are cached by path, size and
  // mtime); an image folder, or one not on disk, is not checked. Sub-graph templates are refused
  // for now. Errors of the repository itself are returned as they are.
  // Thread-safe: several graphs may be resolved at once.
  Result<std::vector<Resolution>> resolve(const graph::Graph& graph, const NodeView& node) const;

  // A template's image URI made absolute against the image root. Absolute paths, URIs with a
  // scheme ("file:///...", "https://...") and the images of docker templates (registry references
  // such as "corch/firewall:1", not files) are returned unchanged.
  std::string imagePath(const Template& tmpl) const;

 private:
  struct DigestCache;

  // Why the template's image is not the one its template names, or "" if it is (or cannot be
  // checked: a folder, or absent).
  std::string imageRefusal(const Template& tmpl) const;

  Repository& repository_;
  std::string image_root_;
  std::shared_ptr<DigestCache> digests_;
};

}  // namespace corch::resolver
