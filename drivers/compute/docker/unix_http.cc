// The HTTP/1.1 client of unix_http.h: non-blocking sockets and poll() against the call's
// deadline, a response parser for Content-Length, chunked and close-delimited bodies, and a pool
// of idle keep-alive connections.
#include "unix_http.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>

namespace corch::drivers::docker {
namespace {

using platform::UniqueFd;
using std::chrono::steady_clock;

// A larger answer is refused: no Engine API answer the driver asks for comes near it (logs are
// asked for with a tail).
constexpr size_t kMaxBody = 64u << 20;
constexpr size_t kMaxHeader = 64u << 10;

int msLeft(Deadline deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

Result<void> waitReady(int fd, short events, Deadline deadline, const std::string& doing) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, msLeft(deadline));
    if (n > 0) return Ok();
    if (n == 0) return Error(ErrorCode::Timeout, doing + ": the engine did not answer in time");
    if (errno != EINTR) return errnoError(doing, errno);
  }
}

Result<void> sendAll(int fd, const std::string& data, Deadline deadline, const std::string& doing) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<size_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      CORCH_TRY(waitReady(fd, POLLOUT, deadline, doing));
    } else if (errno != EINTR) {
      return errnoError(doing, errno);
    }
  }
  return Ok();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Buffered reads from one connection, each bounded by the call's deadline.
class Reader {
 public:
  Reader(int fd, Deadline deadline, const std::string& doing)
      : fd_(fd), deadline_(deadline), doing_(doing) {}

  size_t received() const { return received_; }

  // A line without its CRLF; Internal at end of stream.
  Result<std::string> line() {
    for (;;) {
      size_t eol = buf_.find("\r\n", pos_);
      if (eol != std::string::npos) {
        std::string out = buf_.substr(pos_, eol - pos_);
        pos_ = eol + 2;
        return out;
      }
      if (buf_.size() - pos_ > kMaxHeader) return malformed("a line longer than 64 KiB");
      auto more = readMore();
      if (!more.ok()) return std::move(more).error();
      if (!*more) return malformed("the connection closed in the middle of the answer");
    }
  }

  Result<std::string> take(size_t n) {
    while (buf_.size() - pos_ < n) {
      auto more = readMore();
      if (!more.ok()) return std::move(more).error();
      if (!*more) return malformed("the connection closed in the middle of the body");
    }
    std::string out = buf_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  Result<std::string> untilClose() {
    for (;;) {
      auto more = readMore();
      if (!more.ok()) return std::move(more).error();
      if (!*more) break;
    }
    std::string out = buf_.substr(pos_);
    pos_ = buf_.size();
    return out;
  }

  Error malformed(const std::string& why) const {
    return Error(ErrorCode::Internal, doing_ + ": the engine's answer is not valid HTTP: " + why);
  }

 private:
  // False at end of stream.
  Result<bool> readMore() {
    if (buf_.size() - pos_ > kMaxBody) {
      return Error(ErrorCode::TooLarge, doing_ + ": the engine's answer exceeds 64 MiB");
    }
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    char chunk[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
        received_ += static_cast<size_t>(n);
        return true;
      }
      if (n == 0) return false;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        CORCH_TRY(waitReady(fd_, POLLIN, deadline_, doing_));
      } else if (errno != EINTR) {
        return errnoError(doing_, errno);
      }
    }
  }

  int fd_;
  Deadline deadline_;
  const std::string& doing_;
  std::string buf_;
  size_t pos_ = 0;
  size_t received_ = 0;
};

Result<std::string> readChunked(Reader& in) {
  std::string body;
  for (;;) {
    auto size_line = in.line();
    if (!size_line.ok()) return std::move(size_line).error();
    char* end = nullptr;
    unsigned long long size = std::strtoull(size_line->c_str(), &end, 16);
    if (end == size_line->c_str()) return in.malformed("a bad chunk size '" + *size_line + "'");
    if (size == 0) break;
    if (body.size() + size > kMaxBody) {
      return Error(ErrorCode::TooLarge, "the engine's answer exceeds 64 MiB");
    }
    auto data = in.take(static_cast<size_t>(size) + 2);  // the chunk and its CRLF
    if (!data.ok()) return std::move(data).error();
    body.append(*data, 0, static_cast<size_t>(size));
  }
  // Trailers, up to the empty line.
  for (;;) {
    auto trailer = in.line();
    if (!trailer.ok()) return std::move(trailer).error();
    if (trailer->empty()) return body;
  }
}

struct Exchange {
  HttpResponse response;
  bool keep_alive = false;
};

// Sends one request on `fd` and reads its answer. `received` tells the caller whether any byte of
// an answer arrived (a retry on a fresh connection is safe only when none did).
Result<Exchange> exchange(int fd, std::string_view method, const std::string& target,
                          const std::string& body, std::string_view content_type, Deadline deadline,
                          const std::string& doing, size_t& received) {
  std::string req;
  req.reserve(256 + body.size());
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: docker\r\n");
  req.append("User-Agent: corchd\r\nAccept: application/json\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.append("Content-Type: ").append(content_type).append("\r\n");
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  req.append("\r\n").append(body);
  CORCH_TRY(sendAll(fd, req, deadline, doing));

  Reader in(fd, deadline, doing);
  Exchange ex;
  std::map<std::string, std::string> headers;
  for (;;) {  // 1xx answers precede the real one
    auto status_line = in.line();
    received = in.received();
    if (!status_line.ok()) return std::move(status_line).error();
    if (status_line->rfind("HTTP/1.", 0) != 0 || status_line->size() < 12) {
      return in.malformed("status line '" + status_line->substr(0, 80) + "'");
    }
    ex.response.status = std::atoi(status_line->c_str() + 9);
    headers.clear();
    for (;;) {
      auto h = in.line();
      if (!h.ok()) return std::move(h).error();
      if (h->empty()) break;
      size_t colon = h->find(':');
      if (colon == std::string::npos) return in.malformed("header line '" + *h + "'");
      headers[lower(h->substr(0, colon))] = trim(h->substr(colon + 1));
    }
    if (ex.response.status >= 200) break;
  }
  received = in.received();
  ex.response.content_type = headers["content-type"];
  const int status = ex.response.status;
  const bool no_body = method == "HEAD" || status == 204 || status == 304;
  ex.keep_alive = lower(headers["connection"]) != "close";
  if (no_body) return ex;
  if (lower(headers["transfer-encoding"]).find("chunked") != std::string::npos) {
    auto b = readChunked(in);
    if (!b.ok()) return std::move(b).error();
    ex.response.body = std::move(*b);
  } else if (auto it = headers.find("content-length"); it != headers.end()) {
    unsigned long long length = std::strtoull(it->second.c_str(), nullptr, 10);
    if (length > kMaxBody) return Error(ErrorCode::TooLarge, doing + ": answer exceeds 64 MiB");
    auto b = in.take(static_cast<size_t>(length));
    if (!b.ok()) return std::move(b).error();
    ex.response.body = std::move(*b);
  } else {
    auto b = in.untilClose();
    if (!b.ok()) return std::move(b).error();
    ex.response.body = std::move(*b);
    ex.keep_alive = false;
  }
  return ex;
}

}  // namespace

UnixHttpClient::UnixHttpClient(std::string socket_path, size_t max_idle)
    : socket_path_(std::move(socket_path)), max_idle_(max_idle) {}

Result<UniqueFd> UnixHttpClient::connect(Deadline deadline) const {
  const std::string doing = "cannot connect to the engine socket " + socket_path_;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(sa.sun_path)) {
    return Error(ErrorCode::InvalidArgument, doing + ": the path is longer than " +
                                                 std::to_string(sizeof(sa.sun_path) - 1) +
                                                 " characters");
  }
  std::memcpy(sa.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errnoError(doing, errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) return fd;
  if (errno == ECONNREFUSED) {
    return Error(ErrorCode::Unavailable, doing + ": connection refused (nothing listens on it)");
  }
  if (errno == ENOENT) {
    return Error(ErrorCode::Unavailable, doing + ": the socket does not exist");
  }
  if (errno != EINPROGRESS && errno != EAGAIN) return errnoError(doing, errno);
  // A unix socket whose backlog is full: wait for room.
  CORCH_TRY(waitReady(fd.get(), POLLOUT, deadline, doing));
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return errnoError(doing, err);
  return fd;
}

UniqueFd UnixHttpClient::takeIdle() {
  std::lock_guard lock(mu_);
  if (idle_.empty()) return UniqueFd();
  UniqueFd fd = std::move(idle_.back());
  idle_.pop_back();
  return fd;
}

void UnixHttpClient::giveBack(UniqueFd fd) {
  std::lock_guard lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(fd));
}

Result<HttpResponse> UnixHttpClient::request(std::string_view method, const std::string& target,
                                             const std::string& body, Deadline deadline,
                                             std::string_view content_type) {
  const std::string doing =
      "engine request " + std::string(method) + " " + target + " on " + socket_path_;
  UniqueFd fd = takeIdle();
  bool reused = fd.valid();
  for (;;) {
    if (!fd) {
      auto fresh = connect(deadline);
      if (!fresh.ok()) return std::move(fresh).error();
      fd = std::move(fresh).value();
    }
    size_t received = 0;
    auto ex = exchange(fd.get(), method, target, body, content_type, deadline, doing, received);
    if (ex.ok()) {
      if (ex->keep_alive) giveBack(std::move(fd));
      return std::move(ex->response);
    }
    // The server may have closed an idle connection just as we reused it: try once more on a
    // new one, unless part of an answer came (then the request was surely handled).
    if (!reused || received > 0 || ex.error().code() == ErrorCode::Timeout) {
      return std::move(ex).error();
    }
    fd.reset();
    reused = false;
  }
}

}  // namespace corch::drivers::docker
