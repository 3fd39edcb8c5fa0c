// rtnetlink (NETLINK_ROUTE): network links and addresses, without spawning `ip`.
//
// A RouteSocket acts in the network namespace it was opened in (the calling thread's for open(),
// the given one for openIn()), whichever thread uses it later: that is how the drivers configure
// a function's namespace without entering it. Every request asks for an acknowledgement and waits
// for it (at most 5 s); a kernel error comes back as an Error built from its errno
// ("cannot create veth pair a/b: File exists"), with the kernel's extended-ack text appended when
// it sends one. A RouteSocket is not thread-safe: one thread at a time. The free functions at the
// end open a socket of their own per call in the calling thread's namespace, so any thread may
// call them at any time.
//
// Interface names are at most 15 characters (IFNAMSIZ - 1); a longer or empty name, or one with
// '/' or white space, is InvalidArgument before anything is sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "corch/error.h"
#include "platform/fd.h"

namespace corch::platform {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // IFLA_INFO_KIND ("veth", "bridge"...); empty for a plain device (lo)
  bool up = false;   // administratively up (IFF_UP)
  uint32_t mtu = 0;
  std::string mac;  // "aa:bb:cc:dd:ee:ff", empty when the link has no hardware address
};

// InvalidArgument when `name` cannot be a kernel interface name.
Result<void> checkIfname(const std::string& name);

class RouteSocket {
 public:
  // A socket in the calling thread's network namespace.
  static Result<RouteSocket> open();
  // A socket in the namespace of `netns_fd` (an open /run/netns/NAME or /proc/PID/ns/net).
  static Result<RouteSocket> openIn(int netns_fd);

  // Creates a veth pair; AlreadyExists when either name is taken.
  Result<void> createVethPair(const std::string& name, const std::string& peer);
  // Deletes a link (a veth pair goes with its peer); Ok when there is no such link.
  Result<void> deleteLink(const std::string& name);
  Result<void> setLinkUp(const std::string& name);
  Result<void> setLinkDown(const std::string& name);
  Result<void> setMtu(const std::string& name, uint32_t mtu);
  Result<void> renameLink(const std::string& name, const std::string& new_name);
  // Moves a link into the network namespace of `netns_fd`, renamed `new_name` there (empty: keeps
  // its name). The link arrives down. AlreadyExists when the name is taken in the target.
  Result<void> moveLinkToNetns(const std::string& name, int netns_fd,
                               const std::string& new_name = "");
  // Adds an address, "10.9.0.1/24" or "fd00::1/64"; AlreadyExists when the link has it already.
  Result<void> addAddress(const std::string& name, const std::string& cidr);

  // The link's details, or std::nullopt when there is no such link.
  Result<std::optional<LinkInfo>> findLink(const std::string& name);
  Result<bool> linkExists(const std::string& name);
  Result<std::vector<LinkInfo>> listLinks();

 private:
  explicit RouteSocket(UniqueFd fd);
  Result<void> setFlags(const std::string& name, bool up);
  Result<int> indexOf(const std::string& name, const std::string& doing);
  // Sends one request and waits for its ack (or its reply, for a non-dump GET: then `reply`
  // receives the payload of each answer message).
  Result<void> transact(std::vector<char>& msg, const std::string& doing,
                        std::vector<std::vector<char>>* reply = nullptr);

  UniqueFd fd_;
  uint32_t seq_ = 0;
  uint32_t port_id_ = 0;
};

// The calls the drivers need most, each on a fresh socket in the calling thread's namespace.
Result<void> createVethPair(const std::string& name, const std::string& peer);
Result<void> deleteLink(const std::string& name);  // absent is Ok
Result<void> setLinkUp(const std::string& name);
Result<void> setLinkDown(const std::string& name);
Result<bool> linkExists(const std::string& name);
Result<std::optional<LinkInfo>> findLink(const std::string& name);
Result<std::vector<LinkInfo>> listLinks();
Result<void> moveLinkToNetns(const std::string& name, int netns_fd,
                             const std::string& new_name = "");
Result<void> addAddress(const std::string& name, const std::string& cidr);
// Creates a persistent tap device (no packet-information header) that no file descriptor holds:
// a VM's emulator attaches to it later by name. deleteLink() removes it. Uses the tun driver's
// ioctls on /dev/net/tun (rtnetlink cannot create one).
Result<void> createTap(const std::string& name);

}  // namespace corch::platform
