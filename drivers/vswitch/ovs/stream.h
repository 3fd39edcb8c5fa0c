// Stream sockets for the ovs driver: where to connect (an OVS-style "unix:PATH" / "tcp:IP:PORT"
// endpoint), a connect with a deadline, and StreamConnection, a connected socket with a reader
// thread. The OVSDB client and the OpenFlow connection are both built on StreamConnection; a
// benchmark may use them directly.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "corch/error.h"
#include "platform/fd.h"

namespace corch::drivers::ovs {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// Milliseconds left until a deadline, never negative.
int64_t remainingMs(Deadline deadline);

using platform::UniqueFd;

// Where a stream socket connects: "unix:/run/openvswitch/db.sock" or "tcp:127.0.0.1:6640"
// (an IPv6 address goes in brackets: "tcp:[::1]:6640").
struct Endpoint {
  enum class Kind { Unix, Tcp };
  Kind kind = Kind::Unix;
  std::string path;  // Unix
  std::string host;  // Tcp: a numeric address
  uint16_t port = 0;

  static Result<Endpoint> parse(std::string_view text);
  static Endpoint unixPath(std::string path);
  std::string str() const;
};

// Connects a stream socket to an endpoint before the deadline. The socket is non-blocking and
// close-on-exec. Errors: NotFound when a unix socket path does not exist, Unavailable when
// nothing listens, Timeout when the deadline passes.
Result<UniqueFd> connectStream(const Endpoint& endpoint, Deadline deadline);

// A connected stream socket and the thread that reads it.
//
// The reader thread hands every chunk of bytes it receives to on_data, in order, with the
// connection itself (so that it can answer, e.g. an echo request, without owning a reference);
// on_data returns false when the bytes make no sense (the connection is then closed). When the
// connection ends (the peer closed it, an I/O error, close(), or a protocol error) the reader calls
// on_closed exactly once, with the reason and whether close() asked for it, and exits. Both
// callbacks run on the reader thread and must not destroy the StreamConnection nor wait for
// anything that only the reader can deliver.
//
// send() may be called from any thread; messages are written whole, one at a time. A send that
// cannot finish before its deadline closes the connection (a half-written message would corrupt
// the stream).
class StreamConnection {
 public:
  using OnData = std::function<bool(StreamConnection& self, std::string_view bytes)>;
  using OnClosed = std::function<void(const Error& why, bool requested)>;

  // Takes the connected socket and starts the reader thread. `peer` names the other end in
  // messages ("ovsdb unix:/run/db.sock").
  StreamConnection(UniqueFd fd, std::string peer, OnData on_data, OnClosed on_closed);
  // Closes the connection and joins the reader thread.
  ~StreamConnection();
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  Result<void> send(std::string_view bytes, Deadline deadline);
  // For the reader thread's own answers (echo replies): never waits for a writer. When another
  // thread is writing, the bytes go out right after its message; otherwise now. (A reader that
  // waited for a writer could deadlock: the writer may be blocked on a peer that stopped reading
  // until its replies are read.)
  void sendFromReader(std::string_view bytes);
  // Ends the connection; the reader calls on_closed and exits. Returns at once.
  void close();
  // False once the connection has ended (or is ending).
  bool alive() const { return alive_.load(); }
  const std::string& peer() const { return peer_; }

 private:
  void readLoop();
  // Ends the connection after an I/O failure (not a close() the owner asked for).
  void fail();
  // Writes whole bytes; write_mu_ held.
  Result<void> writeLocked(std::string_view bytes, Deadline deadline);
  // Writes the queued answers of the reader; write_mu_ held.
  void flushQueuedLocked();

  UniqueFd fd_;
  std::string peer_;
  OnData on_data_;
  OnClosed on_closed_;
  std::mutex write_mu_;
  std::mutex queue_mu_;
  std::string queued_;  // answers of the reader waiting for the current writer; queue_mu_
  std::atomic<bool> alive_{true};
  std::atomic<bool> close_requested_{false};
  std::thread reader_;
};

}  // namespace corch::drivers::ovs
