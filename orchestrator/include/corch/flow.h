// The vocabulary of traffic steering, shared by the graph model and the vSwitch drivers:
// addresses, the match fields of a rule besides its input port, the packet modifications of its
// actions, and a traffic steering rule (TsRule) as a driver installs it on one LSI.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"

namespace corch {

struct MacAddr {
  std::array<uint8_t, 6> bytes{};
  // "aa:bb:cc:dd:ee:ff" (also '-' separated, any case).
  static std::optional<MacAddr> parse(std::string_view text);
  std::string str() const;  // lower case, ':' separated
  bool operator==(const MacAddr&) const = default;
};

struct IpAddr {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses the first 4
  static std::optional<IpAddr> parse(std::string_view text);
  std::string str() const;
  bool operator==(const IpAddr&) const = default;
};

// An address with a prefix length; a bare address is a full-length prefix.
struct IpPrefix {
  IpAddr addr;
  uint8_t length = 0;
  // "10.0.0.0/8", "10.1.2.3", "2001:db8::/32". Host bits must be zero unless the prefix is full.
  static std::optional<IpPrefix> parse(std::string_view text);
  std::string str() const;  // "10.0.0.0/8"; a full-length prefix prints as the bare address
  bool operator==(const IpPrefix&) const = default;
};

// Parses a non-negative integer given as decimal ("25") or 0x-hex ("0x19") text, no larger than
// max. Returns nullopt on any other text.
std::optional<uint64_t> parseNumber(std::string_view text, uint64_t max);

// Match fields of a rule other than the input port. Absent means "any".
struct MatchFields {
  std::optional<uint16_t> ether_type;
  std::optional<uint16_t> vlan_id;  // 0-4095
  std::optional<uint8_t> vlan_pcp;  // 0-7
  std::optional<MacAddr> source_mac;
  std::optional<MacAddr> dest_mac;
  std::optional<IpPrefix> source_ip;
  std::optional<IpPrefix> dest_ip;
  std::optional<uint8_t> protocol;  // IP protocol number
  std::optional<uint16_t> source_port;
  std::optional<uint16_t> dest_port;
  std::optional<uint8_t> ip_dscp;  // 0-63
  std::optional<uint8_t> icmp_type;
  std::optional<uint8_t> icmp_code;
  std::optional<uint16_t> arp_opcode;
  bool operator==(const MatchFields&) const = default;
};

// Packet modifications of a rule, applied in this order, before its outputs.
struct Modifications {
  std::optional<uint16_t> push_vlan;  // push an 802.1Q tag with this VLAN id
  bool pop_vlan = false;
  std::optional<uint16_t> set_vlan_id;
  std::optional<MacAddr> set_source_mac;
  std::optional<MacAddr> set_dest_mac;
  std::optional<IpAddr> set_source_ip;
  std::optional<IpAddr> set_dest_ip;
  std::optional<uint16_t> set_source_port;
  std::optional<uint16_t> set_dest_port;
  bool dec_ttl = false;
  bool empty() const { return *this == Modifications{}; }
  bool operator==(const Modifications&) const = default;
};

// A traffic steering rule on one LSI, in the switch's port numbers. No outputs means drop.
// cookie identifies the rule's owner (see NetworkManager): drivers store it and can remove rules
// by cookie and mask.
// An output port that is no port: the switch's own learning L2 forwarding (OpenFlow's NORMAL).
inline constexpr uint32_t kPortNormal = 0xfffffffa;

struct TsRule {
  uint64_t cookie = 0;
  uint16_t priority = 0;
  uint32_t in_port = 0;
  MatchFields fields;
  Modifications mods;
  std::vector<uint32_t> outputs;
  // Empty, or one per output: the VLAN id of an 802.1Q tag pushed just before that output (after
  // the modifications), or 0 for none. Outputs to vlan SAPs are tagged so (DESIGN section 3).
  std::vector<uint16_t> output_vlans;
  bool operator==(const TsRule&) const = default;
};

// A human-readable form of a rule, in the style of ovs-ofctl ("priority=10,in_port=3,
// dl_type=0x0800 actions=dec_ttl,output:4"), for logs, errors and golden files.
std::string toString(const TsRule& rule);

}  // namespace corch
