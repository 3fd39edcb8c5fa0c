// corchd: the corch node orchestrator daemon (DESIGN; paper section 5).
//
// Wiring only: configuration, drivers from the registry, the managers of Figure 3, the security
// manager, the REST server; then it waits for SIGINT or SIGTERM and shuts down in reverse order.
// `corchd --add-user NAME --role ROLE` instead adds a user to the users file and exits.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "corch/driver_registry.h"
#include "corch/log.h"
#include "node/config.h"
#include "node/node_manager.h"
#include "resolver/repository.h"
#include "rest/server.h"
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
            const std::string& role_name) {
  using namespace corch;
  auto role = security::parseRole(role_name);
  if (!role) return fail("unknown role '" + role_name + "': admin, operator or user");
  if (auto valid = security::checkUserName(name); !valid) return fail(valid.error().message());
  const std::string file = node::usersFile(config);
  auto store = security::UserStore::open(file);
  if (!store) return fail(store.error().message());
  if ((*store)->find(name)) return fail("user '" + name + "' already exists in " + file);
  auto password = security::readSecret("Password for " + name + ": ", true);
  if (!password) return fail("cannot add user '" + name + "': " + password.error().message());
  if (auto added = (*store)->addUser(name, *password, *role); !added) {
    return fail("cannot add user '" + name + "': " + added.error().message());
  }
  std::cout << "user " << name << " (" << security::toString(*role) << ") added to " << file
            << "\n";
  return 0;
}

bool isLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0;
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
    return addUser(config, *cl->add_user, cl->role);
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
    CORCH_LOG(lg, Info) << "authentication on: " << (*security)->users()->size() << " user(s) in "
                        << security_options.users_file << ", tokens valid "
                        << config.token_lifetime_s << " s";
  } else if (!isLoopback(config.listen_host)) {
    CORCH_LOG(lg, Warn) << "authentication is off and the REST API listens on "
                        << config.listen_host << ": anyone who reaches it may change the node "
                        << "(set auth.enabled in the configuration)";
  } else {
    CORCH_LOG(lg, Info) << "authentication off: REST requests need no token";
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
  node::NodeManager node(
      network, compute, **repository,
      node::NodeOptions{config.image_root, capacity, scheduler.get(), config.strict_pinning});
  if (auto started = node.start(); !started) return fail(started.error().message());

  rest::ServerOptions rest_options;
  rest_options.host = config.listen_host;
  rest_options.port = config.listen_port;
  rest_options.threads = config.rest_threads + 8;
  rest_options.max_concurrent_changes = config.rest_threads;
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
