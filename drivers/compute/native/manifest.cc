#include "manifest.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "platform/process.h"

namespace corch::drivers::native {
namespace {

bool validName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// A script path must stay inside the package: relative, without "..".
bool validScriptPath(const std::string& p) {
  if (p.empty() || p.front() == '/') return false;
  std::istringstream parts(p);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

Result<Manifest> parseManifest(const std::string& text, const std::string& source) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::InvalidArgument, "invalid NSF manifest " + source + ": " + why);
  };
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) {
    return bad(std::string("not valid JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) +
               " at offset " + std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return bad("the document must be a JSON object");

  Manifest m;
  const std::set<std::string> known = {"name",  "version", "description",
                                       "ports", "scripts", "dependencies"};
  for (const auto& member : doc.GetObject()) {
    std::string key = member.name.GetString();
    if (!known.contains(key)) {
      return bad("unknown field '" + key +
                 "' (known: name, version, description, ports, scripts, dependencies)");
    }
  }

  auto string = [&](const char* key, bool required, std::string& out) -> Result<void> {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd()) {
      if (required) return bad("field '" + std::string(key) + "' is required");
      return Ok();
    }
    if (!it->value.IsString()) return bad("field '" + std::string(key) + "' must be a string");
    out = it->value.GetString();
    return Ok();
  };
  CORCH_TRY(string("name", true, m.name));
  if (!validName(m.name)) {
    return bad("field 'name' must be made of letters, digits, '-', '_' and '.' (got '" + m.name +
               "')");
  }
  CORCH_TRY(string("version", true, m.version));
  if (m.version.empty()) return bad("field 'version' must not be empty");
  CORCH_TRY(string("description", false, m.description));

  if (auto it = doc.FindMember("ports"); it != doc.MemberEnd()) {
    if (!it->value.IsObject()) return bad("field 'ports' must be an object");
    for (const auto& member : it->value.GetObject()) {
      std::string key = member.name.GetString();
      if (key != "min" && key != "max") {
        return bad("unknown field 'ports." + key + "' (known: min, max)");
      }
      if (!member.value.IsUint()) return bad("field 'ports." + key + "' must be an integer >= 0");
      (key == "min" ? m.ports_min : m.ports_max) = member.value.GetUint();
    }
    if (m.ports_min && m.ports_max && *m.ports_min > *m.ports_max) {
      return bad("'ports.min' (" + std::to_string(*m.ports_min) + ") exceeds 'ports.max' (" +
                 std::to_string(*m.ports_max) + ")");
    }
  }

  if (auto it = doc.FindMember("scripts"); it != doc.MemberEnd()) {
    if (!it->value.IsObject()) return bad("field 'scripts' must be an object");
    for (const auto& member : it->value.GetObject()) {
      std::string key = member.name.GetString();
      std::string* slot = key == "start"    ? &m.start
                          : key == "stop"   ? &m.stop
                          : key == "update" ? &m.update
                          : key == "status" ? &m.status
                                            : nullptr;
      if (slot == nullptr) {
        return bad("unknown field 'scripts." + key + "' (known: start, stop, update, status)");
      }
      if (!member.value.IsString() || !validScriptPath(member.value.GetString())) {
        return bad("field 'scripts." + key +
                   "' must be a path relative to the package folder, without '..'");
      }
      *slot = member.value.GetString();
    }
  }

  if (auto it = doc.FindMember("dependencies"); it != doc.MemberEnd()) {
    if (!it->value.IsArray()) return bad("field 'dependencies' must be a list of executable names");
    std::set<std::string> seen;
    for (const auto& dep : it->value.GetArray()) {
      if (!dep.IsString() || dep.GetStringLength() == 0) {
        return bad("field 'dependencies' must hold non-empty strings");
      }
      std::string name = dep.GetString();
      if (!seen.insert(name).second) return bad("dependency '" + name + "' is listed twice");
      m.dependencies.push_back(name);
    }
  }
  return m;
}

Result<Package> loadPackage(const std::string& dir, const std::string& path_var) {
  const std::string doing = "cannot use NSF package " + dir;
  if (dir.empty() || dir.front() != '/') {
    return Error(ErrorCode::InvalidArgument, doing + ": the image must be an absolute path");
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return errnoError(doing, errno);
  if (!S_ISDIR(st.st_mode)) {
    return Error(ErrorCode::InvalidArgument, doing + ": it is not a folder");
  }
  const std::string manifest_path = dir + "/manifest.json";
  if (::stat(manifest_path.c_str(), &st) != 0) {
    return errnoError(doing + ": cannot read " + manifest_path, errno);
  }
  std::ifstream in(manifest_path);
  if (!in) return Error(ErrorCode::InvalidArgument, doing + ": cannot read " + manifest_path);
  std::stringstream text;
  text << in.rdbuf();
  auto manifest = parseManifest(text.str(), manifest_path);
  if (!manifest.ok()) return std::move(manifest).error();

  Package pkg;
  pkg.dir = dir;
  pkg.manifest = std::move(manifest).value();
  struct Script {
    const char* role;
    const std::string& rel;
    std::string& abs;
  };
  for (Script s :
       {Script{"start", pkg.manifest.start, pkg.start}, Script{"stop", pkg.manifest.stop, pkg.stop},
        Script{"update", pkg.manifest.update, pkg.update},
        Script{"status", pkg.manifest.status, pkg.status}}) {
    if (s.rel.empty()) continue;
    std::string path = dir + "/" + s.rel;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Error(ErrorCode::InvalidArgument,
                   doing + ": its " + s.role + " script " + path + " is not a file");
    }
    if (::access(path.c_str(), X_OK) != 0) {
      return Error(ErrorCode::InvalidArgument,
                   doing + ": its " + s.role + " script " + path + " is not executable");
    }
    s.abs = path;
  }
  for (const auto& dep : pkg.manifest.dependencies) {
    if (!platform::findExecutable(dep, path_var)) {
      return Error(ErrorCode::Unavailable, doing + ": its dependency '" + dep +
                                               "' is not installed on this node (PATH " + path_var +
                                               ")");
    }
  }
  return pkg;
}

}  // namespace corch::drivers::native
