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

// The stored document: {"format": 1, "graph": <the canonical SF-FG document>, and what the
// SF-FG has no field for but the model keeps from an NF-FG ("description", "domain",
// "rule-descriptions": {rule id: text})}, so that a graph put through either API comes back equal.
std::string envelope(const graph::Graph& g) {
  namespace rj = rapidjson;
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
  rj::StringBuffer out;
  rj::PrettyWriter<rj::StringBuffer> w(out);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return std::string(out.GetString(), out.GetSize()) + "\n";
}

Result<graph::Graph> unwrap(const std::string& text) {
  namespace rj = rapidjson;
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

Result<void> GraphStore::save(const std::string& id, const graph::Graph& graph) const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Error(ErrorCode::Internal, "cannot make folder " + dir_ + ": " + ec.message());
  ::chmod(dir_.c_str(), 0700);
  state::killPoint("before storing graph " + id);
  CORCH_TRY(security::writeFileAtomically(path(id), envelope(graph), 0600));
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
          Loaded{*id, Error(ErrorCode::Internal, "cannot read " + entry.path().string())});
      continue;
    }
    auto parsed = unwrap(text.str());
    if (!parsed) {
      out.push_back(
          Loaded{*id, std::move(parsed).error().context("stored graph " + entry.path().string())});
      continue;
    }
    out.push_back(Loaded{*id, std::move(parsed)});
  }
  if (ec) return Error(ErrorCode::Internal, "cannot read folder " + dir_ + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const Loaded& a, const Loaded& b) { return a.id < b.id; });
  return out;
}

}  // namespace corch::node
