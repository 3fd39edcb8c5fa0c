#include "node/config.h"

#include "corch/log.h"
#include "security/security_manager.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace corch::node {
namespace {

namespace fs = std::filesystem;
using rapidjson::Value;

// The bounds of auth.token-lifetime-s: the security manager's.
constexpr uint64_t kMinTokenLifetimeS = security::kMinTokenLifetime.count();
constexpr uint64_t kMaxTokenLifetimeS = security::kMaxTokenLifetime.count();

Error fieldError(const std::string& pointer, const std::string& message) {
  return Error::field(ErrorCode::InvalidArgument, pointer, message);
}

Result<void> onlyKeys(const Value& object, const std::string& pointer,
                      const std::set<std::string>& known) {
  if (!object.IsObject()) return fieldError(pointer, "must be an object");
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    std::string key = it->name.GetString();
    if (!known.count(key)) return fieldError(pointer + "/" + key, "unknown field '" + key + "'");
  }
  return Ok();
}

Result<std::string> getString(const Value& v, const std::string& pointer) {
  if (!v.IsString()) return fieldError(pointer, "must be a string");
  return std::string(v.GetString(), v.GetStringLength());
}

Result<uint64_t> getUint(const Value& v, const std::string& pointer, uint64_t max) {
  if (!v.IsUint64() || v.GetUint64() > max) {
    return fieldError(pointer, "must be an integer from 0 to " + std::to_string(max));
  }
  return v.GetUint64();
}

Result<DriverOptions> getOptions(const Value& v, const std::string& pointer) {
  if (!v.IsObject()) return fieldError(pointer, "must be an object of driver options");
  DriverOptions out;
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    std::string key = it->name.GetString();
    const Value& value = it->value;
    if (value.IsString()) {
      out.values[key] = value.GetString();
    } else if (value.IsNumber() || value.IsBool()) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
      value.Accept(writer);
      out.values[key] = buf.GetString();
    } else {
      return fieldError(pointer + "/" + key, "must be a string, number or boolean");
    }
  }
  return out;
}

#define CONFIG_TRY_ASSIGN(target, expr)                        \
  do {                                                         \
    auto corch_value_ = (expr);                                \
    if (!corch_value_) return std::move(corch_value_).error(); \
    target = std::move(*corch_value_);                         \
  } while (0)

Result<std::pair<std::string, uint16_t>> parseListen(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Error(ErrorCode::InvalidArgument, "--listen wants HOST:PORT, not '" + text + "'");
  }
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    unsigned long port = std::stoul(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || port > 65535) throw std::out_of_range("port");
    return std::make_pair(host, static_cast<uint16_t>(port));
  } catch (const std::exception&) {
    return Error(ErrorCode::InvalidArgument, "--listen wants HOST:PORT, not '" + text + "'");
  }
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

Result<Config> parseConfig(const std::string& text, Config c) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) {
    return Error(ErrorCode::Malformed,
                 "configuration is not JSON: " +
                     std::string(rapidjson::GetParseError_En(doc.GetParseError())) + " at offset " +
                     std::to_string(doc.GetErrorOffset()));
  }
  CORCH_TRY(onlyKeys(doc, "",
                     {"rest", "vswitch", "lsi0", "name-prefix", "physical-ports", "compute",
                      "repository", "image-root", "state-dir", "log-level", "resources", "auth",
                      "tls", "initial-admin", "initial-graphs", "restore-graphs"}));
  if (doc.HasMember("rest")) {
    const Value& rest = doc["rest"];
    CORCH_TRY(
        onlyKeys(rest, "/rest",
                 {"address", "port", "threads", "max-connections", "max-connections-per-address",
                  "head-timeout-s", "body-timeout-s", "idle-timeout-s"}));
    struct Limit {
      const char* key;
      unsigned* value;
      unsigned max;
    };
    for (const Limit& l :
         {Limit{"max-connections", &c.rest_max_connections, 1'000'000},
          Limit{"max-connections-per-address", &c.rest_max_connections_per_address, 1'000'000},
          Limit{"head-timeout-s", &c.rest_head_timeout_s, 3600},
          Limit{"body-timeout-s", &c.rest_body_timeout_s, 3600},
          Limit{"idle-timeout-s", &c.rest_idle_timeout_s, 86400}}) {
      if (!rest.HasMember(l.key)) continue;
      const std::string pointer = std::string("/rest/") + l.key;
      CONFIG_TRY_ASSIGN(*l.value, getUint(rest[l.key], pointer, l.max));
      if (*l.value == 0) {
        return Error::field(ErrorCode::InvalidArgument, pointer, "must be at least 1");
      }
    }
    if (rest.HasMember("address"))
      CONFIG_TRY_ASSIGN(c.listen_host, getString(rest["address"], "/rest/address"));
    if (rest.HasMember("port"))
      CONFIG_TRY_ASSIGN(c.listen_port, getUint(rest["port"], "/rest/port", 65535));
    if (rest.HasMember("threads"))
      CONFIG_TRY_ASSIGN(c.rest_threads, getUint(rest["threads"], "/rest/threads", 1024));
  }
  if (doc.HasMember("vswitch")) {
    const Value& vs = doc["vswitch"];
    CORCH_TRY(onlyKeys(vs, "/vswitch", {"driver", "options"}));
    if (vs.HasMember("driver"))
      CONFIG_TRY_ASSIGN(c.vswitch_driver, getString(vs["driver"], "/vswitch/driver"));
    if (vs.HasMember("options")) {
      DriverOptions options;
      CONFIG_TRY_ASSIGN(options, getOptions(vs["options"], "/vswitch/options"));
      for (auto& [k, v] : options.values) c.vswitch_options.values[k] = v;
    }
  }
  if (doc.HasMember("lsi0")) CONFIG_TRY_ASSIGN(c.lsi0, getString(doc["lsi0"], "/lsi0"));
  if (doc.HasMember("name-prefix"))
    CONFIG_TRY_ASSIGN(c.prefix, getString(doc["name-prefix"], "/name-prefix"));
  if (doc.HasMember("physical-ports")) {
    const Value& ports = doc["physical-ports"];
    if (!ports.IsArray()) return fieldError("/physical-ports", "must be a list of interface names");
    c.physical_ports.clear();
    for (rapidjson::SizeType i = 0; i < ports.Size(); ++i) {
      std::string name;
      CONFIG_TRY_ASSIGN(name, getString(ports[i], "/physical-ports/" + std::to_string(i)));
      c.physical_ports.push_back(name);
    }
  }
  if (doc.HasMember("compute")) {
    const Value& compute = doc["compute"];
    CORCH_TRY(onlyKeys(
        compute, "/compute",
        {"drivers", "timeout-ms", "parallelism", "reserved-cpus", "min-shared-cpus", "pinning"}));
    if (compute.HasMember("reserved-cpus")) {
      std::string list;
      CONFIG_TRY_ASSIGN(list, getString(compute["reserved-cpus"], "/compute/reserved-cpus"));
      c.reserved_cpus = list;
    }
    if (compute.HasMember("min-shared-cpus"))
      CONFIG_TRY_ASSIGN(c.min_shared_cpus,
                        getUint(compute["min-shared-cpus"], "/compute/min-shared-cpus", 4096));
    if (compute.HasMember("pinning")) {
      std::string pinning;
      CONFIG_TRY_ASSIGN(pinning, getString(compute["pinning"], "/compute/pinning"));
      if (pinning != "best-effort" && pinning != "strict") {
        return fieldError("/compute/pinning",
                          "is \"best-effort\" or \"strict\", not \"" + pinning + "\"");
      }
      c.strict_pinning = pinning == "strict";
    }
    if (compute.HasMember("drivers")) {
      const Value& drivers = compute["drivers"];
      if (!drivers.IsObject())
        return fieldError("/compute/drivers", "must be an object of driver name -> options");
      c.compute_drivers.clear();
      for (auto it = drivers.MemberBegin(); it != drivers.MemberEnd(); ++it) {
        std::string name = it->name.GetString();
        CONFIG_TRY_ASSIGN(c.compute_drivers[name],
                          getOptions(it->value, "/compute/drivers/" + name));
      }
    }
    if (compute.HasMember("timeout-ms"))
      CONFIG_TRY_ASSIGN(c.function_timeout_ms,
                        getUint(compute["timeout-ms"], "/compute/timeout-ms", 3600000));
    if (compute.HasMember("parallelism"))
      CONFIG_TRY_ASSIGN(c.start_parallelism,
                        getUint(compute["parallelism"], "/compute/parallelism", 256));
  }
  if (doc.HasMember("repository"))
    CONFIG_TRY_ASSIGN(c.repository, getString(doc["repository"], "/repository"));
  if (doc.HasMember("image-root"))
    CONFIG_TRY_ASSIGN(c.image_root, getString(doc["image-root"], "/image-root"));
  if (doc.HasMember("state-dir"))
    CONFIG_TRY_ASSIGN(c.state_dir, getString(doc["state-dir"], "/state-dir"));
  if (doc.HasMember("log-level"))
    CONFIG_TRY_ASSIGN(c.log_level, getString(doc["log-level"], "/log-level"));
  if (doc.HasMember("resources")) {
    const Value& r = doc["resources"];
    CORCH_TRY(onlyKeys(r, "/resources", {"cpu-cores", "memory-mb", "disk-mb"}));
    if (r.HasMember("cpu-cores")) {
      if (!r["cpu-cores"].IsNumber() || r["cpu-cores"].GetDouble() < 0) {
        return fieldError("/resources/cpu-cores", "must be a non-negative number");
      }
      c.cpu_cores = r["cpu-cores"].GetDouble();
    }
    if (r.HasMember("memory-mb"))
      CONFIG_TRY_ASSIGN(c.memory_mb, getUint(r["memory-mb"], "/resources/memory-mb", UINT32_MAX));
    if (r.HasMember("disk-mb"))
      CONFIG_TRY_ASSIGN(c.disk_mb, getUint(r["disk-mb"], "/resources/disk-mb", UINT32_MAX));
  }
  if (doc.HasMember("auth")) {
    const Value& auth = doc["auth"];
    CORCH_TRY(onlyKeys(auth, "/auth", {"enabled", "users-file", "token-lifetime-s"}));
    if (auth.HasMember("enabled")) {
      if (!auth["enabled"].IsBool()) return fieldError("/auth/enabled", "must be true or false");
      c.auth_enabled = auth["enabled"].GetBool();
    }
    if (auth.HasMember("users-file"))
      CONFIG_TRY_ASSIGN(c.users_file, getString(auth["users-file"], "/auth/users-file"));
    if (auth.HasMember("token-lifetime-s")) {
      const Value& lifetime = auth["token-lifetime-s"];
      if (!lifetime.IsUint64() || lifetime.GetUint64() < kMinTokenLifetimeS ||
          lifetime.GetUint64() > kMaxTokenLifetimeS) {
        return fieldError("/auth/token-lifetime-s",
                          "must be an integer from " + std::to_string(kMinTokenLifetimeS) + " to " +
                              std::to_string(kMaxTokenLifetimeS) + " (seconds)");
      }
      c.token_lifetime_s = static_cast<uint32_t>(lifetime.GetUint64());
    }
  }
  if (doc.HasMember("initial-admin")) {
    const Value& admin = doc["initial-admin"];
    CORCH_TRY(onlyKeys(admin, "/initial-admin", {"name", "password-file"}));
    if (!admin.HasMember("name") || !admin.HasMember("password-file")) {
      return fieldError(
          admin.HasMember("name") ? "/initial-admin/password-file" : "/initial-admin/name",
          "is missing (initial-admin needs a name and a password-file)");
    }
    CONFIG_TRY_ASSIGN(c.initial_admin, getString(admin["name"], "/initial-admin/name"));
    CONFIG_TRY_ASSIGN(c.initial_admin_password_file,
                      getString(admin["password-file"], "/initial-admin/password-file"));
    if (auto valid = security::checkUserName(c.initial_admin); !valid) {
      return fieldError("/initial-admin/name", valid.error().message());
    }
    if (c.initial_admin_password_file.empty()) {
      return fieldError("/initial-admin/password-file", "must not be empty");
    }
  }
  if (doc.HasMember("tls")) {
    const Value& tls = doc["tls"];
    CORCH_TRY(onlyKeys(tls, "/tls", {"enabled", "certificate", "private-key"}));
    if (tls.HasMember("enabled")) {
      if (!tls["enabled"].IsBool()) return fieldError("/tls/enabled", "must be true or false");
      c.tls_enabled = tls["enabled"].GetBool();
    }
    if (tls.HasMember("certificate"))
      CONFIG_TRY_ASSIGN(c.tls_certificate, getString(tls["certificate"], "/tls/certificate"));
    if (tls.HasMember("private-key"))
      CONFIG_TRY_ASSIGN(c.tls_private_key, getString(tls["private-key"], "/tls/private-key"));
  }
  if (doc.HasMember("initial-graphs")) {
    const Value& list = doc["initial-graphs"];
    if (!list.IsArray()) {
      return fieldError("/initial-graphs", "must be a list of {\"id\", \"file\"} objects");
    }
    c.initial_graphs.clear();
    std::set<std::string> ids;
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
      const std::string pointer = "/initial-graphs/" + std::to_string(i);
      const Value& entry = list[i];
      CORCH_TRY(onlyKeys(entry, pointer, {"id", "file"}));
      for (const char* key : {"id", "file"}) {
        if (!entry.HasMember(key)) return fieldError(pointer + "/" + key, "is missing");
      }
      InitialGraph graph;
      CONFIG_TRY_ASSIGN(graph.id, getString(entry["id"], pointer + "/id"));
      CONFIG_TRY_ASSIGN(graph.file, getString(entry["file"], pointer + "/file"));
      if (graph.id.empty()) return fieldError(pointer + "/id", "must not be empty");
      if (graph.file.empty()) return fieldError(pointer + "/file", "must not be empty");
      if (!ids.insert(graph.id).second) {
        return fieldError(pointer + "/id", "graph '" + graph.id + "' is listed twice");
      }
      c.initial_graphs.push_back(std::move(graph));
    }
  }
  if (doc.HasMember("restore-graphs")) {
    if (!doc["restore-graphs"].IsBool()) {
      return fieldError("/restore-graphs", "must be true or false");
    }
    c.restore_graphs = doc["restore-graphs"].GetBool();
  }
  return c;
}

std::string tlsCertificateFile(const Config& config) {
  if (!config.tls_certificate.empty()) return config.tls_certificate;
  return (fs::path(config.state_dir) / "tls" / "cert.pem").string();
}

std::string tlsPrivateKeyFile(const Config& config) {
  if (!config.tls_private_key.empty()) return config.tls_private_key;
  return (fs::path(config.state_dir) / "tls" / "key.pem").string();
}

std::string usersFile(const Config& config) {
  if (!config.users_file.empty()) return config.users_file;
  return (fs::path(config.state_dir) / "users.json").string();
}

Result<Config> loadConfig(const std::string& path, Config base) {
  std::ifstream in(path);
  if (!in) return errnoError("cannot read configuration " + path, errno);
  std::stringstream text;
  text << in.rdbuf();
  auto config = parseConfig(text.str(), std::move(base));
  if (!config) return std::move(config).error().context("configuration " + path);
  return config;
}

std::string usage() {
  return R"(Usage: corchd [OPTIONS]

corchd, the corch node orchestrator: deploys service graphs (SF-FG) received over REST
on this node's vSwitch and execution environments.

Options (flags override the configuration file):
  --config FILE            JSON configuration file (see README: every field optional)
  --listen HOST:PORT       REST API address (default 127.0.0.1:8080)
  --ovsdb unix:PATH        OVSDB socket of Open vSwitch (default unix:/run/openvswitch/db.sock;
                           also tcp:IP:PORT)
  --datapath TYPE          bridge datapath: system, netdev, or auto (default: system when the
                           openvswitch kernel module is loaded, else netdev)
  --physical-ports A,B,... interfaces attached to LSI-0 (the node's physical ports)
  --repository DIR         SF repository: a folder of templates (or one holding templates/)
  --state-dir DIR          where corchd keeps its state and function logs (default /var/lib/corch)
  --log-level LEVEL        debug, info, warn, error (default info)
  --name-prefix NAME       prefix of the LSIs, namespaces and ports corchd creates (default corch)
  --auth on|off            require a token from POST /login on every REST request (default on;
                           the configuration's auth.enabled; off is logged as a warning)
  --users-file FILE        the users of the REST API (default STATE-DIR/users.json)
  --tls-cert FILE          HTTPS certificate, PEM (default STATE-DIR/tls/cert.pem; generated,
                           self-signed, with its key, when neither file exists)
  --tls-key FILE           HTTPS private key, PEM (default STATE-DIR/tls/key.pem)
  --no-tls                 serve plain HTTP (for clients that speak only HTTP, such as FROG4);
                           logged as a warning at every start. Authentication stays on
  --initial-admin NAME --initial-admin-password-file FILE
                           create the admin NAME with the password in FILE (its first line) at
                           start if the users file holds no user (the configuration's
                           initial-admin)
  --add-user NAME --role admin|operator|user
                           add a user to the users file, reading the password from stdin (asked
                           twice on a terminal), then exit; the way to create the first user.
                           With --if-missing, a user who already exists is not an error (the
                           password is not changed)
  --help                   this text
  --version                corchd's version
)";
}

Result<CommandLine> parseCommandLine(int argc, char** argv, Config defaults) {
  CommandLine cl;
  cl.config = std::move(defaults);
  std::vector<std::string> args(argv + 1, argv + argc);
  // --config first, so that the other flags override it wherever they stand.
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) return Error(ErrorCode::InvalidArgument, "--config needs a FILE");
      auto loaded = loadConfig(args[i + 1], cl.config);
      if (!loaded) return std::move(loaded).error();
      cl.config = std::move(*loaded);
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--help" || flag == "-h") {
      cl.help = true;
      continue;
    }
    if (flag == "--version") {
      cl.version = true;
      continue;
    }
    if (flag == "--no-tls") {
      cl.config.tls_enabled = false;
      continue;
    }
    if (flag == "--if-missing") {
      cl.if_missing = true;
      continue;
    }
    static const std::set<std::string> with_value = {"--config",
                                                     "--listen",
                                                     "--ovsdb",
                                                     "--datapath",
                                                     "--physical-ports",
                                                     "--repository",
                                                     "--state-dir",
                                                     "--log-level",
                                                     "--name-prefix",
                                                     "--auth",
                                                     "--users-file",
                                                     "--add-user",
                                                     "--role",
                                                     "--tls-cert",
                                                     "--tls-key",
                                                     "--initial-admin",
                                                     "--initial-admin-password-file"};
    if (!with_value.count(flag)) {
      return Error(ErrorCode::InvalidArgument, "unknown option '" + flag + "' (see --help)");
    }
    if (i + 1 >= args.size()) return Error(ErrorCode::InvalidArgument, flag + " needs a value");
    const std::string& value = args[++i];
    Config& c = cl.config;
    if (flag == "--listen") {
      auto listen = parseListen(value);
      if (!listen) return std::move(listen).error();
      c.listen_host = listen->first;
      c.listen_port = listen->second;
    } else if (flag == "--ovsdb") {
      c.vswitch_options.values["ovsdb"] = value;
    } else if (flag == "--datapath") {
      if (value != "system" && value != "netdev" && value != "auto") {
        return Error(ErrorCode::InvalidArgument,
                     "--datapath is system, netdev or auto, not '" + value + "'");
      }
      c.vswitch_options.values["datapath"] = value;
    } else if (flag == "--physical-ports") {
      c.physical_ports = splitList(value);
    } else if (flag == "--repository") {
      c.repository = value;
    } else if (flag == "--state-dir") {
      c.state_dir = value;
    } else if (flag == "--log-level") {
      c.log_level = value;
    } else if (flag == "--name-prefix") {
      c.prefix = value;
    } else if (flag == "--auth") {
      if (value != "on" && value != "off") {
        return Error(ErrorCode::InvalidArgument, "--auth is on or off, not '" + value + "'");
      }
      c.auth_enabled = value == "on";
    } else if (flag == "--users-file") {
      c.users_file = value;
    } else if (flag == "--tls-cert") {
      c.tls_certificate = value;
    } else if (flag == "--tls-key") {
      c.tls_private_key = value;
    } else if (flag == "--initial-admin") {
      if (auto valid = security::checkUserName(value); !valid) {
        return Error(ErrorCode::InvalidArgument, "--initial-admin: " + valid.error().message());
      }
      c.initial_admin = value;
    } else if (flag == "--initial-admin-password-file") {
      c.initial_admin_password_file = value;
    } else if (flag == "--add-user") {
      cl.add_user = value;
    } else if (flag == "--role") {
      cl.role = value;
    }
  }
  if (cl.add_user && cl.role.empty()) {
    return Error(ErrorCode::InvalidArgument,
                 "--add-user needs --role admin, operator or user (the role is never implied)");
  }
  if (cl.config.initial_admin.empty() != cl.config.initial_admin_password_file.empty()) {
    return Error(ErrorCode::InvalidArgument,
                 "--initial-admin and --initial-admin-password-file go together");
  }
  if (cl.if_missing && !cl.add_user) {
    return Error(ErrorCode::InvalidArgument, "--if-missing goes with --add-user NAME");
  }
  if (!cl.add_user && !cl.role.empty()) {
    return Error(ErrorCode::InvalidArgument, "--role goes with --add-user NAME");
  }
  return cl;
}

Result<void> finalizeConfig(Config& c) {
  // No compute drivers configured: corchd loads every one built in (main.cc), with defaults.
  if (!c.vswitch_options.get("ovsdb"))
    c.vswitch_options.values["ovsdb"] = "unix:/run/openvswitch/db.sock";
  std::string datapath = c.vswitch_options.getOr("datapath", "auto");
  if (datapath == "auto") {
    datapath = fs::exists("/sys/module/openvswitch") ? "system" : "netdev";
  }
  c.vswitch_options.values["datapath"] = datapath;
  if (c.prefix.empty() || c.prefix.size() > 6) {
    return Error(ErrorCode::InvalidArgument,
                 "name-prefix must have 1 to 6 characters (interface names are short), not '" +
                     c.prefix + "'");
  }
  if (c.lsi0.empty()) c.lsi0 = c.prefix + "0";
  if (c.repository.empty())
    return Error(ErrorCode::InvalidArgument, "no SF repository configured (--repository)");
  std::error_code ec;
  fs::path repo = fs::absolute(c.repository, ec);
  if (fs::is_directory(repo / "templates")) repo /= "templates";
  if (!fs::is_directory(repo)) {
    return Error(ErrorCode::NotFound, "SF repository " + c.repository + " is not a folder");
  }
  c.repository = repo.lexically_normal().string();
  if (c.image_root.empty()) {
    // sf-repository/templates -> the folder holding sf-repository/ (and nsf/).
    fs::path root = repo.lexically_normal();
    if (root.filename() == "templates") root = root.parent_path();
    c.image_root = root.parent_path().string();
  }
  if (!log::parseLevel(c.log_level)) {
    return Error(ErrorCode::InvalidArgument,
                 "log level is debug, info, warn or error, not '" + c.log_level + "'");
  }
  return Ok();
}

}  // namespace corch::node
