// The canonical northbound format, SF-FG (DESIGN section 6), to and from the graph model.
//
// What the parser accepts, beyond what DESIGN section 6 shows:
//  - Numbers are decimal or 0x-hex strings, or JSON integers.
//  - Ids are strings of 1 to 64 letters, digits, '.', '_' and '-' (they end up in the names of
//    namespaces and ports, and in references, where ':' separates them). A non-negative JSON
//    integer is accepted as an id and kept as its decimal text: 1 is the id "1", not "0x1".
//    An SF port id may also hold ':' (the NF-FG's "inout:0"), as the last part of a reference.
//  - A SAP carries exactly the object named by its type ("vlan": {...} for type "vlan").
//  - gre-key may be omitted: it is then 0, as in Open vSwitch. A static host-stack SAP needs
//    "ipv4" as address/length ("192.168.4.1/24"); a dhcp one must not have it.
//  - "output_to_port" is a reference or a non-empty list of distinct references, none of them
//    the rule's port_in.
//  - Set-field actions need the match to select what they modify, as in OpenFlow:
//    set_source_port/set_dest_port a protocol 6, 17 or 132, set_source_ip/set_dest_ip an IP
//    version (ether_type 0x0800/0x86dd, an IP address of the match, or protocol 1/58).
//  - Two rules with the same priority, port_in and match are refused: which one applies would be
//    undefined.
#pragma once

#include <string>
#include <string_view>

#include "corch/error.h"
#include "graph/model.h"

namespace corch::graph {

// Parses a document {"sffg": {...}}. Enforces the JSON Schema in graph/sffg.schema.json (unknown
// fields are rejected, not ignored) and then the semantic rules (ids unique, references resolve,
// numbers in range, OpenFlow prerequisites: graph_check.h, shared with the NF-FG). Malformed (400)
// when the text is not JSON; InvalidArgument (422) otherwise, with one FieldError per offending
// field, each naming its JSON pointer ("/sffg/flowrules/2/actions/output_to_port").
//
// Every error of a stage is reported, not only the first: structural errors (unknown field,
// wrong type, missing field: its pointer is where the field should be) first, and if there are
// none, every semantic error.
Result<Graph> parseSffg(std::string_view json);

// Prints a graph as a canonical SF-FG document; parseSffg(printSffg(g)) == g.
// Canonical: members in the order of DESIGN section 6, numbers as decimal strings except
// ether_type ("0x0800") and gre-key ("0x1") in hex and priority as a JSON integer, a single
// output as a string, absent optional fields (and pop_vlan, dec_ttl, drop when false) omitted,
// indented by two spaces.
std::string printSffg(const Graph& graph);

}  // namespace corch::graph
