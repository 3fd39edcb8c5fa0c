// corchd: the corch node orchestrator daemon (DESIGN; paper section 5).
//
// Wiring only: configuration, drivers from the registry, the managers of Figure 3, the REST
// server; then it waits for SIGINT or SIGTERM and shuts down in reverse order.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "corch/driver_registry.h"
#include "corch/log.h"
#include "node/config.h"
#include "node/node_manager.h"
#include "resolver/repository.h"
#include "rest/server.h"

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
  auto finalized = node::finalizeConfig(config);
  if (!finalized) return fail(finalized.error().message());
  log::setLevel(*log::parseLevel(config.log_level));
  CORCH_LOG(lg, Info) << "corchd " CORCH_VERSION " starting";

  std::error_code ec;
  std::filesystem::create_directories(config.state_dir, ec);
  if (ec) return fail("cannot create state folder " + config.state_dir + ": " + ec.message());

  DriverRegistry registry;
  registerBuiltinDrivers(registry);

  auto vswitch = registry.makeVSwitch(config.vswitch_driver, config.vswitch_options);
  if (!vswitch) return fail(vswitch.error().message());
  if (auto probe = (*vswitch)->probe(); !probe) {
    return fail("vSwitch driver '" + config.vswitch_driver +
                "' cannot reach its switch: " + probe.error().message());
  }

  std::map<std::string, std::unique_ptr<ComputeDriver>> computes;
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
                              config.start_parallelism});
  resolver::Resources capacity = node::probeCapacity(config.state_dir);
  if (config.cpu_cores) capacity.cpu_cores = *config.cpu_cores;
  if (config.memory_mb) capacity.memory_mb = *config.memory_mb;
  if (config.disk_mb) capacity.disk_mb = *config.disk_mb;
  node::NodeManager node(network, compute, **repository,
                         node::NodeOptions{config.image_root, capacity});
  if (auto started = node.start(); !started) return fail(started.error().message());

  rest::ServerOptions rest_options;
  rest_options.host = config.listen_host;
  rest_options.port = config.listen_port;
  rest_options.threads = config.rest_threads + 8;
  rest_options.max_concurrent_changes = config.rest_threads;
  rest::Server server(rest_options, node);
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
