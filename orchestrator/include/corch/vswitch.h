// The vSwitch driver interface: the management (paper Table 2) and control (Table 3) interfaces
// of the network manager, implemented once per switch technology (drivers/vswitch/<name>/).
//
// Life cycle. The core creates one driver per node through the registry (driver_registry.h), from
// the configured name and its DriverOptions, calls probe() once, then uses it until shutdown.
// A driver opens its own persistent connections to the switch (OVSDB, OpenFlow) and reconnects on
// its own when one drops.
//
// Threads. Calls may come from several threads at once (REST requests for different graphs);
// a driver serialises internally what must be serialised. No call blocks longer than the switch
// needs to answer; none blocks forever (each has a deadline).
//
// Errors. Every call returns Result; nothing throws across this interface. Messages say what was
// being done ("cannot create LSI corch-g1: ovsdb: constraint violation: ...").
//
// Batching. createLsi() creates a bridge with all its ports and vlinks in one round trip, and
// installRules() installs a whole list of rules as one batch closed by one barrier (or bundle):
// a graph is deployed with one management and one control batch per LSI.
//
// Idempotence. Destroying something that does not exist (any more) succeeds. Creating something
// that exists is AlreadyExists.
//
// Restart. LSIs, ports and flows outlive corchd (the switch keeps them). A restarted corchd finds
// the LSIs an earlier run left (listLsis, listPorts), keeps those its stored graphs still own, and
// makes their flow tables right again with installRules then syncRules, without creating them
// anew, so that traffic through them keeps flowing (node/node_manager.h, "Restart").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "corch/flow.h"

namespace corch {

// How a port reaches its function.
enum class PortTechnology {
  Veth,       // a veth pair: one end on the LSI, the other (PortInfo::peer_ifname) for the function
  Internal,   // an internal port of the switch (a netdev in the node's own stack)
  Tap,        // a tap device (VMs)
  VhostUser,  // a vhost-user socket (VMs, DPDK functions)
  Gre,        // a GRE tunnel (gre SAPs): PortSpec::tunnel says which
};
std::string_view toString(PortTechnology technology);

// A tunnel's end points and key. The local address must be routed by the switch (with a
// userspace datapath: an address of a bridge's internal port).
struct TunnelSpec {
  IpAddr local;
  IpAddr remote;
  uint32_t key = 0;
  bool operator==(const TunnelSpec&) const = default;
};

struct PortSpec {
  std::string name;  // unique on the node, at most 15 characters (a kernel interface name)
  PortTechnology technology = PortTechnology::Veth;
  TunnelSpec tunnel;  // Gre
  bool operator==(const PortSpec&) const = default;
};

struct PortInfo {
  std::string name;
  uint32_t of_port = 0;  // the port's number on its LSI
  // What the function attaches to. Veth: the function's end, left in the node's namespace; Tap:
  // the tap itself; VhostUser: the socket path (the function is the vhost-user server).
  std::string peer_ifname;
};

// A virtual link between two LSIs: port_a on the first LSI, port_b on the second.
struct VlinkInfo {
  std::string name_a;
  uint32_t port_a = 0;
  std::string name_b;
  uint32_t port_b = 0;
};

struct LsiSpec {
  std::string name;                     // at most 15 characters
  std::vector<std::string> interfaces;  // existing netdevs to attach (physical ports of LSI-0)
  std::vector<PortSpec> ports;          // ports to create (SF ports)
  std::string vlink_peer;               // an existing LSI to connect to, or empty
  uint32_t vlink_count = 0;             // how many vlinks to vlink_peer
};

struct LsiInfo {
  std::string name;
  std::vector<PortInfo> interfaces;  // same order as LsiSpec::interfaces
  std::vector<PortInfo> ports;       // same order as LsiSpec::ports
  std::vector<VlinkInfo> vlinks;     // port_a on vlink_peer, port_b on this LSI
};

class VSwitchDriver {
 public:
  virtual ~VSwitchDriver() = default;

  virtual std::string_view name() const = 0;

  // Whether the switch is reachable and usable; the error says why not.
  virtual Result<void> probe() = 0;

  // --- Management interface (Table 2) ---

  // Creates an LSI with its interfaces, ports and vlinks, all or nothing.
  virtual Result<LsiInfo> createLsi(const LsiSpec& spec) = 0;
  // Destroys an LSI, its ports (and the veth pairs made for them) and the far ends of its vlinks.
  virtual Result<void> destroyLsi(const std::string& lsi) = 0;
  // The LSIs that exist on the switch (all of them, not only those made by this process).
  virtual Result<std::vector<std::string>> listLsis() = 0;

  // Creates n vlinks between two existing LSIs; names start with name_prefix.
  // lsi_a may be lsi_b: the vlinks then loop back into the same LSI (traffic output to one end
  // enters at the other).
  virtual Result<std::vector<VlinkInfo>> connectLsis(const std::string& lsi_a,
                                                     const std::string& lsi_b, uint32_t n,
                                                     const std::string& name_prefix) = 0;
  virtual Result<void> destroyVlinks(const std::vector<VlinkInfo>& vlinks) = 0;

  // Creates ports on an existing LSI, all or nothing.
  virtual Result<std::vector<PortInfo>> createPorts(const std::string& lsi,
                                                    const std::vector<PortSpec>& ports) = 0;
  virtual Result<void> destroyPorts(const std::string& lsi,
                                    const std::vector<std::string>& names) = 0;
  // The number of an existing port (interface, SF port or vlink end) on an LSI.
  virtual Result<uint32_t> portNumber(const std::string& lsi, const std::string& port) = 0;
  // Every port of an existing LSI (interfaces, ports, vlink ends) by name, with its number, as
  // the switch has them now; NotFound if there is no such LSI. For a port the driver made as a
  // veth pair, a pair whose kernel link is gone is left out (it cannot carry traffic). This is
  // how a restarted corchd checks that an LSI an earlier run built is whole before adopting it.
  virtual Result<std::vector<PortInfo>> listPorts(const std::string& lsi) {
    return Error(ErrorCode::Unsupported,
                 "vSwitch " + std::string(name()) + " cannot list the ports of " + lsi);
  }

  // --- Control interface (Table 3) ---

  // Checks that every field of every rule can be installed; Unsupported naming the field if not.
  // installRules() fails the same way; this lets the core refuse a graph before building it.
  virtual Result<void> checkRules(const std::vector<TsRule>& rules) = 0;
  // Installs rules as one batch. On error, none of the batch remains installed.
  virtual Result<void> installRules(const std::string& lsi, const std::vector<TsRule>& rules) = 0;
  // Removes rules matching exactly (priority and match), as one batch.
  virtual Result<void> removeRules(const std::string& lsi, const std::vector<TsRule>& rules) = 0;
  // Removes every rule whose cookie & mask == cookie & mask.
  virtual Result<void> removeRulesByCookie(const std::string& lsi, uint64_t cookie,
                                           uint64_t mask) = 0;
  // The rules installed on an LSI (for reconciliation and tests).
  virtual Result<std::vector<TsRule>> dumpRules(const std::string& lsi) = 0;
  // Makes the LSI's flow table exactly what this driver's installRules/removeRules calls since it
  // started want on it: installs the wanted rules missing or different, removes every other
  // flow (the stale rules an earlier run left on an LSI that a restarted corchd adopted), in one
  // batch; a flow the driver cannot decode is left alone (and logged). Rules already right are
  // not touched: traffic they carry is not disturbed. NotFound if there is no such LSI.
  virtual Result<void> syncRules(const std::string& lsi) {
    return Error(ErrorCode::Unsupported,
                 "vSwitch " + std::string(name()) + " cannot synchronise the rules of " + lsi);
  }
};

}  // namespace corch
