#include "graph/nffg_codec.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "graph/document_reader.h"
#include "graph/graph_check.h"
#include "graph/json_schema.h"
#include "graph/nffg_schema.inc"

namespace corch::graph {

namespace {

using rapidjson::Value;

// As for the SF-FG: deeper than any NF-FG needs; a config value nested in a variable's text is
// held to the same limit on its own.
constexpr size_t kMaxDepth = 64;

constexpr std::string_view kInvalid = "invalid NF-FG document";
// isSchemaError() recognises the errors of the schema stage by this message.
constexpr std::string_view kSchemaBroken = "NF-FG document does not follow the NF-FG schema";

constexpr std::string_view kGraph = "/forwarding-graph";

// The end-point types, in the order of SapType.
constexpr std::string_view kEndPointTypes[] = {"interface", "vlan", "gre-tunnel", "host-stack",
                                               "internal"};

// The NF-FG's names where they are not the SF-FG's (the model's).
constexpr std::pair<std::string_view, std::string_view> kWords[] = {
    {"gre", "gre-tunnel"},
    {"group", "internal-group"},
    {"measure", "unify-monitoring"},
    {"template", "vnf_template"},
    {"config", "unify-env-variables"},
    {"vlan_pcp", "vlan_priority"},
    {"icmp_type", "icmpv4_type"},
    {"icmp_code", "icmpv4_code"},
    {"set_source_mac", "set_ethernet_src_address"},
    {"set_dest_mac", "set_ethernet_dst_address"},
    {"set_source_ip", "set_ip_src_address"},
    {"set_dest_ip", "set_ip_dst_address"},
    {"set_source_port", "set_l4_src_port"},
    {"set_dest_port", "set_l4_dst_port"},
};

constexpr Dialect kNffg = {"NF-FG", "end-point", "VNF", "flow-rule", "endpoint:", "vnf:", kWords};

// Match keys that kWords does not give: the ICMPv6 fields, which the model holds as the ICMP ones
// with protocol 58. (un-orchestrator's vlan_pcp is the model's own name.)
constexpr std::pair<std::string_view, std::string_view> kMatchAliases[] = {
    {"icmpv6_type", "icmp_type"},
    {"icmpv6_code", "icmp_code"},
};

// IP protocol names a match may give instead of a number (the FROG4 nffg library's examples use
// "tcp").
constexpr std::pair<std::string_view, uint8_t> kProtocols[] = {
    {"tcp", 6}, {"udp", 17}, {"sctp", 132}, {"icmp", 1}, {"icmpv6", 58}};

const JsonSchema& nffgSchema() {
  static const JsonSchema schema(kNffgSchema);
  return schema;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string hex4(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%04llx", static_cast<unsigned long long>(value));
  return text;
}

// The SF-FG name of an NF-FG key of a match, an action or an end-point's object.
std::string_view modelName(std::string_view key) {
  for (const auto& [sffg, nffg] : kWords) {
    if (nffg == key) return sffg;
  }
  for (const auto& [nffg, sffg] : kMatchAliases) {
    if (nffg == key) return sffg;
  }
  return key;
}

// The rank of an action in the order the model applies them; drop stands apart (it excludes the
// others, which checkGraph() says).
std::optional<size_t> actionRank(std::string_view sffg_name) {
  for (size_t i = 0; i < std::size(kModificationOrder); ++i) {
    if (kModificationOrder[i] == sffg_name) return i;
  }
  if (sffg_name == "output_to_port") return std::size(kModificationOrder);
  return std::nullopt;
}

std::string actionOrderWords() {
  std::string words;
  for (std::string_view name : kModificationOrder) words += kNffg.word(name) + ", ";
  return words + "then output_to_port";
}

// The schema's minProperties/maxProperties for actions, which JsonSchema::check() leaves to
// validate(): said here, one error per action, so that they are schema errors like the others.
void checkActionShapes(const Value& doc, std::vector<FieldError>& errors) {
  const Value* graph = doc.IsObject() ? findMember(doc, "forwarding-graph") : nullptr;
  const Value* big_switch = graph && graph->IsObject() ? findMember(*graph, "big-switch") : nullptr;
  const Value* rules =
      big_switch && big_switch->IsObject() ? findMember(*big_switch, "flow-rules") : nullptr;
  if (rules == nullptr || !rules->IsArray()) return;
  std::string rules_pointer = std::string(kGraph) + "/big-switch/flow-rules";
  for (rapidjson::SizeType i = 0; i < rules->Size(); ++i) {
    const Value& rule = (*rules)[i];
    const Value* actions = rule.IsObject() ? findMember(rule, "actions") : nullptr;
    if (actions == nullptr || !actions->IsArray()) continue;
    std::string actions_pointer = appendPointer(appendPointer(rules_pointer, i), "actions");
    for (rapidjson::SizeType k = 0; k < actions->Size(); ++k) {
      const Value& action = (*actions)[k];
      if (!action.IsObject()) continue;
      std::string pointer = appendPointer(actions_pointer, k);
      if (action.MemberCount() == 0) {
        errors.push_back({pointer, "an action needs a key: output_to_port, push_vlan, ..."});
      }
      for (auto m = action.MemberBegin(); m != action.MemberEnd(); ++m) {
        if (m == action.MemberBegin()) continue;
        std::string_view key = stringView(m->name);
        errors.push_back(
            {appendPointer(pointer, key),
             "an action has exactly one key: put " + quoted(key) + " in an object of its own"});
      }
    }
  }
}

// A variable's value: the JSON value its text is, or else the text as a string.
std::optional<Value> configValue(std::string_view text, rapidjson::Document::AllocatorType& alloc) {
  rapidjson::Document parsed;
  parsed.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  // RapidJSON stops at a NUL as at the end of the text; no JSON text holds one.
  if (parsed.HasParseError() || text.find('\0') != std::string_view::npos) {
    return Value(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc);
  }
  if (findTooDeep(parsed, kMaxDepth)) return std::nullopt;
  return Value(parsed, alloc);
}

// The text of a config value in a variable: raw for a string that would not read back as another
// JSON value, JSON otherwise.
std::string configText(const Value& value) {
  if (value.IsString()) {
    std::string_view text = stringView(value);
    rapidjson::Document parsed;
    parsed.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
    if (parsed.HasParseError() || text.find('\0') != std::string_view::npos) {
      return std::string(text);
    }
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

// Reads a schema-valid {"forwarding-graph": {...}} into a Graph and where each of its parts was,
// collecting the errors of values that cannot be read; checkGraph() does the rest.
class NffgReader {
 public:
  NffgReader() : in_(kNffg) {}
  Graph readGraph(const Value& graph);
  const GraphSource& source() const { return source_; }
  std::vector<FieldError>& errors() { return in_.errors(); }

 private:
  void readVnf(const Value& json, const std::string& pointer);
  void readConfig(const Value& variables, const std::string& pointer, Sf& sf);
  void readEndPoint(const Value& json, const std::string& pointer);
  void readRule(const Value& json, const std::string& pointer);
  void readMatch(const Value& json, FlowRule& rule, RuleSource& source);
  void readProtocol(const Value& json, const std::string& pointer, std::optional<uint8_t>& out);
  void readIcmp(const Value& json, const std::string& pointer, const std::string& key,
                std::optional<uint8_t> protocol, std::optional<uint8_t>& out);
  void readActions(const Value& json, FlowRule& rule, RuleSource& source);

  DocumentReader in_;
  Graph graph_;
  GraphSource source_;
};

Graph NffgReader::readGraph(const Value& json) {
  source_.graph = kGraph;
  auto text = [&](const char* key, std::string& out) {
    if (const Value* value = findMember(json, key)) out = stringView(*value);
  };
  text("id", graph_.id);
  text("name", graph_.name);
  text("description", graph_.description);
  text("domain", graph_.domain);
  text("unify-monitoring", graph_.measure);
  std::string graph(kGraph);
  if (const Value* vnfs = findMember(json, "VNFs")) {
    for (rapidjson::SizeType i = 0; i < vnfs->Size(); ++i) {
      readVnf((*vnfs)[i], appendPointer(graph + "/VNFs", i));
    }
  }
  if (const Value* end_points = findMember(json, "end-points")) {
    for (rapidjson::SizeType i = 0; i < end_points->Size(); ++i) {
      readEndPoint((*end_points)[i], appendPointer(graph + "/end-points", i));
    }
  }
  if (const Value* big_switch = findMember(json, "big-switch")) {
    const Value& rules = (*big_switch)["flow-rules"];
    for (rapidjson::SizeType i = 0; i < rules.Size(); ++i) {
      readRule(rules[i], appendPointer(graph + "/big-switch/flow-rules", i));
    }
  }
  return std::move(graph_);
}

void NffgReader::readVnf(const Value& json, const std::string& pointer) {
  Sf sf;
  sf.id = stringView(json["id"]);
  sf.name = stringView(json["name"]);
  if (const Value* tmpl = findMember(json, "vnf_template")) {
    sf.template_id = std::string(stringView(*tmpl));
  }
  std::vector<std::string> port_pointers;
  if (const Value* ports = findMember(json, "ports")) {
    for (rapidjson::SizeType i = 0; i < ports->Size(); ++i) {
      const Value& port_json = (*ports)[i];
      SfPort port;
      port.id = stringView(port_json["id"]);
      if (const Value* name = findMember(port_json, "name")) port.name = stringView(*name);
      sf.ports.push_back(std::move(port));
      port_pointers.push_back(appendPointer(appendPointer(pointer, "ports"), i));
    }
  }
  if (const Value* variables = findMember(json, "unify-env-variables")) {
    readConfig(*variables, appendPointer(pointer, "unify-env-variables"), sf);
  }
  graph_.sfs.push_back(std::move(sf));
  source_.sfs.push_back(pointer);
  source_.sf_ports.push_back(std::move(port_pointers));
}

void NffgReader::readConfig(const Value& variables, const std::string& pointer, Sf& sf) {
  rapidjson::Document config(rapidjson::kObjectType);
  std::map<std::string, std::string, std::less<>> seen;  // NAME -> pointer of its variable
  for (rapidjson::SizeType i = 0; i < variables.Size(); ++i) {
    std::string at = appendPointer(appendPointer(pointer, i), "variable");
    std::string_view text = stringView(variables[i]["variable"]);
    auto equals = text.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      in_.fail(at, quoted(text) + " is not NAME=value with a NAME");
      continue;
    }
    std::string_view name = text.substr(0, equals);
    if (auto [it, inserted] = seen.emplace(name, at); !inserted) {
      in_.fail(at, "variable " + quoted(name) + " is set twice (first at " + it->second + ")");
      continue;
    }
    auto value = configValue(text.substr(equals + 1), config.GetAllocator());
    if (!value) {
      in_.fail(at, "the value of " + quoted(name) + " is nested deeper than " +
                       std::to_string(kMaxDepth) + " levels");
      continue;
    }
    config.AddMember(
        Value(name.data(), static_cast<rapidjson::SizeType>(name.size()), config.GetAllocator()),
        *value, config.GetAllocator());
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  config.Accept(writer);
  sf.config_json.assign(buffer.GetString(), buffer.GetSize());
}

void NffgReader::readEndPoint(const Value& json, const std::string& pointer) {
  size_t errors_before = in_.errorCount();
  Sap sap;
  SapSource source{pointer};
  sap.id = stringView(json["id"]);
  if (const Value* name = findMember(json, "name")) sap.name = stringView(*name);
  std::string_view type = stringView(json["type"]);
  for (size_t i = 0; i < std::size(kEndPointTypes); ++i) {
    if (kEndPointTypes[i] == type) sap.type = static_cast<SapType>(i);
  }
  const std::string& at = source.object.object = appendPointer(pointer, type);
  const Value* sub = in_.typedObject(json, pointer, type, kEndPointTypes);
  if (sub != nullptr) {
    for (const auto& m : sub->GetObject()) {
      std::string_view key = stringView(m.name);
      source.object.add(modelName(key), appendPointer(at, key), std::string(key));
    }
    in_.readSapObject(*sub, at, sap);
  }
  source.has_object = sub != nullptr;
  source.complete = in_.errorCount() == errors_before;
  graph_.saps.push_back(std::move(sap));
  source_.saps.push_back(std::move(source));
}

void NffgReader::readRule(const Value& json, const std::string& pointer) {
  size_t errors_before = in_.errorCount();
  FlowRule rule;
  RuleSource source{pointer};
  rule.id = stringView(json["id"]);
  if (const Value* description = findMember(json, "description")) {
    rule.description = stringView(*description);
  }
  rule.priority = static_cast<uint16_t>(in_.number(json, "priority", pointer, 65535).value_or(0));
  readMatch(json["match"], rule, source);
  readActions(json["actions"], rule, source);
  source.complete = in_.errorCount() == errors_before;
  graph_.rules.push_back(std::move(rule));
  source_.rules.push_back(std::move(source));
}

void NffgReader::readMatch(const Value& json, FlowRule& rule, RuleSource& source) {
  const std::string& at = source.match.object = appendPointer(source.pointer, "match");
  for (const auto& m : json.GetObject()) {
    std::string_view key = stringView(m.name);
    std::string_view name = modelName(key);
    // Two names of one field (vlan_priority and vlan_pcp, the ICMPv4 and ICMPv6 fields).
    if (const auto* first = source.match.find(name)) {
      in_.fail(appendPointer(at, key), quoted(key) + " is the same field as " +
                                           quoted(first->word) + ": give only one of them");
      continue;
    }
    source.match.add(name, appendPointer(at, key), std::string(key));
  }
  auto ref = in_.reference(json["port_in"], appendPointer(at, "port_in"));
  source.port_in_read = ref.has_value();
  if (ref) rule.port_in = std::move(*ref);
  MatchFields& m = rule.match;
  in_.read(json, "ether_type", at, m.ether_type);
  in_.read(json, "vlan_id", at, m.vlan_id, kMaxVlanId);
  // Of two names of one field, the first given (the other is refused above).
  auto given = [&](std::string_view name) {
    const auto* field = source.match.find(name);
    return field ? field->word : std::string(name);
  };
  in_.read(json, given("vlan_pcp"), at, m.vlan_pcp, kMaxVlanPcp);
  in_.read(json, "source_mac", at, m.source_mac);
  in_.read(json, "dest_mac", at, m.dest_mac);
  in_.read(json, "source_ip", at, m.source_ip);
  in_.read(json, "dest_ip", at, m.dest_ip);
  readProtocol(json, at, m.protocol);
  in_.read(json, "source_port", at, m.source_port);
  in_.read(json, "dest_port", at, m.dest_port);
  in_.read(json, "ip_dscp", at, m.ip_dscp, kMaxIpDscp);
  for (auto [name, out] :
       {std::pair{"icmp_type", &m.icmp_type}, std::pair{"icmp_code", &m.icmp_code}}) {
    if (source.match.find(name)) readIcmp(json, at, given(name), m.protocol, *out);
  }
  in_.read(json, "arp_opcode", at, m.arp_opcode);
}

void NffgReader::readProtocol(const Value& json, const std::string& pointer,
                              std::optional<uint8_t>& out) {
  const Value* value = findMember(json, "protocol");
  if (value == nullptr) return;
  if (value->IsString()) {
    std::string_view text = stringView(*value);
    for (const auto& [name, number] : kProtocols) {
      if (text == name) {
        out = number;
        return;
      }
    }
    if (text.empty() || text[0] < '0' || text[0] > '9') {
      in_.fail(appendPointer(pointer, "protocol"),
               quoted(text) + " is not a protocol number, nor tcp, udp, sctp, icmp or icmpv6");
      return;
    }
  }
  in_.read(json, "protocol", pointer, out);
}

// The model holds the ICMPv4 and ICMPv6 fields (icmpv4_type, ...) as the ICMP ones, the protocol
// telling which: so the protocol must be the one the key names.
void NffgReader::readIcmp(const Value& json, const std::string& pointer, const std::string& key,
                          std::optional<uint8_t> protocol, std::optional<uint8_t>& out) {
  bool v6 = key.starts_with("icmpv6");
  uint8_t needed = v6 ? 58 : 1;
  if (protocol != needed) {
    in_.fail(appendPointer(pointer, key),
             key + " needs protocol " + std::to_string(needed) + (v6 ? " (ICMPv6)" : " (ICMP)") +
                 (protocol ? " (not " + std::to_string(*protocol) + ")" : ""));
    return;
  }
  in_.read(json, key, pointer, out);
}

void NffgReader::readActions(const Value& json, FlowRule& rule, RuleSource& source) {
  const std::string& at = source.actions.object = appendPointer(source.pointer, "actions");
  Modifications& a = rule.mods;
  // The action before, to keep the list in the order the model applies it.
  std::optional<size_t> last_rank;
  std::string last_key;
  for (rapidjson::SizeType k = 0; k < json.Size(); ++k) {
    const Value& action = json[k];
    std::string item = appendPointer(at, k);
    for (const auto& member : action.GetObject()) {
      std::string_view key = stringView(member.name);
      std::string_view name = modelName(key);
      std::string pointer = appendPointer(item, key);
      if (name != "output_to_port") {
        if (const auto* first = source.actions.find(name)) {
          in_.fail(pointer, quoted(key) + " is given twice (first at " + first->pointer + ")");
          continue;
        }
      }
      if (auto rank = actionRank(name)) {
        if (last_rank && *rank < *last_rank) {
          in_.fail(pointer, quoted(key) + " comes after " + quoted(last_key) +
                                ", but is applied before it: list the actions in the order " +
                                actionOrderWords());
        }
        last_rank = *rank;
        last_key = key;
      }
      source.actions.add(name, pointer, std::string(key));
      if (name == "output_to_port") {
        if (auto ref = in_.reference(member.value, pointer)) {
          rule.outputs.push_back(std::move(*ref));
          source.outputs.push_back(pointer);
        }
      } else if (name == "push_vlan") {
        in_.read(action, key, item, a.push_vlan, kMaxVlanId);
      } else if (name == "pop_vlan") {
        a.pop_vlan = true;  // the schema allows only true
      } else if (name == "set_vlan_id") {
        in_.read(action, key, item, a.set_vlan_id, kMaxVlanId);
      } else if (name == "set_source_mac") {
        in_.read(action, key, item, a.set_source_mac);
      } else if (name == "set_dest_mac") {
        in_.read(action, key, item, a.set_dest_mac);
      } else if (name == "set_source_ip") {
        in_.read(action, key, item, a.set_source_ip);
      } else if (name == "set_dest_ip") {
        in_.read(action, key, item, a.set_dest_ip);
      } else if (name == "set_source_port") {
        in_.read(action, key, item, a.set_source_port);
      } else if (name == "set_dest_port") {
        in_.read(action, key, item, a.set_dest_port);
      } else if (name == "dec_ttl") {
        a.dec_ttl = true;
      } else if (name == "drop") {
        rule.drop = true;
      }
    }
  }
}

// Printing, in the order and forms nffg_codec.h gives.
class NffgWriter {
 public:
  NffgWriter() : writer_(buffer_) { writer_.SetIndent(' ', 2); }
  std::string print(const Graph& graph);

 private:
  void string(std::string_view text) {
    writer_.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
  void key(std::string_view text) {
    writer_.Key(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
  void field(std::string_view name, std::string_view text) {
    key(name);
    string(text);
  }
  template <class T>
  void field(std::string_view name, const std::optional<T>& value) {
    if (value) field(name, std::to_string(uint64_t{*value}));
  }
  void field(std::string_view name, const std::optional<MacAddr>& value) {
    if (value) field(name, value->str());
  }
  void field(std::string_view name, const std::optional<IpPrefix>& value) {
    if (value) field(name, value->str());
  }
  void field(std::string_view name, const std::optional<IpAddr>& value) {
    if (value) field(name, value->str());
  }
  // One action: {"<name>": value}.
  template <class T>
  void action(std::string_view sffg_name, const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      if (!value) return;
      writer_.StartObject();
      key(kNffg.word(sffg_name));
      writer_.Bool(true);
      writer_.EndObject();
    } else {
      if (!value) return;
      writer_.StartObject();
      field(kNffg.word(sffg_name), value);
      writer_.EndObject();
    }
  }
  void vnf(const Sf& sf);
  void endPoint(const Sap& sap);
  void rule(const FlowRule& rule);

  rapidjson::StringBuffer buffer_;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer_;
};

std::string NffgWriter::print(const Graph& graph) {
  writer_.StartObject();
  key("forwarding-graph");
  writer_.StartObject();
  if (!graph.id.empty()) field("id", graph.id);
  if (!graph.name.empty()) field("name", graph.name);
  if (!graph.description.empty()) field("description", graph.description);
  key("VNFs");
  writer_.StartArray();
  for (const auto& sf : graph.sfs) vnf(sf);
  writer_.EndArray();
  key("end-points");
  writer_.StartArray();
  for (const auto& sap : graph.saps) endPoint(sap);
  writer_.EndArray();
  key("big-switch");
  writer_.StartObject();
  key("flow-rules");
  writer_.StartArray();
  for (const auto& r : graph.rules) rule(r);
  writer_.EndArray();
  writer_.EndObject();
  if (!graph.domain.empty()) field("domain", graph.domain);
  if (!graph.measure.empty()) field("unify-monitoring", graph.measure);
  writer_.EndObject();
  writer_.EndObject();
  return {buffer_.GetString(), buffer_.GetSize()};
}

void NffgWriter::vnf(const Sf& sf) {
  writer_.StartObject();
  field("id", sf.id);
  field("name", sf.name);
  if (sf.template_id) field("vnf_template", *sf.template_id);
  key("ports");
  writer_.StartArray();
  for (const auto& port : sf.ports) {
    writer_.StartObject();
    field("id", port.id);
    if (!port.name.empty()) field("name", port.name);
    writer_.EndObject();
  }
  writer_.EndArray();
  rapidjson::Document config;
  config.Parse<rapidjson::kParseIterativeFlag>(sf.config_json.data(), sf.config_json.size());
  if (!config.HasParseError() && config.IsObject() && config.MemberCount() > 0) {
    key("unify-env-variables");
    writer_.StartArray();
    for (const auto& m : config.GetObject()) {
      writer_.StartObject();
      field("variable", std::string(stringView(m.name)) + "=" + configText(m.value));
      writer_.EndObject();
    }
    writer_.EndArray();
  }
  writer_.EndObject();
}

void NffgWriter::endPoint(const Sap& sap) {
  writer_.StartObject();
  field("id", sap.id);
  if (!sap.name.empty()) field("name", sap.name);
  const auto type_index = static_cast<size_t>(sap.type);
  std::string_view type =
      type_index < std::size(kEndPointTypes) ? kEndPointTypes[type_index] : toString(sap.type);
  field("type", type);
  key(type);
  writer_.StartObject();
  switch (sap.type) {
    case SapType::Interface:
      field("if-name", sap.if_name);
      break;
    case SapType::Vlan:
      field("vlan-id", std::to_string(sap.vlan_id));
      field("if-name", sap.if_name);
      break;
    case SapType::Gre:
      field("local-ip", sap.gre_local.str());
      field("remote-ip", sap.gre_remote.str());
      field("gre-key", std::to_string(sap.gre_key));
      break;
    case SapType::HostStack:
      // un-orchestrator compares with exactly these spellings.
      field("configuration", sap.host_configuration == "static" ? "static" : "DHCP");
      if (sap.host_ipv4) {
        field("ipv4", sap.host_ipv4->addr.str() + "/" + std::to_string(sap.host_ipv4->length));
      }
      break;
    case SapType::Internal:
      field("internal-group", sap.internal_group);
      break;
    case SapType::InternalPort:  // only in templates' SF-FGs, never in an NF-FG
    case SapType::Junction:
      break;
  }
  writer_.EndObject();
  writer_.EndObject();
}

void NffgWriter::rule(const FlowRule& rule) {
  writer_.StartObject();
  field("id", rule.id);
  if (!rule.description.empty()) field("description", rule.description);
  key("priority");
  writer_.Uint(rule.priority);

  const MatchFields& m = rule.match;
  key("match");
  writer_.StartObject();
  field("port_in", kNffg.reference(rule.port_in));
  if (m.ether_type) field("ether_type", hex4(*m.ether_type));
  field("vlan_id", m.vlan_id);
  field("vlan_priority", m.vlan_pcp);
  field("source_mac", m.source_mac);
  field("dest_mac", m.dest_mac);
  field("source_ip", m.source_ip);
  field("dest_ip", m.dest_ip);
  field("protocol", m.protocol);
  field("source_port", m.source_port);
  field("dest_port", m.dest_port);
  field("ip_dscp", m.ip_dscp);
  std::string icmp = m.protocol == 58 ? "icmpv6" : "icmpv4";
  field(icmp + "_type", m.icmp_type);
  field(icmp + "_code", m.icmp_code);
  field("arp_opcode", m.arp_opcode);
  writer_.EndObject();

  const Modifications& a = rule.mods;
  key("actions");
  writer_.StartArray();
  action("push_vlan", a.push_vlan);
  action("pop_vlan", a.pop_vlan);
  action("set_vlan_id", a.set_vlan_id);
  action("set_source_mac", a.set_source_mac);
  action("set_dest_mac", a.set_dest_mac);
  action("set_source_ip", a.set_source_ip);
  action("set_dest_ip", a.set_dest_ip);
  action("set_source_port", a.set_source_port);
  action("set_dest_port", a.set_dest_port);
  action("dec_ttl", a.dec_ttl);
  action("drop", rule.drop);
  for (const auto& out : rule.outputs) {
    writer_.StartObject();
    field("output_to_port", kNffg.reference(out));
    writer_.EndObject();
  }
  writer_.EndArray();
  writer_.EndObject();
}

// RFC 6901 tokens of a pointer, unescaped.
std::vector<std::string> tokens(std::string_view pointer) {
  std::vector<std::string> result;
  while (pointer.starts_with('/')) {
    pointer.remove_prefix(1);
    size_t end = pointer.find('/');
    std::string token;
    for (size_t i = 0; i < std::min(end, pointer.size()); ++i) {
      if (pointer[i] == '~' && i + 1 < pointer.size()) {
        token += pointer[i + 1] == '1' ? '/' : '~';
        ++i;
      } else {
        token += pointer[i];
      }
    }
    result.push_back(std::move(token));
    pointer.remove_prefix(std::min(end, pointer.size()));
  }
  return result;
}

// An array index token, if it is one and below size.
std::optional<size_t> index(const std::string& token, size_t size) {
  auto value = parseNumber(token, std::numeric_limits<uint32_t>::max());
  if (!value || token.starts_with("0x") || *value >= size) return std::nullopt;
  return static_cast<size_t>(*value);
}

}  // namespace

Result<Graph> parseNffg(std::string_view json) {
  auto doc = parseJson(json, kMaxDepth, kSchemaBroken);
  if (!doc.ok()) return std::move(doc).error();
  const JsonSchema& schema = nffgSchema();
  std::vector<FieldError> errors = schema.check(*doc);
  checkActionShapes(*doc, errors);
  if (!errors.empty()) return invalidDocument(kSchemaBroken, std::move(errors));
  NffgReader reader;
  Graph graph = reader.readGraph((*doc)["forwarding-graph"]);
  errors = std::move(reader.errors());
  for (auto& error : checkGraph(graph, reader.source(), kNffg)) errors.push_back(std::move(error));
  if (!errors.empty()) return invalidDocument(kInvalid, std::move(errors));
  // Both passes above should cover the schema; this guards against the two drifting apart.
  if (auto error = schema.validate(*doc))
    return invalidDocument(kSchemaBroken, {std::move(*error)});
  return graph;
}

bool isSchemaError(const Error& error) {
  return error.code() == ErrorCode::InvalidArgument && error.message().starts_with(kSchemaBroken);
}

std::string printNffg(const Graph& graph) { return NffgWriter().print(graph); }

std::string nffgPointer(const Graph& graph, std::string_view sffg_pointer) {
  std::vector<std::string> t = tokens(sffg_pointer);
  if (t.empty() || t[0] != "sffg") return std::string(sffg_pointer);
  std::string out(kGraph);
  auto rest = [&](size_t from) {
    for (size_t i = from; i < t.size(); ++i) out = appendPointer(out, t[i]);
    return out;
  };
  if (t.size() == 1) return out;
  if (t[1] == "SFs" && t.size() > 2) {
    auto i = index(t[2], graph.sfs.size());
    if (!i) return std::string(sffg_pointer);
    out = appendPointer(appendPointer(out, "VNFs"), *i);
    if (t.size() == 3 || t[3] != "config") {
      if (t.size() > 3) t[3] = kNffg.word(t[3]);
      return rest(3);
    }
    out = appendPointer(out, "unify-env-variables");
    if (t.size() == 4) return out;
    // A config key is one variable: its index in the config object.
    rapidjson::Document config;
    const std::string& text = graph.sfs[*i].config_json;
    config.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
    if (!config.HasParseError() && config.IsObject()) {
      size_t k = 0;
      for (const auto& m : config.GetObject()) {
        if (stringView(m.name) == t[4]) return appendPointer(appendPointer(out, k), "variable");
        ++k;
      }
    }
    return out;
  }
  if (t[1] == "saps") {
    out = appendPointer(out, "end-points");
    for (size_t i = 3; i < t.size(); ++i) t[i] = kNffg.word(t[i]);
    return rest(2);
  }
  if (t[1] == "flowrules" && t.size() > 2) {
    auto i = index(t[2], graph.rules.size());
    if (!i) return std::string(sffg_pointer);
    const FlowRule& rule = graph.rules[*i];
    out = appendPointer(appendPointer(appendPointer(out, "big-switch"), "flow-rules"), *i);
    if (t.size() == 3) return out;
    if (t[3] == "match") {
      if (t.size() > 4) {
        if ((t[4] == "icmp_type" || t[4] == "icmp_code") && rule.match.protocol == 58) {
          t[4] = "icmpv6" + t[4].substr(4);
        } else {
          t[4] = kNffg.word(t[4]);
        }
      }
      return rest(3);
    }
    if (t[3] != "actions") return rest(3);
    out = appendPointer(out, "actions");
    if (t.size() == 4) return out;
    // The list holds the present modifications in their order, drop, then the outputs.
    size_t position = 0;
    for (std::string_view name : kModificationOrder) {
      if (name == t[4]) return appendPointer(appendPointer(out, position), kNffg.word(name));
      position += hasModification(rule.mods, name) ? 1 : 0;
    }
    if (t[4] == "drop") return appendPointer(appendPointer(out, position), "drop");
    position += rule.drop ? 1 : 0;
    if (t[4] == "output_to_port") {
      size_t k = t.size() > 5 ? index(t[5], rule.outputs.size()).value_or(0) : 0;
      return appendPointer(appendPointer(out, position + k), "output_to_port");
    }
    return out;
  }
  if (t.size() == 2) {
    if (t[1] == "SFs") return appendPointer(out, "VNFs");
    if (t[1] == "saps") return appendPointer(out, "end-points");
    if (t[1] == "flowrules") return appendPointer(appendPointer(out, "big-switch"), "flow-rules");
    return appendPointer(out, kNffg.word(t[1]));
  }
  return std::string(sffg_pointer);
}

}  // namespace corch::graph
