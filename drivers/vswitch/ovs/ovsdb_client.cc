#include "ovsdb_client.h"

#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "corch/log.h"

namespace corch::drivers::ovs {
namespace {

corch::log::Logger lg("ovsdb");

std::string stringOf(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  return toJson(v);
}

// An error object of RFC 7047 ({"error": "...", "details": "..."}) as an Error.
Error ovsdbError(const rapidjson::Value& e) {
  std::string error = "unknown error";
  std::string details;
  if (e.IsObject()) {
    auto it = e.FindMember("error");
    if (it != e.MemberEnd()) error = stringOf(it->value);
    auto d = e.FindMember("details");
    if (d != e.MemberEnd() && !d->value.IsNull()) details = stringOf(d->value);
  } else if (!e.IsNull()) {
    error = stringOf(e);
  }
  ErrorCode code = ErrorCode::Internal;
  if (error == "timed out") {
    code = ErrorCode::Timeout;
  } else if (error == "constraint violation") {
    // A unique index (Bridge, Port and Interface names) made ambiguous: the name is taken.
    code = details.find("identical values") != std::string::npos ? ErrorCode::AlreadyExists
                                                                 : ErrorCode::InvalidArgument;
  } else if (error == "referential integrity violation" || error == "syntax error" ||
             error == "unknown column" || error == "unknown table") {
    code = ErrorCode::InvalidArgument;
  } else if (error == "resources exhausted") {
    code = ErrorCode::ResourceExhausted;
  } else if (error == "not owner") {
    code = ErrorCode::Conflict;
  }
  std::string message = "ovsdb: " + error;
  if (!details.empty()) message += ": " + details;
  return Error(code, message);
}

}  // namespace

std::string toJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string toPrettyJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  writer.SetFormatOptions(rapidjson::kFormatSingleLineArray);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// ---------------------------------------------------------------------------------------------
// JsonFramer

void JsonFramer::reset() {
  buf_.clear();
  scanned_ = 0;
  depth_ = 0;
  in_string_ = false;
  escape_ = false;
}

bool JsonFramer::feed(std::string_view bytes,
                      const std::function<void(std::string_view value)>& on_value) {
  buf_.append(bytes);
  size_t start = 0;  // where the value being scanned starts
  size_t i = scanned_;
  while (i < buf_.size()) {
    char c = buf_[i];
    if (depth_ == 0) {
      // Between values: skip whitespace, expect the start of an object or array.
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        ++i;
        start = i;
        continue;
      }
      if (c != '{' && c != '[') return false;
      start = i;
      depth_ = 1;
      ++i;
      continue;
    }
    if (in_string_) {
      if (escape_)
        escape_ = false;
      else if (c == '\\')
        escape_ = true;
      else if (c == '"')
        in_string_ = false;
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      if (++depth_ > kMaxDepth) return false;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        on_value(std::string_view(buf_).substr(start, i + 1 - start));
        start = i + 1;
      }
    }
    ++i;
  }
  // Keep only the incomplete value.
  if (depth_ == 0) {
    buf_.clear();
    scanned_ = 0;
  } else {
    buf_.erase(0, start);
    scanned_ = buf_.size();
    if (buf_.size() > kMaxValueSize) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// OvsdbClient

OvsdbClient::OvsdbClient(Endpoint endpoint) : endpoint_(std::move(endpoint)) {}

OvsdbClient::~OvsdbClient() {
  std::shared_ptr<StreamConnection> conn;
  {
    std::lock_guard lock(mu_);
    conn = std::move(conn_);
  }
  // Destroying the connection joins its reader, which may still call onClosed (taking mu_):
  // hence outside the lock.
  conn.reset();
}

void OvsdbClient::setNotificationHandler(NotificationHandler handler) {
  std::lock_guard lock(mu_);
  notify_ = std::move(handler);
}

void OvsdbClient::setLostHandler(LostHandler handler) {
  std::lock_guard lock(mu_);
  on_lost_ = std::move(handler);
}

bool OvsdbClient::connected() const {
  std::lock_guard lock(mu_);
  return conn_ && conn_->alive();
}

void OvsdbClient::disconnect() {
  std::lock_guard lock(mu_);
  if (conn_) conn_->close();
}

Result<void> OvsdbClient::connect(Deadline deadline) {
  auto c = ensureConnected(deadline);
  if (!c.ok()) return std::move(c).error();
  return Ok();
}

Result<OvsdbClient::Connected> OvsdbClient::ensureConnected(Deadline deadline) {
  std::lock_guard connect_lock(connect_mu_);
  std::shared_ptr<StreamConnection> old;
  {
    std::lock_guard lock(mu_);
    if (conn_ && conn_->alive()) return Connected{conn_, conn_id_};
    old = std::move(conn_);
  }
  old.reset();  // joins the old reader (if this was the last reference)

  auto fd = connectStream(endpoint_, deadline);
  if (!fd.ok()) return fd.error().context("cannot connect to ovsdb-server");
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = ++conn_id_;
  }
  // The framer is state of this connection's reader only: a copy lives in the callback.
  auto on_data = [this, framer = JsonFramer()](StreamConnection& self,
                                               std::string_view bytes) mutable {
    bool ok = true;
    bool framed = framer.feed(bytes, [&](std::string_view text) {
      if (ok) ok = onMessage(self, text);
    });
    return framed && ok;
  };
  auto conn = std::make_shared<StreamConnection>(
      std::move(*fd), "ovsdb " + endpoint_.str(), std::move(on_data),
      [this, id](const Error& why, bool requested) { onClosed(id, why, requested); });
  CORCH_LOG(lg, Debug) << "connected to " << endpoint_.str();
  std::lock_guard lock(mu_);
  conn_ = conn;
  return Connected{conn, id};
}

Result<rapidjson::Document> OvsdbClient::call(std::string_view method,
                                              const rapidjson::Value& params, Deadline deadline) {
  auto connected = ensureConnected(deadline);
  if (!connected.ok()) return std::move(connected).error();

  auto slot = std::make_shared<Slot>();
  slot->conn_id = connected->id;
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    if (conn_ != connected->conn || !conn_->alive()) {
      return Error(ErrorCode::Unavailable,
                   "cannot call " + std::string(method) + ": the ovsdb connection dropped");
    }
    id = next_id_++;
    pending_[id] = slot;
  }

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("method");
  writer.String(method.data(), static_cast<rapidjson::SizeType>(method.size()));
  writer.Key("params");
  params.Accept(writer);
  writer.Key("id");
  writer.Uint64(id);
  writer.EndObject();

  auto sent =
      connected->conn->send(std::string_view(buffer.GetString(), buffer.GetSize()), deadline);
  std::unique_lock lock(mu_);
  if (!sent.ok()) {
    pending_.erase(id);
    return sent.error().context("cannot call " + std::string(method) + " on ovsdb");
  }
  if (!cv_.wait_until(lock, deadline, [&] { return slot->done; })) {
    pending_.erase(id);
    return Error(ErrorCode::Timeout, "ovsdb-server did not answer " + std::string(method) +
                                         " in time (" + endpoint_.str() + ")");
  }
  if (slot->error) return *slot->error;
  return std::move(slot->reply);
}

Result<rapidjson::Document> OvsdbClient::transact(const std::string& db,
                                                  const rapidjson::Value& ops, Deadline deadline) {
  rapidjson::Document params(rapidjson::kArrayType);
  auto& a = params.GetAllocator();
  params.PushBack(rapidjson::Value(db.c_str(), a), a);
  if (ops.IsArray()) {
    for (const auto& op : ops.GetArray()) params.PushBack(rapidjson::Value(op, a), a);
  }
  auto reply = call("transact", params, deadline);
  if (!reply.ok()) return reply;
  const rapidjson::Value& result = *reply;
  if (!result.IsArray()) {
    return Error(ErrorCode::Internal, "ovsdb: transact answered with a non-array result");
  }
  for (const auto& r : result.GetArray()) {
    if (r.IsObject() && r.HasMember("error") && !r["error"].IsNull()) return ovsdbError(r);
  }
  return reply;
}

bool OvsdbClient::onMessage(StreamConnection& conn, std::string_view text) {
  rapidjson::Document msg;
  msg.Parse(text.data(), text.size());
  if (msg.HasParseError() || !msg.IsObject()) {
    CORCH_LOG(lg, Warn) << "ovsdb-server sent malformed JSON: "
                        << rapidjson::GetParseError_En(msg.GetParseError());
    return false;
  }
  auto method = msg.FindMember("method");
  auto id = msg.FindMember("id");
  if (method != msg.MemberEnd() && method->value.IsString()) {
    rapidjson::Value empty(rapidjson::kArrayType);
    auto params_it = msg.FindMember("params");
    const rapidjson::Value& params = params_it != msg.MemberEnd() ? params_it->value : empty;
    if (id != msg.MemberEnd() && !id->value.IsNull()) {
      // A request from the server. "echo" is its liveness probe: answer with the same params.
      rapidjson::Document reply(rapidjson::kObjectType);
      auto& a = reply.GetAllocator();
      if (std::string_view(method->value.GetString()) == "echo") {
        reply.AddMember("result", rapidjson::Value(params, a), a);
        reply.AddMember("error", rapidjson::Value(), a);
      } else {
        reply.AddMember("result", rapidjson::Value(), a);
        reply.AddMember("error", rapidjson::Value("unknown method", a), a);
      }
      reply.AddMember("id", rapidjson::Value(id->value, a), a);
      conn.sendFromReader(toJson(reply));
      return true;
    }
    NotificationHandler handler;
    {
      std::lock_guard lock(mu_);
      handler = notify_;
    }
    if (handler) handler(method->value.GetString(), params);
    return true;
  }
  // A reply.
  if (id == msg.MemberEnd() || !id->value.IsUint64()) {
    // Replies to our own echo requests (we send none) or stray ids: ignore.
    return true;
  }
  std::lock_guard lock(mu_);
  auto it = pending_.find(id->value.GetUint64());
  if (it == pending_.end()) return true;  // the caller gave up (timeout)
  auto slot = it->second;
  pending_.erase(it);
  auto error = msg.FindMember("error");
  if (error != msg.MemberEnd() && !error->value.IsNull()) {
    slot->error = ovsdbError(error->value);
  } else {
    auto result = msg.FindMember("result");
    if (result == msg.MemberEnd()) {
      slot->error = Error(ErrorCode::Internal, "ovsdb: a reply has neither result nor error");
    } else {
      slot->reply.CopyFrom(result->value, slot->reply.GetAllocator());
    }
  }
  slot->done = true;
  cv_.notify_all();
  return true;
}

void OvsdbClient::onClosed(uint64_t conn_id, const Error& why, bool requested) {
  LostHandler on_lost;
  {
    std::lock_guard lock(mu_);
    size_t failed = 0;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second->conn_id == conn_id) {
        it->second->error = Error(ErrorCode::Unavailable, "ovsdb: " + why.message());
        it->second->done = true;
        it = pending_.erase(it);
        ++failed;
      } else {
        ++it;
      }
    }
    cv_.notify_all();
    if (requested && failed == 0) {
      CORCH_LOG(lg, Debug) << why.message();
    } else {
      CORCH_LOG(lg, Info) << "lost the ovsdb connection (" << failed
                          << " calls in flight failed): " << why.message();
    }
    if (!requested) on_lost = on_lost_;
  }
  if (on_lost) on_lost(why);
}

}  // namespace corch::drivers::ovs
