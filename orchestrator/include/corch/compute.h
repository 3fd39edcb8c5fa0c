// The compute driver interface (paper Table 5): runs service functions in one execution
// environment (drivers/compute/<name>/: native, kvm, docker, dpdk). Several drivers are loaded at
// once; the resolver offers only templates whose driver's probe() succeeds.
//
// Life cycle of a function: createSf -> startSf -> (stopSf -> startSf)* -> stopSf -> destroySf.
// The vSwitch driver has already made the function's ports (SfPortBinding::ifname) when createSf
// is called; createSf attaches them to the function (the native driver moves veth ends into the
// function's namespace). destroySf releases everything createSf and startSf made, including any
// process still running; it succeeds when there is nothing left to destroy.
//
// Every call is identified by the SfSpec (instance name), not by a handle, so that a restarted
// corchd can stop and destroy what an earlier run made. Calls for different functions may run in
// parallel; a driver never blocks longer than SfSpec::timeout in one call. Errors are returned,
// never thrown.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "corch/vswitch.h"

namespace corch {

struct SfPortBinding {
  std::string port_id;    // the SF port's id in the graph
  std::string port_name;  // the SF port's name in the graph (may be empty)
  // What the function attaches to, as made by the vSwitch driver (PortInfo::peer_ifname):
  // Veth: the function's end of the pair, in the node's namespace; Tap: the tap device (a
  // persistent tap that nothing holds open); VhostUser: the socket path, on which the function is
  // the vhost-user server (the switch is the client and reconnects).
  std::string ifname;
  PortTechnology technology = PortTechnology::Veth;
  std::string mac;  // a MAC address the driver may give the function's NIC, or empty
};

struct SfSpec {
  std::string graph_id;
  std::string sf_id;
  std::string instance;  // node-unique, file-name-safe: "corch-<graph>-<sf>" (the namespace)
  std::string template_id;
  std::string image;        // resolved: for native, the absolute path of the NSF package folder
  std::string config_json;  // the SF's configuration (template defaults merged with the graph's)
  std::vector<SfPortBinding> ports;          // in the graph's port order
  std::chrono::milliseconds timeout{10000};  // for each script / engine call
  std::string log_path;                      // where the function's output goes
  double cpu_cores = 0;
  uint64_t memory_mb = 0;
  uint64_t disk_mb = 0;
  // The template's "engine" object (compact JSON, or empty): the driver's own settings, such as a
  // VM's kernel or a container's command. Each driver documents its keys and refuses unknown ones
  // (InvalidArgument naming the key) in createSf.
  std::string engine_json;
  // Cores chosen by the scheduler for this function alone (logical CPU numbers), or empty: run on
  // any core. Drivers pin the function to them (vCPU pinning, a DPDK core list, a cpuset).
  std::vector<unsigned> cpus;
  // A folder for this instance's runtime files (sockets, generated configuration), made by the
  // compute manager before createSf and removed after destroySf.
  std::string run_dir;
};

class ComputeDriver {
 public:
  virtual ~ComputeDriver() = default;

  virtual std::string_view name() const = 0;
  // Whether this driver can run functions here (engine reachable, tools present); why not if not.
  virtual Result<void> probe() = 0;

  virtual Result<void> createSf(const SfSpec& sf) = 0;
  virtual Result<void> startSf(const SfSpec& sf) = 0;
  virtual Result<void> stopSf(const SfSpec& sf) = 0;
  virtual Result<void> destroySf(const SfSpec& sf) = 0;
  // Whether updateSf() can plug ports into and unplug them from a running function (the core
  // then keeps it running when only its ports change, instead of restarting it).
  virtual bool updatesPorts() const { return false; }
  // Changes a running function's ports (from `before` to `after`; ports are matched by port_id,
  // and those of both have the same ifname). Unsupported for any other change.
  virtual Result<void> updateSf(const SfSpec& before, const SfSpec& after) {
    (void)before;
    return Error(ErrorCode::Unsupported,
                 "driver " + std::string(name()) + " cannot update function " + after.instance);
  }
  // The instances of this driver that exist on the node (namespace, container, domain) whose
  // name starts with `prefix`: what a corchd killed with SIGKILL may have left. The node destroys
  // those that no stored graph owns, with destroySf() on a spec that holds only the instance name
  // (which every driver's destroySf() needs, and all it needs). Several drivers may list the same
  // function namespace: destroying it twice is harmless.
  virtual Result<std::vector<std::string>> listInstances(std::string_view prefix) {
    (void)prefix;
    return std::vector<std::string>{};
  }
  // Takes over a function an earlier run (a corchd killed or restarted) created and started with
  // this very spec and left running, without disturbing it: Ok when its instance exists, runs,
  // and has the spec's ports attached (a driver that keeps per-function state, such as a child
  // process or an open connection, picks it up again so that stopSf and destroySf work as for a
  // function it started itself). NotFound when there is no such instance; Conflict, naming what
  // differs, when it exists but is not running as the spec says (stopped, a port missing);
  // Unsupported when the driver cannot adopt at all. On any error the node
  // destroys the instance and builds the function again. adoptSf changes nothing on the node.
  // The compute manager, not the driver, checks that the instance was started from the same spec
  // (it keeps a digest of the spec in the instance's run_dir).
  virtual Result<void> adoptSf(const SfSpec& sf) {
    return Error(ErrorCode::Unsupported,
                 "driver " + std::string(name()) + " cannot adopt function " + sf.instance);
  }
  virtual Result<void> pauseSf(const SfSpec& sf) {
    return Error(ErrorCode::Unsupported,
                 "driver " + std::string(name()) + " cannot pause function " + sf.instance);
  }
};

}  // namespace corch
