#include "stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "corch/log.h"

namespace corch::drivers::ovs {
namespace {

corch::log::Logger lg("ovs-stream");

int pollTimeout(Deadline deadline) {
  int64_t ms = remainingMs(deadline);
  return static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

}  // namespace

int64_t remainingMs(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max<int64_t>(0, left.count());
}

Result<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint e;
  if (text.starts_with("unix:")) {
    e.kind = Kind::Unix;
    e.path = std::string(text.substr(5));
    if (e.path.empty() || e.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Error(ErrorCode::InvalidArgument,
                   "invalid endpoint \"" + std::string(text) + "\": bad unix socket path");
    }
    return e;
  }
  if (text.starts_with("tcp:")) {
    e.kind = Kind::Tcp;
    std::string_view rest = text.substr(4);
    std::string_view host, port;
    if (rest.starts_with("[")) {
      auto close = rest.find("]:");
      if (close == std::string_view::npos) {
        return Error(ErrorCode::InvalidArgument,
                     "invalid endpoint \"" + std::string(text) + "\": expected tcp:[IPv6]:PORT");
      }
      host = rest.substr(1, close - 1);
      port = rest.substr(close + 2);
    } else {
      auto colon = rest.rfind(':');
      if (colon == std::string_view::npos) {
        return Error(ErrorCode::InvalidArgument,
                     "invalid endpoint \"" + std::string(text) + "\": expected tcp:IP:PORT");
      }
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return Error(ErrorCode::InvalidArgument,
                   "invalid endpoint \"" + std::string(text) + "\": bad port number");
    }
    in6_addr probe{};
    std::string host_str(host);
    if (inet_pton(AF_INET, host_str.c_str(), &probe) != 1 &&
        inet_pton(AF_INET6, host_str.c_str(), &probe) != 1) {
      return Error(ErrorCode::InvalidArgument, "invalid endpoint \"" + std::string(text) +
                                                   "\": the host must be a numeric IP address");
    }
    e.host = host_str;
    e.port = static_cast<uint16_t>(value);
    return e;
  }
  return Error(ErrorCode::InvalidArgument,
               "invalid endpoint \"" + std::string(text) + "\": expected unix:PATH or tcp:IP:PORT");
}

Endpoint Endpoint::unixPath(std::string path) {
  Endpoint e;
  e.kind = Kind::Unix;
  e.path = std::move(path);
  return e;
}

std::string Endpoint::str() const {
  if (kind == Kind::Unix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

Result<UniqueFd> connectStream(const Endpoint& endpoint, Deadline deadline) {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_UNIX;
  if (endpoint.kind == Endpoint::Kind::Unix) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&storage);
    sun->sun_family = AF_UNIX;
    if (endpoint.path.size() >= sizeof sun->sun_path) {
      return Error(ErrorCode::InvalidArgument,
                   "cannot connect to " + endpoint.str() + ": path too long");
    }
    std::memcpy(sun->sun_path, endpoint.path.c_str(), endpoint.path.size() + 1);
    len = sizeof(sockaddr_un);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, endpoint.host.c_str(), &sin->sin_addr) == 1) {
      family = AF_INET;
      sin->sin_family = AF_INET;
      sin->sin_port = htons(endpoint.port);
      len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, endpoint.host.c_str(), &sin6->sin6_addr) == 1) {
      family = AF_INET6;
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(endpoint.port);
      len = sizeof(sockaddr_in6);
    } else {
      return Error(ErrorCode::InvalidArgument,
                   "cannot connect to " + endpoint.str() + ": not a numeric address");
    }
  }

  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errnoError("cannot create a socket for " + endpoint.str(), errno);
  if (family != AF_UNIX) {
    // Requests are small and latency matters more than throughput.
    int one = 1;
    (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&storage), len) != 0) {
    int err = errno;
    if (err != EINPROGRESS && err != EAGAIN) {
      Error e = errnoError("cannot connect to " + endpoint.str(), err);
      // Nothing listening is a daemon that is not (yet) there, not a client mistake.
      if (err == ECONNREFUSED) return Error(ErrorCode::Unavailable, e.message());
      return e;
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int n;
    do {
      n = ::poll(&p, 1, pollTimeout(deadline));
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      return Error(ErrorCode::Timeout, "cannot connect to " + endpoint.str() + ": timed out");
    }
    int so_error = 0;
    socklen_t so_len = sizeof so_error;
    if (n < 0)
      so_error = errno;
    else
      (void)::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &so_len);
    if (so_error != 0) {
      Error e = errnoError("cannot connect to " + endpoint.str(), so_error);
      if (so_error == ECONNREFUSED) return Error(ErrorCode::Unavailable, e.message());
      return e;
    }
  }
  return fd;
}

StreamConnection::StreamConnection(UniqueFd fd, std::string peer, OnData on_data,
                                   OnClosed on_closed)
    : fd_(std::move(fd)),
      peer_(std::move(peer)),
      on_data_(std::move(on_data)),
      on_closed_(std::move(on_closed)) {
  reader_ = std::thread([this] { readLoop(); });
}

StreamConnection::~StreamConnection() {
  close();
  if (reader_.joinable()) reader_.join();
}

void StreamConnection::close() {
  // shutdown() rather than close(): the descriptor stays valid (no reuse by another socket while
  // the reader or a writer still uses it) and both of them wake up.
  close_requested_.store(true);
  alive_.store(false);
  (void)::shutdown(fd_.get(), SHUT_RDWR);
}

void StreamConnection::fail() {
  alive_.store(false);
  (void)::shutdown(fd_.get(), SHUT_RDWR);
}

Result<void> StreamConnection::send(std::string_view bytes, Deadline deadline) {
  Result<void> r = Ok();
  {
    std::lock_guard lock(write_mu_);
    r = writeLocked(bytes, deadline);
    if (r.ok()) flushQueuedLocked();
  }
  // The reader may have queued an answer after the flush and before the unlock.
  std::unique_lock lock(write_mu_, std::try_to_lock);
  if (lock) flushQueuedLocked();
  return r;
}

void StreamConnection::sendFromReader(std::string_view bytes) {
  {
    std::lock_guard lock(queue_mu_);
    queued_.append(bytes);
  }
  std::unique_lock lock(write_mu_, std::try_to_lock);
  if (lock) flushQueuedLocked();
  // Otherwise the thread holding write_mu_ flushes the queue once its message is out.
}

void StreamConnection::flushQueuedLocked() {
  std::string bytes;
  {
    std::lock_guard lock(queue_mu_);
    bytes.swap(queued_);
  }
  if (!bytes.empty()) (void)writeLocked(bytes, Clock::now() + std::chrono::seconds(5));
}

Result<void> StreamConnection::writeLocked(std::string_view bytes, Deadline deadline) {
  if (!alive()) return Error(ErrorCode::Unavailable, "cannot send to " + peer_ + ": not connected");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    int err = errno;
    if (n < 0 && err == EINTR) continue;
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
      pollfd p{fd_.get(), POLLOUT, 0};
      int r = ::poll(&p, 1, pollTimeout(deadline));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) {
        fail();
        return Error(ErrorCode::Timeout,
                     "cannot send to " + peer_ + ": it did not read its input in time");
      }
      if (r > 0 && (p.revents & POLLOUT)) continue;
      if (r > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
        err = EPIPE;
      else
        err = errno;
    }
    fail();
    return Error(ErrorCode::Unavailable, errnoError("cannot send to " + peer_, err).message());
  }
  return Ok();
}

void StreamConnection::readLoop() {
  std::string buf(64 * 1024, '\0');
  Error why(ErrorCode::Unavailable, peer_ + " closed the connection");
  for (;;) {
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      why = Error(ErrorCode::Unavailable, errnoError("cannot read from " + peer_, errno).message());
      break;
    }
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      why = Error(ErrorCode::Unavailable, errnoError("cannot read from " + peer_, errno).message());
      break;
    }
    if (n == 0) {
      if (close_requested_)
        why = Error(ErrorCode::Unavailable, "the connection to " + peer_ + " was closed");
      break;
    }
    if (!on_data_(*this, std::string_view(buf.data(), static_cast<size_t>(n)))) {
      why = Error(ErrorCode::Unavailable, peer_ + " sent a malformed message");
      break;
    }
  }
  alive_.store(false);
  (void)::shutdown(fd_.get(), SHUT_RDWR);
  CORCH_LOG(lg, Debug) << "connection to " << peer_ << " ended: " << why.message();
  on_closed_(why, close_requested_.load());
}

}  // namespace corch::drivers::ovs
