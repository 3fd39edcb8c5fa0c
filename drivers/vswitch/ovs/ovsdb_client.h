// An OVSDB client (RFC 7047 JSON-RPC) on one persistent connection.
//
// call() sends a request and waits for the reply with the same id; any number of calls may be
// outstanding at once, from any number of threads. A reader thread matches replies to requests,
// answers the server's "echo" requests (its inactivity probe), and hands notifications ("update"
// of a monitor, "locked", ...) to a handler. When the connection drops, the calls in flight fail
// with Unavailable and the next call connects again: callers never manage the connection.
//
// transact() is the "transact" method with the error conventions of RFC 7047 section 4.1.3
// turned into one Error: the first failed operation (or the commit error that follows the
// operations) and its details.
#pragma once

#include <rapidjson/document.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "corch/error.h"
#include "stream.h"

namespace corch::drivers::ovs {

// Splits a byte stream into the top-level JSON values it carries (JSON-RPC over a stream socket
// has no other framing). Values are objects or arrays; whitespace between them is skipped.
class JsonFramer {
 public:
  // Appends bytes and calls on_value for every complete value. Returns false (and stops) on bytes
  // that cannot start a value, when a value grows beyond kMaxValueSize, or when it nests deeper
  // than kMaxDepth (RapidJSON parses and writes recursively: a deep enough value would overflow
  // the reader's stack; OVSDB's own messages nest about ten levels).
  bool feed(std::string_view bytes, const std::function<void(std::string_view value)>& on_value);
  void reset();

  static constexpr size_t kMaxValueSize = 64 * 1024 * 1024;
  static constexpr int kMaxDepth = 128;

 private:
  std::string buf_;
  size_t scanned_ = 0;  // bytes of buf_ already scanned
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
};

class OvsdbClient {
 public:
  // Called on the reader thread with each notification (a message with a method and a null id):
  // it must not call back into the client.
  using NotificationHandler =
      std::function<void(const std::string& method, const rapidjson::Value& params)>;

  explicit OvsdbClient(Endpoint endpoint);
  ~OvsdbClient();
  OvsdbClient(const OvsdbClient&) = delete;
  OvsdbClient& operator=(const OvsdbClient&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }

  // Connects now if not connected (calls do it on their own; this is for probing).
  Result<void> connect(Deadline deadline);
  // Drops the connection; calls in flight fail with Unavailable.
  void disconnect();
  bool connected() const;

  void setNotificationHandler(NotificationHandler handler);

  // Called on the reader thread when the connection ends without disconnect() having asked for
  // it (ovsdb-server exited or closed it, an I/O error). It must not call back into the client
  // nor block.
  using LostHandler = std::function<void(const Error& why)>;
  void setLostHandler(LostHandler handler);

  // Sends {"method": method, "params": params, "id": N} and returns the reply's "result". A reply
  // with a non-null "error" becomes an Error (Internal, or the code its text suggests).
  Result<rapidjson::Document> call(std::string_view method, const rapidjson::Value& params,
                                   Deadline deadline);

  // "transact" on a database with an array of operations; returns the array of results. Fails
  // when any operation or the commit failed: Timeout for "timed out", AlreadyExists for an index
  // made non-unique, InvalidArgument for other constraint violations, Internal otherwise.
  Result<rapidjson::Document> transact(const std::string& db, const rapidjson::Value& ops,
                                       Deadline deadline);

 private:
  struct Slot {
    uint64_t conn_id = 0;
    bool done = false;
    std::optional<Error> error;
    rapidjson::Document reply;
  };

  struct Connected {
    std::shared_ptr<StreamConnection> conn;
    uint64_t id = 0;
  };
  // Returns the live connection, connecting if there is none.
  Result<Connected> ensureConnected(Deadline deadline);
  // Reader thread: one complete JSON-RPC message.
  bool onMessage(StreamConnection& conn, std::string_view text);
  void onClosed(uint64_t conn_id, const Error& why, bool requested);

  const Endpoint endpoint_;

  std::mutex connect_mu_;  // serialises (re)connecting
  mutable std::mutex mu_;  // everything below
  std::condition_variable cv_;
  std::shared_ptr<StreamConnection> conn_;
  uint64_t conn_id_ = 0;  // id of conn_; every connection gets a new one
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Slot>> pending_;  // request id -> its slot
  NotificationHandler notify_;
  LostHandler on_lost_;
};

// Serialises a JSON value compactly.
std::string toJson(const rapidjson::Value& value);
// Serialises a JSON value with indentation (golden files, logs).
std::string toPrettyJson(const rapidjson::Value& value);

}  // namespace corch::drivers::ovs
