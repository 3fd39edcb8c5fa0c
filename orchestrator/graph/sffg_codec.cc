#include "graph/sffg_codec.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <limits>
#include <optional>
#include <string>

#include "graph/document_reader.h"
#include "graph/graph_check.h"
#include "graph/json_schema.h"
#include "graph/sffg_schema.inc"

namespace corch::graph {

namespace {

using rapidjson::Value;

// Deeper than any SF-FG needs (the schema's own depth is 6, a "config" gets the rest); the limit
// keeps a hostile document from exhausting the stack of the recursive schema validator.
constexpr size_t kMaxDepth = 64;

constexpr std::string_view kInvalid = "invalid SF-FG document";

// In the order of SapType. "internal-port" is read like the others; only a graph template's graph
// may have one, which the resolver enforces (a graph deployed with one is refused there).
constexpr std::string_view kSapTypes[] = {"interface",  "vlan",     "gre",
                                          "host-stack", "internal", "internal-port"};

// The SF-FG's words are the model's.
constexpr Dialect kSffg = {"SF-FG", "SAP", "SF", "flowrule", "service-access-point:", "sf:", {}};

const JsonSchema& sffgSchema() {
  static const JsonSchema schema(kSffgSchema);
  return schema;
}

std::string hex4(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%04llx", static_cast<unsigned long long>(value));
  return text;
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

// Records each member of an object under its own name: the SF-FG's keys are the model's names.
void recordFields(const Value& object, FieldSources& sources) {
  for (const auto& m : object.GetObject()) {
    std::string_view name = stringView(m.name);
    sources.add(name, appendPointer(sources.object, name), std::string(name));
  }
}

// Reads a schema-valid {"sffg": {...}} into a Graph and where each of its parts was, collecting
// the errors of values that cannot be read; checkGraph() does the rest. Types and required fields
// are not checked again: JsonSchema::check() has.
class SffgReader {
 public:
  SffgReader() : in_(kSffg) {}
  Graph readGraph(const Value& sffg);
  const GraphSource& source() const { return source_; }
  std::vector<FieldError>& errors() { return in_.errors(); }

 private:
  void readSf(const Value& json, const std::string& pointer);
  void readSap(const Value& json, const std::string& pointer);
  void readRule(const Value& json, const std::string& pointer);
  void readMatch(const Value& json, FlowRule& rule, RuleSource& source);
  void readActions(const Value& json, FlowRule& rule, RuleSource& source);

  DocumentReader in_;
  Graph graph_;
  GraphSource source_;
};

Graph SffgReader::readGraph(const Value& sffg) {
  source_.graph = "/sffg";
  if (const Value* id = findMember(sffg, "id")) graph_.id = DocumentReader::idText(*id);
  if (const Value* name = findMember(sffg, "name")) graph_.name = stringView(*name);
  if (const Value* measure = findMember(sffg, "measure")) graph_.measure = stringView(*measure);
  if (const Value* sfs = findMember(sffg, "SFs")) {
    for (rapidjson::SizeType i = 0; i < sfs->Size(); ++i) {
      readSf((*sfs)[i], appendPointer("/sffg/SFs", i));
    }
  }
  if (const Value* saps = findMember(sffg, "saps")) {
    for (rapidjson::SizeType i = 0; i < saps->Size(); ++i) {
      readSap((*saps)[i], appendPointer("/sffg/saps", i));
    }
  }
  if (const Value* rules = findMember(sffg, "flowrules")) {
    for (rapidjson::SizeType i = 0; i < rules->Size(); ++i) {
      readRule((*rules)[i], appendPointer("/sffg/flowrules", i));
    }
  }
  return std::move(graph_);
}

void SffgReader::readSf(const Value& json, const std::string& pointer) {
  Sf sf;
  sf.id = DocumentReader::idText(json["id"]);
  sf.name = stringView(json["name"]);
  if (const Value* tmpl = findMember(json, "template"))
    sf.template_id = std::string(stringView(*tmpl));
  std::vector<std::string> port_pointers;
  if (const Value* ports = findMember(json, "ports")) {
    for (rapidjson::SizeType i = 0; i < ports->Size(); ++i) {
      const Value& port_json = (*ports)[i];
      SfPort port;
      port.id = DocumentReader::idText(port_json["id"]);
      if (const Value* name = findMember(port_json, "name")) port.name = stringView(*name);
      sf.ports.push_back(std::move(port));
      port_pointers.push_back(appendPointer(appendPointer(pointer, "ports"), i));
    }
  }
  if (const Value* config = findMember(json, "config")) {
    rapidjson::StringBuffer text;
    rapidjson::Writer<rapidjson::StringBuffer> writer(text);
    config->Accept(writer);
    sf.config_json.assign(text.GetString(), text.GetSize());
  }
  graph_.sfs.push_back(std::move(sf));
  source_.sfs.push_back(pointer);
  source_.sf_ports.push_back(std::move(port_pointers));
}

void SffgReader::readSap(const Value& json, const std::string& pointer) {
  size_t errors_before = in_.errorCount();
  Sap sap;
  SapSource source{pointer};
  sap.id = DocumentReader::idText(json["id"]);
  if (const Value* name = findMember(json, "name")) sap.name = stringView(*name);
  std::string_view type = stringView(json["type"]);
  for (size_t i = 0; i < std::size(kSapTypes); ++i) {
    if (kSapTypes[i] == type) sap.type = static_cast<SapType>(i);
  }
  source.object.object = appendPointer(pointer, type);
  const Value* sub = in_.typedObject(json, pointer, type, kSapTypes);
  if (sub != nullptr) {
    const std::string& at = source.object.object;
    recordFields(*sub, source.object);
    in_.readSapObject(*sub, at, sap);
  }
  source.has_object = sub != nullptr;
  source.complete = in_.errorCount() == errors_before;
  graph_.saps.push_back(std::move(sap));
  source_.saps.push_back(std::move(source));
}

void SffgReader::readRule(const Value& json, const std::string& pointer) {
  size_t errors_before = in_.errorCount();
  FlowRule rule;
  RuleSource source{pointer};
  rule.id = DocumentReader::idText(json["id"]);
  rule.priority = static_cast<uint16_t>(in_.number(json, "priority", pointer, 65535).value_or(0));
  readMatch(json["match"], rule, source);
  readActions(json["actions"], rule, source);
  source.complete = in_.errorCount() == errors_before;
  graph_.rules.push_back(std::move(rule));
  source_.rules.push_back(std::move(source));
}

void SffgReader::readMatch(const Value& json, FlowRule& rule, RuleSource& source) {
  const std::string& at = source.match.object = appendPointer(source.pointer, "match");
  recordFields(json, source.match);
  auto ref = in_.reference(json["port_in"], appendPointer(at, "port_in"));
  source.port_in_read = ref.has_value();
  if (ref) rule.port_in = std::move(*ref);
  MatchFields& m = rule.match;
  in_.read(json, "ether_type", at, m.ether_type);
  in_.read(json, "vlan_id", at, m.vlan_id, kMaxVlanId);
  in_.read(json, "vlan_pcp", at, m.vlan_pcp, kMaxVlanPcp);
  in_.read(json, "source_mac", at, m.source_mac);
  in_.read(json, "dest_mac", at, m.dest_mac);
  in_.read(json, "source_ip", at, m.source_ip);
  in_.read(json, "dest_ip", at, m.dest_ip);
  in_.read(json, "protocol", at, m.protocol);
  in_.read(json, "source_port", at, m.source_port);
  in_.read(json, "dest_port", at, m.dest_port);
  in_.read(json, "ip_dscp", at, m.ip_dscp, kMaxIpDscp);
  in_.read(json, "icmp_type", at, m.icmp_type);
  in_.read(json, "icmp_code", at, m.icmp_code);
  in_.read(json, "arp_opcode", at, m.arp_opcode);
}

void SffgReader::readActions(const Value& json, FlowRule& rule, RuleSource& source) {
  const std::string& at = source.actions.object = appendPointer(source.pointer, "actions");
  recordFields(json, source.actions);
  Modifications& a = rule.mods;
  in_.read(json, "push_vlan", at, a.push_vlan, kMaxVlanId);
  if (const Value* pop = findMember(json, "pop_vlan")) a.pop_vlan = pop->GetBool();
  in_.read(json, "set_vlan_id", at, a.set_vlan_id, kMaxVlanId);
  in_.read(json, "set_source_mac", at, a.set_source_mac);
  in_.read(json, "set_dest_mac", at, a.set_dest_mac);
  in_.read(json, "set_source_ip", at, a.set_source_ip);
  in_.read(json, "set_dest_ip", at, a.set_dest_ip);
  in_.read(json, "set_source_port", at, a.set_source_port);
  in_.read(json, "set_dest_port", at, a.set_dest_port);
  if (const Value* dec = findMember(json, "dec_ttl")) a.dec_ttl = dec->GetBool();
  if (const Value* drop = findMember(json, "drop")) rule.drop = drop->GetBool();

  const Value* outputs = findMember(json, "output_to_port");
  if (outputs == nullptr) return;
  std::string outputs_pointer = appendPointer(at, "output_to_port");
  auto add = [&](const Value& text, std::string item_pointer) {
    if (auto ref = in_.reference(text, item_pointer)) {
      rule.outputs.push_back(std::move(*ref));
      source.outputs.push_back(std::move(item_pointer));
    }
  };
  if (outputs->IsString()) {
    add(*outputs, outputs_pointer);
  } else {
    for (rapidjson::SizeType i = 0; i < outputs->Size(); ++i) {
      add((*outputs)[i], appendPointer(outputs_pointer, i));
    }
  }
}

// Printing. Numbers as DESIGN section 6 shows them: strings, except the priority.
class SffgWriter {
 public:
  SffgWriter() : writer_(buffer_) { writer_.SetIndent(' ', 2); }
  std::string print(const Graph& graph);

 private:
  void string(std::string_view text) {
    writer_.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
  void field(const char* key, std::string_view text) {
    writer_.Key(key);
    string(text);
  }
  template <class T>
  void field(const char* key, const std::optional<T>& value) {
    if (value) field(key, std::to_string(uint64_t{*value}));
  }
  void field(const char* key, const std::optional<MacAddr>& value) {
    if (value) field(key, value->str());
  }
  void field(const char* key, const std::optional<IpPrefix>& value) {
    if (value) field(key, value->str());
  }
  void field(const char* key, const std::optional<IpAddr>& value) {
    if (value) field(key, value->str());
  }
  void flag(const char* key, bool value) {
    if (!value) return;
    writer_.Key(key);
    writer_.Bool(true);
  }
  void sf(const Sf& sf);
  void sap(const Sap& sap);
  void rule(const FlowRule& rule);

  rapidjson::StringBuffer buffer_;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer_;
};

std::string SffgWriter::print(const Graph& graph) {
  writer_.StartObject();
  writer_.Key("sffg");
  writer_.StartObject();
  if (!graph.id.empty()) field("id", graph.id);
  if (!graph.name.empty()) field("name", graph.name);
  writer_.Key("SFs");
  writer_.StartArray();
  for (const auto& s : graph.sfs) sf(s);
  writer_.EndArray();
  writer_.Key("saps");
  writer_.StartArray();
  for (const auto& s : graph.saps) sap(s);
  writer_.EndArray();
  writer_.Key("flowrules");
  writer_.StartArray();
  for (const auto& r : graph.rules) rule(r);
  writer_.EndArray();
  if (!graph.measure.empty()) field("measure", graph.measure);
  writer_.EndObject();
  writer_.EndObject();
  return {buffer_.GetString(), buffer_.GetSize()};
}

void SffgWriter::sf(const Sf& sf) {
  writer_.StartObject();
  field("id", sf.id);
  field("name", sf.name);
  if (sf.template_id) field("template", *sf.template_id);
  writer_.Key("ports");
  writer_.StartArray();
  for (const auto& port : sf.ports) {
    writer_.StartObject();
    field("id", port.id);
    if (!port.name.empty()) field("name", port.name);
    writer_.EndObject();
  }
  writer_.EndArray();
  if (sf.config_json != "{}") {
    // Re-parsed rather than copied raw, so that the document stays well indented.
    rapidjson::Document config;
    config.Parse<rapidjson::kParseIterativeFlag>(sf.config_json.data(), sf.config_json.size());
    if (!config.HasParseError() && config.IsObject()) {
      writer_.Key("config");
      config.Accept(writer_);
    }
  }
  writer_.EndObject();
}

void SffgWriter::sap(const Sap& sap) {
  writer_.StartObject();
  field("id", sap.id);
  if (!sap.name.empty()) field("name", sap.name);
  std::string_view type = toString(sap.type);
  field("type", type);
  writer_.Key(type.data(), static_cast<rapidjson::SizeType>(type.size()));
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
      field("gre-key", hex(sap.gre_key));
      break;
    case SapType::HostStack:
      field("configuration", sap.host_configuration);
      if (sap.host_ipv4)
        field("ipv4", sap.host_ipv4->addr.str() + "/" + std::to_string(sap.host_ipv4->length));
      break;
    case SapType::Internal:
      field("group", sap.internal_group);
      break;
    case SapType::InternalPort:
      field("port-index", std::to_string(sap.port_index));
      break;
    case SapType::Junction:  // made by the resolver, never printed in a document
      field("peer", sap.junction_peer);
      break;
  }
  writer_.EndObject();
  writer_.EndObject();
}

void SffgWriter::rule(const FlowRule& rule) {
  writer_.StartObject();
  field("id", rule.id);
  writer_.Key("priority");
  writer_.Uint(rule.priority);

  const MatchFields& m = rule.match;
  writer_.Key("match");
  writer_.StartObject();
  field("port_in", rule.port_in.str());
  if (m.ether_type) field("ether_type", hex4(*m.ether_type));
  field("vlan_id", m.vlan_id);
  field("vlan_pcp", m.vlan_pcp);
  field("source_mac", m.source_mac);
  field("dest_mac", m.dest_mac);
  field("source_ip", m.source_ip);
  field("dest_ip", m.dest_ip);
  field("protocol", m.protocol);
  field("source_port", m.source_port);
  field("dest_port", m.dest_port);
  field("ip_dscp", m.ip_dscp);
  field("icmp_type", m.icmp_type);
  field("icmp_code", m.icmp_code);
  field("arp_opcode", m.arp_opcode);
  writer_.EndObject();

  const Modifications& a = rule.mods;
  writer_.Key("actions");
  writer_.StartObject();
  if (rule.outputs.size() == 1) {
    field("output_to_port", rule.outputs[0].str());
  } else if (!rule.outputs.empty()) {
    writer_.Key("output_to_port");
    writer_.StartArray();
    for (const auto& out : rule.outputs) string(out.str());
    writer_.EndArray();
  }
  field("push_vlan", a.push_vlan);
  flag("pop_vlan", a.pop_vlan);
  field("set_vlan_id", a.set_vlan_id);
  field("set_source_mac", a.set_source_mac);
  field("set_dest_mac", a.set_dest_mac);
  field("set_source_ip", a.set_source_ip);
  field("set_dest_ip", a.set_dest_ip);
  field("set_source_port", a.set_source_port);
  field("set_dest_port", a.set_dest_port);
  flag("dec_ttl", a.dec_ttl);
  flag("drop", rule.drop);
  writer_.EndObject();
  writer_.EndObject();
}

}  // namespace

Result<Graph> parseSffg(std::string_view json) {
  auto doc = parseJson(json, kMaxDepth, kInvalid);
  if (!doc.ok()) return std::move(doc).error();
  const JsonSchema& schema = sffgSchema();
  if (auto errors = schema.check(*doc); !errors.empty()) {
    return invalidDocument(kInvalid, std::move(errors));
  }
  SffgReader reader;
  Graph graph = reader.readGraph((*doc)["sffg"]);
  std::vector<FieldError> errors = std::move(reader.errors());
  for (auto& error : checkGraph(graph, reader.source(), kSffg)) errors.push_back(std::move(error));
  if (!errors.empty()) return invalidDocument(kInvalid, std::move(errors));
  // Both passes above should cover the schema; this guards against the two drifting apart.
  if (auto error = schema.validate(*doc)) return invalidDocument(kInvalid, {std::move(*error)});
  return graph;
}

std::string printSffg(const Graph& graph) { return SffgWriter().print(graph); }

}  // namespace corch::graph
