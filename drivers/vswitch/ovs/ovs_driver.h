// The 'ovs' vSwitch driver (DESIGN section 7): Open vSwitch through OVSDB JSON-RPC (RFC 7047) and
// OpenFlow 1.3, on persistent sockets the driver opens itself. It never runs ovs-vsctl,
// ovs-ofctl or any other process.
//
// Options (DriverOptions):
//   ovsdb       "unix:/path/db.sock" or "tcp:IP:PORT" (default unix:/var/run/openvswitch/db.sock)
//   rundir      where ovs-vswitchd puts the <bridge>.mgmt OpenFlow sockets (default: the folder
//               of the OVSDB unix socket, else /var/run/openvswitch)
//   datapath    "netdev" (default, userspace) or "system" (the kernel module)
//   timeout-ms  the deadline of each call (default 5000)
//
// Management calls are serialised (one at a time: they read the database, choose port numbers,
// and write one transaction each) and return once ovs-vswitchd has applied their change (the
// next_cfg / cur_cfg handshake of ovs-vsctl). Rule calls go over one OpenFlow connection per LSI,
// in parallel across LSIs, one batch at a time per LSI. See vswitch.h for the contract.
//
// Healing. ovs-vswitchd keeps no flow across a restart (bridges and ports come back from the
// database, with their numbers: ofport_request), so the driver keeps, per LSI, the flow table it
// wants: what its calls installed minus what they removed, by OpenFlow's key of a flow (priority
// and match). A restart closes every OpenFlow connection at once (the kernel closes the sockets
// of an exiting process): the end of a connection nobody closed is the signal, immediate and
// without polling or database traffic. (The database shows nothing reliable: a restarted
// ovs-vswitchd writes back the same values, and a monitor sees no change.) One background thread
// then reconnects to the LSI's <lsi>.mgmt socket with a short backoff (at once, then 20 ms
// doubling up to 100 ms: the socket is back as soon as ovs-vswitchd has set the bridge up), reads
// the LSI's flows and sends what differs from the wanted table (on a restarted switch: all of
// it) as one batch closed by a barrier. It holds the LSI's batch lock while it does, as rule calls
// do, so that a call and a re-push are ordered: the re-push sends the table as the calls before it
// left it, the calls after it change the healed table. An LSI gone from the database is forgotten.
// When the OVSDB connection drops (ovsdb-server restarted), the same thread reconnects at once
// and then with the same backoff; nothing is cached from the database but port hints, which stay
// valid. WARN when a heal starts, INFO when done, with the time it took.
//
// Restart. A driver starts knowing nothing of the LSIs an earlier process left. listPorts() reads
// an LSI back from one snapshot of the database (and one dump of the kernel's links, for the veths
// and taps it made); syncRules() pushes the difference a heal pushes, on demand: after a restarted
// corchd installed the rules it wants on an LSI it adopted, the earlier run's other flows go.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "corch/driver_options.h"
#include "corch/vswitch.h"
#include "of_connection.h"
#include "ovsdb_client.h"
#include "vswitch_db.h"

namespace corch {
class DriverRegistry;
}

namespace corch::drivers::ovs {

struct OvsOptions {
  Endpoint ovsdb;
  std::string rundir;
  std::string datapath = "netdev";
  std::chrono::milliseconds timeout{5000};

  // InvalidArgument naming the option when a value is wrong.
  static Result<OvsOptions> parse(const DriverOptions& options);
};

class OvsDriver final : public VSwitchDriver {
 public:
  explicit OvsDriver(OvsOptions options);
  ~OvsDriver() override;

  std::string_view name() const override { return "ovs"; }
  Result<void> probe() override;

  Result<LsiInfo> createLsi(const LsiSpec& spec) override;
  Result<void> destroyLsi(const std::string& lsi) override;
  Result<std::vector<std::string>> listLsis() override;
  Result<std::vector<VlinkInfo>> connectLsis(const std::string& lsi_a, const std::string& lsi_b,
                                             uint32_t n, const std::string& name_prefix) override;
  Result<void> destroyVlinks(const std::vector<VlinkInfo>& vlinks) override;
  Result<std::vector<PortInfo>> createPorts(const std::string& lsi,
                                            const std::vector<PortSpec>& ports) override;
  Result<void> destroyPorts(const std::string& lsi, const std::vector<std::string>& names) override;
  Result<uint32_t> portNumber(const std::string& lsi, const std::string& port) override;
  Result<std::vector<PortInfo>> listPorts(const std::string& lsi) override;

  Result<void> checkRules(const std::vector<TsRule>& rules) override;
  Result<void> installRules(const std::string& lsi, const std::vector<TsRule>& rules) override;
  Result<void> removeRules(const std::string& lsi, const std::vector<TsRule>& rules) override;
  Result<void> removeRulesByCookie(const std::string& lsi, uint64_t cookie, uint64_t mask) override;
  Result<std::vector<TsRule>> dumpRules(const std::string& lsi) override;
  Result<void> syncRules(const std::string& lsi) override;

 private:
  // The OpenFlow connection of one LSI and its wanted flow table; `mu` makes its batches one at
  // a time, and guards `flows`.
  struct Channel {
    Channel(Endpoint endpoint, std::string name) : of(std::move(endpoint), std::move(name)) {}
    std::mutex mu;
    OfConnection of;
    // What the LSI should hold, normalized rules by openflow::flowKey(): what the calls installed
    // minus what they removed. A batch that failed counts as not installed (the driver takes it
    // out), a removal that failed as done (the next heal finishes it).
    std::map<std::string, TsRule> flows;
  };

  // A connection to heal, and when to try next.
  struct Heal {
    Heal() {}  // user-written: clang cannot default-construct it inside its class otherwise
    Clock::time_point since;  // when the loss was noticed
    Clock::time_point next;   // the next attempt
    std::chrono::milliseconds backoff{0};
    uint64_t generation = 0;  // bumped by every loss, so that a success does not hide a new one
    int attempts = 0;
  };
  enum class HealResult { Done, Retry };

  // Plans the removal of what a failed creation made, from the database as it is now.
  using UndoPlanner = std::function<RemovalPlan(const DbSnapshot&)>;

  Deadline deadline() const { return Clock::now() + options_.timeout; }
  Result<DbSnapshot> snapshot(Deadline deadline);
  // Sends the transaction of a change (and returns next_cfg / cur_cfg as it left them).
  Result<CfgCounters> transactChange(const DbChange& change, Deadline deadline);
  // Sends the transaction of a change and waits until ovs-vswitchd applied it. `committed` tells
  // whether the transaction went in (even when the wait then failed).
  // Commits a change and waits until ovs-vswitchd has applied it; `ports` (how many it adds or
  // removes) extends the wait beyond the call's deadline.
  Result<void> commit(const DbChange& change, Deadline deadline, bool* committed = nullptr,
                      size_t ports = 0);
  static constexpr std::chrono::milliseconds kApplyPerPort{50};
  Result<void> waitApplied(CfgCounters counters, Deadline deadline);
  // After a commit: every new port has a number, or the error ovs-vswitchd gave. Returns the
  // numbers ovs-vswitchd assigned, by port name.
  Result<std::map<std::string, uint32_t>> checkNewPorts(const DbChange& change, Deadline deadline);
  // Creates the veth pairs of a change (LSI end up); on failure deletes those it made.
  Result<void> createVeths(const DbChange& change);
  // Deletes veth pairs by their LSI end (absent ones are fine).
  Result<void> deleteVeths(const std::vector<std::string>& lsi_ends);
  // Runs a creation: veths, one transaction, the wait for ovs-vswitchd, the check of the new
  // ports. On failure undoes it (nothing of it remains) and returns the error.
  Result<std::map<std::string, uint32_t>> applyCreation(const DbChange& change, Deadline deadline,
                                                        const UndoPlanner& make_undo);
  // Removes what a committed creation made, as well as it can (failures are logged).
  void undoCreation(const UndoPlanner& make_undo, const std::vector<std::string>& veths, bool wait);
  // Runs a removal: one transaction, the wait, then the veth deletions.
  Result<void> applyRemoval(const RemovalPlan& plan, Deadline deadline);

  std::shared_ptr<Channel> channel(const std::string& lsi);
  // The channel of an LSI if there is one (never makes one).
  std::shared_ptr<Channel> findChannel(const std::string& lsi);
  // Forgets an LSI: its connection and its wanted flows (destroyLsi).
  void dropChannel(const std::string& lsi);
  // After a call found no <lsi>.mgmt socket (no such LSI, or ovs-vswitchd is down): closes the
  // connection, and forgets the channel unless it has wanted flows (a heal brings them back).
  // ch->mu held.
  void releaseChannelLocked(const std::string& lsi, const std::shared_ptr<Channel>& ch);
  Result<void> deleteAllFlows(const std::string& lsi, Deadline deadline);

  // What syncLocked() found and did.
  struct SyncOutcome {
    size_t found = 0;              // corch's flows on the LSI (decodable, table 0)
    size_t added = 0;              // wanted rules it sent (missing, or different)
    size_t removed = 0;            // flows it deleted (not wanted)
    std::optional<Error> refused;  // the first rule the switch refused (each one is logged)
  };
  // Makes an LSI's flow table its wanted table (ch.flows): reads the flows, and sends what differs
  // as one batch closed by a barrier, adds of the wanted rules missing or different and
  // delete_stricts of the flows not wanted; rules already right are not touched, flows it cannot
  // decode are left alone. NotFound when there is no <lsi>.mgmt socket. ch.mu held. The core of
  // syncRules() and of healLsi().
  Result<SyncOutcome> syncLocked(const std::string& lsi, Channel& ch, Deadline deadline);

  // --- Healing (see the top of this file) ---
  void onChannelLost(const std::string& lsi, const Error& why);
  void onOvsdbLost(const Error& why);
  static void schedule(Heal& heal, bool fresh);
  void healerLoop();
  // One attempt to bring an LSI's flow table back to what it should be.
  HealResult healLsi(const std::string& lsi, const Heal& heal);
  // One attempt to reconnect to ovsdb-server.
  HealResult healOvsdb(const Heal& heal);
  // Whether the database still has a bridge (nullopt when it cannot be read).
  std::optional<bool> bridgeExists(const std::string& lsi);
  // A read-only transaction, tried again once when the connection had dropped (the first call
  // meets the dead connection; the second one reconnects).
  Result<rapidjson::Document> read(const rapidjson::Value& ops, Deadline deadline);

  const OvsOptions options_;
  const PlanContext context_;

  // Healing state; declared before the connections, whose readers report losses here until they
  // are gone.
  std::mutex heal_mu_;
  std::condition_variable heal_cv_;
  std::map<std::string, Heal> heal_lsis_;  // by LSI
  std::optional<Heal> heal_ovsdb_;
  bool stopping_ = false;

  OvsdbClient ovsdb_;

  std::mutex mgmt_mu_;                          // one management call at a time
  std::map<std::string, uint32_t> port_hints_;  // see PortNumbering; guarded by mgmt_mu_

  std::mutex channels_mu_;
  std::map<std::string, std::shared_ptr<Channel>> channels_;  // by LSI

  std::thread healer_;  // started last, stopped first
};

// Registers "ovs" in the registry.
void registerDriver(DriverRegistry& registry);

}  // namespace corch::drivers::ovs
