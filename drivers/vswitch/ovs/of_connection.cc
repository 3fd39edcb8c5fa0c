#include "of_connection.h"

#include "corch/log.h"

namespace corch::drivers::ovs {
namespace {

corch::log::Logger lg("openflow");

using openflow::MsgType;

}  // namespace

OfConnection::OfConnection(Endpoint endpoint, std::string name)
    : endpoint_(std::move(endpoint)), name_(std::move(name)) {}

OfConnection::~OfConnection() {
  std::shared_ptr<StreamConnection> conn;
  {
    std::lock_guard lock(mu_);
    conn = std::move(conn_);
  }
  conn.reset();  // joins the reader, which takes mu_ in onClosed
}

uint32_t OfConnection::reserveXids(uint32_t n) {
  std::lock_guard lock(mu_);
  if (next_xid_ == 0 || next_xid_ > UINT32_MAX - n) next_xid_ = 1;
  uint32_t first = next_xid_;
  next_xid_ += n;
  return first;
}

Result<void> OfConnection::connect(Deadline deadline) {
  auto c = ensureConnected(deadline);
  if (!c.ok()) return std::move(c).error();
  return Ok();
}

void OfConnection::close() {
  std::lock_guard lock(mu_);
  if (conn_) conn_->close();
}

bool OfConnection::connected() const {
  std::lock_guard lock(mu_);
  return conn_ && conn_->alive();
}

void OfConnection::setLostHandler(LostHandler handler) {
  std::lock_guard lock(mu_);
  on_lost_ = std::move(handler);
}

Result<OfConnection::Connected> OfConnection::ensureConnected(Deadline deadline) {
  std::lock_guard connect_lock(connect_mu_);
  std::shared_ptr<StreamConnection> old;
  {
    std::lock_guard lock(mu_);
    if (conn_ && conn_->alive()) return Connected{conn_, conn_id_};
    old = std::move(conn_);
  }
  old.reset();

  auto fd = connectStream(endpoint_, deadline);
  if (!fd.ok()) {
    return fd.error().context("cannot open the OpenFlow connection to " + name_);
  }
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = ++conn_id_;
  }
  auto on_data = [this, framer = openflow::MessageFramer()](StreamConnection& self,
                                                            std::string_view bytes) mutable {
    return framer.feed(bytes, [&](std::string_view msg) { onMessage(self, msg); });
  };
  auto conn = std::make_shared<StreamConnection>(
      std::move(*fd), "OpenFlow " + endpoint_.str(), std::move(on_data),
      [this, id](const Error& why, bool requested) { onClosed(id, why, requested); });
  {
    std::lock_guard lock(mu_);
    conn_ = conn;
  }
  Connected c{conn, id};

  // HELLO, then an echo: its reply proves the switch accepted our version (a switch that does not
  // answers the HELLO with an error, which lands on this request).
  uint32_t hello = reserveXids(2);
  std::string bytes = openflow::encodeHello(hello) + openflow::encodeEchoRequest(hello + 1);
  auto done = request(c, bytes, hello, hello + 1, MsgType::EchoReply, deadline);
  if (!done.ok()) {
    conn->close();
    return done.error().context("cannot open the OpenFlow connection to " + name_);
  }
  if (!(*done)->errors.empty()) {
    conn->close();
    const auto& e = (*done)->errors.front().error;
    return Error(ErrorCode::Unavailable, "cannot open the OpenFlow connection to " + name_ +
                                             ": the switch refused OpenFlow 1.3: " +
                                             openflow::describeError(e.type, e.code));
  }
  CORCH_LOG(lg, Debug) << "connected to " << name_ << " at " << endpoint_.str();
  return c;
}

Result<std::shared_ptr<OfConnection::Pending>> OfConnection::request(const Connected& c,
                                                                     std::string_view bytes,
                                                                     uint32_t first, uint32_t last,
                                                                     MsgType reply_type,
                                                                     Deadline deadline) {
  auto p = std::make_shared<Pending>();
  p->conn_id = c.id;
  p->first = first;
  p->last = last;
  p->reply_type = static_cast<uint8_t>(reply_type);
  {
    std::lock_guard lock(mu_);
    if (conn_ != c.conn || !c.conn->alive()) {
      return Error(ErrorCode::Unavailable, "the OpenFlow connection to " + name_ + " dropped");
    }
    pending_[last] = p;
  }
  auto sent = c.conn->send(bytes, deadline);
  std::unique_lock lock(mu_);
  if (!sent.ok()) {
    pending_.erase(last);
    return sent.error().context("cannot send to " + name_);
  }
  if (!cv_.wait_until(lock, deadline, [&] { return p->done; })) {
    pending_.erase(last);
    return Error(ErrorCode::Timeout, "the switch of " + name_ + " did not answer in time");
  }
  if (p->failure) return *p->failure;
  return p;
}

Result<std::vector<OfConnection::XidError>> OfConnection::sendWithBarrier(std::string_view messages,
                                                                          uint32_t first_xid,
                                                                          uint32_t count,
                                                                          Deadline deadline) {
  auto c = ensureConnected(deadline);
  if (!c.ok()) return std::move(c).error();
  uint32_t barrier = first_xid + count;
  std::string bytes;
  bytes.reserve(messages.size() + openflow::kHeaderSize);
  bytes.append(messages);
  bytes.append(openflow::encodeBarrierRequest(barrier));
  auto done = request(*c, bytes, first_xid, barrier, MsgType::BarrierReply, deadline);
  if (!done.ok()) return std::move(done).error();
  return std::move((*done)->errors);
}

Result<std::vector<std::string>> OfConnection::multipart(std::string_view request_bytes,
                                                         uint32_t xid, Deadline deadline) {
  auto c = ensureConnected(deadline);
  if (!c.ok()) return std::move(c).error();
  auto done = request(*c, request_bytes, xid, xid, MsgType::MultipartReply, deadline);
  if (!done.ok()) return std::move(done).error();
  return std::move((*done)->replies);
}

void OfConnection::onMessage(StreamConnection& conn, std::string_view msg) {
  auto h = openflow::parseHeader(msg);
  if (!h) return;
  switch (static_cast<MsgType>(h->type)) {
    case MsgType::EchoRequest:
      // The switch's liveness probe: answer at once, with its payload.
      conn.sendFromReader(openflow::encodeEchoReply(h->xid, msg.substr(openflow::kHeaderSize)));
      return;
    case MsgType::Error: {
      auto e = openflow::parseError(msg);
      if (!e) return;
      std::lock_guard lock(mu_);
      auto it = pending_.lower_bound(h->xid);
      if (it == pending_.end() || it->second->first > h->xid) {
        CORCH_LOG(lg, Warn) << name_ << ": error for no request (xid " << h->xid
                            << "): " << openflow::describeError(e->type, e->code);
        return;
      }
      auto p = it->second;
      if (h->xid == p->last && p->reply_type != static_cast<uint8_t>(MsgType::EchoReply)) {
        p->failure = Error(ErrorCode::Internal, "the switch of " + name_ + " refused a request: " +
                                                    openflow::describeError(e->type, e->code));
        p->done = true;
        pending_.erase(it);
        cv_.notify_all();
      } else {
        p->errors.push_back(XidError{h->xid, *e});
      }
      return;
    }
    case MsgType::EchoReply:
    case MsgType::BarrierReply:
    case MsgType::MultipartReply: {
      std::lock_guard lock(mu_);
      auto it = pending_.find(h->xid);
      if (it == pending_.end() || it->second->reply_type != h->type) return;
      auto p = it->second;
      bool last_part = true;
      if (h->type == static_cast<uint8_t>(MsgType::MultipartReply)) {
        p->replies.emplace_back(msg);
        auto m = openflow::parseMultipartReply(msg);
        last_part = !m || !m->more();
      }
      if (last_part) {
        p->done = true;
        pending_.erase(it);
        cv_.notify_all();
      }
      return;
    }
    default:
      // HELLO, PORT_STATUS and other asynchronous messages: nothing waits for them.
      return;
  }
}

void OfConnection::onClosed(uint64_t conn_id, const Error& why, bool requested) {
  LostHandler on_lost;
  {
    std::lock_guard lock(mu_);
    failPendingLocked(conn_id, why);
    if (!requested) on_lost = on_lost_;
  }
  if (requested) {
    CORCH_LOG(lg, Debug) << "OpenFlow connection to " << name_ << " ended: " << why.message();
  } else {
    CORCH_LOG(lg, Info) << "lost the OpenFlow connection to " << name_ << ": " << why.message();
  }
  // Outside mu_: the handler takes its owner's locks (the owner's, never one held around a call
  // into this connection: that call waits for this reader).
  if (on_lost) on_lost(why);
}

void OfConnection::failPendingLocked(uint64_t conn_id, const Error& why) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second->conn_id == conn_id) {
      std::string message = name_ + ": " + why.message();
      if (!it->second->errors.empty()) {
        const auto& e = it->second->errors.front().error;
        message += " (after reporting " + openflow::describeError(e.type, e.code) + ")";
      }
      it->second->failure = Error(ErrorCode::Unavailable, message);
      it->second->done = true;
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  cv_.notify_all();
}

}  // namespace corch::drivers::ovs
