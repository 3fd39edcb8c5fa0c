// corchd: the corch node orchestrator daemon (DESIGN; paper section 5).
//
// Wiring only: configuration, drivers from the registry, the managers of Figure 3, the security
// manager, the REST server; then it waits for SIGINT or SIGTERM and shuts down in reverse order.
// `corchd --add-user NAME --role ROLE` instead adds a user to the users file and exits.
//
// HTTPS by default: the configured certificate and key, or a self-signed pair generated at the
// first start in the state folder. Plain HTTP only when the configuration says so, with a warning
// at every start; authentication is on either way unless the configuration turns it off.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "corch/driver_registry.h"
#include "corch/log.h"
#include "node/config.h"
#include "node/node_manager.h"
#include "resolver/repository.h"
#include "rest/server.h"
#include "security/certificate.h"
#include "security/secret_input.h"
#include "security/security_manager.h"
#include "security/user_store.h"

#ifndef CORCH_VERSION
#define CORCH_VERSION "0.0.0"
#endif
#ifndef CORCH_DEFAULT_REPOSITORY
#define CORCH_DEFAULT_REPOSITORY "/usr/share/corch/sf-repository"
#endif

namespace {

corch::log::Logger lg("corchd");

int fail(const std::string& message) {
  CORCH_LOG(lg, Error) << message;
  std::fprintf(stderr, "corchd: %s\n", message.c_str());
  return 1;
}

// corchd --add-user: the password comes from stdin (asked twice on a terminal), never from the
// command line; the users file is created if needed.
int addUser(const corch::node::Config& config, const std::string& name,
            const std::string& role_name, bool if_missing) {
  using namespace corch;
  auto role = security::parseRole(role_name);
  if (!role) return fail("unknown role '" + role_name + "': admin, operator or user");
  if (auto valid = security::checkUserName(name); !valid) return fail(valid.error().message());
  const std::string file = node::usersFile(config);
  auto store = security::UserStore::open(file);
  if (!store) return fail(store.error().message());
  if ((*store)->find(name)) {
    if (if_missing) {
      std::cout << "user " << name << " already exists in " << file << "\n";
      return 0;
    }
    return fail("user '" + name + "' already exists in " + file);
  }
  auto password = security::readSecret("Password for " + name + ": ", true);
  if (!password) return fail("cannot add user '" + name + "': " + password.error().message());
  if (auto added = (*store)->addUser(name, *password, *role); !added) {
    // Two bootstraps at once: the other one made the user.
    if (if_missing && added.error().code() == ErrorCode::AlreadyExists) return 0;
    return fail("cannot add user '" + name + "': " + added.error().message());
  }
  std::cout << "user " << name << " (" << security::toString(*role) << ") added to " << file
            << "\n";
  return 0;
}

bool isLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0;
}

// The configuration's initial-admin: created when the users file holds no user, with the first
// line of its password file. Not an error when users exist (every start after the first).
corch::Result<void> createInitialAdmin(const corch::node::Config& config,
                                       corch::security::UserStore& users) {
  using namespace corch;
  if (config.initial_admin.empty() || users.size() != 0) return Ok();
  std::ifstream in(config.initial_admin_password_file);
  if (!in) {
    return errnoError(
        "initial-admin: cannot read its password file " + config.initial_admin_password_file,
        errno);
  }
  std::string password;
  std::getline(in, password);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (auto added = users.addUser(config.initial_admin, password, security::Role::Admin); !added) {
    if (added.error().code() == ErrorCode::AlreadyExists) return Ok();
    return added.error().context("initial-admin " + config.initial_admin);
  }
  CORCH_LOG(lg, Info) << "initial admin '" << config.initial_admin << "' created in "
                      << users.path() << " (password from " << config.initial_admin_password_file
                      << ")";
  return Ok();
}

// HTTPS options: the configured certificate and key, generated when neither exists.
corch::Result<corch::rest::TlsOptions> tlsOptions(const corch::node::Config& config) {
  using namespace corch;
  rest::TlsOptions tls{node::tlsCertificateFile(config), node::tlsPrivateKeyFile(config)};
  auto origin = security::ensureCertificate(tls.cert_file, tls.key_file, {config.listen_host});
  if (!origin) return std::move(origin).error();
  auto fingerprint = security::certificateFingerprint(tls.cert_file);
  if (!fingerprint) return std::move(fingerprint).error();
  if (*origin == security::CertificateOrigin::Generated) {
    CORCH_LOG(lg, Info) << "generated a self-signed TLS certificate " << tls.cert_file << " (key "
                        << tls.key_file << ", for " << config.listen_host
                        << " and 127.0.0.1, localhost), SHA-256 fingerprint " << *fingerprint;
  } else {
    CORCH_LOG(lg, Info) << "TLS certificate " << tls.cert_file << ", SHA-256 fingerprint "
                        << *fingerprint;
  }
  return tls;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace corch;

  // Signals are taken synchronously by sigwait() below; every thread inherits this mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  node::Config defaults;
  defaults.repository = CORCH_DEFAULT_REPOSITORY;
  auto cl = node::parseCommandLine(argc, argv, defaults);
  if (!cl) return fail(cl.error().message());
  if (cl->help) {
    std::cout << node::usage();
    return 0;
  }
  if (cl->version) {
    std::cout << "corchd " CORCH_VERSION "\n";
    return 0;
  }
  node::Config& config = cl->config;
  if (cl->add_user) {
    log::setLevel(log::Level::Warn);
    return addUser(config, *cl->add_user, cl->role, cl->if_missing);
  }
  auto finalized = node::finalizeConfig(config);
  if (!finalized) return fail(finalized.error().message());
  log::setLevel(*log::parseLevel(config.log_level));
  CORCH_LOG(lg, Info) << "corchd " CORCH_VERSION " starting";

  std::error_code ec;
  std::filesystem::create_directories(config.state_dir, ec);
  if (ec) return fail("cannot create state folder " + config.state_dir + ": " + ec.message());

  // Before anything touches the switch: a node that cannot check its users does not start.
  security::SecurityOptions security_options;
  security_options.enabled = config.auth_enabled;
  security_options.users_file = node::usersFile(config);
  security_options.token_lifetime = std::chrono::seconds(config.token_lifetime_s);
  auto security = security::SecurityManager::create(security_options);
  if (!security) return fail(security.error().message());
  if (config.auth_enabled) {
    if (auto created = createInitialAdmin(config, *(*security)->users()); !created) {
      return fail(created.error().message());
    }
    size_t users = (*security)->users()->size();
    CORCH_LOG(lg, Info) << "authentication on: " << users << " user(s) in "
                        << security_options.users_file << ", tokens valid "
                        << config.token_lifetime_s << " s";
    if (users == 0) {
      // Started anyway, so that the node and its graphs run; every request is answered 503
      // with this until the first admin exists (the users file is re-read on each request).
      CORCH_LOG(lg, Warn) << security::SecurityManager::firstUserHint(security_options.users_file);
    }
  } else {
    CORCH_LOG(lg, Warn) << "authentication is OFF (auth.enabled false): anyone who reaches "
                        << config.listen_host << ":" << config.listen_port << " may change the node"
                        << (isLoopback(config.listen_host) ? "" : ", and it is not loopback");
  }
  std::optional<rest::TlsOptions> tls;
  if (config.tls_enabled) {
    auto made = tlsOptions(config);
    if (!made) return fail(made.error().message());
    tls = std::move(*made);
  } else {
    CORCH_LOG(lg, Warn) << "HTTPS is off (tls.enabled false or --no-tls): the REST API on "
                        << config.listen_host << ":" << config.listen_port
                        << " is plain HTTP, tokens and passwords cross the network in clear";
  }

  DriverRegistry registry;
  registerBuiltinDrivers(registry);

  auto vswitch = registry.makeVSwitch(config.vswitch_driver, config.vswitch_options);
  if (!vswitch) return fail(vswitch.error().message());
  if (auto probe = (*vswitch)->probe(); !probe) {
    return fail("vSwitch driver '" + config.vswitch_driver +
                "' cannot reach its switch: " + probe.error().message());
  }

  std::map<std::string, std::unique_ptr<ComputeDriver>> computes;
  if (config.compute_drivers.empty()) {
    for (const auto& name : registry.computeNames()) {
      if (name != "fake") config.compute_drivers[name] = {};
    }
  }
  for (const auto& [name, options] : config.compute_drivers) {
    auto driver = registry.makeCompute(name, options);
    if (!driver) return fail(driver.error().message());
    computes[name] = std::move(*driver);
  }

  auto repository = resolver::openFolderRepository(config.repository);
  if (!repository) return fail(repository.error().message());

  network::NetworkManager network(
      **vswitch, network::NetworkOptions{config.lsi0, config.prefix, config.physical_ports});
  compute::ComputeManager compute(
      std::move(computes),
      compute::ComputeOptions{config.prefix, config.state_dir + "/logs",
                              std::chrono::milliseconds(config.function_timeout_ms),
                              config.start_parallelism, config.state_dir + "/run"});
  resolver::Resources capacity = node::probeCapacity(config.state_dir);
  if (config.cpu_cores) capacity.cpu_cores = *config.cpu_cores;
  if (config.memory_mb) capacity.memory_mb = *config.memory_mb;
  if (config.disk_mb) capacity.disk_mb = *config.disk_mb;
  // CPU pinning (paper 5.3): dedicated cores for DPDK and VM functions, neighbours on siblings.
  std::unique_ptr<compute::CpuScheduler> scheduler;
  if (auto topology = compute::readCpuTopology(); !topology) {
    CORCH_LOG(lg, Warn) << "no CPU pinning: " << topology.error().message();
  } else {
    compute::SchedulerOptions scheduling;
    scheduling.min_shared = config.min_shared_cpus;
    if (config.reserved_cpus) {
      auto reserved = compute::parseCpuList(*config.reserved_cpus);
      if (!reserved) return fail("compute/reserved-cpus: " + reserved.error().message());
      scheduling.reserved = std::move(*reserved);
    }
    auto made = compute::CpuScheduler::create(std::move(*topology), scheduling);
    if (!made) return fail("compute/reserved-cpus: " + made.error().message());
    scheduler = std::move(*made);
    CORCH_LOG(lg, Info) << "CPU scheduler: " << scheduler->topology().cpus.size()
                        << " online CPU(s), reserved for the node: "
                        << (scheduler->reservedCpus().empty()
                                ? std::string("none")
                                : compute::formatCpuList(scheduler->reservedCpus()));
  }
  node::NodeOptions node_options{config.image_root, capacity, scheduler.get(),
                                 config.strict_pinning};
  if (config.restore_graphs) node_options.graphs_dir = config.state_dir + "/graphs";
  for (const auto& initial : config.initial_graphs) {
    node_options.initial_graphs.emplace_back(initial.id, initial.file);
  }
  node::NodeManager node(network, compute, **repository, std::move(node_options));
  if (auto started = node.start(); !started) return fail(started.error().message());

  rest::ServerOptions rest_options;
  rest_options.host = config.listen_host;
  rest_options.port = config.listen_port;
  rest_options.threads = config.rest_threads + 8;
  rest_options.max_concurrent_changes = config.rest_threads;
  rest_options.max_connections = config.rest_max_connections;
  rest_options.max_connections_per_address = config.rest_max_connections_per_address;
  rest_options.head_timeout = std::chrono::seconds(config.rest_head_timeout_s);
  rest_options.body_timeout = std::chrono::seconds(config.rest_body_timeout_s);
  rest_options.idle_timeout = std::chrono::seconds(config.rest_idle_timeout_s);
  rest_options.tls = tls;
  rest::Server server(rest_options, node, security->get());
  if (auto listening = server.start(); !listening) {
    node.shutdown();
    return fail(listening.error().message());
  }
  CORCH_LOG(lg, Info) << "ready: REST API on " << server.url() << ", " << capacity.cpu_cores
                      << " cores, " << capacity.memory_mb << " MB for functions";

  int sig = 0;
  sigwait(&signals, &sig);
  CORCH_LOG(lg, Info) << "signal " << sig << ": shutting down";
  server.stop();
  node.shutdown();
  CORCH_LOG(lg, Info) << "stopped";
  return 0;
}
