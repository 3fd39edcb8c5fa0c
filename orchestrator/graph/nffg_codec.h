// The NF-FG, the format of un-orchestrator's clients such as the FROG4 orchestrator (DESIGN
// section 5), to and from the graph model that the SF-FG also maps onto.
//
// The format is un-orchestrator's (orchestrator/README_NF-FG.md and utils/constants.h of
// netgroup-polito/un-orchestrator) and the FROG4 nffg library's (schema.json and nffg.py of
// netgroup-polito/nffg-library), as graph/nffg.schema.json describes it. It maps onto the model:
//  - forwarding-graph id, name, description, domain: the graph's; unify-monitoring: measure.
//  - VNFs: SFs. name is the capability asked for, vnf_template pins a template; port ids are kept
//    whole ("inout:0"), and "vnf:<vnf-id>:<label>:<n>" refers to the port "<label>:<n>".
//    unify-env-variables, one "NAME=value" each, is the SF's config, one key per variable: a
//    value that is JSON text ("[22,80]", "true", "\"5\"") is that JSON value, other text a string.
//  - end-points: SAPs, by type interface, vlan, gre-tunnel, host-stack (configuration static or
//    DHCP, in either case) or internal (internal-group).
//  - big-switch flow-rules: rules, with their description. Match: port_in, ether_type, vlan_id,
//    vlan_priority (or un-orchestrator's vlan_pcp), source_mac, dest_mac, source_ip, dest_ip
//    (address or CIDR), protocol (a number, or tcp, udp, sctp, icmp, icmpv6), source_port,
//    dest_port, ip_dscp, icmpv4_type/icmpv4_code (with protocol 1), icmpv6_type/icmpv6_code (with
//    protocol 58), arp_opcode. Actions, a list of one-key objects: push_vlan, pop_vlan,
//    set_vlan_id, set_ethernet_src_address, set_ethernet_dst_address, set_ip_src_address,
//    set_ip_dst_address, set_l4_src_port, set_l4_dst_port, dec_ttl (corch's own, the SF-FG's),
//    drop, output_to_port (any number of them).
//
// Where corch is stricter than un-orchestrator, which ignored what it could not do:
//  - Every key the schema does not list is refused, naming it (un-orchestrator's gui-position,
//    node-id, ttl, groups, unify-control, mac, hard_timeout, tos_bits, set_ip_tos,
//    output_to_controller, ... and the "interface-out" and pppoe end-points): isUnknownField()
//    (document_reader.h) tells those errors apart, isSchemaError() below every error of the schema
//    stage.
//  - The actions must be listed in the order the model applies them (DESIGN section 6): push_vlan,
//    pop_vlan, set_vlan_id, set_ethernet_src_address, set_ethernet_dst_address,
//    set_ip_src_address, set_ip_dst_address, set_l4_src_port, set_l4_dst_port, dec_ttl, then the
//    outputs; each modification at most once, a flag only as true. Another order would mean
//    something else in OpenFlow.
//  - gre-key is required (as un-orchestrator does); so are a flow-rule's id, priority, match with
//    port_in, and actions.
//  - Then the SF-FG's semantic rules apply, word for word (graph_check.h).
//
// Where the NF-FG and the SF-FG differ, for a graph read from one and printed in the other:
//  - SF-FG to NF-FG keeps everything, except an SF config key that is empty or holds '=' (no
//    NAME=value can carry it). An integer id prints as its text, which is what the model holds.
//  - NF-FG to SF-FG loses the graph's description and domain and the rules' descriptions: the
//    SF-FG has no field for them. A port id holding ':' needs the SF-FG's port ids to allow it,
//    which they do.
#pragma once

#include <string>
#include <string_view>

#include "corch/error.h"
#include "graph/model.h"

namespace corch::graph {

// Parses a document {"forwarding-graph": {...}}. Malformed (400) when the text is not JSON;
// InvalidArgument otherwise, with one FieldError per offending field, each naming its JSON pointer
// in the document ("/forwarding-graph/big-switch/flow-rules/2/actions/1/output_to_port"): first
// every error of the schema stage (unknown, missing or mistyped field, an action object without
// exactly one key), and if there are none, every error of the values and of the semantic rules.
Result<Graph> parseNffg(std::string_view json);

// Whether an error of parseNffg() comes from its schema stage (the document's structure, not its
// values): the NF-FG API answers those with 400, as un-orchestrator did.
bool isSchemaError(const Error& error);

// Prints a graph as a canonical NF-FG document; parseNffg(printNffg(g)) == g for every graph that
// parseNffg() or parseSffg() returned. Canonical: members in the order the header above lists
// them, numbers as decimal strings except ether_type in hex ("0x0800") and priority as a JSON
// integer, host-stack configuration as un-orchestrator spells it ("static", "DHCP"), ICMP fields
// named after the protocol, absent optional fields omitted, indented by two spaces.
std::string printNffg(const Graph& graph);

// The pointer, in the NF-FG document a graph was read from, of the field that an SF-FG pointer
// names ("/sffg/SFs/0/template" -> "/forwarding-graph/VNFs/0/vnf_template"), for the errors of
// later stages (resolver, network manager), which speak SF-FG. Exact for a graph that parseNffg()
// returned (its document is in canonical order); other pointers are returned unchanged.
std::string nffgPointer(const Graph& graph, std::string_view sffg_pointer);

}  // namespace corch::graph
