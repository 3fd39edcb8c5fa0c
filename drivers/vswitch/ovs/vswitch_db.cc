#include "vswitch_db.h"

#include <algorithm>
#include <cctype>

namespace corch::drivers::ovs {
namespace {

using rapidjson::Value;
using Alloc = rapidjson::Document::AllocatorType;

// --- Building OVSDB JSON (RFC 7047 section 5.1) ---

Value str(std::string_view s, Alloc& a) {
  return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

Value tagged(const char* tag, Value v, Alloc& a) {
  Value out(rapidjson::kArrayType);
  out.PushBack(str(tag, a), a);
  out.PushBack(v, a);
  return out;
}

Value uuidRef(const std::string& uuid, Alloc& a) { return tagged("uuid", str(uuid, a), a); }
Value namedRef(const std::string& name, Alloc& a) { return tagged("named-uuid", str(name, a), a); }

Value setOf(std::vector<Value> elements, Alloc& a) {
  Value list(rapidjson::kArrayType);
  for (auto& e : elements) list.PushBack(e, a);
  return tagged("set", std::move(list), a);
}

Value mapOf(const std::vector<std::pair<std::string, std::string>>& entries, Alloc& a) {
  Value list(rapidjson::kArrayType);
  for (const auto& [k, v] : entries) {
    Value pair(rapidjson::kArrayType);
    pair.PushBack(str(k, a), a);
    pair.PushBack(str(v, a), a);
    list.PushBack(pair, a);
  }
  return tagged("map", std::move(list), a);
}

Value whereUuid(const std::string& uuid, Alloc& a) {
  Value cond(rapidjson::kArrayType);
  cond.PushBack(str("_uuid", a), a);
  cond.PushBack(str("==", a), a);
  cond.PushBack(uuidRef(uuid, a), a);
  Value where(rapidjson::kArrayType);
  where.PushBack(cond, a);
  return where;
}

Value whereEq(const std::string& column, const std::string& value, Alloc& a) {
  Value cond(rapidjson::kArrayType);
  cond.PushBack(str(column, a), a);
  cond.PushBack(str("==", a), a);
  cond.PushBack(str(value, a), a);
  Value where(rapidjson::kArrayType);
  where.PushBack(cond, a);
  return where;
}

Value columns(std::initializer_list<const char*> names, Alloc& a) {
  Value list(rapidjson::kArrayType);
  for (const char* n : names) list.PushBack(str(n, a), a);
  return list;
}

Value op(const char* name, const char* table, Alloc& a) {
  Value o(rapidjson::kObjectType);
  o.AddMember("op", str(name, a), a);
  o.AddMember("table", str(table, a), a);
  return o;
}

Value select(const char* table, Value where, Value cols, Alloc& a) {
  Value o = op("select", table, a);
  o.AddMember("where", where, a);
  o.AddMember("columns", cols, a);
  return o;
}

Value mutation(const char* column, const char* mutator, Value value, Alloc& a) {
  Value m(rapidjson::kArrayType);
  m.PushBack(str(column, a), a);
  m.PushBack(str(mutator, a), a);
  m.PushBack(value, a);
  return m;
}

// --- Reading OVSDB JSON ---

bool isTagged(const Value& v, const char* tag) {
  return v.IsArray() && v.Size() == 2 && v[0].IsString() &&
         std::string_view(v[0].GetString()) == tag;
}

// The elements of a set value (a bare atom is a set of one).
std::vector<const Value*> elementsOf(const Value& v) {
  std::vector<const Value*> out;
  if (isTagged(v, "set") && v[1].IsArray()) {
    for (const auto& e : v[1].GetArray()) out.push_back(&e);
  } else {
    out.push_back(&v);
  }
  return out;
}

std::string uuidOf(const Value& v) {
  if (isTagged(v, "uuid") && v[1].IsString()) return v[1].GetString();
  return "";
}

std::string stringOf(const Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  return "";
}

std::optional<int64_t> optInt(const Value& v) {
  if (v.IsInt64()) return v.GetInt64();
  if (isTagged(v, "set") && v[1].IsArray() && v[1].Size() == 1 && v[1][0].IsInt64()) {
    return v[1][0].GetInt64();
  }
  return std::nullopt;
}

std::optional<std::string> optString(const Value& v) {
  if (v.IsString()) return stringOf(v);
  if (isTagged(v, "set") && v[1].IsArray() && v[1].Size() == 1 && v[1][0].IsString()) {
    return stringOf(v[1][0]);
  }
  return std::nullopt;
}

std::map<std::string, std::string> mapFrom(const Value& v) {
  std::map<std::string, std::string> out;
  if (isTagged(v, "map") && v[1].IsArray()) {
    for (const auto& pair : v[1].GetArray()) {
      if (pair.IsArray() && pair.Size() == 2) out[stringOf(pair[0])] = stringOf(pair[1]);
    }
  }
  return out;
}

const Value& member(const Value& row, const char* name) {
  static const Value null;
  if (!row.IsObject()) return null;
  auto it = row.FindMember(name);
  return it == row.MemberEnd() ? null : it->value;
}

// The rows of the select at position i of a transaction result.
Result<const Value*> rowsAt(const Value& result, size_t i) {
  if (!result.IsArray() || result.Size() <= i || !result[i].IsObject() ||
      !result[i].HasMember("rows") || !result[i]["rows"].IsArray()) {
    return Error(ErrorCode::Internal, "ovsdb: a select answered without rows");
  }
  return &result[i]["rows"];
}

InterfaceRow interfaceFrom(const Value& row) {
  InterfaceRow i;
  i.uuid = uuidOf(member(row, "_uuid"));
  i.name = stringOf(member(row, "name"));
  i.type = stringOf(member(row, "type"));
  i.ofport = optInt(member(row, "ofport"));
  i.ofport_request = optInt(member(row, "ofport_request"));
  i.options = mapFrom(member(row, "options"));
  i.external_ids = mapFrom(member(row, "external_ids"));
  i.error = optString(member(row, "error")).value_or("");
  return i;
}

Result<void> checkPortName(const std::string& name, size_t max, const std::string& what) {
  if (name.empty() || name.size() > max) {
    return Error(ErrorCode::InvalidArgument, "invalid " + what + " name \"" + name +
                                                 "\": it must have 1 to " + std::to_string(max) +
                                                 " characters");
  }
  for (char c : name) {
    if (c == '/' || std::isspace(static_cast<unsigned char>(c)) ||
        !std::isprint(static_cast<unsigned char>(c))) {
      return Error(ErrorCode::InvalidArgument,
                   "invalid " + what + " name \"" + name +
                       "\": it contains '/', a space or a control character");
    }
  }
  return Ok();
}

// AlreadyExists when a port (or interface) of that name exists anywhere on the switch.
Result<void> checkFree(const DbSnapshot& db, const std::string& name) {
  if (auto at = db.findPort(name)) {
    return Error(ErrorCode::AlreadyExists,
                 "port " + name + " exists already" +
                     (at->bridge ? " on LSI " + at->bridge->name : std::string()));
  }
  if (db.findInterface(name)) {
    return Error(ErrorCode::AlreadyExists, "interface " + name + " exists already");
  }
  return Ok();
}

// Names must be unique within one request too.
Result<void> checkUnique(std::set<std::string>& seen, const std::string& name) {
  if (!seen.insert(name).second) {
    return Error(ErrorCode::InvalidArgument, "the name " + name + " appears twice in the request");
  }
  return Ok();
}

Result<NewPort> sfPort(const DbSnapshot& db, const PortSpec& spec, const PlanContext& context,
                       uint32_t number) {
  NewPort p;
  p.name = spec.name;
  p.number = number;
  switch (spec.technology) {
    case PortTechnology::Veth:
      // The function's end is the name plus "f": the name must leave room for it.
      CORCH_TRY(checkPortName(spec.name, 14, "veth port"));
      p.veth_peer = spec.name + "f";
      p.external_ids.emplace_back(kVethPeerKey, p.veth_peer);
      CORCH_TRY(checkFree(db, p.veth_peer));
      break;
    case PortTechnology::Internal:
      CORCH_TRY(checkPortName(spec.name, 15, "port"));
      p.type = "internal";
      break;
    case PortTechnology::Tap:
      // A persistent tap made by the driver and added as a plain system port: OVS's own "tap"
      // type would hold the device open, and QEMU could then not attach to it (EBUSY).
      CORCH_TRY(checkPortName(spec.name, 15, "port"));
      p.tap = true;
      p.external_ids.emplace_back(kTapKey, "true");
      break;
    case PortTechnology::VhostUser:
      CORCH_TRY(checkPortName(spec.name, 15, "port"));
      if (!db.iface_types.count("dpdkvhostuserclient")) {
        return Error(ErrorCode::Unsupported,
                     "port " + spec.name +
                         " is vhost-user, which needs an Open vSwitch built "
                         "with DPDK (its iface_types have no dpdkvhostuserclient)");
      }
      p.type = "dpdkvhostuserclient";
      p.options.emplace_back("vhost-server-path", context.rundir + "/" + spec.name);
      break;
    case PortTechnology::Gre:
      CORCH_TRY(checkPortName(spec.name, 15, "port"));
      if (!db.iface_types.empty() && !db.iface_types.count("gre")) {
        return Error(ErrorCode::Unsupported,
                     "port " + spec.name + " is a GRE tunnel, which this Open vSwitch cannot make");
      }
      p.type = "gre";
      p.options.emplace_back("local_ip", spec.tunnel.local.str());
      p.options.emplace_back("remote_ip", spec.tunnel.remote.str());
      p.options.emplace_back("key", std::to_string(spec.tunnel.key));
      break;
  }
  CORCH_TRY(checkFree(db, spec.name));
  return p;
}

// What the function attaches to (PortInfo::peer_ifname): the veth end, the tap, or the socket path
// of a vhost-user port, on which the function is the server (dpdkvhostuserclient is the client).
std::string functionEnd(const NewPort& p) {
  if (p.tap) return p.name;
  if (p.type == "dpdkvhostuserclient") {
    for (const auto& [key, value] : p.options) {
      if (key == "vhost-server-path") return value;
    }
  }
  return p.veth_peer;
}

// The same read back from an Interface row, after a restart: what the plans wrote for it.
std::string functionEnd(const InterfaceRow& i) {
  if (auto peer = i.external_ids.find(kVethPeerKey); peer != i.external_ids.end()) {
    return peer->second;
  }
  if (i.external_ids.count(kTapKey)) return i.name;
  if (i.type == "dpdkvhostuserclient") {
    if (auto path = i.options.find("vhost-server-path"); path != i.options.end()) {
      return path->second;
    }
  }
  return "";
}

// Groups port removals by bridge, in order of first appearance.
void removePort(DbChange& change, const std::string& bridge_uuid, const std::string& port_uuid) {
  for (auto& r : change.remove_ports) {
    if (r.bridge_uuid == bridge_uuid) {
      if (std::find(r.port_uuids.begin(), r.port_uuids.end(), port_uuid) == r.port_uuids.end()) {
        r.port_uuids.push_back(port_uuid);
      }
      return;
    }
  }
  change.remove_ports.push_back(PortsOffBridge{bridge_uuid, {port_uuid}});
}

void collectVeths(const DbSnapshot& db, const PortRow& port, std::vector<std::string>& veths) {
  for (const InterfaceRow* i : db.interfacesOf(port)) {
    if (i->external_ids.count(kVethPeerKey) || i->external_ids.count(kTapKey)) {
      veths.push_back(i->name);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// DbSnapshot

rapidjson::Document DbSnapshot::query() {
  rapidjson::Document ops(rapidjson::kArrayType);
  auto& a = ops.GetAllocator();
  ops.PushBack(select("Open_vSwitch", Value(rapidjson::kArrayType),
                      columns({"next_cfg", "cur_cfg", "iface_types", "datapath_types"}, a), a),
               a);
  ops.PushBack(
      select("Bridge", Value(rapidjson::kArrayType), columns({"_uuid", "name", "ports"}, a), a), a);
  ops.PushBack(
      select("Port", Value(rapidjson::kArrayType), columns({"_uuid", "name", "interfaces"}, a), a),
      a);
  ops.PushBack(select("Interface", Value(rapidjson::kArrayType),
                      columns({"_uuid", "name", "type", "ofport", "ofport_request", "options",
                               "external_ids", "error"},
                              a),
                      a),
               a);
  return ops;
}

Result<DbSnapshot> DbSnapshot::parse(const rapidjson::Value& result) {
  DbSnapshot db;
  auto ovs = rowsAt(result, 0);
  if (!ovs.ok()) return std::move(ovs).error();
  if ((*ovs)->Size() != 1) {
    return Error(ErrorCode::Unavailable,
                 "the Open_vSwitch database has no Open_vSwitch row (run ovs-vsctl init)");
  }
  const Value& root = (**ovs)[0];
  db.next_cfg = optInt(member(root, "next_cfg")).value_or(0);
  db.cur_cfg = optInt(member(root, "cur_cfg")).value_or(0);
  for (const Value* t : elementsOf(member(root, "iface_types"))) {
    if (t->IsString()) db.iface_types.insert(stringOf(*t));
  }
  for (const Value* t : elementsOf(member(root, "datapath_types"))) {
    if (t->IsString()) db.datapath_types.insert(stringOf(*t));
  }

  auto bridges = rowsAt(result, 1);
  if (!bridges.ok()) return std::move(bridges).error();
  for (const auto& row : (*bridges)->GetArray()) {
    BridgeRow b;
    b.uuid = uuidOf(member(row, "_uuid"));
    b.name = stringOf(member(row, "name"));
    for (const Value* p : elementsOf(member(row, "ports"))) {
      if (auto u = uuidOf(*p); !u.empty()) b.ports.push_back(u);
    }
    db.bridges[b.name] = std::move(b);
  }
  auto ports = rowsAt(result, 2);
  if (!ports.ok()) return std::move(ports).error();
  for (const auto& row : (*ports)->GetArray()) {
    PortRow p;
    p.uuid = uuidOf(member(row, "_uuid"));
    p.name = stringOf(member(row, "name"));
    for (const Value* i : elementsOf(member(row, "interfaces"))) {
      if (auto u = uuidOf(*i); !u.empty()) p.interfaces.push_back(u);
    }
    db.ports[p.uuid] = std::move(p);
  }
  auto interfaces = rowsAt(result, 3);
  if (!interfaces.ok()) return std::move(interfaces).error();
  for (const auto& row : (*interfaces)->GetArray()) {
    InterfaceRow i = interfaceFrom(row);
    db.interfaces[i.uuid] = std::move(i);
  }
  return db;
}

const BridgeRow* DbSnapshot::bridge(const std::string& name) const {
  auto it = bridges.find(name);
  return it == bridges.end() ? nullptr : &it->second;
}

std::optional<DbSnapshot::PortAt> DbSnapshot::findPort(const std::string& name) const {
  for (const auto& [uuid, port] : ports) {
    if (port.name != name) continue;
    PortAt at;
    at.port = &port;
    for (const auto& [bname, b] : bridges) {
      if (std::find(b.ports.begin(), b.ports.end(), uuid) != b.ports.end()) at.bridge = &b;
    }
    return at;
  }
  return std::nullopt;
}

const InterfaceRow* DbSnapshot::findInterface(const std::string& name) const {
  for (const auto& [uuid, i] : interfaces) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

std::vector<const PortRow*> DbSnapshot::portsOf(const BridgeRow& bridge) const {
  std::vector<const PortRow*> out;
  for (const auto& uuid : bridge.ports) {
    auto it = ports.find(uuid);
    if (it != ports.end()) out.push_back(&it->second);
  }
  return out;
}

std::vector<const InterfaceRow*> DbSnapshot::interfacesOf(const PortRow& port) const {
  std::vector<const InterfaceRow*> out;
  for (const auto& uuid : port.interfaces) {
    auto it = interfaces.find(uuid);
    if (it != interfaces.end()) out.push_back(&it->second);
  }
  return out;
}

std::set<uint32_t> DbSnapshot::usedNumbers(const BridgeRow& bridge) const {
  std::set<uint32_t> used;
  for (const PortRow* p : portsOf(bridge)) {
    for (const InterfaceRow* i : interfacesOf(*p)) {
      for (auto n : {i->ofport, i->ofport_request}) {
        if (n && *n > 0 && *n <= kMaxPortNumber) used.insert(static_cast<uint32_t>(*n));
      }
    }
  }
  return used;
}

// ---------------------------------------------------------------------------------------------
// PortNumbering

Result<uint32_t> PortNumbering::next(const std::string& bridge) {
  auto used_it = used_.find(bridge);
  if (used_it == used_.end()) {
    std::set<uint32_t> used;
    if (const BridgeRow* b = db_.bridge(bridge)) used = db_.usedNumbers(*b);
    used_it = used_.emplace(bridge, std::move(used)).first;
  }
  std::set<uint32_t>& used = used_it->second;
  uint32_t start = hints_.count(bridge) ? hints_[bridge] : 1;
  if (!used.empty()) start = std::max(start, *used.rbegin() + 1);
  uint32_t n = start;
  if (n > kMaxPortNumber) {
    // The range is exhausted upwards: reuse the lowest free number.
    n = 1;
    while (n <= kMaxPortNumber && used.count(n)) ++n;
    if (n > kMaxPortNumber) {
      return Error(ErrorCode::ResourceExhausted,
                   "LSI " + bridge + " has no free OpenFlow port number left");
    }
  }
  used.insert(n);
  hints_[bridge] = n + 1;
  return n;
}

// ---------------------------------------------------------------------------------------------
// DbChange and its transaction

std::vector<std::string> DbChange::newPortNames() const {
  std::vector<std::string> out;
  for (const auto& on : add) {
    for (const auto& p : on.ports) {
      if (p.number != 0) out.push_back(p.name);
    }
  }
  return out;
}

std::vector<std::string> DbChange::newTaps() const {
  std::vector<std::string> out;
  for (const auto& on : add) {
    for (const auto& p : on.ports) {
      if (p.tap) out.push_back(p.name);
    }
  }
  return out;
}

std::vector<std::string> DbChange::newKernelLinks() const {
  std::vector<std::string> out;
  for (const auto& v : newVeths()) out.push_back(v.first);
  for (auto& t : newTaps()) out.push_back(std::move(t));
  return out;
}

std::vector<std::pair<std::string, std::string>> DbChange::newVeths() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& on : add) {
    for (const auto& p : on.ports) {
      if (!p.veth_peer.empty()) out.emplace_back(p.name, p.veth_peer);
    }
  }
  return out;
}

rapidjson::Document buildTransaction(const DbChange& change) {
  rapidjson::Document ops(rapidjson::kArrayType);
  auto& a = ops.GetAllocator();

  // Guards: a bridge that disappeared since the snapshot aborts the transaction, instead of
  // leaving the ports meant for it unreferenced (and silently collected).
  for (const auto& on : change.add) {
    if (on.bridge_uuid.empty()) continue;
    Value wait = op("wait", "Bridge", a);
    wait.AddMember("timeout", 0, a);
    wait.AddMember("where", whereUuid(on.bridge_uuid, a), a);
    wait.AddMember("columns", columns({"name"}, a), a);
    wait.AddMember("until", str("==", a), a);
    Value rows(rapidjson::kArrayType);
    Value row(rapidjson::kObjectType);
    row.AddMember("name", str(on.bridge, a), a);
    rows.PushBack(row, a);
    wait.AddMember("rows", rows, a);
    ops.PushBack(wait, a);
  }

  // Interfaces and ports, then the bridges that reference them.
  int k = 0;
  std::vector<std::vector<std::string>> port_refs(change.add.size());
  for (size_t b = 0; b < change.add.size(); ++b) {
    for (const auto& p : change.add[b].ports) {
      std::string iface_ref = "iface" + std::to_string(k);
      std::string port_ref = "port" + std::to_string(k);
      ++k;
      Value irow(rapidjson::kObjectType);
      irow.AddMember("name", str(p.name, a), a);
      irow.AddMember("type", str(p.type, a), a);
      if (p.number != 0) irow.AddMember("ofport_request", p.number, a);
      if (!p.options.empty()) irow.AddMember("options", mapOf(p.options, a), a);
      if (!p.external_ids.empty()) irow.AddMember("external_ids", mapOf(p.external_ids, a), a);
      Value insert_iface = op("insert", "Interface", a);
      insert_iface.AddMember("row", irow, a);
      insert_iface.AddMember("uuid-name", str(iface_ref, a), a);
      ops.PushBack(insert_iface, a);

      Value prow(rapidjson::kObjectType);
      prow.AddMember("name", str(p.name, a), a);
      std::vector<Value> ifaces;
      ifaces.push_back(namedRef(iface_ref, a));
      prow.AddMember("interfaces", setOf(std::move(ifaces), a), a);
      Value insert_port = op("insert", "Port", a);
      insert_port.AddMember("row", prow, a);
      insert_port.AddMember("uuid-name", str(port_ref, a), a);
      ops.PushBack(insert_port, a);
      port_refs[b].push_back(port_ref);
    }
  }
  auto refsOf = [&](size_t b) {
    std::vector<Value> refs;
    for (const auto& r : port_refs[b]) refs.push_back(namedRef(r, a));
    return setOf(std::move(refs), a);
  };

  if (change.new_bridge) {
    Value brow(rapidjson::kObjectType);
    brow.AddMember("name", str(*change.new_bridge, a), a);
    brow.AddMember("datapath_type", str(change.datapath_type, a), a);
    brow.AddMember("fail_mode", str("secure", a), a);
    std::vector<Value> protocols;
    protocols.push_back(str("OpenFlow13", a));
    brow.AddMember("protocols", setOf(std::move(protocols), a), a);
    brow.AddMember("other_config", mapOf({{"disable-in-band", "true"}}, a), a);
    brow.AddMember("external_ids", mapOf({{"corch-lsi", "true"}}, a), a);
    std::vector<Value> refs;
    for (size_t b = 0; b < change.add.size(); ++b) {
      if (change.add[b].bridge_uuid.empty()) {
        for (const auto& r : port_refs[b]) refs.push_back(namedRef(r, a));
      }
    }
    brow.AddMember("ports", setOf(std::move(refs), a), a);
    Value insert = op("insert", "Bridge", a);
    insert.AddMember("row", brow, a);
    insert.AddMember("uuid-name", str("bridge", a), a);
    ops.PushBack(insert, a);
  }

  for (size_t b = 0; b < change.add.size(); ++b) {
    if (change.add[b].bridge_uuid.empty() || port_refs[b].empty()) continue;
    Value m = op("mutate", "Bridge", a);
    m.AddMember("where", whereUuid(change.add[b].bridge_uuid, a), a);
    Value mutations(rapidjson::kArrayType);
    mutations.PushBack(mutation("ports", "insert", refsOf(b), a), a);
    m.AddMember("mutations", mutations, a);
    ops.PushBack(m, a);
  }
  for (const auto& off : change.remove_ports) {
    Value m = op("mutate", "Bridge", a);
    m.AddMember("where", whereUuid(off.bridge_uuid, a), a);
    std::vector<Value> refs;
    for (const auto& u : off.port_uuids) refs.push_back(uuidRef(u, a));
    Value mutations(rapidjson::kArrayType);
    mutations.PushBack(mutation("ports", "delete", setOf(std::move(refs), a), a), a);
    m.AddMember("mutations", mutations, a);
    ops.PushBack(m, a);
  }

  // The root row: bridges in and out (rows no longer referenced are garbage-collected, ports and
  // interfaces with them), and next_cfg += 1 for ovs-vswitchd to report when it is done.
  Value root = op("mutate", "Open_vSwitch", a);
  root.AddMember("where", Value(rapidjson::kArrayType), a);
  Value mutations(rapidjson::kArrayType);
  if (change.new_bridge) {
    std::vector<Value> refs;
    refs.push_back(namedRef("bridge", a));
    mutations.PushBack(mutation("bridges", "insert", setOf(std::move(refs), a), a), a);
  }
  if (!change.remove_bridges.empty()) {
    std::vector<Value> refs;
    for (const auto& u : change.remove_bridges) refs.push_back(uuidRef(u, a));
    mutations.PushBack(mutation("bridges", "delete", setOf(std::move(refs), a), a), a);
  }
  mutations.PushBack(mutation("next_cfg", "+=", Value(1), a), a);
  root.AddMember("mutations", mutations, a);
  ops.PushBack(root, a);

  ops.PushBack(
      select("Open_vSwitch", Value(rapidjson::kArrayType), columns({"next_cfg", "cur_cfg"}, a), a),
      a);
  return ops;
}

// ---------------------------------------------------------------------------------------------
// Reading an LSI back

Result<std::vector<ListedPort>> listBridgePorts(const DbSnapshot& db, const std::string& lsi,
                                                std::vector<std::string>* unnumbered) {
  const BridgeRow* b = db.bridge(lsi);
  if (!b) return Error(ErrorCode::NotFound, "there is no LSI " + lsi);
  std::vector<ListedPort> out;
  for (const PortRow* p : db.portsOf(*b)) {
    if (p->name == b->name) continue;  // the bridge's local port: not one of the driver's
    // The plans make one interface a port, of the port's name.
    auto interfaces = db.interfacesOf(*p);
    auto named = std::find_if(interfaces.begin(), interfaces.end(),
                              [&](const InterfaceRow* i) { return i->name == p->name; });
    const InterfaceRow* i =
        named != interfaces.end() ? *named : (interfaces.empty() ? nullptr : interfaces.front());
    if (!i || !i->ofport || *i->ofport <= 0 || *i->ofport > kMaxPortNumber) {
      if (unnumbered) {
        unnumbered->push_back(p->name + (i && !i->error.empty() ? " (" + i->error + ")" : ""));
      }
      continue;
    }
    ListedPort listed{PortInfo{p->name, static_cast<uint32_t>(*i->ofport), functionEnd(*i)}, ""};
    if (i->external_ids.count(kVethPeerKey) || i->external_ids.count(kTapKey)) {
      listed.kernel_link = i->name;
    }
    out.push_back(std::move(listed));
  }
  std::sort(out.begin(), out.end(), [](const ListedPort& x, const ListedPort& y) {
    return x.info.of_port < y.info.of_port;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small queries

rapidjson::Document interfacesQuery(const std::vector<std::string>& names) {
  rapidjson::Document ops(rapidjson::kArrayType);
  auto& a = ops.GetAllocator();
  for (const auto& name : names) {
    ops.PushBack(select("Interface", whereEq("name", name, a),
                        columns({"_uuid", "name", "type", "ofport", "ofport_request", "options",
                                 "external_ids", "error"},
                                a),
                        a),
                 a);
  }
  return ops;
}

Result<std::map<std::string, InterfaceRow>> parseInterfaces(const rapidjson::Value& result) {
  std::map<std::string, InterfaceRow> out;
  if (!result.IsArray())
    return Error(ErrorCode::Internal, "ovsdb: a transaction result is not an array");
  for (size_t k = 0; k < result.Size(); ++k) {
    auto rows = rowsAt(result, k);
    if (!rows.ok()) return std::move(rows).error();
    for (const auto& row : (*rows)->GetArray()) {
      InterfaceRow i = interfaceFrom(row);
      out[i.name] = std::move(i);
    }
  }
  return out;
}

rapidjson::Document curCfgChangeQuery(int64_t seen, int64_t timeout_ms) {
  rapidjson::Document ops(rapidjson::kArrayType);
  auto& a = ops.GetAllocator();
  Value wait = op("wait", "Open_vSwitch", a);
  wait.AddMember("timeout", timeout_ms, a);
  wait.AddMember("where", Value(rapidjson::kArrayType), a);
  wait.AddMember("columns", columns({"cur_cfg"}, a), a);
  wait.AddMember("until", str("!=", a), a);
  Value rows(rapidjson::kArrayType);
  Value row(rapidjson::kObjectType);
  row.AddMember("cur_cfg", seen, a);
  rows.PushBack(row, a);
  wait.AddMember("rows", rows, a);
  ops.PushBack(wait, a);
  ops.PushBack(
      select("Open_vSwitch", Value(rapidjson::kArrayType), columns({"next_cfg", "cur_cfg"}, a), a),
      a);
  return ops;
}

Result<CfgCounters> parseCfgCounters(const rapidjson::Value& result) {
  if (!result.IsArray() || result.Empty()) {
    return Error(ErrorCode::Internal, "ovsdb: a transaction result is empty");
  }
  auto rows = rowsAt(result, result.Size() - 1);
  if (!rows.ok()) return std::move(rows).error();
  if ((*rows)->Size() != 1) {
    return Error(ErrorCode::Unavailable, "the Open_vSwitch database has no Open_vSwitch row");
  }
  const Value& row = (**rows)[0];
  return CfgCounters{optInt(member(row, "next_cfg")).value_or(0),
                     optInt(member(row, "cur_cfg")).value_or(0)};
}

rapidjson::Document bridgeNamesQuery() {
  rapidjson::Document ops(rapidjson::kArrayType);
  auto& a = ops.GetAllocator();
  ops.PushBack(select("Bridge", Value(rapidjson::kArrayType), columns({"name"}, a), a), a);
  return ops;
}

Result<std::vector<std::string>> parseBridgeNames(const rapidjson::Value& result) {
  auto rows = rowsAt(result, 0);
  if (!rows.ok()) return std::move(rows).error();
  std::vector<std::string> out;
  for (const auto& row : (*rows)->GetArray()) out.push_back(stringOf(member(row, "name")));
  std::sort(out.begin(), out.end());
  return out;
}

rapidjson::Document portNumberQuery(const std::string& lsi, const std::string& port) {
  rapidjson::Document ops(rapidjson::kArrayType);
  auto& a = ops.GetAllocator();
  ops.PushBack(select("Bridge", whereEq("name", lsi, a), columns({"ports"}, a), a), a);
  ops.PushBack(select("Port", whereEq("name", port, a), columns({"_uuid", "interfaces"}, a), a), a);
  ops.PushBack(select("Interface", whereEq("name", port, a), columns({"ofport", "error"}, a), a),
               a);
  return ops;
}

Result<uint32_t> parsePortNumber(const rapidjson::Value& result, const std::string& lsi,
                                 const std::string& port) {
  auto bridges = rowsAt(result, 0);
  if (!bridges.ok()) return std::move(bridges).error();
  if ((*bridges)->Empty()) return Error(ErrorCode::NotFound, "there is no LSI " + lsi);
  auto ports = rowsAt(result, 1);
  if (!ports.ok()) return std::move(ports).error();
  auto interfaces = rowsAt(result, 2);
  if (!interfaces.ok()) return std::move(interfaces).error();
  bool on_bridge = false;
  if (!(*ports)->Empty()) {
    std::string uuid = uuidOf(member((**ports)[0], "_uuid"));
    for (const Value* p : elementsOf(member((**bridges)[0], "ports"))) {
      if (uuidOf(*p) == uuid) on_bridge = true;
    }
  }
  if (!on_bridge || (*interfaces)->Empty()) {
    return Error(ErrorCode::NotFound, "there is no port " + port + " on LSI " + lsi);
  }
  const Value& row = (**interfaces)[0];
  auto ofport = optInt(member(row, "ofport"));
  if (!ofport || *ofport <= 0) {
    std::string error = optString(member(row, "error")).value_or("");
    return Error(ErrorCode::Unavailable, "port " + port + " on LSI " + lsi + " has no number" +
                                             (error.empty() ? " yet" : ": " + error));
  }
  return static_cast<uint32_t>(*ofport);
}

// ---------------------------------------------------------------------------------------------
// Plans

Result<void> checkLsiName(const std::string& name) { return checkPortName(name, 15, "LSI"); }

Result<CreateLsiPlan> planCreateLsi(const DbSnapshot& db, const LsiSpec& spec,
                                    const PlanContext& context, PortNumbering& numbering) {
  CORCH_TRY(checkLsiName(spec.name));
  if (db.bridge(spec.name)) {
    return Error(ErrorCode::AlreadyExists, "LSI " + spec.name + " exists already");
  }
  CORCH_TRY(checkFree(db, spec.name));  // its local port
  if (spec.vlink_count > 0) {
    if (spec.vlink_peer.empty()) {
      return Error(ErrorCode::InvalidArgument, "vlinks need an LSI to connect to (vlink_peer)");
    }
    if (!db.bridge(spec.vlink_peer)) {
      return Error(ErrorCode::NotFound, "there is no LSI " + spec.vlink_peer + " to connect to");
    }
  }

  CreateLsiPlan plan;
  plan.info.name = spec.name;
  plan.change.new_bridge = spec.name;
  plan.change.datapath_type = context.datapath_type;
  PortsOnBridge own{spec.name, "", {}};
  own.ports.push_back(NewPort{spec.name, "internal", 0, {}, {}, ""});
  std::set<std::string> seen{spec.name};

  for (const auto& ifname : spec.interfaces) {
    CORCH_TRY(checkPortName(ifname, 15, "interface"));
    CORCH_TRY(checkUnique(seen, ifname));
    CORCH_TRY(checkFree(db, ifname));
    auto n = numbering.next(spec.name);
    if (!n.ok()) return std::move(n).error();
    own.ports.push_back(NewPort{ifname, "", *n, {}, {}, ""});
    plan.info.interfaces.push_back(PortInfo{ifname, *n, ""});
  }
  for (const auto& port : spec.ports) {
    CORCH_TRY(checkUnique(seen, port.name));
    auto n = numbering.next(spec.name);
    if (!n.ok()) return std::move(n).error();
    auto p = sfPort(db, port, context, *n);
    if (!p.ok()) return std::move(p).error();
    plan.info.ports.push_back(PortInfo{port.name, *n, functionEnd(*p)});
    if (!p->veth_peer.empty()) CORCH_TRY(checkUnique(seen, p->veth_peer));
    own.ports.push_back(std::move(*p));
  }
  PortsOnBridge peer;
  if (spec.vlink_count > 0) {
    const BridgeRow* b = db.bridge(spec.vlink_peer);
    peer = PortsOnBridge{b->name, b->uuid, {}};
  }
  for (uint32_t i = 0; i < spec.vlink_count; ++i) {
    VlinkInfo v;
    std::string base = spec.name + "-vl" + std::to_string(i);
    v.name_a = base + "a";
    v.name_b = base + "b";
    for (const auto& name : {v.name_a, v.name_b}) {
      CORCH_TRY(checkUnique(seen, name));
      CORCH_TRY(checkFree(db, name));
    }
    auto na = numbering.next(spec.vlink_peer);
    if (!na.ok()) return std::move(na).error();
    auto nb = numbering.next(spec.name);
    if (!nb.ok()) return std::move(nb).error();
    v.port_a = *na;
    v.port_b = *nb;
    peer.ports.push_back(NewPort{v.name_a, "patch", v.port_a, {{"peer", v.name_b}}, {}, ""});
    own.ports.push_back(NewPort{v.name_b, "patch", v.port_b, {{"peer", v.name_a}}, {}, ""});
    plan.info.vlinks.push_back(v);
  }
  plan.change.add.push_back(std::move(own));
  if (!peer.ports.empty()) plan.change.add.push_back(std::move(peer));
  return plan;
}

Result<CreatePortsPlan> planCreatePorts(const DbSnapshot& db, const std::string& lsi,
                                        const std::vector<PortSpec>& ports,
                                        const PlanContext& context, PortNumbering& numbering) {
  CORCH_TRY(checkLsiName(lsi));
  const BridgeRow* b = db.bridge(lsi);
  if (!b) return Error(ErrorCode::NotFound, "there is no LSI " + lsi);
  CreatePortsPlan plan;
  PortsOnBridge on{b->name, b->uuid, {}};
  std::set<std::string> seen;
  for (const auto& port : ports) {
    CORCH_TRY(checkUnique(seen, port.name));
    auto n = numbering.next(lsi);
    if (!n.ok()) return std::move(n).error();
    auto p = sfPort(db, port, context, *n);
    if (!p.ok()) return std::move(p).error();
    plan.ports.push_back(PortInfo{port.name, *n, functionEnd(*p)});
    if (!p->veth_peer.empty()) CORCH_TRY(checkUnique(seen, p->veth_peer));
    on.ports.push_back(std::move(*p));
  }
  if (!on.ports.empty()) plan.change.add.push_back(std::move(on));
  return plan;
}

Result<ConnectPlan> planConnectLsis(const DbSnapshot& db, const std::string& lsi_a,
                                    const std::string& lsi_b, uint32_t n,
                                    const std::string& name_prefix, PortNumbering& numbering) {
  const BridgeRow* a = db.bridge(lsi_a);
  if (!a) return Error(ErrorCode::NotFound, "there is no LSI " + lsi_a);
  const BridgeRow* b = db.bridge(lsi_b);
  if (!b) return Error(ErrorCode::NotFound, "there is no LSI " + lsi_b);
  if (name_prefix.empty()) {
    return Error(ErrorCode::InvalidArgument, "vlinks need a name prefix");
  }
  ConnectPlan plan;
  PortsOnBridge on_a{a->name, a->uuid, {}};
  PortsOnBridge on_b{b->name, b->uuid, {}};
  std::set<std::string> seen;
  for (uint32_t i = 0; i < n; ++i) {
    VlinkInfo v;
    v.name_a = name_prefix + std::to_string(i) + "a";
    v.name_b = name_prefix + std::to_string(i) + "b";
    for (const auto& name : {v.name_a, v.name_b}) {
      CORCH_TRY(checkPortName(name, 255, "vlink"));
      CORCH_TRY(checkUnique(seen, name));
      CORCH_TRY(checkFree(db, name));
    }
    auto na = numbering.next(lsi_a);
    if (!na.ok()) return std::move(na).error();
    auto nb = numbering.next(lsi_b);
    if (!nb.ok()) return std::move(nb).error();
    v.port_a = *na;
    v.port_b = *nb;
    on_a.ports.push_back(NewPort{v.name_a, "patch", v.port_a, {{"peer", v.name_b}}, {}, ""});
    on_b.ports.push_back(NewPort{v.name_b, "patch", v.port_b, {{"peer", v.name_a}}, {}, ""});
    plan.vlinks.push_back(v);
  }
  if (n > 0 && a == b) {
    // Loops back into one LSI: one list of ports for it.
    for (auto& p : on_b.ports) on_a.ports.push_back(std::move(p));
    plan.change.add.push_back(std::move(on_a));
  } else if (n > 0) {
    plan.change.add.push_back(std::move(on_a));
    plan.change.add.push_back(std::move(on_b));
  }
  return plan;
}

RemovalPlan planDestroyLsi(const DbSnapshot& db, const std::string& lsi) {
  RemovalPlan plan;
  const BridgeRow* b = db.bridge(lsi);
  if (!b) return plan;
  plan.change.remove_bridges.push_back(b->uuid);
  for (const PortRow* p : db.portsOf(*b)) {
    collectVeths(db, *p, plan.veths);
    for (const InterfaceRow* i : db.interfacesOf(*p)) {
      if (i->type != "patch") continue;
      auto peer = i->options.find("peer");
      if (peer == i->options.end()) continue;
      auto far = db.findPort(peer->second);
      if (far && far->bridge && far->bridge != b) {
        removePort(plan.change, far->bridge->uuid, far->port->uuid);
      }
    }
  }
  return plan;
}

RemovalPlan planDestroyPorts(const DbSnapshot& db, const std::string& lsi,
                             const std::vector<std::string>& names) {
  RemovalPlan plan;
  const BridgeRow* b = db.bridge(lsi);
  if (!b) return plan;
  for (const auto& name : names) {
    auto at = db.findPort(name);
    if (!at || at->bridge != b) continue;
    removePort(plan.change, b->uuid, at->port->uuid);
    collectVeths(db, *at->port, plan.veths);
  }
  return plan;
}

RemovalPlan planDestroyVlinks(const DbSnapshot& db, const std::vector<VlinkInfo>& vlinks) {
  RemovalPlan plan;
  for (const auto& v : vlinks) {
    for (const auto& name : {v.name_a, v.name_b}) {
      auto at = db.findPort(name);
      if (at && at->bridge) removePort(plan.change, at->bridge->uuid, at->port->uuid);
    }
  }
  return plan;
}

}  // namespace corch::drivers::ovs
