// One OpenFlow 1.3 connection to a switch (for Open vSwitch: the unix socket <rundir>/<bridge>.mgmt
// that ovs-vswitchd opens for every bridge, the one ovs-ofctl uses; no controller configuration).
//
// The connection is opened on first use (HELLO, then an ECHO round trip to learn that the switch
// accepted OpenFlow 1.3) and again on the first use after it dropped. A reader thread answers the
// switch's echo requests, matches replies and errors to requests by xid, and fails the requests in
// flight with Unavailable when the connection drops. Thread-safe; requests from several threads
// may be in flight at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "corch/error.h"
#include "openflow.h"
#include "stream.h"

namespace corch::drivers::ovs {

class OfConnection {
 public:
  // An OFPT_ERROR the switch sent for one message.
  struct XidError {
    uint32_t xid = 0;
    openflow::ErrorReply error;
  };

  // `name` says what the switch is in messages ("LSI corch-g1").
  OfConnection(Endpoint endpoint, std::string name);
  ~OfConnection();
  OfConnection(const OfConnection&) = delete;
  OfConnection& operator=(const OfConnection&) = delete;

  // Reserves n consecutive transaction ids and returns the first (never 0; no wrap inside).
  uint32_t reserveXids(uint32_t n);

  // Connects now if not connected. NotFound when the socket does not exist (no such bridge).
  Result<void> connect(Deadline deadline);
  // Drops the connection; requests in flight fail with Unavailable.
  void close();
  // Whether the connection is up (false before the first use).
  bool connected() const;

  // Called on the reader thread when a connection ends without close() having asked for it: the
  // switch closed it (ovs-vswitchd exited, the bridge was deleted) or it failed. It must not call
  // back into this connection nor block (nor wait for a lock held around a call into it). Set it
  // before the first use.
  using LostHandler = std::function<void(const Error& why)>;
  void setLostHandler(LostHandler handler);

  // Sends `messages` (whole messages, concatenated, whose xids lie in [first_xid, first_xid +
  // count)) and then a BARRIER_REQUEST with xid first_xid + count (so reserve count + 1), and
  // waits for the barrier reply. Returns the errors the switch reported for the messages, in the
  // order it sent them: the switch processes messages in order, so every error of the batch
  // arrives before the barrier reply.
  Result<std::vector<XidError>> sendWithBarrier(std::string_view messages, uint32_t first_xid,
                                                uint32_t count, Deadline deadline);

  // Sends a MULTIPART_REQUEST with this xid and returns every part of the reply, whole messages
  // in order. An error reply to the request fails it.
  Result<std::vector<std::string>> multipart(std::string_view request, uint32_t xid,
                                             Deadline deadline);

 private:
  struct Pending {
    uint64_t conn_id = 0;
    uint32_t first = 0;  // errors for xids in [first, last] belong to this request
    uint32_t last = 0;   // the xid whose reply completes it
    uint8_t reply_type = 0;
    std::vector<XidError> errors;
    std::vector<std::string> replies;
    bool done = false;
    std::optional<Error> failure;
  };
  struct Connected {
    std::shared_ptr<StreamConnection> conn;
    uint64_t id = 0;
  };

  Result<Connected> ensureConnected(Deadline deadline);
  // Registers a request, sends its bytes and waits for its completion.
  Result<std::shared_ptr<Pending>> request(const Connected& c, std::string_view bytes,
                                           uint32_t first, uint32_t last,
                                           openflow::MsgType reply_type, Deadline deadline);
  void onMessage(StreamConnection& conn, std::string_view msg);
  void onClosed(uint64_t conn_id, const Error& why, bool requested);
  // Fails the requests in flight on a connection; mu_ held.
  void failPendingLocked(uint64_t conn_id, const Error& why);

  const Endpoint endpoint_;
  const std::string name_;

  std::mutex connect_mu_;  // serialises (re)connecting
  mutable std::mutex mu_;  // everything below
  std::condition_variable cv_;
  std::shared_ptr<StreamConnection> conn_;
  uint64_t conn_id_ = 0;
  uint32_t next_xid_ = 1;
  std::map<uint32_t, std::shared_ptr<Pending>> pending_;  // by last xid
  LostHandler on_lost_;
};

}  // namespace corch::drivers::ovs
