// The Open_vSwitch database as the ovs driver sees it, and the transactions of the management
// calls. Pure functions, no I/O: the driver reads a DbSnapshot, plans a call into a DbChange, and
// sends buildTransaction(change) as one OVSDB transaction. Golden-tested (tests/data/ovs/).
//
// What the driver writes, so that it can find it again after a restart:
//   Bridge     datapath_type from the options, fail_mode "secure" (no flows of its own), protocols
//              ["OpenFlow13"], other_config:disable-in-band "true", external_ids:corch-lsi "true",
//              and its local port (an internal interface named like the bridge) as ovs-vsctl does.
//   Interface  ofport_request: the number this driver chose; a Veth port's interface carries
//              external_ids:corch-veth-peer = the function's end (so that destroying the port
//              deletes the pair); a vlink end is type "patch" with options:peer = the other end.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "corch/error.h"
#include "corch/vswitch.h"

namespace corch::drivers::ovs {

inline constexpr const char* kDatabase = "Open_vSwitch";
inline constexpr const char* kVethPeerKey = "corch-veth-peer";
// external_ids of an Interface that is a persistent tap corch made (deleted with its port).
inline constexpr const char* kTapKey = "corch-tap";
inline constexpr uint32_t kMaxPortNumber = 65279;  // the highest ofport_request OVS accepts

struct InterfaceRow {
  std::string uuid;
  std::string name;
  std::string type;
  std::optional<int64_t> ofport;  // absent until ovs-vswitchd assigns it; -1 when it failed
  std::optional<int64_t> ofport_request;
  std::map<std::string, std::string> options;
  std::map<std::string, std::string> external_ids;
  std::string error;  // why ovs-vswitchd could not open it
};

struct PortRow {
  std::string uuid;
  std::string name;
  std::vector<std::string> interfaces;  // uuids
};

struct BridgeRow {
  std::string uuid;
  std::string name;
  std::vector<std::string> ports;  // uuids
};

// The rows of Open_vSwitch, Bridge, Port and Interface the driver needs, read in one transaction.
class DbSnapshot {
 public:
  // The operations of the read-only transaction that reads a snapshot.
  static rapidjson::Document query();
  // Parses the result of query(). Internal when the database has no Open_vSwitch row.
  static Result<DbSnapshot> parse(const rapidjson::Value& result);

  int64_t next_cfg = 0;
  int64_t cur_cfg = 0;
  std::set<std::string> iface_types;
  std::set<std::string> datapath_types;
  std::map<std::string, BridgeRow> bridges;        // by name
  std::map<std::string, PortRow> ports;            // by uuid
  std::map<std::string, InterfaceRow> interfaces;  // by uuid

  const BridgeRow* bridge(const std::string& name) const;
  // A port by name, and the bridge that holds it (nullptr when none does).
  struct PortAt {
    const BridgeRow* bridge = nullptr;
    const PortRow* port = nullptr;
  };
  std::optional<PortAt> findPort(const std::string& name) const;
  const InterfaceRow* findInterface(const std::string& name) const;
  std::vector<const PortRow*> portsOf(const BridgeRow& bridge) const;
  std::vector<const InterfaceRow*> interfacesOf(const PortRow& port) const;
  // The port numbers taken on a bridge (assigned or requested), local port excluded.
  std::set<uint32_t> usedNumbers(const BridgeRow& bridge) const;
};

// Chooses the OpenFlow port numbers (ofport_request) of new ports, so that numbers are known
// before ovs-vswitchd assigns them. Per bridge, numbers go up from the highest in use, and from
// the highest this process handed out (`hints`, kept by the driver across calls): a number freed
// by a destroyed port is not reused at once, so that a stale rule cannot apply to a newcomer.
// Only when the range is exhausted are freed numbers reused, lowest first.
class PortNumbering {
 public:
  PortNumbering(const DbSnapshot& db, std::map<std::string, uint32_t> hints)
      : db_(db), hints_(std::move(hints)) {}
  // The next number on a bridge (by name; a bridge not yet in the snapshot starts at 1).
  Result<uint32_t> next(const std::string& bridge);
  // The hints after the numbers handed out (to keep when the call succeeded).
  const std::map<std::string, uint32_t>& hints() const { return hints_; }

 private:
  const DbSnapshot& db_;
  std::map<std::string, uint32_t> hints_;           // bridge -> next number to try
  std::map<std::string, std::set<uint32_t>> used_;  // bridge -> taken, filled on first use
};

// A port to create: a Port row and its one Interface row, of the same name.
struct NewPort {
  std::string name;
  std::string type;     // "" (an existing netdev), "internal", "patch", "tap", ...
  uint32_t number = 0;  // ofport_request; 0 for none (the bridge's local port)
  std::vector<std::pair<std::string, std::string>> options;
  std::vector<std::pair<std::string, std::string>> external_ids;
  std::string veth_peer;  // Veth: the function's end of the pair made before the transaction
  bool tap = false;       // Tap: a persistent tap device of this name made before the transaction
};

struct PortsOnBridge {
  std::string bridge;       // name
  std::string bridge_uuid;  // empty: the bridge this change creates
  std::vector<NewPort> ports;
};

struct PortsOffBridge {
  std::string bridge_uuid;
  std::vector<std::string> port_uuids;
};

// What one management call changes in the database.
struct DbChange {
  std::optional<std::string> new_bridge;  // a bridge to create (its ports are in `add`)
  std::string datapath_type;              // of new_bridge
  std::vector<PortsOnBridge> add;
  std::vector<std::string> remove_bridges;  // uuids
  std::vector<PortsOffBridge> remove_ports;
  bool empty() const {
    return !new_bridge && add.empty() && remove_bridges.empty() && remove_ports.empty();
  }
  // The names of the ports it creates (to check them once applied), local ports excluded.
  std::vector<std::string> newPortNames() const;
  // The veth pairs it needs (LSI end, function end), to create before the transaction.
  std::vector<std::pair<std::string, std::string>> newVeths() const;
  // The persistent taps it needs, to create before the transaction.
  std::vector<std::string> newTaps() const;
  // The kernel devices made before the transaction (veths' LSI ends, taps): deleting each undoes
  // them.
  std::vector<std::string> newKernelLinks() const;
};

// The transaction of a change: guards that the bridges it adds ports to still exist, the inserts
// and mutations, next_cfg += 1 (ovs-vswitchd copies next_cfg into cur_cfg once it has applied the
// change), and, last, a select of next_cfg and cur_cfg.
rapidjson::Document buildTransaction(const DbChange& change);

// Where the plans find what they do not take from the request.
struct PlanContext {
  std::string datapath_type = "netdev";
  std::string rundir;  // vhost-user sockets go there
};

struct CreateLsiPlan {
  DbChange change;
  LsiInfo info;  // numbers as requested
};
Result<CreateLsiPlan> planCreateLsi(const DbSnapshot& db, const LsiSpec& spec,
                                    const PlanContext& context, PortNumbering& numbering);

struct CreatePortsPlan {
  DbChange change;
  std::vector<PortInfo> ports;
};
Result<CreatePortsPlan> planCreatePorts(const DbSnapshot& db, const std::string& lsi,
                                        const std::vector<PortSpec>& ports,
                                        const PlanContext& context, PortNumbering& numbering);

struct ConnectPlan {
  DbChange change;
  std::vector<VlinkInfo> vlinks;
};
Result<ConnectPlan> planConnectLsis(const DbSnapshot& db, const std::string& lsi_a,
                                    const std::string& lsi_b, uint32_t n,
                                    const std::string& name_prefix, PortNumbering& numbering);

// A removal: the change, and the veth pairs to delete once it is applied (by their LSI end).
struct RemovalPlan {
  DbChange change;
  std::vector<std::string> veths;
};
// The bridge, its ports and the far ends of its vlinks. Empty when there is no such bridge.
RemovalPlan planDestroyLsi(const DbSnapshot& db, const std::string& lsi);
// Ports of one bridge; names not on it are ignored.
RemovalPlan planDestroyPorts(const DbSnapshot& db, const std::string& lsi,
                             const std::vector<std::string>& names);
// Both ends of each vlink, wherever they are; absent ends are ignored.
RemovalPlan planDestroyVlinks(const DbSnapshot& db, const std::vector<VlinkInfo>& vlinks);

// --- Reading an LSI back (listPorts) ---

// A port of an LSI as the database has it.
struct ListedPort {
  PortInfo info;  // peer_ifname as createLsi() and createPorts() give it, from what they wrote
  // The kernel device this driver made for the port (a veth's LSI end, a tap), without which it
  // carries nothing; empty when the driver made none.
  std::string kernel_link;
};
// Every port of a bridge but its local one, by number. NotFound when there is no such bridge. A
// port without a number (ovs-vswitchd could not open it, or has not yet) is left out and named
// in `unnumbered`.
Result<std::vector<ListedPort>> listBridgePorts(const DbSnapshot& db, const std::string& lsi,
                                                std::vector<std::string>* unnumbered);

// --- Small queries (each one transaction) ---

// The Interface rows of these names.
rapidjson::Document interfacesQuery(const std::vector<std::string>& names);
Result<std::map<std::string, InterfaceRow>> parseInterfaces(const rapidjson::Value& result);

// Waits (in ovsdb-server, at most timeout_ms) until cur_cfg is no longer `seen`, then reads it:
// how the driver learns, without polling, that ovs-vswitchd applied a change.
rapidjson::Document curCfgChangeQuery(int64_t seen, int64_t timeout_ms);
// The cur_cfg and next_cfg read by the last operation of curCfgChangeQuery() or of
// buildTransaction().
struct CfgCounters {
  int64_t next_cfg = 0;
  int64_t cur_cfg = 0;
};
Result<CfgCounters> parseCfgCounters(const rapidjson::Value& result);

// The names of every bridge.
rapidjson::Document bridgeNamesQuery();
Result<std::vector<std::string>> parseBridgeNames(const rapidjson::Value& result);

// The number of one port on one bridge: NotFound when the bridge or the port (on that bridge) is
// absent, Unavailable when ovs-vswitchd has not given it one (yet).
rapidjson::Document portNumberQuery(const std::string& lsi, const std::string& port);
Result<uint32_t> parsePortNumber(const rapidjson::Value& result, const std::string& lsi,
                                 const std::string& port);

// InvalidArgument unless `name` can name an LSI: 1-15 characters, no '/' or white space (it is
// a kernel interface name and the name of the <name>.mgmt socket).
Result<void> checkLsiName(const std::string& name);

}  // namespace corch::drivers::ovs
