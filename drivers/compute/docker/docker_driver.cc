// The 'docker' compute driver (DESIGN section 7): a function is a container run by a Docker
// Engine (dockerd, or podman's Docker-compatible service) spoken to through its REST API on a
// unix socket (unix_http.h); no docker or podman process is spawned per operation.
//
// The container gets no network of its own: the function's ports (veth ends made by the vSwitch
// driver in corchd's namespace) become eth0..ethN-1 inside the container's network namespace, in
// port order. Two ways (option "netns-mode"):
//   path : createSf makes a named namespace "<instance>" (as the native driver does), moves the
//          veth ends in, brings them up, and creates the container with HostConfig.NetworkMode
//          "ns:/var/run/netns/<instance>". The veths live as long as the namespace, whatever the
//          container does. Podman only (dockerd has no "ns:" mode).
//   move : the container has NetworkMode "none"; startSf moves the veth ends into
//          /proc/<State.Pid>/ns/net after the start (the entrypoint waits for CORCH_PORTS
//          interfaces), and stopSf moves them back out before the stop, since they would die with
//          the container's namespace. Works on dockerd and on podman.
//   auto : path on podman, move on dockerd (the default).
//
//   createSf  : checks the engine settings, the ports and the image, makes the namespace (path),
//               creates the container: name = instance, Image = SfSpec::image, labels corch.graph,
//               corch.sf, corch.instance, corch.template (a restarted corchd finds its containers
//               by them), environment CORCH_CONFIG (the configuration's JSON), CORCH_CFG_<KEY> per
//               key (compute/common/config_env.h), CORCH_GRAPH, CORCH_SF, CORCH_INSTANCE,
//               CORCH_PORTS, HostConfig CpusetCpus from SfSpec::cpus, NanoCpus and Memory from
//               the resources (unless option resource-limits is "off").
//   startSf   : POST /containers/{name}/start (or unpause), moves the ports in (move), waits for
//               State.Running. On failure: the container's last log lines in the error, its output
//               appended to SfSpec::log_path, the container stopped again.
//   stopSf    : POST /containers/{name}/stop?t=N, then appends the run's output to the log.
//   pauseSf   : POST /containers/{name}/pause (startSf resumes).
//   destroySf : DELETE /containers/{name}?force=true&v=true, then the namespace and its links.
//   adoptSf   : reads only. NotFound when the engine has no container of that name; Conflict when
//               it is not running (paused, exited, created) or when a port is not in its network
//               namespace (/proc/<State.Pid>/ns/net, in both modes) as eth<i>, or that namespace
//               has an eth<k> the spec has not.
//   stopSf and destroySf are Ok when there is nothing left (404).
//
// Engine settings ("engine" object of the template): see engine_settings.h (command, entrypoint,
// env, cap-add, privileged, stop-timeout).
//
// Options: "socket" (default unix:///var/run/docker.sock), "api-version" (default v1.41),
// "netns-mode" (auto | path | move), "resource-limits" (on | off, default on: NanoCpus and Memory
// from the template's resources; off for engines whose cgroup setup refuses them).
//
// The driver keeps no state between calls but what it learnt from the engine's /version (podman
// or dockerd): everything else is found again by the instance name, so a restarted corchd adopts,
// stops and destroys an earlier one's containers with nothing to pick up.
#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <thread>

#include "compute/common/config_env.h"
#include "compute/common/function_log.h"
#include "compute/common/function_netns.h"
#include "corch/driver_registry.h"
#include "corch/log.h"
#include "engine_settings.h"
#include "platform/netlink.h"
#include "platform/netns.h"
#include "unix_http.h"

namespace corch::drivers::docker {
namespace {

using common::ifnameInside;
using platform::RouteSocket;
using platform::UniqueFd;
using std::chrono::steady_clock;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

log::Logger lg("docker");

constexpr std::chrono::milliseconds kDefaultTimeout{10000};
constexpr std::chrono::milliseconds kMaxPoll{100};
constexpr int kErrorLogLines = 10;

enum class NetnsMode { Auto, Path, Move };
enum class EngineKind { Unknown, Podman, Dockerd };

Deadline deadlineOf(const SfSpec& sf) {
  return steady_clock::now() + (sf.timeout.count() > 0 ? sf.timeout : kDefaultTimeout);
}

// Percent-encoding for a query value or a path segment (image references hold '/' and ':').
std::string urlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// The engine's own words from an error answer: {"message": "..."} (dockerd and podman), else the
// body itself, shortened.
std::string engineMessage(const HttpResponse& r) {
  rapidjson::Document doc;
  doc.Parse(r.body.c_str(), r.body.size());
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("message") &&
      doc["message"].IsString()) {
    return doc["message"].GetString();
  }
  std::string text = r.body.substr(0, 300);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// An engine answer that is not a success, as a corch Error. Podman answers a name conflict with
// 500 "... already in use", dockerd with 409; a missing image is 404 on both, but podman also
// says "image not known" with 500 in places.
Error engineError(const HttpResponse& r, const std::string& doing) {
  const std::string msg = engineMessage(r);
  const std::string text = doing + ": the engine answered " + std::to_string(r.status) + ": " + msg;
  ErrorCode code = ErrorCode::Internal;
  if (r.status == 404 || contains(msg, "no such image") || contains(msg, "image not known")) {
    code = ErrorCode::NotFound;
  } else if (contains(msg, "already in use") || contains(msg, "already exists")) {
    code = ErrorCode::AlreadyExists;
  } else if (r.status == 409) {
    code = ErrorCode::Conflict;
  } else if (r.status == 400) {
    code = ErrorCode::InvalidArgument;
  } else if (r.status == 401 || r.status == 403) {
    code = ErrorCode::PermissionDenied;
  }
  return Error(code, text);
}

// What /containers/{name}/json says about a container.
struct ContainerState {
  bool exists = false;
  bool running = false;
  bool paused = false;
  std::string status;  // "created", "running", "exited"...
  int pid = 0;
  int exit_code = 0;
  std::string error;       // State.Error
  std::string started_at;  // RFC 3339
};

// Splits a log stream in the engine's multiplexed format (8-byte frame headers: stream, 0, 0, 0,
// big-endian length) into plain text; text that does not look framed (a TTY) is kept as it is.
std::string demuxLogs(const std::string& raw) {
  std::string out;
  size_t pos = 0;
  while (pos + 8 <= raw.size()) {
    const auto* h = reinterpret_cast<const unsigned char*>(raw.data() + pos);
    if (h[0] > 2 || h[1] != 0 || h[2] != 0 || h[3] != 0) return raw;
    size_t len = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | h[7];
    if (pos + 8 + len > raw.size()) return raw;
    out.append(raw, pos + 8, len);
    pos += 8 + len;
  }
  return pos == raw.size() ? out : raw;
}

// RFC 3339 "2026-11-23T14:00:00.123Z" -> seconds since the epoch (0 when unreadable).
long long unixSeconds(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.size() < 19 ||
      ::strptime(rfc3339.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return 0;
  }
  return static_cast<long long>(::timegm(&tm));
}

// "1.41" -> 141 (major * 100 + minor); -1 when unreadable.
int versionNumber(std::string v) {
  if (!v.empty() && v[0] == 'v') v.erase(0, 1);
  int major = 0, minor = 0;
  if (std::sscanf(v.c_str(), "%d.%d", &major, &minor) != 2) return -1;
  return major * 100 + minor;
}

void writeStrings(Writer& w, const std::vector<std::string>& items) {
  w.StartArray();
  for (const auto& s : items) w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

void writeKeyString(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

struct Options {
  std::string socket_path;
  std::string api_version;  // "v1.41"
  NetnsMode netns_mode = NetnsMode::Auto;
  bool resource_limits = true;
};

Result<Options> readOptions(const DriverOptions& o) {
  Options out;
  std::string socket = o.getOr("socket", "unix:///var/run/docker.sock");
  if (socket.rfind("unix://", 0) == 0) socket.erase(0, 7);
  if (socket.empty() || socket[0] != '/') {
    return Error(ErrorCode::InvalidArgument,
                 "docker driver: option socket must be unix:///<absolute path>, not '" +
                     o.getOr("socket", "") + "'");
  }
  out.socket_path = socket;
  out.api_version = o.getOr("api-version", "v1.41");
  if (out.api_version.empty() || out.api_version[0] != 'v') out.api_version = "v" + out.api_version;
  if (versionNumber(out.api_version) < 0) {
    return Error(ErrorCode::InvalidArgument,
                 "docker driver: option api-version must look like "
                 "v1.41, not '" +
                     o.getOr("api-version", "") + "'");
  }
  const std::string mode = o.getOr("netns-mode", "auto");
  if (mode == "auto") {
    out.netns_mode = NetnsMode::Auto;
  } else if (mode == "path") {
    out.netns_mode = NetnsMode::Path;
  } else if (mode == "move") {
    out.netns_mode = NetnsMode::Move;
  } else {
    return Error(ErrorCode::InvalidArgument,
                 "docker driver: option netns-mode must be auto, path or move, not '" + mode + "'");
  }
  const std::string limits = o.getOr("resource-limits", "on");
  if (limits != "on" && limits != "off") {
    return Error(ErrorCode::InvalidArgument,
                 "docker driver: option resource-limits must be on or off, not '" + limits + "'");
  }
  out.resource_limits = limits == "on";
  return out;
}

class DockerDriver final : public ComputeDriver {
 public:
  explicit DockerDriver(Options options)
      : options_(std::move(options)), http_(options_.socket_path) {}

  std::string_view name() const override { return "docker"; }

  Result<void> probe() override {
    const std::string doing = "the docker driver cannot use the engine at " + options_.socket_path;
    struct stat st;
    if (::stat(options_.socket_path.c_str(), &st) != 0) {
      return Error(ErrorCode::Unavailable,
                   doing + ": " + std::strerror(errno) +
                       " (is dockerd or `podman system service` running? option socket)");
    }
    const Deadline deadline = steady_clock::now() + kDefaultTimeout;
    auto ping = http_.request("GET", "/_ping", "", deadline);
    if (!ping.ok()) return Error(ErrorCode::Unavailable, doing + ": " + ping.error().message());
    if (ping->status != 200) {
      return Error(ErrorCode::Unavailable,
                   doing + ": /_ping answered " + std::to_string(ping->status));
    }
    auto kind = learnEngine(deadline);
    if (!kind.ok()) return Error(ErrorCode::Unavailable, doing + ": " + kind.error().message());
    if (netnsMode() == NetnsMode::Path) {
      if (auto r = platform::prepareNetnsDir(); !r) {
        return Error(ErrorCode::Unavailable,
                     doing + ": named network namespaces are not usable: " + r.error().message());
      }
    }
    return Ok();
  }

  Result<void> createSf(const SfSpec& sf) override {
    const std::string doing = "cannot create container " + sf.instance;
    const Deadline deadline = deadlineOf(sf);
    auto settings = parseEngineSettings(sf.engine_json);
    if (!settings.ok()) return settings.error().context(doing);
    auto env = environment(sf, *settings);
    if (!env.ok()) return env.error().context(doing);
    CORCH_TRY(checkPorts(sf, doing));
    CORCH_TRY(checkImage(sf, deadline, doing));
    auto mode = resolveMode(deadline);
    if (!mode.ok()) return mode.error().context(doing);

    // Path mode: the namespace and its ports, undone unless the container is created.
    std::optional<common::FunctionNetns> netns;
    if (*mode == NetnsMode::Path) {
      if (auto r = platform::checkNetnsName(sf.instance); !r) return r.error().context(doing);
      auto made = common::FunctionNetns::createWithPorts(sf.instance, "", sf.ports);
      if (!made.ok()) return made.error().context(doing);
      netns.emplace(std::move(made).value());
    }
    const std::string body = containerBody(sf, *settings, *env, *mode);
    auto r = http_.request("POST", api("/containers/create?name=" + urlEncode(sf.instance)), body,
                           deadline);
    if (!r.ok()) return r.error().context(doing);
    if (r->status != 201 && r->status != 200) return engineError(*r, doing);
    if (netns) netns->commit();
    CORCH_LOG(lg, Info) << "created container " << sf.instance << " (image " << sf.image << ", "
                        << sf.ports.size() << " ports, netns mode "
                        << (*mode == NetnsMode::Path ? "path" : "move") << ")";
    return Ok();
  }

  Result<void> startSf(const SfSpec& sf) override {
    const std::string doing = "cannot start container " + sf.instance;
    const Deadline deadline = deadlineOf(sf);
    auto mode = resolveMode(deadline);
    if (!mode.ok()) return mode.error().context(doing);
    auto state = inspect(sf.instance, deadline, doing);
    if (!state.ok()) return std::move(state).error();
    if (!state->exists) return Error(ErrorCode::NotFound, doing + ": it was not created");
    if (state->paused) return post(sf.instance, "/unpause", deadline, doing);
    if (state->running) return Ok();
    if (*mode == NetnsMode::Path && !platform::netnsExists(sf.instance)) {
      return Error(ErrorCode::NotFound, doing + ": its network namespace is gone");
    }
    if (auto r = post(sf.instance, "/start", deadline, doing); !r) {
      return failStart(sf, r.error(), deadline);
    }
    if (*mode == NetnsMode::Move) {
      if (auto r = movePortsIn(sf, deadline, doing); !r) return failStart(sf, r.error(), deadline);
    }
    if (auto r = waitRunning(sf, deadline, doing); !r) return failStart(sf, r.error(), deadline);
    CORCH_LOG(lg, Info) << "started container " << sf.instance;
    return Ok();
  }

  Result<void> stopSf(const SfSpec& sf) override {
    const std::string doing = "cannot stop container " + sf.instance;
    const Deadline deadline = deadlineOf(sf);
    auto state = inspect(sf.instance, deadline, doing);
    if (!state.ok()) return std::move(state).error();
    if (!state->exists || !state->running) return Ok();
    auto mode = resolveMode(deadline);
    if (!mode.ok()) return mode.error().context(doing);
    if (*mode == NetnsMode::Move) movePortsOut(sf, state->pid);
    CORCH_TRY(stopContainer(sf, deadline, doing));
    saveLogs(sf, state->started_at, deadline);
    CORCH_LOG(lg, Info) << "stopped container " << sf.instance;
    return Ok();
  }

  Result<void> adoptSf(const SfSpec& sf) override {
    const std::string doing = "cannot adopt container " + sf.instance;
    const Deadline deadline = deadlineOf(sf);
    auto state = inspect(sf.instance, deadline, doing);
    if (!state.ok()) return std::move(state).error();
    if (!state->exists)
      return Error(ErrorCode::NotFound, doing + ": the engine has no such container");
    if (state->paused || !state->running || state->pid <= 0) {
      return Error(ErrorCode::Conflict,
                   doing + ": it is " + (state->paused ? std::string("paused") : state->status) +
                       ", not running");
    }
    const std::string path = "/proc/" + std::to_string(state->pid) + "/ns/net";
    UniqueFd ns_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns_fd && errno == ENOENT) {
      return Error(ErrorCode::Conflict, doing + ": it stopped while being looked at");
    }
    if (!ns_fd) return errnoError(doing + ": cannot open " + path, errno);
    if (auto r = common::checkPortsInside(ns_fd.get(), sf.instance, sf.ports); !r) {
      return r.error().context(doing);
    }
    CORCH_LOG(lg, Info) << "adopted running container " << sf.instance;
    return Ok();
  }

  Result<void> pauseSf(const SfSpec& sf) override {
    const std::string doing = "cannot pause container " + sf.instance;
    return post(sf.instance, "/pause", deadlineOf(sf), doing);
  }

  Result<std::vector<std::string>> listInstances(std::string_view prefix) override {
    const std::string doing = "cannot list the containers";
    const Deadline deadline = steady_clock::now() + kDefaultTimeout;
    auto r = http_.request("GET", api("/containers/json?all=true"), "", deadline);
    if (!r.ok()) return r.error().context(doing);
    if (r->status != 200) return engineError(*r, doing);
    rapidjson::Document doc;
    doc.Parse(r->body.c_str(), r->body.size());
    if (doc.HasParseError() || !doc.IsArray()) {
      return Error(ErrorCode::Internal, doing + ": the engine's answer is not a JSON array");
    }
    std::vector<std::string> out;
    for (const auto& c : doc.GetArray()) {
      if (!c.IsObject() || !c.HasMember("Names") || !c["Names"].IsArray()) continue;
      for (const auto& n : c["Names"].GetArray()) {
        if (!n.IsString()) continue;
        std::string_view name = n.GetString();
        if (name.starts_with('/')) name.remove_prefix(1);  // the engine writes "/<name>"
        if (name.starts_with(prefix)) out.emplace_back(name);
      }
    }
    // The namespaces the path mode made, also when their container is gone.
    auto namespaces = common::functionNetnsNames(prefix);
    if (namespaces.ok()) {
      for (auto& ns : *namespaces) {
        if (std::find(out.begin(), out.end(), ns) == out.end()) out.push_back(std::move(ns));
      }
    }
    return out;
  }

  Result<void> destroySf(const SfSpec& sf) override {
    const std::string doing = "cannot destroy container " + sf.instance;
    const Deadline deadline = deadlineOf(sf);
    auto state = inspect(sf.instance, deadline, doing);
    if (!state.ok()) return std::move(state).error();
    if (state->exists) {
      if (state->running) saveLogs(sf, state->started_at, deadline);
      auto r = http_.request("DELETE",
                             api("/containers/" + urlEncode(sf.instance) + "?force=true&v=true"),
                             "", deadline);
      if (!r.ok()) return r.error().context(doing);
      if (r->status != 200 && r->status != 204 && r->status != 404) return engineError(*r, doing);
    }
    // Whatever the mode, a namespace of this name is ours (the path mode made it).
    if (platform::checkNetnsName(sf.instance).ok()) {
      if (auto r = common::destroyFunctionNetns(sf.instance, lg); !r) {
        return r.error().context(doing);
      }
    }
    if (state->exists) CORCH_LOG(lg, Info) << "destroyed container " << sf.instance;
    return Ok();
  }

 private:
  std::string api(const std::string& path) const { return "/" + options_.api_version + path; }

  NetnsMode netnsMode() const {
    if (options_.netns_mode != NetnsMode::Auto) return options_.netns_mode;
    switch (kind_.load()) {
      case EngineKind::Podman:
        return NetnsMode::Path;
      case EngineKind::Dockerd:
        return NetnsMode::Move;
      case EngineKind::Unknown:
        break;
    }
    return NetnsMode::Auto;
  }

  // The mode for this engine, asking it what it is when nothing has yet (a call before probe()).
  Result<NetnsMode> resolveMode(Deadline deadline) {
    if (netnsMode() == NetnsMode::Auto) {
      auto kind = learnEngine(deadline);
      if (!kind.ok()) return std::move(kind).error();
    }
    return netnsMode();
  }

  // GET /version: the API versions the engine speaks, and whether it is podman.
  Result<EngineKind> learnEngine(Deadline deadline) {
    auto r = http_.request("GET", "/version", "", deadline);
    if (!r.ok()) return std::move(r).error();
    if (r->status != 200) return engineError(*r, "cannot ask the engine its version");
    rapidjson::Document doc;
    doc.Parse(r->body.c_str(), r->body.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      return Error(ErrorCode::Internal, "the engine's /version answer is not a JSON object");
    }
    auto str = [&](const char* key) -> std::string {
      return doc.HasMember(key) && doc[key].IsString() ? doc[key].GetString() : "";
    };
    const int ours = versionNumber(options_.api_version);
    const int max = versionNumber(str("ApiVersion"));
    const int min = versionNumber(str("MinAPIVersion"));
    if (max >= 0 && max < ours) {
      return Error(ErrorCode::Unavailable, "the engine speaks API versions up to " +
                                               str("ApiVersion") + ", older than the " +
                                               options_.api_version +
                                               " this driver is set to use (option api-version)");
    }
    if (min >= 0 && min > ours) {
      return Error(ErrorCode::Unavailable, "the engine speaks API versions from " +
                                               str("MinAPIVersion") + " only, newer than " +
                                               options_.api_version + " (option api-version)");
    }
    EngineKind kind = EngineKind::Dockerd;
    if (doc.HasMember("Components") && doc["Components"].IsArray()) {
      for (const auto& c : doc["Components"].GetArray()) {
        if (c.IsObject() && c.HasMember("Name") && c["Name"].IsString() &&
            contains(c["Name"].GetString(), "Podman")) {
          kind = EngineKind::Podman;
        }
      }
    }
    if (kind_.exchange(kind) != kind) {
      CORCH_LOG(lg, Info) << "engine at " << options_.socket_path << " is "
                          << (kind == EngineKind::Podman ? "podman" : "dockerd") << " "
                          << str("Version") << ", API " << str("ApiVersion");
    }
    return kind;
  }

  Result<void> checkPorts(const SfSpec& sf, const std::string& doing) const {
    if (auto r = common::checkVethPorts("docker", sf.ports); !r) return r.error().context(doing);
    auto node_fd = common::openNodeNetns();
    if (!node_fd.ok()) return node_fd.error().context(doing);
    if (auto r = common::checkVethEnds(node_fd->get(), sf.ports); !r) {
      return r.error().context(doing);
    }
    return Ok();
  }

  Result<void> checkImage(const SfSpec& sf, Deadline deadline, const std::string& doing) {
    if (sf.image.empty()) return Error(ErrorCode::InvalidArgument, doing + ": it has no image");
    auto r = http_.request("GET", api("/images/" + urlEncode(sf.image) + "/json"), "", deadline);
    if (!r.ok()) return r.error().context(doing);
    if (r->status == 404) {
      return Error(ErrorCode::NotFound, doing + ": the engine has no image " + sf.image + " (" +
                                            engineMessage(*r) + "); load or pull it first");
    }
    if (r->status != 200) return engineError(*r, doing + ": cannot inspect image " + sf.image);
    return Ok();
  }

  // The container's environment: the template's variables, then corch's (which win).
  Result<std::vector<std::string>> environment(const SfSpec& sf,
                                               const EngineSettings& settings) const {
    auto cfg = common::configToEnv(sf.config_json);
    if (!cfg.ok()) return std::move(cfg).error();
    std::vector<std::string> env;
    for (const auto& [k, v] : settings.env) env.push_back(k + "=" + v);
    for (const auto& [k, v] : *cfg) env.push_back(k + "=" + v);
    env.push_back("CORCH_CONFIG=" + (sf.config_json.empty() ? "{}" : sf.config_json));
    env.push_back("CORCH_GRAPH=" + sf.graph_id);
    env.push_back("CORCH_SF=" + sf.sf_id);
    env.push_back("CORCH_INSTANCE=" + sf.instance);
    env.push_back("CORCH_PORTS=" + std::to_string(sf.ports.size()));
    return env;
  }

  std::string containerBody(const SfSpec& sf, const EngineSettings& s,
                            const std::vector<std::string>& env, NetnsMode mode) const {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    writeKeyString(w, "Image", sf.image);
    if (s.command) {
      w.Key("Cmd");
      writeStrings(w, *s.command);
    }
    if (s.entrypoint) {
      w.Key("Entrypoint");
      writeStrings(w, *s.entrypoint);
    }
    w.Key("Env");
    writeStrings(w, env);
    w.Key("Labels");
    w.StartObject();
    writeKeyString(w, "corch.graph", sf.graph_id);
    writeKeyString(w, "corch.sf", sf.sf_id);
    writeKeyString(w, "corch.instance", sf.instance);
    writeKeyString(w, "corch.template", sf.template_id);
    w.EndObject();
    w.Key("StopTimeout");
    w.Uint(s.stop_timeout_s);
    w.Key("HostConfig");
    w.StartObject();
    writeKeyString(w, "NetworkMode",
                   mode == NetnsMode::Path ? "ns:/var/run/netns/" + sf.instance : "none");
    w.Key("CapAdd");
    writeStrings(w, s.cap_add);
    w.Key("Privileged");
    w.Bool(s.privileged);
    if (!sf.cpus.empty()) {
      std::string cpuset;
      for (unsigned c : sf.cpus) cpuset += (cpuset.empty() ? "" : ",") + std::to_string(c);
      writeKeyString(w, "CpusetCpus", cpuset);
    }
    if (options_.resource_limits && sf.cpu_cores > 0) {
      w.Key("NanoCpus");
      w.Int64(static_cast<int64_t>(std::llround(sf.cpu_cores * 1e9)));
    }
    if (options_.resource_limits && sf.memory_mb > 0) {
      w.Key("Memory");
      w.Int64(static_cast<int64_t>(sf.memory_mb) << 20);
    }
    w.EndObject();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }

  // Move mode, after the start: the ports into the container's namespace.
  Result<void> movePortsIn(const SfSpec& sf, Deadline deadline, const std::string& doing) {
    auto state = inspect(sf.instance, deadline, doing);
    if (!state.ok()) return std::move(state).error();
    if (!state->running || state->pid <= 0) {
      return Error(ErrorCode::Internal,
                   doing + ": it is " + state->status + " before its ports could be moved in");
    }
    const std::string path = "/proc/" + std::to_string(state->pid) + "/ns/net";
    UniqueFd ns_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns_fd) return errnoError(doing + ": cannot open " + path, errno);
    auto node_fd = common::openNodeNetns();
    if (!node_fd.ok()) return node_fd.error().context(doing);
    auto netns = common::FunctionNetns::adopt(std::move(ns_fd), std::move(node_fd).value());
    if (!netns.ok()) return netns.error().context(doing);
    if (auto r = netns->attachPorts(sf.ports); !r) return r.error().context(doing);
    netns->commit();
    return Ok();
  }

  // Move mode, before a stop: the ports back into corchd's namespace under their own names, or
  // they would die with the container's namespace and a later start would find nothing to attach.
  void movePortsOut(const SfSpec& sf, int pid) const {
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    UniqueFd ns_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    auto node = common::openNodeNetns();
    if (!ns_fd || !node.ok()) return;
    auto sock = RouteSocket::openIn(ns_fd.get());
    if (!sock.ok()) return;
    for (size_t i = 0; i < sf.ports.size(); ++i) {
      if (auto r = sock->moveLinkToNetns(ifnameInside(i), node->get(), sf.ports[i].ifname); !r) {
        CORCH_LOG(lg, Warn) << "stopping " << sf.instance << ": " << r.error().message();
      }
    }
  }

  Result<ContainerState> inspect(const std::string& name, Deadline deadline,
                                 const std::string& doing) {
    auto r = http_.request("GET", api("/containers/" + urlEncode(name) + "/json"), "", deadline);
    if (!r.ok()) return r.error().context(doing);
    ContainerState st;
    if (r->status == 404) return st;
    if (r->status != 200) return engineError(*r, doing + ": cannot inspect it");
    rapidjson::Document doc;
    doc.Parse(r->body.c_str(), r->body.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("State") ||
        !doc["State"].IsObject()) {
      return Error(ErrorCode::Internal, doing + ": the engine's inspect answer has no State");
    }
    const auto& s = doc["State"];
    auto str = [&](const char* key) -> std::string {
      return s.HasMember(key) && s[key].IsString() ? s[key].GetString() : "";
    };
    auto flag = [&](const char* key) {
      return s.HasMember(key) && s[key].IsBool() && s[key].GetBool();
    };
    auto num = [&](const char* key) {
      return s.HasMember(key) && s[key].IsInt() ? s[key].GetInt() : 0;
    };
    st.exists = true;
    st.running = flag("Running");
    st.paused = flag("Paused");
    st.status = str("Status");
    st.pid = num("Pid");
    st.exit_code = num("ExitCode");
    st.error = str("Error");
    st.started_at = str("StartedAt");
    return st;
  }

  // POST /containers/{name}<action>: 204 (or 304, already so) is Ok.
  Result<void> post(const std::string& name, const std::string& action, Deadline deadline,
                    const std::string& doing) {
    auto r = http_.request("POST", api("/containers/" + urlEncode(name) + action), "", deadline);
    if (!r.ok()) return r.error().context(doing);
    if (r->status == 204 || r->status == 304 || r->status == 200) return Ok();
    return engineError(*r, doing);
  }

  Result<void> stopContainer(const SfSpec& sf, Deadline deadline, const std::string& doing) {
    // The grace period must end well within this call's deadline, with a second to spare for
    // the kill and the engine's bookkeeping.
    auto settings = parseEngineSettings(sf.engine_json);
    long long grace = settings.ok() ? settings->stop_timeout_s : 2;
    long long left =
        std::chrono::duration_cast<std::chrono::seconds>(deadline - steady_clock::now()).count();
    grace = std::max(0LL, std::min(grace, left - 1));
    auto r = http_.request(
        "POST", api("/containers/" + urlEncode(sf.instance) + "/stop?t=" + std::to_string(grace)),
        "", deadline);
    if (!r.ok()) return r.error().context(doing);
    if (r->status == 204 || r->status == 304 || r->status == 404) return Ok();
    return engineError(*r, doing);
  }

  // Polls the container's state until it runs; an error when it stopped instead.
  Result<void> waitRunning(const SfSpec& sf, Deadline deadline, const std::string& doing) {
    // A start normally answers once the container runs: the first look usually suffices.
    for (std::chrono::milliseconds pause(5);; pause = std::min(pause * 2, kMaxPoll)) {
      auto state = inspect(sf.instance, deadline, doing);
      if (!state.ok()) return std::move(state).error();
      if (state->running) return Ok();
      if (state->status == "exited" || state->status == "dead" || !state->error.empty()) {
        return Error(ErrorCode::Internal, doing + ": it is " + state->status + " (exit code " +
                                              std::to_string(state->exit_code) +
                                              (state->error.empty() ? "" : ", " + state->error) +
                                              ")");
      }
      if (steady_clock::now() + pause > deadline) {
        return Error(ErrorCode::Timeout, doing + ": it is still " + state->status);
      }
      std::this_thread::sleep_for(pause);
    }
  }

  // After a failed start: the log's tail in the message, the output in the function's log, and
  // the container back to "created" (stopped; its ports back out in move mode).
  Error failStart(const SfSpec& sf, const Error& error, Deadline deadline) {
    const std::string doing = "cannot start container " + sf.instance;
    auto state = inspect(sf.instance, deadline, doing);
    std::string tail = logText(sf.instance, "&tail=" + std::to_string(kErrorLogLines), deadline);
    if (state.ok() && state->exists) {
      saveLogs(sf, state->started_at, deadline);
      if (state->running) {
        if (resolveMode(deadline).ok() && netnsMode() == NetnsMode::Move) {
          movePortsOut(sf, state->pid);
        }
        (void)post(sf.instance, "/kill", deadline, doing);
      }
    }
    const std::string lines = common::joinLines(common::nonBlankLines(tail));
    std::string message =
        error.message() + (lines.empty() ? "; it wrote nothing" : "; its last lines: " + lines);
    CORCH_LOG(lg, Warn) << message;
    return Error(error.code(), message);
  }

  // The container's output (stdout and stderr) with extra query parameters; empty on failure.
  std::string logText(const std::string& name, const std::string& query, Deadline deadline) {
    auto r = http_.request(
        "GET", api("/containers/" + urlEncode(name) + "/logs?stdout=true&stderr=true" + query), "",
        deadline);
    if (!r.ok() || r->status != 200) return "";
    return demuxLogs(r->body);
  }

  // Appends the output of the container's current (or last) run to SfSpec::log_path.
  void saveLogs(const SfSpec& sf, const std::string& started_at, Deadline deadline) {
    if (sf.log_path.empty()) return;
    long long since = unixSeconds(started_at);
    std::string text =
        logText(sf.instance, since > 0 ? "&since=" + std::to_string(since) : "", deadline);
    auto header = common::appendLogHeader(sf.log_path,
                                          "output of container " + sf.instance + " since " +
                                              (started_at.empty() ? "its creation" : started_at));
    std::ofstream out(sf.log_path, std::ios::app);
    out << text;
    if (!text.empty() && text.back() != '\n') out << '\n';
    if (!header.ok() || !out.flush()) CORCH_LOG(lg, Warn) << "cannot append to " << sf.log_path;
  }

  const Options options_;
  UnixHttpClient http_;
  std::atomic<EngineKind> kind_{EngineKind::Unknown};
};

}  // namespace

void registerDriver(DriverRegistry& registry) {
  (void)registry.addCompute(
      "docker", [](const DriverOptions& options) -> Result<std::unique_ptr<ComputeDriver>> {
        auto parsed = readOptions(options);
        if (!parsed.ok()) return std::move(parsed).error();
        return std::unique_ptr<ComputeDriver>(new DockerDriver(std::move(parsed).value()));
      });
}

}  // namespace corch::drivers::docker
