// The SF resolver (paper 5.6, DESIGN section 4): picks one template for each SF of a graph, and
// splices in the graphs of graph templates.
#pragma once

#include <map>
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

// A graph with every SF implemented by a graph template replaced by that template's graph.
struct Expansion {
  graph::Graph graph;                         // the graph with every graph-template SF spliced in
  std::vector<Resolution> resolutions;        // one per SF of `graph` (the expanded one), its order
  std::map<std::string, std::string> origin;  // expanded SF id -> the user's SF id it implements
                                              // (itself for unspliced ones)
};

// Graph templates nested deeper than this (a template's graph with an SF implemented by a graph
// template, and so on) are refused.
inline constexpr size_t kMaxTemplateDepth = 8;
// At most this many graph templates are tried for one graph (each try resolves the template's
// graph): a repository whose graph templates could each be made of the others must not make a
// resolution take forever.
inline constexpr size_t kMaxTemplateTries = 4096;
// The longest SF id a splice may make. An SF's id names its network namespace,
// "<prefix>-<graph>-<sf>", a file name of at most 255 bytes (NAME_MAX) in /run/netns; the prefix
// has at most 6 characters and the graph id at most 64 (ComputeManager::instanceName).
inline constexpr size_t kMaxSplicedSfIdLength = 255 - 6 - 64 - 2;

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
  // mtime); an image folder, or one not on disk, is not checked. A graph template is refused
  // (only expand() splices graphs), and so is a SAP of type internal-port: InvalidArgument at
  // "/sffg/saps/<i>/type" (such SAPs only belong in a graph template's graph). Errors of the
  // repository itself are returned as they are.
  // Thread-safe: several graphs may be resolved at once.
  Result<std::vector<Resolution>> resolve(const graph::Graph& graph, const NodeView& node) const;

  // Like resolve(), but an SF may also be implemented by a graph template, whose graph is then
  // resolved the same way, recursively, and spliced in place of the SF (DESIGN section 4;
  // sf-repository/README.md). Graph templates rank after every type (native, docker, dpdk, kvm,
  // then graph templates, ties by id); one is kept when its port count is the SF's and every SF of
  // its graph resolves, in the resources left by the SFs resolved before it. On success every SF
  // of the returned graph has a template of a type a driver runs.
  //
  // Splicing SF X (ports P0..Pn-1, in its order), implemented by graph template T:
  //  - X is replaced, where it was in the SF list, by T's SFs (themselves expanded), their ids
  //    "<X>.<id>"; T's flowrules are added after the graph's own, ids "<X>.<id>", priorities kept;
  //  - for each port Pi, two SAPs of type junction are added after the graph's own: "<X>~<i>.o"
  //    (outer, for Pi in the graph around X) and "<X>~<i>.i" (inner, for T's internal-port SAP of
  //    port index i), each the other's junction_peer. '~' is in no id of a document, so these
  //    never collide with a client's SAPs;
  //  - references: sf:X:Pi becomes service-access-point:<X>~<i>.o in the graph's rules; in T's,
  //    its internal-port SAP of index i becomes service-access-point:<X>~<i>.i, sf:S:p becomes
  //    sf:<X>.S:p and a SAP s of T's expanded graph (a junction of a deeper splice) <X>.s.
  // The SF configurations come from T's graph. A graph template takes no configuration: a
  // non-empty "config" on X is InvalidArgument at "/sffg/SFs/<i>/config". A spliced id that
  // another SF or flowrule of the graph already has, or an SF id longer than
  // kMaxSplicedSfIdLength, is InvalidArgument at "/sffg/SFs/<i>".
  //
  // A graph template that reaches itself again (by pin or capability: "a -> b -> a"), or one more
  // than kMaxTemplateDepth graph templates deep, is a refused candidate like any other, the reason
  // naming the chain; so is every graph template after kMaxTemplateTries were tried. A candidate
  // refused because of its graph names the SFs of that graph that failed, and why, recursively:
  // "security-graph: its graph does not resolve: [SF 'fw': no implementation of 'firewall' fits:
  // ...]". Every error points at the client's SF ("/sffg/SFs/<i>"), with the codes of resolve():
  // Unsupported (422) when no candidate fits, ResourceExhausted (409) when every candidate was
  // refused only for resources, also those inside graph templates.
  // Thread-safe: several graphs may be expanded at once.
  Result<Expansion> expand(const graph::Graph& graph, const NodeView& node) const;

  // A template's image URI made absolute against the image root. Absolute paths, URIs with a
  // scheme ("file:///...", "https://..."), the program names of dpdk templates without a '/'
  // ("dpdk-testpmd", found in PATH) and the images of docker templates (registry references
  // such as "corch/firewall:1", not files) are returned unchanged.
  std::string imagePath(const Template& tmpl) const;

 private:
  struct DigestCache;
  struct Walk;   // one resolve() or expand() call
  struct Level;  // one graph of such a call, resolved and spliced

  // Resolves every SF of one graph (the client's, or a graph template's) and splices the graph
  // templates among them. Problems of the SFs are in the Level; errors of the repository are
  // returned.
  Result<Level> expandGraph(const graph::Graph& graph, Walk& walk) const;
  // The outcome of a whole call: the top Level's graph, or an Error of its problems.
  static Result<Expansion> finish(const graph::Graph& graph, Result<Level> level);

  // Why the template's image is not the one its template names, or "" if it is (or cannot be
  // checked: a folder, or absent).
  std::string imageRefusal(const Template& tmpl) const;

  Repository& repository_;
  std::string image_root_;
  std::shared_ptr<DigestCache> digests_;
};

}  // namespace corch::resolver
