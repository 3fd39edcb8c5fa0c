// The semantic checks of a graph read from a client's document, shared by the SF-FG and NF-FG
// codecs: ids valid and unique, references resolve, SAPs consistent and distinct, OpenFlow
// prerequisites of matches and actions, no two rules that OpenFlow could not tell apart.
//
// A reader turns a document into a Graph and records, in a GraphSource, where each part of the
// graph was in the document; checkGraph() then reports every error with the pointer of the field
// in the client's document and in the words of its format (a Dialect), so that both formats are
// held to exactly the same rules. What the checks do not cover, the readers do: the syntax of
// numbers, addresses and references, and their ranges (the limits below, shared too).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "corch/error.h"
#include "graph/model.h"

namespace corch::graph {

// Ranges of the numbers of a graph that their C++ types do not bound.
inline constexpr uint64_t kMaxVlanId = 4095;
inline constexpr uint64_t kMaxVlanPcp = 7;
inline constexpr uint64_t kMaxIpDscp = 63;
inline constexpr size_t kMaxIdLength = 64;

// The modifications of a rule by their SF-FG names, in the order they are applied (DESIGN
// section 6); a rule's outputs come after all of them.
inline constexpr std::string_view kModificationOrder[] = {
    "push_vlan",     "pop_vlan",    "set_vlan_id",     "set_source_mac", "set_dest_mac",
    "set_source_ip", "set_dest_ip", "set_source_port", "set_dest_port",  "dec_ttl"};

// Whether a rule's modifications include the one of that SF-FG name.
bool hasModification(const Modifications& mods, std::string_view name);

// An id: 1 to kMaxIdLength letters, digits, '.', '_' and '-'. Ids end up in the names of
// namespaces and ports, and in references, where ':' separates them.
bool validId(std::string_view id);
// An SF port id may also hold ':': it is the last part of a reference, and the NF-FG names ports
// "<label>:<n>" ("inout:0"). Port ids never end up in a kernel name.
bool validPortId(std::string_view id);
// An interface name the kernel accepts (IFNAMSIZ - 1 bytes, no '/', ':' or white space), and
// ASCII, so that it prints the same everywhere.
bool validIfName(std::string_view name);

// How a format names what the checks talk about.
struct Dialect {
  std::string_view format;      // "SF-FG"
  std::string_view sap;         // what the format calls a SAP: "SAP", "end-point"
  std::string_view sf;          // "SF", "VNF"
  std::string_view rule;        // "flowrule", "flow-rule"
  std::string_view sap_prefix;  // "service-access-point:"
  std::string_view sf_prefix;   // "sf:" (then "<sf-id>:<port-id>")
  // The format's name of a field, SAP type or action, by its SF-FG name, where they differ.
  std::span<const std::pair<std::string_view, std::string_view>> words;

  std::string word(std::string_view sffg_name) const;
  std::string reference(const PortRef& ref) const;  // "sf:fw:0xa" in the format's syntax
  // Parses a reference's syntax (not whether it resolves); nullopt if it is not one.
  std::optional<PortRef> parseReference(std::string_view text) const;
  std::string referenceSyntax() const;  // "service-access-point:<sap-id> or sf:<sf-id>:<port-id>"
};

// Where one JSON object's fields were, by their SF-FG names.
struct FieldSources {
  struct Field {
    std::string pointer;
    std::string word;  // the key the document used
  };
  std::string object;  // the object's own pointer
  std::map<std::string, Field, std::less<>> fields;

  void add(std::string_view sffg_name, std::string pointer, std::string word);
  const Field* find(std::string_view sffg_name) const;
};

struct SapSource {
  std::string pointer;
  FieldSources object;     // the object named by the SAP's type ("/sffg/saps/3/vlan")
  bool has_object = true;  // false: the document lacked it (the reader said so)
  bool complete = true;    // false: a field could not be read (the reader said so)
};

struct RuleSource {
  std::string pointer;
  FieldSources match;
  FieldSources actions;              // action fields by their SF-FG name (the first output's)
  std::vector<std::string> outputs;  // one per output of the model's rule
  bool port_in_read = true;          // false: the model's port_in is a placeholder
  bool complete = true;              // false: a field could not be read
};

// Where the parts of a Graph were in its document: one entry per SF, SF port, SAP and rule of the
// graph, in the graph's order.
struct GraphSource {
  std::string graph;  // the graph object's pointer ("/sffg")
  std::vector<std::string> sfs;
  std::vector<std::vector<std::string>> sf_ports;
  std::vector<SapSource> saps;
  std::vector<RuleSource> rules;
};

// Every semantic error of a graph, in graph order. The parts a reader could not read completely
// are only checked for what does not depend on the unread field, so that no error is a mere
// consequence of one the reader reported.
std::vector<FieldError> checkGraph(const Graph& graph, const GraphSource& source,
                                   const Dialect& dialect);

}  // namespace corch::graph
