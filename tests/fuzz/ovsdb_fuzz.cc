// libFuzzer target: what the ovs driver reads from ovsdb-server (drivers/vswitch/ovs/). The input
// is the byte stream of the connection: JsonFramer cuts it into JSON-RPC messages, and each
// message's "result" (or the message itself, when it has none) goes through every parser of a
// transaction result the driver has (DbSnapshot::parse, parseInterfaces, parseCfgCounters,
// parseBridgeNames, parsePortNumber); a snapshot that parses is then planned on, as the driver
// does, so that a database whose rows contradict each other (dangling uuids, duplicate names)
// is exercised too.
//
// OvsdbClient::onMessage(), which matches replies to calls and answers echo requests, is private
// and needs a socket; it is not reached here.
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/vswitch/ovs/ovsdb_client.h"
#include "drivers/vswitch/ovs/vswitch_db.h"
#include "fuzz_check.h"

namespace ovs = corch::drivers::ovs;

namespace {

void checkSnapshot(const ovs::DbSnapshot& db) {
  ovs::PlanContext context;
  ovs::PortNumbering numbering(db, {});
  std::string first, second;
  for (const auto& [name, bridge] : db.bridges) {
    (void)db.usedNumbers(bridge);
    for (const ovs::PortRow* p : db.portsOf(bridge)) {
      FUZZ_CHECK(p != nullptr, "portsOf() returned a null row");
      (void)db.findPort(p->name);
      for (const ovs::InterfaceRow* i : db.interfacesOf(*p)) (void)db.findInterface(i->name);
    }
    auto n = numbering.next(name);
    if (n.ok()) FUZZ_CHECK(*n >= 1 && *n <= ovs::kMaxPortNumber, "a port number out of range");
    auto removal = ovs::planDestroyLsi(db, name);
    (void)ovs::buildTransaction(removal.change);
    if (first.empty()) {
      first = name;
    } else if (second.empty()) {
      second = name;
    }
  }
  // What a deploy plans on this database: a new LSI joined to an existing one, ports on an
  // existing one, vlinks between two.
  corch::LsiSpec spec;
  spec.name = "corch-fz";
  spec.ports.push_back({"fzp0", corch::PortTechnology::Veth, {}});
  spec.ports.push_back({"fzp1", corch::PortTechnology::Tap, {}});
  spec.vlink_peer = first;
  spec.vlink_count = first.empty() ? 0 : 2;
  auto lsi = ovs::planCreateLsi(db, spec, context, numbering);
  if (lsi.ok()) (void)ovs::buildTransaction(lsi->change);
  if (!first.empty()) {
    auto ports = ovs::planCreatePorts(db, first, {{"fzp2", corch::PortTechnology::Internal, {}}},
                                      context, numbering);
    if (ports.ok()) (void)ovs::buildTransaction(ports->change);
    std::vector<std::string> names;
    for (const ovs::PortRow* p : db.portsOf(*db.bridge(first))) names.push_back(p->name);
    (void)ovs::buildTransaction(ovs::planDestroyPorts(db, first, names).change);
  }
  if (!second.empty()) {
    auto vlinks = ovs::planConnectLsis(db, first, second, 2, "fzv", numbering);
    if (vlinks.ok()) {
      (void)ovs::buildTransaction(vlinks->change);
      (void)ovs::buildTransaction(ovs::planDestroyVlinks(db, vlinks->vlinks).change);
    }
  }
}

void onReply(std::string_view text) {
  rapidjson::Document msg;
  msg.Parse(text.data(), text.size());
  if (msg.HasParseError()) return;
  const rapidjson::Value* result = &msg;
  if (msg.IsObject()) {
    auto it = msg.FindMember("result");
    if (it != msg.MemberEnd()) result = &it->value;
  }
  auto db = ovs::DbSnapshot::parse(*result);
  if (db.ok()) checkSnapshot(*db);
  (void)ovs::parseInterfaces(*result);
  (void)ovs::parseCfgCounters(*result);
  (void)ovs::parseBridgeNames(*result);
  (void)ovs::parsePortNumber(*result, "br0", "p1");
  (void)ovs::toJson(*result);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = corch::fuzz::asText(data, size);

  // The stream whole, then the same stream in small pieces: the framer must cut it into the same
  // values whatever the reads were.
  std::vector<std::string> whole_values;
  ovs::JsonFramer whole;
  bool whole_ok = whole.feed(bytes, [&](std::string_view v) { whole_values.emplace_back(v); });

  std::vector<std::string> pieces_values;
  ovs::JsonFramer pieces;
  bool pieces_ok = true;
  size_t step = 1 + size % 13;
  for (size_t at = 0; at < size && pieces_ok; at += step) {
    pieces_ok = pieces.feed(bytes.substr(at, step),
                            [&](std::string_view v) { pieces_values.emplace_back(v); });
  }
  FUZZ_CHECK(whole_ok == pieces_ok, "JsonFramer's verdict depends on how the bytes arrive");
  FUZZ_CHECK(whole_values == pieces_values, "JsonFramer's values depend on how the bytes arrive");

  for (const auto& v : whole_values) {
    FUZZ_CHECK(!v.empty() && (v.front() == '{' || v.front() == '['), "a framed value's start");
    onReply(v);
  }
  return 0;
}
