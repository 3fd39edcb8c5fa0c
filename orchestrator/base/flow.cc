#include "corch/flow.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>
#include <sstream>

namespace corch {

std::optional<MacAddr> MacAddr::parse(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  MacAddr mac;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':' && text[i * 3 - 1] != '-') return std::nullopt;
    unsigned value = 0;
    auto first = text.data() + i * 3;
    auto [ptr, ec] = std::from_chars(first, first + 2, value, 16);
    if (ec != std::errc() || ptr != first + 2) return std::nullopt;
    mac.bytes[i] = static_cast<uint8_t>(value);
  }
  return mac;
}

std::string MacAddr::str() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  std::string s(text);
  IpAddr addr;
  if (s.find(':') != std::string::npos) {
    addr.v6 = true;
    if (inet_pton(AF_INET6, s.c_str(), addr.bytes.data()) != 1) return std::nullopt;
  } else if (inet_pton(AF_INET, s.c_str(), addr.bytes.data()) != 1) {
    return std::nullopt;
  }
  return addr;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  IpPrefix prefix;
  auto slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  prefix.addr = *addr;
  unsigned max = addr->v6 ? 128 : 32;
  prefix.length = static_cast<uint8_t>(max);
  if (slash != std::string_view::npos) {
    auto len = parseNumber(text.substr(slash + 1), max);
    if (!len || text.substr(slash + 1).starts_with("0x")) return std::nullopt;
    prefix.length = static_cast<uint8_t>(*len);
    // Host bits must be zero: "10.0.0.1/8" is almost always a mistake.
    for (unsigned bit = prefix.length; bit < max; ++bit) {
      if (prefix.addr.bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
    }
  }
  return prefix;
}

std::string IpPrefix::str() const {
  unsigned max = addr.v6 ? 128 : 32;
  if (length == max) return addr.str();
  return addr.str() + "/" + std::to_string(length);
}

std::optional<uint64_t> parseNumber(std::string_view text, uint64_t max) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || ptr != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

namespace {

std::string hex(uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace

std::string toString(const TsRule& rule) {
  std::ostringstream out;
  out << "cookie=" << hex(rule.cookie) << ",priority=" << rule.priority
      << ",in_port=" << rule.in_port;
  const MatchFields& m = rule.fields;
  if (m.ether_type) out << ",dl_type=" << hex(*m.ether_type);
  if (m.vlan_id) out << ",dl_vlan=" << *m.vlan_id;
  if (m.vlan_pcp) out << ",dl_vlan_pcp=" << unsigned{*m.vlan_pcp};
  if (m.source_mac) out << ",dl_src=" << m.source_mac->str();
  if (m.dest_mac) out << ",dl_dst=" << m.dest_mac->str();
  if (m.source_ip) out << ",nw_src=" << m.source_ip->str();
  if (m.dest_ip) out << ",nw_dst=" << m.dest_ip->str();
  if (m.protocol) out << ",nw_proto=" << unsigned{*m.protocol};
  if (m.source_port) out << ",tp_src=" << *m.source_port;
  if (m.dest_port) out << ",tp_dst=" << *m.dest_port;
  if (m.ip_dscp) out << ",ip_dscp=" << unsigned{*m.ip_dscp};
  if (m.icmp_type) out << ",icmp_type=" << unsigned{*m.icmp_type};
  if (m.icmp_code) out << ",icmp_code=" << unsigned{*m.icmp_code};
  if (m.arp_opcode) out << ",arp_op=" << *m.arp_opcode;
  out << " actions=";
  std::string sep;
  auto action = [&](const std::string& text) {
    out << sep << text;
    sep = ",";
  };
  const Modifications& a = rule.mods;
  if (a.push_vlan)
    action("push_vlan:0x8100,set_field:" + std::to_string(*a.push_vlan) + "->vlan_vid");
  if (a.pop_vlan) action("pop_vlan");
  if (a.set_vlan_id) action("set_field:" + std::to_string(*a.set_vlan_id) + "->vlan_vid");
  if (a.set_source_mac) action("set_field:" + a.set_source_mac->str() + "->eth_src");
  if (a.set_dest_mac) action("set_field:" + a.set_dest_mac->str() + "->eth_dst");
  if (a.set_source_ip) action("set_field:" + a.set_source_ip->str() + "->ip_src");
  if (a.set_dest_ip) action("set_field:" + a.set_dest_ip->str() + "->ip_dst");
  if (a.set_source_port) action("set_field:" + std::to_string(*a.set_source_port) + "->tp_src");
  if (a.set_dest_port) action("set_field:" + std::to_string(*a.set_dest_port) + "->tp_dst");
  if (a.dec_ttl) action("dec_ttl");
  uint16_t tag = 0;  // the tag pushed for the outputs so far
  for (size_t i = 0; i < rule.outputs.size(); ++i) {
    uint16_t want = i < rule.output_vlans.size() ? rule.output_vlans[i] : 0;
    if (want != tag) {
      if (tag != 0) action("pop_vlan");
      if (want != 0) action("push_vlan:0x8100,set_field:" + std::to_string(want) + "->vlan_vid");
      tag = want;
    }
    action(rule.outputs[i] == kPortNormal ? std::string("NORMAL")
                                          : "output:" + std::to_string(rule.outputs[i]));
  }
  if (rule.outputs.empty()) action("drop");
  return out.str();
}

}  // namespace corch
