#include "node/graph_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "graph/sffg_codec.h"
#include "platform/fd.h"
#include "security/atomic_file.h"
#include "state/kill_point.h"

namespace corch::node {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSuffix = ".sffg.json";

bool plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || (c == '.');
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

namespace rj = rapidjson;
using Alloc = rj::Document::AllocatorType;

rj::Value portRefJson(const graph::PortRef& ref, Alloc& a) {
  rj::Value v(rj::kObjectType);
  auto str = [&](const std::string& t) {
    return rj::Value(t.c_str(), static_cast<rj::SizeType>(t.size()), a);
  };
  if (ref.kind == graph::PortRef::Kind::Sap) {
    v.AddMember("sap", str(ref.sap_id), a);
  } else {
    v.AddMember("sf", str(ref.sf_id), a);
    v.AddMember("port", str(ref.port_id), a);
  }
  return v;
}

std::optional<graph::PortRef> portRefOf(const rj::Value& v) {
  if (!v.IsObject()) return std::nullopt;
  graph::PortRef ref;
  auto sap = v.FindMember("sap");
  if (sap != v.MemberEnd() && sap->value.IsString()) {
    ref.kind = graph::PortRef::Kind::Sap;
    ref.sap_id = sap->value.GetString();
    return ref;
  }
  auto sf = v.FindMember("sf");
  auto port = v.FindMember("port");
  if (sf == v.MemberEnd() || port == v.MemberEnd() || !sf->value.IsString() ||
      !port->value.IsString()) {
    return std::nullopt;
  }
  ref.kind = graph::PortRef::Kind::SfPort;
  ref.sf_id = sf->value.GetString();
  ref.port_id = port->value.GetString();
  return ref;
}

// "built": {"index", "sf-numbers": {id: n}, "sf-port-numbers": [[sf, port, n]],
// "flowrule-numbers": {id: n}, "sap-numbers": {id: n}, "vlinks": {"count", "ports": [{"port",
// "vlink", "side"}]}, "vlink-names": [[on LSI-0, on the graph-LSI]], "placement": {sf: {"cpus",
// "note"}}}.
rj::Value builtJson(const BuiltState& b, Alloc& a) {
  auto str = [&](const std::string& t) {
    return rj::Value(t.c_str(), static_cast<rj::SizeType>(t.size()), a);
  };
  auto numbers = [&](const std::map<std::string, uint32_t>& m) {
    rj::Value v(rj::kObjectType);
    for (const auto& [id, n] : m) v.AddMember(str(id), rj::Value(n), a);
    return v;
  };
  rj::Value v(rj::kObjectType);
  v.AddMember("index", b.index, a);
  v.AddMember("sf-numbers", numbers(b.sf_numbers), a);
  rj::Value ports(rj::kArrayType);
  for (const auto& [key, n] : b.sf_port_numbers) {
    rj::Value row(rj::kArrayType);
    row.PushBack(str(key.first), a).PushBack(str(key.second), a).PushBack(rj::Value(n), a);
    ports.PushBack(row, a);
  }
  v.AddMember("sf-port-numbers", ports, a);
  v.AddMember("flowrule-numbers", numbers(b.flowrule_numbers), a);
  v.AddMember("sap-numbers", numbers(b.sap_numbers), a);
  rj::Value vlinks(rj::kObjectType);
  vlinks.AddMember("count", b.vlinks.count, a);
  rj::Value of(rj::kArrayType);
  for (const auto& [ref, index] : b.vlinks.vlink_of) {
    rj::Value row(rj::kObjectType);
    row.AddMember("port", portRefJson(ref, a), a);
    row.AddMember("vlink", rj::Value(index), a);
    auto side = b.vlinks.side_of.find(ref);
    if (side != b.vlinks.side_of.end()) {
      row.AddMember("side", rj::StringRef(side->second == network::Side::Lsi0 ? "lsi0" : "graph"),
                    a);
    }
    of.PushBack(row, a);
  }
  vlinks.AddMember("ports", of, a);
  v.AddMember("vlinks", vlinks, a);
  rj::Value names(rj::kArrayType);
  for (const auto& [end_a, end_b] : b.vlink_names) {
    rj::Value row(rj::kArrayType);
    row.PushBack(str(end_a), a).PushBack(str(end_b), a);
    names.PushBack(row, a);
  }
  v.AddMember("vlink-names", names, a);
  rj::Value placement(rj::kObjectType);
  for (const auto& [sf, p] : b.placement.functions) {
    rj::Value row(rj::kObjectType);
    rj::Value cpus(rj::kArrayType);
    for (unsigned c : p.cpus) cpus.PushBack(c, a);
    row.AddMember("cpus", cpus, a);
    row.AddMember("note", str(p.note), a);
    placement.AddMember(str(sf), row, a);
  }
  v.AddMember("placement", placement, a);
  return v;
}

// Any deviation from builtJson's shape: nullopt (the graph is then built anew).
std::optional<BuiltState> builtOf(const rj::Value& v) {
  if (!v.IsObject()) return std::nullopt;
  auto member = [&](const rj::Value& o, const char* key) -> const rj::Value* {
    auto it = o.FindMember(key);
    return it == o.MemberEnd() ? nullptr : &it->value;
  };
  auto numbers = [&](const char* key, std::map<std::string, uint32_t>& out) {
    const rj::Value* m = member(v, key);
    if (!m || !m->IsObject()) return false;
    for (auto it = m->MemberBegin(); it != m->MemberEnd(); ++it) {
      if (!it->value.IsUint()) return false;
      out[it->name.GetString()] = it->value.GetUint();
    }
    return true;
  };
  BuiltState b;
  const rj::Value* index = member(v, "index");
  if (!index || !index->IsUint()) return std::nullopt;
  b.index = index->GetUint();
  if (!numbers("sf-numbers", b.sf_numbers) || !numbers("flowrule-numbers", b.flowrule_numbers) ||
      !numbers("sap-numbers", b.sap_numbers)) {
    return std::nullopt;
  }
  const rj::Value* ports = member(v, "sf-port-numbers");
  if (!ports || !ports->IsArray()) return std::nullopt;
  for (const auto& row : ports->GetArray()) {
    if (!row.IsArray() || row.Size() != 3 || !row[0].IsString() || !row[1].IsString() ||
        !row[2].IsUint()) {
      return std::nullopt;
    }
    b.sf_port_numbers[{row[0].GetString(), row[1].GetString()}] = row[2].GetUint();
  }
  const rj::Value* vlinks = member(v, "vlinks");
  if (!vlinks || !vlinks->IsObject()) return std::nullopt;
  const rj::Value* count = member(*vlinks, "count");
  const rj::Value* of = member(*vlinks, "ports");
  if (!count || !count->IsUint() || !of || !of->IsArray()) return std::nullopt;
  b.vlinks.count = count->GetUint();
  for (const auto& row : of->GetArray()) {
    if (!row.IsObject()) return std::nullopt;
    const rj::Value* port = member(row, "port");
    const rj::Value* vlink = member(row, "vlink");
    if (!port || !vlink || !vlink->IsUint()) return std::nullopt;
    auto ref = portRefOf(*port);
    if (!ref) return std::nullopt;
    b.vlinks.vlink_of[*ref] = vlink->GetUint();
    if (const rj::Value* side = member(row, "side"); side && side->IsString()) {
      b.vlinks.side_of[*ref] = std::string_view(side->GetString()) == "lsi0"
                                   ? network::Side::Lsi0
                                   : network::Side::GraphLsi;
    }
  }
  const rj::Value* names = member(v, "vlink-names");
  if (!names || !names->IsArray()) return std::nullopt;
  for (const auto& row : names->GetArray()) {
    if (!row.IsArray() || row.Size() != 2 || !row[0].IsString() || !row[1].IsString()) {
      return std::nullopt;
    }
    b.vlink_names.emplace_back(row[0].GetString(), row[1].GetString());
  }
  const rj::Value* placement = member(v, "placement");
  if (!placement || !placement->IsObject()) return std::nullopt;
  for (auto it = placement->MemberBegin(); it != placement->MemberEnd(); ++it) {
    const rj::Value* cpus = member(it->value, "cpus");
    const rj::Value* note = member(it->value, "note");
    if (!it->value.IsObject() || !cpus || !cpus->IsArray() || !note || !note->IsString()) {
      return std::nullopt;
    }
    compute::SfPlacement p;
    for (const auto& c : cpus->GetArray()) {
      if (!c.IsUint()) return std::nullopt;
      p.cpus.push_back(c.GetUint());
    }
    p.note = note->GetString();
    b.placement.functions[it->name.GetString()] = std::move(p);
  }
  return b;
}

// The stored document: {"format": 1, "graph": <the canonical SF-FG document>, what the SF-FG has
// no field for but the model keeps from an NF-FG ("description", "domain", "rule-descriptions":
// {rule id: text}), so that a graph put through either API comes back equal, and "built"}.
std::string envelope(const graph::Graph& g, const BuiltState* built) {
  rj::Document doc(rj::kObjectType);
  auto& a = doc.GetAllocator();
  rj::Document sffg(&a);
  const std::string text = graph::printSffg(g);
  sffg.Parse(text.c_str(), text.size());
  auto str = [&](const std::string& v) {
    return rj::Value(v.c_str(), static_cast<rj::SizeType>(v.size()), a);
  };
  doc.AddMember("format", 1, a);
  doc.AddMember("graph", rj::Value(sffg, a), a);
  if (!g.description.empty()) doc.AddMember("description", str(g.description), a);
  if (!g.domain.empty()) doc.AddMember("domain", str(g.domain), a);
  rj::Value rules(rj::kObjectType);
  for (const auto& r : g.rules) {
    if (!r.description.empty()) rules.AddMember(str(r.id), str(r.description), a);
  }
  if (rules.MemberCount() > 0) doc.AddMember("rule-descriptions", rules, a);
  if (built) doc.AddMember("built", builtJson(*built, a), a);
  rj::StringBuffer out;
  rj::PrettyWriter<rj::StringBuffer> w(out);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return std::string(out.GetString(), out.GetSize()) + "\n";
}

Result<graph::Graph> unwrap(const std::string& text, std::optional<BuiltState>& built) {
  rj::Document doc;
  doc.Parse<rj::kParseIterativeFlag>(text.c_str(), text.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("graph") ||
      !doc["graph"].IsObject() || !doc.HasMember("format") || !doc["format"].IsInt() ||
      doc["format"].GetInt() != 1) {
    return Error(ErrorCode::Malformed, "not a stored graph of format 1");
  }
  rj::StringBuffer sffg;
  rj::Writer<rj::StringBuffer> w(sffg);
  doc["graph"].Accept(w);  // a document corchd wrote: its depth is bounded by parseSffg's
  auto g = graph::parseSffg(std::string_view(sffg.GetString(), sffg.GetSize()));
  if (!g) return g;
  auto text_of = [&](const char* key) -> std::string {
    auto it = doc.FindMember(key);
    return it != doc.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
  };
  g->description = text_of("description");
  g->domain = text_of("domain");
  if (auto it = doc.FindMember("rule-descriptions");
      it != doc.MemberEnd() && it->value.IsObject()) {
    for (auto& r : g->rules) {
      auto d = it->value.FindMember(r.id.c_str());
      if (d != it->value.MemberEnd() && d->value.IsString()) r.description = d->value.GetString();
    }
  }
  if (auto it = doc.FindMember("built"); it != doc.MemberEnd()) built = builtOf(it->value);
  return g;
}

// An unlink is made durable like a rename: by syncing the folder.
Result<void> syncDir(const std::string& dir) {
  platform::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    return Error(ErrorCode::Internal, "cannot sync folder " + dir + ": " + std::strerror(errno));
  }
  return Ok();
}

}  // namespace

std::string GraphStore::fileName(const std::string& id) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  // A leading '.' is escaped too, so that no id names a hidden file, "." or "..".
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (plain(c) && !(i == 0 && c == '.')) {
      out += c;
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out + kSuffix;
}

Result<std::string> GraphStore::idOf(const std::string& file_name) {
  const std::string suffix = kSuffix;
  if (file_name.size() <= suffix.size() || !file_name.ends_with(suffix)) {
    return Error(ErrorCode::InvalidArgument, "not a stored graph: " + file_name);
  }
  std::string id;
  const size_t end = file_name.size() - suffix.size();
  for (size_t i = 0; i < end; ++i) {
    if (file_name[i] != '%') {
      id += file_name[i];
      continue;
    }
    if (i + 2 >= end || hexValue(file_name[i + 1]) < 0 || hexValue(file_name[i + 2]) < 0) {
      return Error(ErrorCode::InvalidArgument, "not a stored graph: " + file_name);
    }
    id += static_cast<char>(hexValue(file_name[i + 1]) * 16 + hexValue(file_name[i + 2]));
    i += 2;
  }
  if (fileName(id) != file_name) {
    return Error(ErrorCode::InvalidArgument, "not a stored graph: " + file_name);
  }
  return id;
}

network::GraphNetworkPlan planOf(const BuiltState& built) {
  network::GraphNetworkPlan plan;
  plan.index = built.index;
  plan.sf_numbers = built.sf_numbers;
  plan.sf_port_numbers = built.sf_port_numbers;
  plan.flowrule_numbers = built.flowrule_numbers;
  plan.sap_numbers = built.sap_numbers;
  plan.vlinks = built.vlinks;
  return plan;
}

Result<void> GraphStore::save(const std::string& id, const graph::Graph& graph,
                              const BuiltState* built) const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Error(ErrorCode::Internal, "cannot make folder " + dir_ + ": " + ec.message());
  ::chmod(dir_.c_str(), 0700);
  state::killPoint("before storing graph " + id);
  CORCH_TRY(security::writeFileAtomically(path(id), envelope(graph, built), 0600));
  state::killPoint("after storing graph " + id);
  return Ok();
}

Result<void> GraphStore::remove(const std::string& id) const {
  state::killPoint("before forgetting graph " + id);
  if (::unlink(path(id).c_str()) != 0) {
    if (errno == ENOENT) return Ok();
    return Error(ErrorCode::Internal,
                 "cannot remove stored graph " + path(id) + ": " + std::strerror(errno));
  }
  CORCH_TRY(syncDir(dir_));
  state::killPoint("after forgetting graph " + id);
  return Ok();
}

Result<std::vector<GraphStore::Loaded>> GraphStore::load() const {
  std::vector<Loaded> out;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    auto id = idOf(name);
    if (!id) continue;  // the atomic writer's temporary files, anything else
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      out.push_back(
          Loaded{*id, Error(ErrorCode::Internal, "cannot read " + entry.path().string()), {}});
      continue;
    }
    std::optional<BuiltState> built;
    auto parsed = unwrap(text.str(), built);
    if (!parsed) {
      out.push_back(Loaded{
          *id, std::move(parsed).error().context("stored graph " + entry.path().string()), {}});
      continue;
    }
    out.push_back(Loaded{*id, std::move(parsed), std::move(built)});
  }
  if (ec) return Error(ErrorCode::Internal, "cannot read folder " + dir_ + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const Loaded& a, const Loaded& b) { return a.id < b.id; });
  return out;
}

}  // namespace corch::node
