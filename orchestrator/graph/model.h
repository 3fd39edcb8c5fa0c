// The internal model of a service graph (SF-FG, DESIGN section 6). Both northbound formats (SF-FG
// and the NF-FG of un-orchestrator clients, DESIGN section 5) are parsed into this model and
// printed from it. A Graph that came out of the parser is valid: every reference resolves, every
// number is in range, and every field present in the document is represented here (nothing is
// dropped).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "corch/flow.h"

namespace corch::graph {

struct SfPort {
  std::string id;    // unlike other ids, may hold ':' (the NF-FG's "<label>:<n>", "inout:0")
  std::string name;  // may be empty
  bool operator==(const SfPort&) const = default;
};

struct Sf {
  std::string id;
  std::string name;                        // the functional capability asked for ("firewall")
  std::optional<std::string> template_id;  // pins one implementation
  std::vector<SfPort> ports;
  std::string config_json = "{}";  // the "config" object as compact JSON text
  bool operator==(const Sf&) const = default;
};

// InternalPort SAPs exist only in the graphs of graph templates (DESIGN section 4): the port of
// the parent SF they stand for. Junction SAPs are never in a document: the resolver makes them
// when it splices a template's graph in place of an SF (resolver::expand), one pair per port of
// that SF; traffic sent to one end of a pair enters the graph at the other end.
enum class SapType { Interface, Vlan, Gre, HostStack, Internal, InternalPort, Junction };
// "interface", "vlan", "gre", "host-stack", "internal", "internal-port", "junction"
std::string_view toString(SapType type);

struct Sap {
  std::string id;
  SapType type = SapType::Interface;
  std::string name;                   // optional free text
  std::string if_name;                // interface, vlan
  uint16_t vlan_id = 0;               // vlan
  IpAddr gre_local;                   // gre
  IpAddr gre_remote;                  // gre
  uint32_t gre_key = 0;               // gre
  std::string host_configuration;     // host-stack: "static" or "dhcp"
  std::optional<IpPrefix> host_ipv4;  // host-stack, static
  std::string internal_group;         // internal
  uint32_t port_index = 0;            // internal-port: the parent SF's port (0 = its first)
  std::string junction_peer;          // junction: the SAP id of the pair's other end
  bool operator==(const Sap&) const = default;
};

// A reference to a port of the graph: "service-access-point:<sap>" or "sf:<sf>:<port>".
struct PortRef {
  enum class Kind { Sap, SfPort };
  Kind kind = Kind::Sap;
  std::string sap_id;   // Kind::Sap
  std::string sf_id;    // Kind::SfPort
  std::string port_id;  // Kind::SfPort
  std::string str() const;
  bool operator==(const PortRef&) const = default;
  auto operator<=>(const PortRef&) const = default;
};

struct FlowRule {
  std::string id;
  uint16_t priority = 0;
  PortRef port_in;
  MatchFields match;
  Modifications mods;
  std::vector<PortRef> outputs;  // empty iff drop
  bool drop = false;
  std::string description;  // free text (an NF-FG flow-rule's "description"); may be empty
  bool operator==(const FlowRule&) const = default;
};

struct Graph {
  std::string id;
  std::string name;
  std::vector<Sf> sfs;
  std::vector<Sap> saps;
  std::vector<FlowRule> rules;
  std::string measure;  // monitoring instructions, kept verbatim (section 8)
  // Kept from an NF-FG (DESIGN section 5), which has them and the SF-FG has not; may be empty.
  std::string description;  // free text
  std::string domain;       // the domain the graph was sent to, as its orchestrator named it
  bool operator==(const Graph&) const = default;

  const Sf* findSf(const std::string& id) const;
  const Sap* findSap(const std::string& id) const;
};

}  // namespace corch::graph
