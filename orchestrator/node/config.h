// corchd's configuration (DESIGN section 10): a JSON file, every field optional, unknown fields
// refused; command-line flags override it. Defaults are embedded, so `corchd` alone starts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "corch/driver_options.h"
#include "corch/error.h"

namespace corch::node {

struct Config {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  unsigned rest_threads = 16;  // REST handlers: a PUT blocks one until its graph is deployed
  // The gate in front of them (rest/gate.h): connection caps and what clients must send in time.
  unsigned rest_max_connections = 1024;
  unsigned rest_max_connections_per_address = 128;
  unsigned rest_head_timeout_s = 10;
  unsigned rest_body_timeout_s = 30;
  unsigned rest_idle_timeout_s = 60;

  std::string vswitch_driver = "ovs";
  DriverOptions vswitch_options;  // "ovsdb", "datapath" ("auto" picks system or netdev), ...
  std::string lsi0;               // LSI-0's name; default <prefix>0
  std::string prefix = "corch";   // names of graph-LSIs, namespaces, logs
  std::vector<std::string> physical_ports;

  // By driver name; empty (the default): every compute driver built in but "fake", with its
  // defaults (each probes its engine; an unusable one is skipped by the resolver).
  std::map<std::string, DriverOptions> compute_drivers;
  uint32_t function_timeout_ms = 10000;
  unsigned start_parallelism = 8;
  // CPU placement (compute/scheduler.h): CPUs kept for the node ("0-1"; unset: the scheduler's
  // default), shared CPUs dedication always leaves, and whether a function that wants dedicated
  // cores and finds none is refused (409) rather than run unpinned.
  std::optional<std::string> reserved_cpus;
  unsigned min_shared_cpus = 1;
  bool strict_pinning = false;

  std::string repository;  // folder of templates (or a folder holding templates/)
  std::string image_root;  // default: the repository folder's parent
  std::string state_dir = "/var/lib/corch";
  std::string log_level = "info";

  std::optional<double> cpu_cores;  // override what the kernel reports
  std::optional<uint64_t> memory_mb;
  std::optional<uint64_t> disk_mb;

  // Authentication of the REST API (security/security_manager.h). On by default: every request
  // but POST /login needs a token. Off only when the configuration says so (logged as a warning
  // at every start).
  bool auth_enabled = true;
  std::string users_file;            // default: <state-dir>/users.json (see usersFile())
  uint32_t token_lifetime_s = 3600;  // 60 to 604800
  // The first admin, created at start when the users file holds no user: "initial-admin":
  // {"name", "password-file"}. The password is read from the file (first line), never from the
  // configuration itself.
  std::string initial_admin;
  std::string initial_admin_password_file;

  // HTTPS (rest/server.h): on unless "tls": {"enabled": false} (or --no-tls). The certificate
  // and key default to <state-dir>/tls/{cert,key}.pem (see tlsCertificateFile()); when neither
  // exists, corchd generates a self-signed pair there at start.
  bool tls_enabled = true;
  std::string tls_certificate;
  std::string tls_private_key;

  // Graphs deployed at boot ("initial-graphs": [{"id", "file"}]) and whether the graphs stored
  // in the state folder are restored at start ("restore-graphs", default true).
  struct InitialGraph {
    std::string id;
    std::string file;  // an SF-FG JSON file
    bool operator==(const InitialGraph&) const = default;
  };
  std::vector<InitialGraph> initial_graphs;
  bool restore_graphs = true;
};
using InitialGraph = Config::InitialGraph;

// The users file of a configuration: "users-file", or users.json in the state folder.
std::string usersFile(const Config& config);
// The certificate and private key files of HTTPS: as configured, or tls/cert.pem and tls/key.pem
// in the state folder.
std::string tlsCertificateFile(const Config& config);
std::string tlsPrivateKeyFile(const Config& config);

// Parses a configuration document over `base` (the defaults). Errors name the JSON pointer.
Result<Config> parseConfig(const std::string& text, Config base = {});
Result<Config> loadConfig(const std::string& path, Config base = {});

// Applies command-line arguments (argv[1..]) over a configuration, loading --config first.
// Returns nullopt-like InvalidArgument errors with the flag named; `help` is set on --help.
struct CommandLine {
  Config config;
  bool help = false;
  bool version = false;
  // --add-user NAME --role ROLE: add a user to the users file (password from stdin) and exit.
  // Both or neither are given; the role is checked by the security manager.
  std::optional<std::string> add_user;
  std::string role;
  // --if-missing: --add-user of an existing user succeeds without changing it (idempotent
  // bootstrap by scripts and the test harness).
  bool if_missing = false;
};
Result<CommandLine> parseCommandLine(int argc, char** argv, Config defaults);
std::string usage();

// Fills in what depends on the machine: datapath "auto", the templates folder, the image root.
Result<void> finalizeConfig(Config& config);

}  // namespace corch::node
