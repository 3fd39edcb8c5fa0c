#include "platform/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

#include "platform/netns.h"

namespace corch::platform {
namespace {

constexpr int kReplyTimeoutSeconds = 5;

// Builds one netlink request in a byte buffer: header, fixed part, then attributes (possibly
// nested). Everything is copied with memcpy, so the buffer needs no particular alignment.
class Request {
 public:
  Request(uint16_t type, uint16_t flags) : buf_(NLMSG_HDRLEN, 0) {
    nlmsghdr hdr{};
    hdr.nlmsg_type = type;
    hdr.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    std::memcpy(buf_.data(), &hdr, sizeof(hdr));
  }

  template <class T>
  void put(const T& fixed) {
    size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(sizeof(T)), 0);
    std::memcpy(buf_.data() + at, &fixed, sizeof(T));
  }

  void attr(uint16_t type, const void* data, size_t len) {
    size_t at = buf_.size();
    rtattr rta{};
    rta.rta_type = type;
    rta.rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    buf_.resize(at + RTA_SPACE(len), 0);
    std::memcpy(buf_.data() + at, &rta, sizeof(rta));
    if (len > 0) std::memcpy(buf_.data() + at + RTA_LENGTH(0), data, len);
  }
  void attrString(uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void attrU32(uint16_t type, uint32_t v) { attr(type, &v, sizeof(v)); }

  // Opens a nested attribute; returns where it starts, for endNest().
  size_t beginNest(uint16_t type) {
    size_t at = buf_.size();
    attr(type, nullptr, 0);
    return at;
  }
  void endNest(size_t at) {
    auto len = static_cast<uint16_t>(buf_.size() - at);
    std::memcpy(buf_.data() + at + offsetof(rtattr, rta_len), &len, sizeof(len));
  }

  // The finished message (length filled in).
  std::vector<char>& finish() {
    auto len = static_cast<uint32_t>(buf_.size());
    std::memcpy(buf_.data() + offsetof(nlmsghdr, nlmsg_len), &len, sizeof(len));
    return buf_;
  }

 private:
  std::vector<char> buf_;
};

// Walks the attributes in [data, data + len), calling fn(type, payload, payload_len).
template <class F>
void forEachAttr(const char* data, size_t len, F&& fn) {
  while (len >= sizeof(rtattr)) {
    rtattr rta;
    std::memcpy(&rta, data, sizeof(rta));
    if (rta.rta_len < sizeof(rtattr) || rta.rta_len > len) return;
    fn(rta.rta_type & NLA_TYPE_MASK, data + RTA_LENGTH(0), rta.rta_len - RTA_LENGTH(0));
    size_t step = RTA_ALIGN(rta.rta_len);
    if (step >= len) return;
    data += step;
    len -= step;
  }
}

std::string attrString(const char* p, size_t len) {
  std::string s(p, len);
  auto nul = s.find('\0');
  if (nul != std::string::npos) s.resize(nul);
  return s;
}

std::string formatMac(const char* p, size_t len) {
  std::string out;
  char part[4];
  for (size_t i = 0; i < len; ++i) {
    std::snprintf(part, sizeof(part), i == 0 ? "%02x" : ":%02x", static_cast<unsigned char>(p[i]));
    out += part;
  }
  return out;
}

// Decodes the payload of an RTM_NEWLINK message.
LinkInfo parseLink(const std::vector<char>& payload) {
  LinkInfo link;
  if (payload.size() < sizeof(ifinfomsg)) return link;
  ifinfomsg ifi;
  std::memcpy(&ifi, payload.data(), sizeof(ifi));
  link.index = ifi.ifi_index;
  link.up = (ifi.ifi_flags & IFF_UP) != 0;
  size_t off = NLMSG_ALIGN(sizeof(ifinfomsg));
  if (payload.size() <= off) return link;
  forEachAttr(payload.data() + off, payload.size() - off,
              [&](uint16_t type, const char* p, size_t len) {
                if (type == IFLA_IFNAME) {
                  link.name = attrString(p, len);
                } else if (type == IFLA_MTU && len >= sizeof(uint32_t)) {
                  std::memcpy(&link.mtu, p, sizeof(uint32_t));
                } else if (type == IFLA_ADDRESS) {
                  link.mac = formatMac(p, len);
                } else if (type == IFLA_LINKINFO) {
                  forEachAttr(p, len, [&](uint16_t inner, const char* q, size_t qlen) {
                    if (inner == IFLA_INFO_KIND) link.kind = attrString(q, qlen);
                  });
                }
              });
  return link;
}

ifinfomsg linkHeader(int index = 0) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  return ifi;
}

}  // namespace

Result<void> checkIfname(const std::string& name) {
  if (name.empty()) {
    return Error(ErrorCode::InvalidArgument, "an interface name must not be empty");
  }
  if (name.size() >= IFNAMSIZ) {
    return Error(ErrorCode::InvalidArgument, "interface name " + name + " is longer than " +
                                                 std::to_string(IFNAMSIZ - 1) + " characters");
  }
  for (char c : name) {
    if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) {
      return Error(ErrorCode::InvalidArgument,
                   "interface name " + name + " contains a character the kernel refuses");
    }
  }
  if (name == "." || name == "..") {
    return Error(ErrorCode::InvalidArgument, "interface name " + name + " is not allowed");
  }
  return Ok();
}

RouteSocket::RouteSocket(UniqueFd fd) : fd_(std::move(fd)) {}

Result<RouteSocket> RouteSocket::open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return errnoError("cannot open an rtnetlink socket", errno);
  int one = 1;
  // Extended acks carry the kernel's reason as text; capped acks do not echo our request back.
  // Both are optional: an older kernel without them still works.
  (void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  (void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  timeval tv{};
  tv.tv_sec = kReplyTimeoutSeconds;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return errnoError("cannot set a receive timeout on an rtnetlink socket", errno);
  }
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    return errnoError("cannot bind an rtnetlink socket", errno);
  }
  socklen_t len = sizeof(local);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return errnoError("cannot read the address of an rtnetlink socket", errno);
  }
  RouteSocket sock(std::move(fd));
  sock.port_id_ = local.nl_pid;
  return sock;
}

Result<RouteSocket> RouteSocket::openIn(int netns_fd) {
  // A socket belongs to the namespace of the thread that created it, for its whole life.
  return runInNetns(netns_fd, [] { return RouteSocket::open(); });
}

Result<void> RouteSocket::transact(std::vector<char>& msg, const std::string& doing,
                                   std::vector<std::vector<char>>* reply) {
  nlmsghdr hdr;
  std::memcpy(&hdr, msg.data(), sizeof(hdr));
  const bool dump = (hdr.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  if (!dump) hdr.nlmsg_flags |= NLM_F_ACK;
  hdr.nlmsg_seq = ++seq_;
  hdr.nlmsg_pid = 0;
  std::memcpy(msg.data(), &hdr, sizeof(hdr));

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(fd_.get(), msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return errnoError(doing + ": cannot send the netlink request", errno);

  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t got = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Error(ErrorCode::Timeout, doing + ": the kernel did not answer within " +
                                             std::to_string(kReplyTimeoutSeconds) + " s");
      }
      return errnoError(doing + ": cannot read the netlink reply", errno);
    }
    size_t left = static_cast<size_t>(got);
    const char* p = buf.data();
    while (left >= sizeof(nlmsghdr)) {
      nlmsghdr rh;
      std::memcpy(&rh, p, sizeof(rh));
      if (rh.nlmsg_len < sizeof(nlmsghdr) || rh.nlmsg_len > left) break;
      const char* payload = p + NLMSG_HDRLEN;
      size_t payload_len = rh.nlmsg_len - NLMSG_HDRLEN;
      size_t step = NLMSG_ALIGN(rh.nlmsg_len);
      p += step < left ? step : left;
      left -= step < left ? step : left;
      if (rh.nlmsg_seq != hdr.nlmsg_seq) continue;  // a late answer to an earlier request

      if (rh.nlmsg_type == NLMSG_DONE) return Ok();
      if (rh.nlmsg_type == NLMSG_ERROR) {
        if (payload_len < sizeof(nlmsgerr)) {
          return Error(ErrorCode::Internal, doing + ": truncated netlink error message");
        }
        nlmsgerr err;
        std::memcpy(&err, payload, sizeof(err));
        if (err.error == 0) return Ok();
        Error e = errnoError(doing, -err.error);
        if (rh.nlmsg_flags & NLM_F_ACK_TLVS) {
          size_t tlv_off = sizeof(nlmsgerr);
          if (!(rh.nlmsg_flags & NLM_F_CAPPED)) {
            tlv_off = sizeof(err.error) + NLMSG_ALIGN(err.msg.nlmsg_len);
          }
          if (tlv_off < payload_len) {
            std::string text;
            forEachAttr(payload + tlv_off, payload_len - tlv_off,
                        [&](uint16_t type, const char* q, size_t qlen) {
                          if (type == NLMSGERR_ATTR_MSG) text = attrString(q, qlen);
                        });
            if (!text.empty()) e = Error(e.code(), e.message() + " (" + text + ")");
          }
        }
        return e;
      }
      if (reply != nullptr) reply->emplace_back(payload, payload + payload_len);
    }
  }
}

Result<int> RouteSocket::indexOf(const std::string& name, const std::string& doing) {
  auto link = findLink(name);
  if (!link.ok()) return std::move(link).error().context(doing);
  if (!link->has_value()) {
    return Error(ErrorCode::NotFound, doing + ": there is no interface " + name);
  }
  return (*link)->index;
}

Result<void> RouteSocket::createVethPair(const std::string& name, const std::string& peer) {
  const std::string doing = "cannot create veth pair " + name + "/" + peer;
  if (auto r = checkIfname(name); !r) return std::move(r).error().context(doing);
  if (auto r = checkIfname(peer); !r) return std::move(r).error().context(doing);
  Request req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  req.put(linkHeader());
  req.attrString(IFLA_IFNAME, name);
  size_t linkinfo = req.beginNest(IFLA_LINKINFO);
  req.attrString(IFLA_INFO_KIND, "veth");
  size_t data = req.beginNest(IFLA_INFO_DATA);
  size_t peer_nest = req.beginNest(VETH_INFO_PEER);
  req.put(linkHeader());
  req.attrString(IFLA_IFNAME, peer);
  req.endNest(peer_nest);
  req.endNest(data);
  req.endNest(linkinfo);
  return transact(req.finish(), doing);
}

Result<void> RouteSocket::deleteLink(const std::string& name) {
  const std::string doing = "cannot delete interface " + name;
  if (auto r = checkIfname(name); !r) return std::move(r).error().context(doing);
  Request req(RTM_DELLINK, 0);
  req.put(linkHeader());
  req.attrString(IFLA_IFNAME, name);
  auto r = transact(req.finish(), doing);
  if (!r.ok() && r.error().code() == ErrorCode::NotFound) return Ok();
  return r;
}

Result<void> RouteSocket::setFlags(const std::string& name, bool up) {
  const std::string doing = "cannot set interface " + name + (up ? " up" : " down");
  if (auto r = checkIfname(name); !r) return std::move(r).error().context(doing);
  Request req(RTM_NEWLINK, 0);
  ifinfomsg ifi = linkHeader();
  ifi.ifi_change = IFF_UP;
  ifi.ifi_flags = up ? IFF_UP : 0;
  req.put(ifi);
  req.attrString(IFLA_IFNAME, name);
  return transact(req.finish(), doing);
}

Result<void> RouteSocket::setLinkUp(const std::string& name) { return setFlags(name, true); }
Result<void> RouteSocket::setLinkDown(const std::string& name) { return setFlags(name, false); }

Result<void> RouteSocket::setMtu(const std::string& name, uint32_t mtu) {
  const std::string doing =
      "cannot set the MTU of interface " + name + " to " + std::to_string(mtu);
  if (auto r = checkIfname(name); !r) return std::move(r).error().context(doing);
  Request req(RTM_NEWLINK, 0);
  req.put(linkHeader());
  req.attrString(IFLA_IFNAME, name);
  req.attrU32(IFLA_MTU, mtu);
  return transact(req.finish(), doing);
}

Result<void> RouteSocket::renameLink(const std::string& name, const std::string& new_name) {
  const std::string doing = "cannot rename interface " + name + " to " + new_name;
  if (auto r = checkIfname(new_name); !r) return std::move(r).error().context(doing);
  // The name cannot both identify the link and be its new value: address it by index.
  auto index = indexOf(name, doing);
  if (!index.ok()) return std::move(index).error();
  Request req(RTM_NEWLINK, 0);
  req.put(linkHeader(*index));
  req.attrString(IFLA_IFNAME, new_name);
  return transact(req.finish(), doing);
}

Result<void> RouteSocket::moveLinkToNetns(const std::string& name, int netns_fd,
                                          const std::string& new_name) {
  const std::string doing =
      "cannot move interface " + name + " into another network namespace" +
      (new_name.empty() || new_name == name ? std::string() : " as " + new_name);
  if (!new_name.empty()) {
    if (auto r = checkIfname(new_name); !r) return std::move(r).error().context(doing);
  }
  auto index = indexOf(name, doing);
  if (!index.ok()) return std::move(index).error();
  // One message moves and renames at once, so the link never shows up under a name that could
  // collide in the target namespace.
  Request req(RTM_NEWLINK, 0);
  req.put(linkHeader(*index));
  req.attrU32(IFLA_NET_NS_FD, static_cast<uint32_t>(netns_fd));
  if (!new_name.empty()) req.attrString(IFLA_IFNAME, new_name);
  return transact(req.finish(), doing);
}

Result<void> RouteSocket::addAddress(const std::string& name, const std::string& cidr) {
  const std::string doing = "cannot add address " + cidr + " to interface " + name;
  auto slash = cidr.find('/');
  std::string host = cidr.substr(0, slash);
  unsigned char addr[16];
  int family = AF_INET;
  size_t addr_len = 4;
  if (::inet_pton(AF_INET, host.c_str(), addr) != 1) {
    if (::inet_pton(AF_INET6, host.c_str(), addr) != 1) {
      return Error(ErrorCode::InvalidArgument, doing + ": not an IPv4 or IPv6 address");
    }
    family = AF_INET6;
    addr_len = 16;
  }
  unsigned prefix = static_cast<unsigned>(addr_len * 8);
  if (slash != std::string::npos) {
    const std::string text = cidr.substr(slash + 1);
    char* end = nullptr;
    unsigned long v = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v > addr_len * 8) {
      return Error(ErrorCode::InvalidArgument, doing + ": bad prefix length");
    }
    prefix = static_cast<unsigned>(v);
  }
  auto index = indexOf(name, doing);
  if (!index.ok()) return std::move(index).error();
  Request req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<unsigned char>(family);
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<unsigned>(*index);
  req.put(ifa);
  req.attr(IFA_LOCAL, addr, addr_len);
  req.attr(IFA_ADDRESS, addr, addr_len);
  return transact(req.finish(), doing);
}

Result<std::optional<LinkInfo>> RouteSocket::findLink(const std::string& name) {
  const std::string doing = "cannot look up interface " + name;
  if (auto r = checkIfname(name); !r) return std::move(r).error().context(doing);
  Request req(RTM_GETLINK, 0);
  req.put(linkHeader());
  req.attrString(IFLA_IFNAME, name);
  std::vector<std::vector<char>> reply;
  auto r = transact(req.finish(), doing, &reply);
  if (!r.ok()) {
    if (r.error().code() == ErrorCode::NotFound) return std::optional<LinkInfo>();
    return std::move(r).error();
  }
  if (reply.empty()) return std::optional<LinkInfo>();
  return std::optional<LinkInfo>(parseLink(reply.front()));
}

Result<bool> RouteSocket::linkExists(const std::string& name) {
  auto link = findLink(name);
  if (!link.ok()) return std::move(link).error();
  return link->has_value();
}

Result<std::vector<LinkInfo>> RouteSocket::listLinks() {
  Request req(RTM_GETLINK, NLM_F_DUMP);
  req.put(linkHeader());
  std::vector<std::vector<char>> reply;
  CORCH_TRY(transact(req.finish(), "cannot list network interfaces", &reply));
  std::vector<LinkInfo> links;
  links.reserve(reply.size());
  for (const auto& payload : reply) links.push_back(parseLink(payload));
  return links;
}

namespace {

// Opens a socket in the calling thread's namespace and applies `fn` to it.
template <class F>
auto withSocket(F&& fn) -> decltype(fn(std::declval<RouteSocket&>())) {
  auto sock = RouteSocket::open();
  if (!sock.ok()) return std::move(sock).error();
  return fn(*sock);
}

}  // namespace

Result<void> createVethPair(const std::string& name, const std::string& peer) {
  return withSocket([&](RouteSocket& s) { return s.createVethPair(name, peer); });
}
Result<void> createTap(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return Error(ErrorCode::InvalidArgument, "tap name '" + name + "' is empty or too long");
  }
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return errnoError("cannot create tap " + name + ": cannot open /dev/net/tun", errno);
  struct ifreq ifr {};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  name.copy(ifr.ifr_name, IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
    return errnoError("cannot create tap " + name, errno);
  }
  if (::ioctl(fd.get(), TUNSETPERSIST, 1) < 0) {
    return errnoError("cannot make tap " + name + " persistent", errno);
  }
  return Ok();  // closing the descriptor detaches it; the device stays
}

Result<void> deleteLink(const std::string& name) {
  return withSocket([&](RouteSocket& s) { return s.deleteLink(name); });
}
Result<void> setLinkUp(const std::string& name) {
  return withSocket([&](RouteSocket& s) { return s.setLinkUp(name); });
}
Result<void> setLinkDown(const std::string& name) {
  return withSocket([&](RouteSocket& s) { return s.setLinkDown(name); });
}
Result<bool> linkExists(const std::string& name) {
  return withSocket([&](RouteSocket& s) { return s.linkExists(name); });
}
Result<std::optional<LinkInfo>> findLink(const std::string& name) {
  return withSocket([&](RouteSocket& s) { return s.findLink(name); });
}
Result<std::vector<LinkInfo>> listLinks() {
  return withSocket([&](RouteSocket& s) { return s.listLinks(); });
}
Result<void> moveLinkToNetns(const std::string& name, int netns_fd, const std::string& new_name) {
  return withSocket([&](RouteSocket& s) { return s.moveLinkToNetns(name, netns_fd, new_name); });
}
Result<void> addAddress(const std::string& name, const std::string& cidr) {
  return withSocket([&](RouteSocket& s) { return s.addAddress(name, cidr); });
}

}  // namespace corch::platform
