#include "graph/graph_check.h"

#include <cctype>
#include <cstdio>

#include "graph/json_schema.h"

namespace corch::graph {

namespace {

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string hex4(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%04llx", static_cast<unsigned long long>(value));
  return text;
}

bool isTransport(std::optional<uint8_t> protocol) {
  return protocol && (*protocol == 6 || *protocol == 17 || *protocol == 132);
}

bool isIcmp(std::optional<uint8_t> protocol) {
  return protocol && (*protocol == 1 || *protocol == 58);
}

// " (not 1)" when a prerequisite field is present with the wrong value, "" when it is absent.
template <class T>
std::string notValue(const std::optional<T>& value) {
  return value ? " (not " + std::to_string(uint64_t{*value}) + ")" : "";
}

std::string versionName(bool v6) { return v6 ? "IPv6" : "IPv4"; }

bool idCharacter(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
         c == '_' || c == '-';
}

std::string lower(std::string_view text) {
  std::string result(text);
  for (char& c : result) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return result;
}

// The IP version a field of a rule implies, and which field said so, for error messages.
struct IpVersion {
  bool v6 = false;
  std::string why;  // "ether_type 0x0800"
};

class Checker {
 public:
  Checker(const Graph& graph, const GraphSource& source, const Dialect& dialect)
      : graph_(graph), source_(source), dialect_(dialect) {}

  std::vector<FieldError> run();

 private:
  void fail(std::string pointer, std::string message) {
    errors_.push_back({std::move(pointer), std::move(message)});
  }
  // The pointer of a field: where the document had it, or where it belongs if it had not.
  std::string where(const FieldSources& fields, std::string_view name) const {
    if (const auto* field = fields.find(name)) return field->pointer;
    return appendPointer(fields.object, dialect_.word(name));
  }
  // The document's word for a field: the key it used, or the format's usual one.
  std::string word(const FieldSources& fields, std::string_view name) const {
    if (const auto* field = fields.find(name)) return field->word;
    return dialect_.word(name);
  }
  void id(std::string_view id, const std::string& element, bool port = false);
  void unique(std::map<std::string, std::string>& seen, const std::string& id,
              const std::string& element, std::string_view what);
  bool resolves(const PortRef& ref, const std::string& pointer);

  void sfs();
  void saps();
  void rules();
  void checkMatch(size_t index, std::optional<IpVersion>& version);
  void checkActions(size_t index, const std::optional<IpVersion>& version);

  const Graph& graph_;
  const GraphSource& source_;
  const Dialect& dialect_;
  std::vector<FieldError> errors_;
};

std::vector<FieldError> Checker::run() {
  if (!graph_.id.empty()) id(graph_.id, source_.graph);
  sfs();
  saps();
  rules();
  return std::move(errors_);
}

void Checker::id(std::string_view id, const std::string& element, bool port) {
  if (port ? validPortId(id) : validId(id)) return;
  fail(appendPointer(element, "id"),
       "id " + quoted(id) + " must be 1 to " + std::to_string(kMaxIdLength) +
           (port ? " letters, digits, '.', '_', '-' or ':'" : " letters, digits, '.', '_' or '-'"));
}

void Checker::unique(std::map<std::string, std::string>& seen, const std::string& id,
                     const std::string& element, std::string_view what) {
  auto [it, inserted] = seen.emplace(id, element);
  if (!inserted) {
    fail(appendPointer(element, "id"),
         "duplicate " + std::string(what) + " id " + quoted(id) + " (first at " + it->second + ")");
  }
}

bool Checker::resolves(const PortRef& ref, const std::string& pointer) {
  std::string text = dialect_.reference(ref);
  if (ref.kind == PortRef::Kind::Sap) {
    if (graph_.findSap(ref.sap_id) != nullptr) return true;
    fail(pointer,
         "unknown " + std::string(dialect_.sap) + " " + quoted(ref.sap_id) + " in " + quoted(text));
    return false;
  }
  const Sf* sf = graph_.findSf(ref.sf_id);
  if (sf == nullptr) {
    fail(pointer,
         "unknown " + std::string(dialect_.sf) + " " + quoted(ref.sf_id) + " in " + quoted(text));
    return false;
  }
  for (const auto& port : sf->ports) {
    if (port.id == ref.port_id) return true;
  }
  fail(pointer, std::string(dialect_.sf) + " " + quoted(ref.sf_id) + " has no port " +
                    quoted(ref.port_id) + " (in " + quoted(text) + ")");
  return false;
}

void Checker::sfs() {
  std::map<std::string, std::string> sf_ids;
  for (size_t i = 0; i < graph_.sfs.size(); ++i) {
    const Sf& sf = graph_.sfs[i];
    const std::string& at = source_.sfs[i];
    id(sf.id, at);
    unique(sf_ids, sf.id, at, dialect_.sf);
    std::map<std::string, std::string> port_ids;
    for (size_t p = 0; p < sf.ports.size(); ++p) {
      const std::string& port_at = source_.sf_ports[i][p];
      id(sf.ports[p].id, port_at, true);
      unique(port_ids, sf.ports[p].id, port_at, "port");
    }
  }
}

void Checker::saps() {
  std::map<std::string, std::string> sap_ids;
  // What each SAP attaches to ("interface 'eth1'"), so that two SAPs do not claim the same thing.
  std::map<std::string, std::string> endpoints;
  for (size_t i = 0; i < graph_.saps.size(); ++i) {
    const Sap& sap = graph_.saps[i];
    const SapSource& at = source_.saps[i];
    id(sap.id, at.pointer);
    unique(sap_ids, sap.id, at.pointer, dialect_.sap);
    if (!at.has_object) continue;
    const FieldSources& fields = at.object;
    if ((sap.type == SapType::Interface || sap.type == SapType::Vlan) &&
        !validIfName(sap.if_name)) {
      fail(where(fields, "if-name"),
           quoted(sap.if_name) +
               " is not an interface name (1 to 15 printable ASCII characters, no '/' or ':')");
    }
    if (!at.complete) continue;  // the checks below compare fields with each other
    std::string endpoint;
    switch (sap.type) {
      case SapType::Interface:
        endpoint = "interface " + quoted(sap.if_name);
        break;
      case SapType::Vlan:
        endpoint = "VLAN " + std::to_string(sap.vlan_id) + " on " + quoted(sap.if_name);
        break;
      case SapType::Gre:
        if (sap.gre_local.v6 != sap.gre_remote.v6) {
          fail(where(fields, "remote-ip"),
               word(fields, "remote-ip") + " is " + versionName(sap.gre_remote.v6) + " but " +
                   word(fields, "local-ip") + " is " + versionName(sap.gre_local.v6));
        }
        endpoint = "GRE tunnel " + sap.gre_local.str() + " -> " + sap.gre_remote.str() + " key " +
                   std::to_string(sap.gre_key);
        break;
      case SapType::HostStack:
        if (sap.host_configuration == "dhcp" && sap.host_ipv4) {
          fail(where(fields, "ipv4"), "a dhcp configuration takes no ipv4 address");
        } else if (sap.host_configuration == "static" && !sap.host_ipv4) {
          fail(where(fields, "ipv4"),
               "a static configuration needs an ipv4 address (192.168.4.1/24)");
        }
        break;
      case SapType::Internal:
        endpoint = "internal group " + quoted(sap.internal_group);
        break;
      case SapType::InternalPort:
        endpoint = "port " + std::to_string(sap.port_index) + " of the implemented SF";
        break;
      case SapType::Junction:
        break;
    }
    if (endpoint.empty()) continue;
    auto [it, inserted] = endpoints.emplace(endpoint, at.pointer);
    if (!inserted) {
      fail(fields.object, std::string(dialect_.sap) + " " + quoted(sap.id) + " uses the same " +
                              endpoint + " as " + it->second);
    }
  }
}

void Checker::rules() {
  std::map<std::string, std::string> rule_ids;
  std::vector<bool> clean(graph_.rules.size(), false);
  for (size_t i = 0; i < graph_.rules.size(); ++i) {
    const FlowRule& rule = graph_.rules[i];
    const RuleSource& at = source_.rules[i];
    id(rule.id, at.pointer);
    unique(rule_ids, rule.id, at.pointer, dialect_.rule);

    size_t errors_before = errors_.size();
    if (at.port_in_read) resolves(rule.port_in, where(at.match, "port_in"));
    for (size_t k = 0; k < rule.outputs.size(); ++k) {
      if (!resolves(rule.outputs[k], at.outputs[k])) continue;
      for (size_t j = 0; j < k; ++j) {
        if (rule.outputs[j] == rule.outputs[k]) {
          fail(at.outputs[k], quoted(dialect_.reference(rule.outputs[k])) + " is listed twice");
          break;
        }
      }
    }
    // The prerequisites compare fields with each other: only meaningful when each one is valid.
    if (!at.complete || !at.port_in_read || errors_.size() != errors_before) continue;
    std::optional<IpVersion> version;
    checkMatch(i, version);
    checkActions(i, version);
    clean[i] = errors_.size() == errors_before;
  }
  // OpenFlow keeps one of two rules with the same priority and match; say which ones collide.
  for (size_t j = 0; j < graph_.rules.size(); ++j) {
    for (size_t i = 0; i < j && clean[j]; ++i) {
      const FlowRule& a = graph_.rules[i];
      const FlowRule& b = graph_.rules[j];
      if (clean[i] && a.priority == b.priority && a.port_in == b.port_in && a.match == b.match) {
        fail(source_.rules[j].pointer, "same priority, port_in and match as " +
                                           std::string(dialect_.rule) + " " + quoted(a.id) + " (" +
                                           source_.rules[i].pointer +
                                           "): which one applies is undefined");
        break;
      }
    }
  }
}

void Checker::checkMatch(size_t index, std::optional<IpVersion>& version) {
  const MatchFields& m = graph_.rules[index].match;
  const FieldSources& fields = source_.rules[index].match;
  auto at = [&](std::string_view field) { return where(fields, field); };
  auto name = [&](std::string_view field) { return word(fields, field); };
  // The IP fields in the order a reader meets them, to name the first conflicting one.
  const std::pair<std::string_view, bool> ip_fields[] = {
      {"source_ip", m.source_ip.has_value()},
      {"dest_ip", m.dest_ip.has_value()},
      {"protocol", m.protocol.has_value()},
      {"ip_dscp", m.ip_dscp.has_value()},
  };

  if (m.ether_type == 0x0800 || m.ether_type == 0x86dd) {
    version = IpVersion{*m.ether_type == 0x86dd, name("ether_type") + " " + hex4(*m.ether_type)};
  } else if (m.ether_type) {
    for (const auto& [field, present] : ip_fields) {
      if (present) {
        fail(at(field), name(field) + " needs " + name("ether_type") +
                            " 0x0800 (IPv4) or 0x86dd (IPv6), not " + hex4(*m.ether_type));
      }
    }
  }
  auto implies = [&](std::string_view field, bool v6, std::string why) {
    if (!version) {
      version = IpVersion{v6, std::move(why)};
    } else if (version->v6 != v6) {
      fail(at(field), why + " is " + versionName(v6) + " but " + version->why + " is " +
                          versionName(version->v6));
    }
  };
  if (m.source_ip) {
    implies("source_ip", m.source_ip->addr.v6, name("source_ip") + " " + m.source_ip->str());
  }
  if (m.dest_ip) implies("dest_ip", m.dest_ip->addr.v6, name("dest_ip") + " " + m.dest_ip->str());
  if (m.protocol == 1) implies("protocol", false, name("protocol") + " 1 (ICMP)");
  if (m.protocol == 58) implies("protocol", true, name("protocol") + " 58 (ICMPv6)");

  if (m.arp_opcode) {
    if (m.ether_type && *m.ether_type != 0x0806) {
      fail(at("arp_opcode"), name("arp_opcode") + " needs " + name("ether_type") +
                                 " 0x0806 (ARP), not " + hex4(*m.ether_type));
    } else if (!m.ether_type) {
      for (const auto& [field, present] : ip_fields) {
        if (present) {
          fail(at("arp_opcode"),
               name("arp_opcode") + " (ARP) cannot be matched with the IP field " + name(field));
          break;
        }
      }
    }
  }
  for (auto [field, present] : {std::pair{"source_port", m.source_port.has_value()},
                                std::pair{"dest_port", m.dest_port.has_value()}}) {
    if (present && !isTransport(m.protocol)) {
      fail(at(field), name(field) + " needs " + name("protocol") +
                          " 6 (TCP), 17 (UDP) or 132 (SCTP)" + notValue(m.protocol));
    }
  }
  for (auto [field, present] : {std::pair{"icmp_type", m.icmp_type.has_value()},
                                std::pair{"icmp_code", m.icmp_code.has_value()}}) {
    if (present && !isIcmp(m.protocol)) {
      fail(at(field), name(field) + " needs " + name("protocol") + " 1 (ICMP) or 58 (ICMPv6)" +
                          notValue(m.protocol));
    }
  }
  if (m.vlan_pcp && !m.vlan_id) {
    fail(at("vlan_pcp"), name("vlan_pcp") + " needs " + name("vlan_id") + " in the match");
  }
}

void Checker::checkActions(size_t index, const std::optional<IpVersion>& version) {
  const FlowRule& rule = graph_.rules[index];
  const RuleSource& source = source_.rules[index];
  const FieldSources& fields = source.actions;
  const Modifications& a = rule.mods;
  auto at = [&](std::string_view field) { return where(fields, field); };
  auto name = [&](std::string_view field) { return word(fields, field); };
  if (rule.drop) {
    if (!rule.outputs.empty()) {
      fail(at("output_to_port"), "a rule that drops has no " + name("output_to_port"));
    }
    for (std::string_view field : kModificationOrder) {
      if (hasModification(a, field)) {
        fail(at(field), name(field) + " has no effect on a rule that drops");
      }
    }
    return;
  }
  if (rule.outputs.empty()) {
    fail(fields.object,
         "a rule needs " + name("output_to_port") + ", or " + name("drop") + ": true");
    return;
  }
  for (size_t i = 0; i < rule.outputs.size(); ++i) {
    if (rule.outputs[i] == rule.port_in) {
      fail(source.outputs[i], name("output_to_port") + " " +
                                  quoted(dialect_.reference(rule.port_in)) +
                                  " is the rule's own port_in: traffic cannot be sent back out of "
                                  "the port it came in on");
    }
  }
  for (auto [field, present] : {std::pair{"set_source_port", a.set_source_port.has_value()},
                                std::pair{"set_dest_port", a.set_dest_port.has_value()}}) {
    if (present && !isTransport(rule.match.protocol)) {
      fail(at(field), name(field) + " needs " + word(source.match, "protocol") +
                          " 6 (TCP), 17 (UDP) or 132 (SCTP) in the match" +
                          notValue(rule.match.protocol));
    }
  }
  std::optional<bool> set_v6;
  for (auto [field, addr] :
       {std::pair{"set_source_ip", &a.set_source_ip}, std::pair{"set_dest_ip", &a.set_dest_ip}}) {
    if (!*addr) continue;
    bool v6 = (*addr)->v6;
    std::string what = name(field) + " " + (*addr)->str() + " is " + versionName(v6);
    if (set_v6 && *set_v6 != v6) {
      fail(at(field), what + " but " + name("set_source_ip") + " is " + versionName(*set_v6));
    } else if (!version) {
      fail(at(field), name(field) + " needs a match that selects " + versionName(v6) +
                          " packets (" + word(source.match, "ether_type") + " " +
                          (v6 ? "0x86dd" : "0x0800") + ", or an address in " +
                          word(source.match, "source_ip") + " or " + word(source.match, "dest_ip") +
                          ")");
    } else if (version->v6 != v6) {
      fail(at(field),
           what + " but the match selects " + versionName(version->v6) + " (" + version->why + ")");
    }
    set_v6 = v6;
  }
}

}  // namespace

bool hasModification(const Modifications& a, std::string_view name) {
  if (name == "push_vlan") return a.push_vlan.has_value();
  if (name == "pop_vlan") return a.pop_vlan;
  if (name == "set_vlan_id") return a.set_vlan_id.has_value();
  if (name == "set_source_mac") return a.set_source_mac.has_value();
  if (name == "set_dest_mac") return a.set_dest_mac.has_value();
  if (name == "set_source_ip") return a.set_source_ip.has_value();
  if (name == "set_dest_ip") return a.set_dest_ip.has_value();
  if (name == "set_source_port") return a.set_source_port.has_value();
  if (name == "set_dest_port") return a.set_dest_port.has_value();
  if (name == "dec_ttl") return a.dec_ttl;
  return false;
}

bool validId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (unsigned char c : id) {
    if (!idCharacter(c)) return false;
  }
  return true;
}

bool validPortId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (unsigned char c : id) {
    if (!idCharacter(c) && c != ':') return false;
  }
  return true;
}

bool validIfName(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (unsigned char c : name) {
    if (c == '/' || c == ':' || c <= ' ' || c >= 0x7f) return false;
  }
  return true;
}

std::string Dialect::word(std::string_view sffg_name) const {
  for (const auto& [from, to] : words) {
    if (from == sffg_name) return std::string(to);
  }
  return std::string(sffg_name);
}

std::string Dialect::reference(const PortRef& ref) const {
  if (ref.kind == PortRef::Kind::Sap) return std::string(sap_prefix) + ref.sap_id;
  return std::string(sf_prefix) + ref.sf_id + ":" + ref.port_id;
}

std::optional<PortRef> Dialect::parseReference(std::string_view text) const {
  PortRef ref;
  if (text.starts_with(sap_prefix) && text.size() > sap_prefix.size()) {
    ref.kind = PortRef::Kind::Sap;
    ref.sap_id = text.substr(sap_prefix.size());
    return ref;
  }
  if (text.starts_with(sf_prefix)) {
    // The SF id ends at the first ':'; the port id is the rest, ':' included ("inout:0").
    std::string_view rest = text.substr(sf_prefix.size());
    auto colon = rest.find(':');
    if (colon != std::string_view::npos && colon > 0 && colon + 1 < rest.size()) {
      ref.kind = PortRef::Kind::SfPort;
      ref.sf_id = rest.substr(0, colon);
      ref.port_id = rest.substr(colon + 1);
      return ref;
    }
  }
  return std::nullopt;
}

std::string Dialect::referenceSyntax() const {
  return std::string(sap_prefix) + "<" + lower(sap) + "-id> or " + std::string(sf_prefix) + "<" +
         lower(sf) + "-id>:<port-id>";
}

void FieldSources::add(std::string_view sffg_name, std::string pointer, std::string word) {
  fields.emplace(std::string(sffg_name), Field{std::move(pointer), std::move(word)});
}

const FieldSources::Field* FieldSources::find(std::string_view sffg_name) const {
  auto it = fields.find(sffg_name);
  return it == fields.end() ? nullptr : &it->second;
}

std::vector<FieldError> checkGraph(const Graph& graph, const GraphSource& source,
                                   const Dialect& dialect) {
  return Checker(graph, source, dialect).run();
}

}  // namespace corch::graph
