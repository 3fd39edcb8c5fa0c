#include "openflow.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

namespace corch::drivers::ovs::openflow {
namespace {

// --- Constants of the specification ---

constexpr uint16_t kOxmClassBasic = 0x8000;  // OFPXMC_OPENFLOW_BASIC
constexpr uint16_t kMatchTypeOxm = 1;        // OFPMT_OXM
constexpr uint16_t kVidPresent = 0x1000;     // OFPVID_PRESENT
constexpr uint32_t kNoBuffer = 0xffffffff;   // OFP_NO_BUFFER
constexpr uint32_t kPortAny = 0xffffffff;    // OFPP_ANY
constexpr uint32_t kGroupAny = 0xffffffff;   // OFPG_ANY
constexpr uint16_t kMultipartFlow = 1;       // OFPMP_FLOW
constexpr uint16_t kInstructionApplyActions = 4;
constexpr uint16_t kHelloElemVersionBitmap = 1;

enum Oxm : uint8_t {
  kInPort = 0,
  kEthDst = 3,
  kEthSrc = 4,
  kEthType = 5,
  kVlanVid = 6,
  kVlanPcp = 7,
  kIpDscp = 8,
  kIpProto = 10,
  kIpv4Src = 11,
  kIpv4Dst = 12,
  kTcpSrc = 13,
  kTcpDst = 14,
  kUdpSrc = 15,
  kUdpDst = 16,
  kSctpSrc = 17,
  kSctpDst = 18,
  kIcmpv4Type = 19,
  kIcmpv4Code = 20,
  kArpOp = 21,
  kIpv6Src = 26,
  kIpv6Dst = 27,
  kIcmpv6Type = 29,
  kIcmpv6Code = 30,
};

enum Action : uint16_t {
  kOutput = 0,
  kPushVlan = 17,
  kPopVlan = 18,
  kDecNwTtl = 24,
  kSetField = 25,
};

constexpr uint16_t kEthTypeIpv4 = 0x0800;
constexpr uint16_t kEthTypeIpv6 = 0x86dd;
constexpr uint16_t kEthTypeArp = 0x0806;
constexpr uint16_t kEthTypeVlan = 0x8100;

// Names of the OXM fields of the basic class, by number (OpenFlow 1.3.5 table 12).
const char* oxmName(uint8_t field) {
  static const char* const names[] = {
      "in_port",     "in_phy_port",    "metadata",    "eth_dst",     "eth_src",     "eth_type",
      "vlan_vid",    "vlan_pcp",       "ip_dscp",     "ip_ecn",      "ip_proto",    "ipv4_src",
      "ipv4_dst",    "tcp_src",        "tcp_dst",     "udp_src",     "udp_dst",     "sctp_src",
      "sctp_dst",    "icmpv4_type",    "icmpv4_code", "arp_op",      "arp_spa",     "arp_tpa",
      "arp_sha",     "arp_tha",        "ipv6_src",    "ipv6_dst",    "ipv6_flabel", "icmpv6_type",
      "icmpv6_code", "ipv6_nd_target", "ipv6_nd_sll", "ipv6_nd_tll", "mpls_label",  "mpls_tc",
      "mpls_bos",    "pbb_isid",       "tunnel_id",   "ipv6_exthdr"};
  if (field < sizeof names / sizeof names[0]) return names[field];
  return nullptr;
}

// The size of an OXM field's value; 0 for fields this codec does not know.
size_t oxmSize(uint8_t field) {
  switch (field) {
    case kInPort:
    case kIpv4Src:
    case kIpv4Dst:
      return 4;
    case kEthDst:
    case kEthSrc:
      return 6;
    case kEthType:
    case kVlanVid:
    case kTcpSrc:
    case kTcpDst:
    case kUdpSrc:
    case kUdpDst:
    case kSctpSrc:
    case kSctpDst:
    case kArpOp:
      return 2;
    case kVlanPcp:
    case kIpDscp:
    case kIpProto:
    case kIcmpv4Type:
    case kIcmpv4Code:
    case kIcmpv6Type:
    case kIcmpv6Code:
      return 1;
    case kIpv6Src:
    case kIpv6Dst:
      return 16;
    default:
      return 0;
  }
}

// --- Bytes ---

void put8(std::string& s, uint8_t v) { s.push_back(static_cast<char>(v)); }
void put16(std::string& s, uint16_t v) {
  put8(s, static_cast<uint8_t>(v >> 8));
  put8(s, static_cast<uint8_t>(v));
}
void put32(std::string& s, uint32_t v) {
  put16(s, static_cast<uint16_t>(v >> 16));
  put16(s, static_cast<uint16_t>(v));
}
void put64(std::string& s, uint64_t v) {
  put32(s, static_cast<uint32_t>(v >> 32));
  put32(s, static_cast<uint32_t>(v));
}
void putZeros(std::string& s, size_t n) { s.append(n, '\0'); }
void padTo8(std::string& s, size_t start) {
  size_t len = s.size() - start;
  putZeros(s, (8 - len % 8) % 8);
}
void set16(std::string& s, size_t at, uint16_t v) {
  s[at] = static_cast<char>(v >> 8);
  s[at + 1] = static_cast<char>(v);
}

uint16_t get16(std::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) << 8 | static_cast<uint8_t>(b[at + 1]));
}
uint32_t get32(std::string_view b, size_t at) {
  return static_cast<uint32_t>(get16(b, at)) << 16 | get16(b, at + 2);
}
uint64_t get64(std::string_view b, size_t at) {
  return static_cast<uint64_t>(get32(b, at)) << 32 | get32(b, at + 4);
}

// A bounds-checked cursor over bytes.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : b_(bytes) {}
  bool has(size_t n) const { return b_.size() - pos_ >= n; }
  size_t left() const { return b_.size() - pos_; }
  uint8_t u8() { return static_cast<uint8_t>(b_[pos_++]); }
  uint16_t u16() {
    uint16_t v = get16(b_, pos_);
    pos_ += 2;
    return v;
  }
  uint32_t u32() {
    uint32_t v = get32(b_, pos_);
    pos_ += 4;
    return v;
  }
  uint64_t u64() {
    uint64_t v = get64(b_, pos_);
    pos_ += 8;
    return v;
  }
  std::string_view take(size_t n) {
    auto v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  void skip(size_t n) { pos_ += n; }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

// Starts a message; finish() writes its length.
size_t begin(std::string& s, MsgType type, uint32_t xid) {
  size_t start = s.size();
  put8(s, kVersion);
  put8(s, static_cast<uint8_t>(type));
  put16(s, 0);
  put32(s, xid);
  return start;
}
void finish(std::string& s, size_t start) {
  set16(s, start + 2, static_cast<uint16_t>(s.size() - start));
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", v);
  return buf;
}

// --- OXM ---

// One decoded OXM TLV of the basic class.
struct OxmTlv {
  uint8_t field = 0;
  bool has_mask = false;
  std::string_view value;
  std::string_view mask;
};

void putOxm(std::string& s, uint8_t field, std::string_view value, std::string_view mask = {}) {
  bool has_mask = !mask.empty();
  put16(s, kOxmClassBasic);
  put8(s, static_cast<uint8_t>(field << 1 | (has_mask ? 1 : 0)));
  put8(s, static_cast<uint8_t>(value.size() + mask.size()));
  s.append(value);
  s.append(mask);
}

std::string be16(uint16_t v) {
  std::string s;
  put16(s, v);
  return s;
}
std::string be32(uint32_t v) {
  std::string s;
  put32(s, v);
  return s;
}
std::string u8s(uint8_t v) { return std::string(1, static_cast<char>(v)); }
std::string macBytes(const MacAddr& mac) {
  return std::string(reinterpret_cast<const char*>(mac.bytes.data()), 6);
}
std::string ipBytes(const IpAddr& ip) {
  return std::string(reinterpret_cast<const char*>(ip.bytes.data()), ip.v6 ? 16 : 4);
}
// The netmask of a prefix, as many bytes as its address.
std::string prefixMask(const IpPrefix& p) {
  size_t n = p.addr.v6 ? 16 : 4;
  std::string mask(n, '\0');
  for (unsigned bit = 0; bit < p.length; ++bit)
    mask[bit / 8] |= static_cast<char>(0x80 >> (bit % 8));
  return mask;
}

void putPrefix(std::string& s, uint8_t v4_field, uint8_t v6_field, const IpPrefix& p) {
  uint8_t field = p.addr.v6 ? v6_field : v4_field;
  unsigned full = p.addr.v6 ? 128 : 32;
  if (p.length == full)
    putOxm(s, field, ipBytes(p.addr));
  else
    putOxm(s, field, ipBytes(p.addr), prefixMask(p));
}

uint8_t portField(uint8_t protocol, bool source) {
  switch (protocol) {
    case 6:
      return source ? kTcpSrc : kTcpDst;
    case 17:
      return source ? kUdpSrc : kUdpDst;
    default:
      return source ? kSctpSrc : kSctpDst;
  }
}

// The ofp_match of a rule: OXM TLVs in prerequisite order (Open vSwitch checks each field's
// prerequisites against the fields before it).
void putMatch(std::string& s, const TsRule& rule) {
  size_t start = s.size();
  put16(s, kMatchTypeOxm);
  put16(s, 0);  // length, below
  const MatchFields& m = rule.fields;
  if (rule.in_port != 0) putOxm(s, kInPort, be32(rule.in_port));
  if (m.dest_mac) putOxm(s, kEthDst, macBytes(*m.dest_mac));
  if (m.source_mac) putOxm(s, kEthSrc, macBytes(*m.source_mac));
  if (m.ether_type) putOxm(s, kEthType, be16(*m.ether_type));
  if (m.vlan_id) putOxm(s, kVlanVid, be16(kVidPresent | *m.vlan_id));
  if (m.vlan_pcp) putOxm(s, kVlanPcp, u8s(*m.vlan_pcp));
  if (m.ip_dscp) putOxm(s, kIpDscp, u8s(*m.ip_dscp));
  if (m.protocol) putOxm(s, kIpProto, u8s(*m.protocol));
  if (m.source_ip) putPrefix(s, kIpv4Src, kIpv6Src, *m.source_ip);
  if (m.dest_ip) putPrefix(s, kIpv4Dst, kIpv6Dst, *m.dest_ip);
  if (m.source_port) putOxm(s, portField(m.protocol.value_or(6), true), be16(*m.source_port));
  if (m.dest_port) putOxm(s, portField(m.protocol.value_or(6), false), be16(*m.dest_port));
  bool v6_icmp = m.protocol == 58;
  if (m.icmp_type) putOxm(s, v6_icmp ? kIcmpv6Type : kIcmpv4Type, u8s(*m.icmp_type));
  if (m.icmp_code) putOxm(s, v6_icmp ? kIcmpv6Code : kIcmpv4Code, u8s(*m.icmp_code));
  if (m.arp_opcode) putOxm(s, kArpOp, be16(*m.arp_opcode));
  set16(s, start + 2, static_cast<uint16_t>(s.size() - start));
  padTo8(s, start);
}

void putSetField(std::string& s, uint8_t field, std::string_view value) {
  size_t start = s.size();
  put16(s, kSetField);
  put16(s, 0);
  putOxm(s, field, value);
  padTo8(s, start);
  set16(s, start + 2, static_cast<uint16_t>(s.size() - start));
}

void putAction(std::string& s, uint16_t type) {
  put16(s, type);
  put16(s, 8);
  putZeros(s, 4);
}

// The instructions of a rule: one apply-actions with its modifications in the order of
// Modifications, then its outputs. A rule with neither has no instruction (drop).
void putInstructions(std::string& s, const TsRule& rule) {
  const Modifications& a = rule.mods;
  if (a.empty() && rule.outputs.empty()) return;
  size_t start = s.size();
  put16(s, kInstructionApplyActions);
  put16(s, 0);
  putZeros(s, 4);
  if (a.push_vlan) {
    put16(s, kPushVlan);
    put16(s, 8);
    put16(s, kEthTypeVlan);
    putZeros(s, 2);
    putSetField(s, kVlanVid, be16(kVidPresent | *a.push_vlan));
  }
  if (a.pop_vlan) putAction(s, kPopVlan);
  if (a.set_vlan_id) putSetField(s, kVlanVid, be16(kVidPresent | *a.set_vlan_id));
  if (a.set_source_mac) putSetField(s, kEthSrc, macBytes(*a.set_source_mac));
  if (a.set_dest_mac) putSetField(s, kEthDst, macBytes(*a.set_dest_mac));
  if (a.set_source_ip) {
    putSetField(s, a.set_source_ip->v6 ? kIpv6Src : kIpv4Src, ipBytes(*a.set_source_ip));
  }
  if (a.set_dest_ip) {
    putSetField(s, a.set_dest_ip->v6 ? kIpv6Dst : kIpv4Dst, ipBytes(*a.set_dest_ip));
  }
  uint8_t protocol = rule.fields.protocol.value_or(6);
  if (a.set_source_port) putSetField(s, portField(protocol, true), be16(*a.set_source_port));
  if (a.set_dest_port) putSetField(s, portField(protocol, false), be16(*a.set_dest_port));
  if (a.dec_ttl) putAction(s, kDecNwTtl);
  uint16_t tag = 0;  // the tag pushed for the outputs so far (vlan SAPs)
  for (size_t i = 0; i < rule.outputs.size(); ++i) {
    const uint32_t port = rule.outputs[i];
    const uint16_t want = i < rule.output_vlans.size() ? rule.output_vlans[i] : 0;
    if (want != tag) {
      if (tag != 0) putAction(s, kPopVlan);
      if (want != 0) {
        put16(s, kPushVlan);
        put16(s, 8);
        put16(s, kEthTypeVlan);
        putZeros(s, 2);
        putSetField(s, kVlanVid, be16(kVidPresent | want));
      }
      tag = want;
    }
    put16(s, kOutput);
    put16(s, 16);
    put32(s, port);
    put16(s, 0);  // max_len: only used for output to the controller
    putZeros(s, 6);
  }
  set16(s, start + 2, static_cast<uint16_t>(s.size() - start));
}

// Parses an ofp_match; `r` is left after its padding.
Result<std::vector<OxmTlv>> readMatch(Reader& r) {
  if (!r.has(4)) return Error(ErrorCode::InvalidArgument, "openflow: truncated match");
  uint16_t type = r.u16();
  uint16_t length = r.u16();
  if (type != kMatchTypeOxm) {
    return Error(ErrorCode::Unsupported,
                 "openflow: match type " + std::to_string(type) + " is not OXM");
  }
  if (length < 4 || !r.has(length - 4 + (8 - length % 8) % 8)) {
    return Error(ErrorCode::InvalidArgument, "openflow: bad match length");
  }
  Reader m(r.take(length - 4));
  r.skip((8 - length % 8) % 8);
  std::vector<OxmTlv> out;
  while (m.left() > 0) {
    if (!m.has(4)) return Error(ErrorCode::InvalidArgument, "openflow: truncated OXM header");
    uint16_t oxm_class = m.u16();
    uint8_t fh = m.u8();
    uint8_t len = m.u8();
    if (!m.has(len)) return Error(ErrorCode::InvalidArgument, "openflow: truncated OXM value");
    std::string_view payload = m.take(len);
    if (oxm_class != kOxmClassBasic) {
      return Error(ErrorCode::Unsupported,
                   "openflow: OXM class " + hex4(oxm_class) + " is not OpenFlow basic");
    }
    OxmTlv tlv;
    tlv.field = fh >> 1;
    tlv.has_mask = fh & 1;
    if (tlv.has_mask) {
      if (len % 2) return Error(ErrorCode::InvalidArgument, "openflow: odd masked OXM length");
      tlv.value = payload.substr(0, len / 2);
      tlv.mask = payload.substr(len / 2);
    } else {
      tlv.value = payload;
    }
    out.push_back(tlv);
  }
  return out;
}

// One action of an apply-actions list; for set-field, the OXM it sets.
struct ActionView {
  uint16_t type = 0;
  std::string_view body;  // after type and length
  OxmTlv oxm;             // kSetField only
};

Result<std::vector<ActionView>> readActions(std::string_view bytes) {
  Reader r(bytes);
  std::vector<ActionView> out;
  while (r.left() > 0) {
    if (!r.has(4)) return Error(ErrorCode::InvalidArgument, "openflow: truncated action");
    ActionView a;
    a.type = r.u16();
    uint16_t len = r.u16();
    if (len < 8 || len % 8 || !r.has(len - 4)) {
      return Error(ErrorCode::InvalidArgument, "openflow: bad action length");
    }
    a.body = r.take(len - 4);
    if (a.type == kSetField) {
      if (a.body.size() < 4) return Error(ErrorCode::InvalidArgument, "openflow: bad set_field");
      uint16_t oxm_class = get16(a.body, 0);
      uint8_t fh = static_cast<uint8_t>(a.body[2]);
      uint8_t vlen = static_cast<uint8_t>(a.body[3]);
      if (oxm_class != kOxmClassBasic || (fh & 1) || a.body.size() < 4u + vlen) {
        return Error(ErrorCode::Unsupported, "openflow: set_field of a non-basic or masked field");
      }
      a.oxm.field = fh >> 1;
      a.oxm.value = a.body.substr(4, vlen);
    }
    out.push_back(a);
  }
  return out;
}

struct InstructionView {
  uint16_t type = 0;
  std::string_view body;  // after type and length
};

Result<std::vector<InstructionView>> readInstructions(std::string_view bytes) {
  Reader r(bytes);
  std::vector<InstructionView> out;
  while (r.left() > 0) {
    if (!r.has(4)) return Error(ErrorCode::InvalidArgument, "openflow: truncated instruction");
    InstructionView i;
    i.type = r.u16();
    uint16_t len = r.u16();
    if (len < 8 || !r.has(len - 4)) {
      return Error(ErrorCode::InvalidArgument, "openflow: bad instruction length");
    }
    i.body = r.take(len - 4);
    out.push_back(i);
  }
  return out;
}

// --- OXM values as text and as TsRule fields ---

std::string macText(std::string_view b) {
  MacAddr mac;
  std::memcpy(mac.bytes.data(), b.data(), 6);
  return mac.str();
}

IpAddr ipOf(std::string_view b) {
  IpAddr ip;
  ip.v6 = b.size() == 16;
  std::memcpy(ip.bytes.data(), b.data(), b.size());
  return ip;
}

// The prefix length of a contiguous netmask, or nullopt.
std::optional<uint8_t> maskLength(std::string_view mask) {
  unsigned length = 0;
  bool ended = false;
  for (unsigned char byte : mask) {
    for (int bit = 7; bit >= 0; --bit) {
      bool set = byte & (1u << bit);
      if (set && ended) return std::nullopt;
      if (set)
        ++length;
      else
        ended = true;
    }
  }
  return static_cast<uint8_t>(length);
}

uint64_t valueOf(std::string_view b) {
  uint64_t v = 0;
  for (unsigned char c : b) v = v << 8 | c;
  return v;
}

std::string oxmValueText(uint8_t field, std::string_view v) {
  switch (field) {
    case kEthDst:
    case kEthSrc:
      return v.size() == 6 ? macText(v) : "?";
    case kEthType:
    case kVlanVid:
      return v.size() == 2 ? hex4(get16(v, 0)) : "?";
    case kIpv4Src:
    case kIpv4Dst:
    case kIpv6Src:
    case kIpv6Dst:
      return v.size() == 4 || v.size() == 16 ? ipOf(v).str() : "?";
    default:
      return std::to_string(valueOf(v));
  }
}

std::string oxmText(const OxmTlv& t) {
  const char* name = oxmName(t.field);
  std::string out = name ? name : "oxm" + std::to_string(t.field);
  out += "=" + oxmValueText(t.field, t.value);
  if (t.has_mask) out += "/" + oxmValueText(t.field, t.mask);
  return out;
}

Error unsupportedOxm(const OxmTlv& t, std::string_view why) {
  const char* name = oxmName(t.field);
  return Error(ErrorCode::Unsupported,
               "openflow: " + std::string(name ? name : "OXM field") + " " + std::string(why));
}

// Sets the match fields of a rule from OXM TLVs.
Result<void> matchToRule(const std::vector<OxmTlv>& tlvs, TsRule& rule) {
  MatchFields& m = rule.fields;
  for (const auto& t : tlvs) {
    size_t size = oxmSize(t.field);
    if (size == 0) return unsupportedOxm(t, "is not a field corch matches on");
    if (t.value.size() != size) return unsupportedOxm(t, "has a bad length");
    bool maskable =
        t.field == kIpv4Src || t.field == kIpv4Dst || t.field == kIpv6Src || t.field == kIpv6Dst;
    if (t.has_mask && !maskable) return unsupportedOxm(t, "is masked");
    uint64_t v = valueOf(t.value);
    switch (t.field) {
      case kInPort:
        rule.in_port = static_cast<uint32_t>(v);
        break;
      case kEthDst:
      case kEthSrc: {
        MacAddr mac;
        std::memcpy(mac.bytes.data(), t.value.data(), 6);
        (t.field == kEthDst ? m.dest_mac : m.source_mac) = mac;
        break;
      }
      case kEthType:
        m.ether_type = static_cast<uint16_t>(v);
        break;
      case kVlanVid:
        if (!(v & kVidPresent)) return unsupportedOxm(t, "matches untagged packets");
        m.vlan_id = static_cast<uint16_t>(v & 0x0fff);
        break;
      case kVlanPcp:
        m.vlan_pcp = static_cast<uint8_t>(v);
        break;
      case kIpDscp:
        m.ip_dscp = static_cast<uint8_t>(v);
        break;
      case kIpProto:
        m.protocol = static_cast<uint8_t>(v);
        break;
      case kIpv4Src:
      case kIpv4Dst:
      case kIpv6Src:
      case kIpv6Dst: {
        IpPrefix p;
        p.addr = ipOf(t.value);
        p.length = static_cast<uint8_t>(t.value.size() * 8);
        if (t.has_mask) {
          auto length = maskLength(t.mask);
          if (!length) return unsupportedOxm(t, "has a non-contiguous mask");
          p.length = *length;
        }
        (t.field == kIpv4Src || t.field == kIpv6Src ? m.source_ip : m.dest_ip) = p;
        break;
      }
      case kTcpSrc:
      case kUdpSrc:
      case kSctpSrc:
        m.source_port = static_cast<uint16_t>(v);
        break;
      case kTcpDst:
      case kUdpDst:
      case kSctpDst:
        m.dest_port = static_cast<uint16_t>(v);
        break;
      case kIcmpv4Type:
      case kIcmpv6Type:
        m.icmp_type = static_cast<uint8_t>(v);
        break;
      case kIcmpv4Code:
      case kIcmpv6Code:
        m.icmp_code = static_cast<uint8_t>(v);
        break;
      case kArpOp:
        m.arp_opcode = static_cast<uint16_t>(v);
        break;
      default:
        return unsupportedOxm(t, "is not a field corch matches on");
    }
  }
  return Ok();
}

// Sets the modifications and outputs of a rule from its instructions.
Result<void> instructionsToRule(std::string_view bytes, TsRule& rule) {
  auto instructions = readInstructions(bytes);
  if (!instructions.ok()) return std::move(instructions).error();
  Modifications& mods = rule.mods;
  for (const auto& ins : *instructions) {
    if (ins.type != kInstructionApplyActions) {
      return Error(ErrorCode::Unsupported, "openflow: instruction type " +
                                               std::to_string(ins.type) + " is not apply-actions");
    }
    if (ins.body.size() < 4) return Error(ErrorCode::InvalidArgument, "openflow: bad instruction");
    auto actions = readActions(ins.body.substr(4));
    if (!actions.ok()) return std::move(actions).error();
    bool pushed = false;  // a push_vlan waiting for its set_field vlan_vid
    // Tags of outputs (TsRule::output_vlans): a push_vlan that cannot be the modification's
    // (one came already, or a later modification or an output did) tags the outputs after it,
    // up to a pop_vlan.
    bool tagging = false;     // between such a push_vlan and its outputs
    bool tag_pushed = false;  // its set_field vlan_vid not seen yet
    uint16_t output_tag = 0;
    auto pastPush = [&] {
      Modifications later = mods;
      later.push_vlan.reset();
      return mods.push_vlan.has_value() || !later.empty() || !rule.outputs.empty();
    };
    for (const auto& a : *actions) {
      if (tagging && a.type == kPopVlan && !tag_pushed && output_tag != 0) {
        output_tag = 0;
        continue;
      }
      if (a.type == kPushVlan && !pushed && pastPush()) {
        if (a.body.size() < 2 || get16(a.body, 0) != kEthTypeVlan || output_tag != 0) {
          return Error(ErrorCode::Unsupported, "openflow: an output tag corch does not make");
        }
        tagging = tag_pushed = true;
        continue;
      }
      if (tag_pushed) {
        if (a.type != kSetField || a.oxm.field != kVlanVid || a.oxm.value.size() != 2) {
          return Error(ErrorCode::Unsupported, "openflow: push_vlan without its VLAN id");
        }
        output_tag = static_cast<uint16_t>(valueOf(a.oxm.value) & 0x0fff);
        tag_pushed = false;
        continue;
      }
      if ((!rule.outputs.empty() || tagging) && a.type != kOutput) {
        return Error(ErrorCode::Unsupported, "openflow: a modification follows an output");
      }
      auto twice = [](const char* what) {
        return Error(ErrorCode::Unsupported, std::string("openflow: ") + what + " appears twice");
      };
      switch (a.type) {
        case kOutput:
          if (a.body.size() < 4) return Error(ErrorCode::InvalidArgument, "openflow: bad output");
          rule.outputs.push_back(get32(a.body, 0));
          if (output_tag != 0 && rule.output_vlans.size() + 1 < rule.outputs.size()) {
            rule.output_vlans.assign(rule.outputs.size() - 1, 0);
          }
          if (output_tag != 0 || !rule.output_vlans.empty()) {
            rule.output_vlans.push_back(output_tag);
          }
          break;
        case kPushVlan:
          if (a.body.size() < 2 || get16(a.body, 0) != kEthTypeVlan) {
            return Error(ErrorCode::Unsupported, "openflow: push_vlan of a non-802.1Q tag");
          }
          if (mods.push_vlan || pushed) return twice("push_vlan");
          pushed = true;
          mods.push_vlan = 0;
          break;
        case kPopVlan:
          if (mods.pop_vlan) return twice("pop_vlan");
          mods.pop_vlan = true;
          break;
        case kDecNwTtl:
          if (mods.dec_ttl) return twice("dec_nw_ttl");
          mods.dec_ttl = true;
          break;
        case kSetField: {
          const OxmTlv& t = a.oxm;
          if (oxmSize(t.field) == 0 || t.value.size() != oxmSize(t.field)) {
            return unsupportedOxm(t, "cannot be set by corch");
          }
          uint64_t v = valueOf(t.value);
          auto assign = [&](auto& slot, auto value, const char* what) -> Result<void> {
            if (slot) return twice(what);
            slot = value;
            return Ok();
          };
          Result<void> r = Ok();
          switch (t.field) {
            case kVlanVid:
              if (pushed) {
                mods.push_vlan = static_cast<uint16_t>(v & 0x0fff);
                pushed = false;
              } else {
                r = assign(mods.set_vlan_id, static_cast<uint16_t>(v & 0x0fff), "set vlan_vid");
              }
              break;
            case kEthSrc:
            case kEthDst: {
              MacAddr mac;
              std::memcpy(mac.bytes.data(), t.value.data(), 6);
              r = t.field == kEthSrc ? assign(mods.set_source_mac, mac, "set eth_src")
                                     : assign(mods.set_dest_mac, mac, "set eth_dst");
              break;
            }
            case kIpv4Src:
            case kIpv6Src:
              r = assign(mods.set_source_ip, ipOf(t.value), "set ip_src");
              break;
            case kIpv4Dst:
            case kIpv6Dst:
              r = assign(mods.set_dest_ip, ipOf(t.value), "set ip_dst");
              break;
            case kTcpSrc:
            case kUdpSrc:
            case kSctpSrc:
              r = assign(mods.set_source_port, static_cast<uint16_t>(v), "set tp_src");
              break;
            case kTcpDst:
            case kUdpDst:
            case kSctpDst:
              r = assign(mods.set_dest_port, static_cast<uint16_t>(v), "set tp_dst");
              break;
            default:
              return unsupportedOxm(t, "cannot be set by corch");
          }
          if (!r.ok()) return r;
          break;
        }
        default:
          return Error(ErrorCode::Unsupported, "openflow: action type " + std::to_string(a.type) +
                                                   " is not one corch uses");
      }
    }
  }
  return Ok();
}

std::string portText(uint32_t port) {
  switch (port) {
    case 0xfffffff8:
      return "in_port";
    case 0xfffffff9:
      return "table";
    case 0xfffffffa:
      return "normal";
    case 0xfffffffb:
      return "flood";
    case 0xfffffffc:
      return "all";
    case 0xfffffffd:
      return "controller";
    case 0xfffffffe:
      return "local";
    case 0xffffffff:
      return "any";
    default:
      return std::to_string(port);
  }
}

std::string actionsText(std::string_view bytes) {
  auto actions = readActions(bytes);
  if (!actions.ok()) return "<" + actions.error().message() + ">";
  std::string out;
  for (const auto& a : *actions) {
    if (!out.empty()) out += ",";
    switch (a.type) {
      case kOutput:
        out += "output:" + (a.body.size() >= 6 ? portText(get32(a.body, 0)) : "?");
        if (a.body.size() >= 6 && get16(a.body, 4) != 0) {
          out += "/max_len=" + std::to_string(get16(a.body, 4));
        }
        break;
      case kPushVlan:
        out += "push_vlan:" + (a.body.size() >= 2 ? hex4(get16(a.body, 0)) : "?");
        break;
      case kPopVlan:
        out += "pop_vlan";
        break;
      case kDecNwTtl:
        out += "dec_nw_ttl";
        break;
      case kSetField:
        out += "set_field:" + oxmText(a.oxm);
        break;
      default:
        out += "action" + std::to_string(a.type);
    }
  }
  return out;
}

std::string instructionsText(std::string_view bytes) {
  auto instructions = readInstructions(bytes);
  if (!instructions.ok()) return "<" + instructions.error().message() + ">";
  std::string out;
  for (const auto& i : *instructions) {
    if (!out.empty()) out += " ";
    if (i.type == kInstructionApplyActions && i.body.size() >= 4) {
      out += "apply_actions(" + actionsText(i.body.substr(4)) + ")";
    } else {
      out += "instruction" + std::to_string(i.type);
    }
  }
  return out.empty() ? "drop" : out;
}

std::string matchText(const std::vector<OxmTlv>& tlvs) {
  std::string out = "match(";
  for (size_t i = 0; i < tlvs.size(); ++i) out += (i ? "," : "") + oxmText(tlvs[i]);
  return out + ")";
}

const char* commandName(uint8_t command) {
  static const char* const names[] = {"add", "modify", "modify_strict", "delete", "delete_strict"};
  return command < 5 ? names[command] : "?";
}

const char* typeName(uint8_t type) {
  switch (static_cast<MsgType>(type)) {
    case MsgType::Hello:
      return "HELLO";
    case MsgType::Error:
      return "ERROR";
    case MsgType::EchoRequest:
      return "ECHO_REQUEST";
    case MsgType::EchoReply:
      return "ECHO_REPLY";
    case MsgType::Experimenter:
      return "EXPERIMENTER";
    case MsgType::FeaturesRequest:
      return "FEATURES_REQUEST";
    case MsgType::FeaturesReply:
      return "FEATURES_REPLY";
    case MsgType::PacketIn:
      return "PACKET_IN";
    case MsgType::FlowRemoved:
      return "FLOW_REMOVED";
    case MsgType::PortStatus:
      return "PORT_STATUS";
    case MsgType::FlowMod:
      return "FLOW_MOD";
    case MsgType::MultipartRequest:
      return "MULTIPART_REQUEST";
    case MsgType::MultipartReply:
      return "MULTIPART_REPLY";
    case MsgType::BarrierRequest:
      return "BARRIER_REQUEST";
    case MsgType::BarrierReply:
      return "BARRIER_REPLY";
  }
  return nullptr;
}

// --- Normalisation ---

Error fieldError(ErrorCode code, const TsRule& rule, const std::string& message) {
  return Error(code, "cannot install rule " + toString(rule) + ": " + message);
}

bool isIpEthType(uint16_t t) { return t == kEthTypeIpv4 || t == kEthTypeIpv6; }

}  // namespace

std::optional<Header> parseHeader(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) return std::nullopt;
  Header h;
  h.version = static_cast<uint8_t>(bytes[0]);
  h.type = static_cast<uint8_t>(bytes[1]);
  h.length = get16(bytes, 2);
  h.xid = get32(bytes, 4);
  return h;
}

std::string encodeHello(uint32_t xid) {
  std::string s;
  size_t start = begin(s, MsgType::Hello, xid);
  put16(s, kHelloElemVersionBitmap);
  put16(s, 8);
  put32(s, 1u << kVersion);
  finish(s, start);
  return s;
}

std::string encodeEchoRequest(uint32_t xid, std::string_view payload) {
  std::string s;
  size_t start = begin(s, MsgType::EchoRequest, xid);
  s.append(payload);
  finish(s, start);
  return s;
}

std::string encodeEchoReply(uint32_t xid, std::string_view payload) {
  std::string s;
  size_t start = begin(s, MsgType::EchoReply, xid);
  s.append(payload);
  finish(s, start);
  return s;
}

std::string encodeBarrierRequest(uint32_t xid) {
  std::string s;
  size_t start = begin(s, MsgType::BarrierRequest, xid);
  finish(s, start);
  return s;
}

std::string encodeFlowStatsRequest(uint32_t xid) {
  std::string s;
  size_t start = begin(s, MsgType::MultipartRequest, xid);
  put16(s, kMultipartFlow);
  put16(s, 0);  // flags
  putZeros(s, 4);
  put8(s, kTableAll);
  putZeros(s, 3);
  put32(s, kPortAny);
  put32(s, kGroupAny);
  putZeros(s, 4);
  put64(s, 0);  // cookie
  put64(s, 0);  // cookie mask: any
  putMatch(s, TsRule{});
  finish(s, start);
  return s;
}

namespace {

void putFlowModHead(std::string& s, uint64_t cookie, uint64_t cookie_mask, uint8_t table,
                    FlowModCommand command, uint16_t priority) {
  put64(s, cookie);
  put64(s, cookie_mask);
  put8(s, table);
  put8(s, static_cast<uint8_t>(command));
  put16(s, 0);  // idle timeout
  put16(s, 0);  // hard timeout
  put16(s, priority);
  put32(s, kNoBuffer);
  put32(s, kPortAny);
  put32(s, kGroupAny);
  put16(s, 0);  // flags
  putZeros(s, 2);
}

}  // namespace

std::string encodeFlowMod(const TsRule& rule, FlowModCommand command, uint32_t xid) {
  std::string s;
  s.reserve(160);
  size_t start = begin(s, MsgType::FlowMod, xid);
  bool adds = command == FlowModCommand::Add || command == FlowModCommand::Modify ||
              command == FlowModCommand::ModifyStrict;
  // A strict delete matches priority and match only: the cookie mask is 0.
  putFlowModHead(s, adds ? rule.cookie : 0, 0, 0, command, rule.priority);
  putMatch(s, rule);
  if (adds) putInstructions(s, rule);
  finish(s, start);
  return s;
}

std::string flowKey(const TsRule& rule) {
  std::string s;
  put16(s, rule.priority);
  putMatch(s, rule);
  return s;
}

std::string encodeDeleteByCookie(uint64_t cookie, uint64_t mask, uint32_t xid) {
  std::string s;
  size_t start = begin(s, MsgType::FlowMod, xid);
  putFlowModHead(s, cookie & mask, mask, kTableAll, FlowModCommand::Delete, 0);
  putMatch(s, TsRule{});
  finish(s, start);
  return s;
}

std::string encodeFlowStatsReply(uint32_t xid, const std::vector<FlowStats>& flows, bool more) {
  std::string s;
  size_t start = begin(s, MsgType::MultipartReply, xid);
  put16(s, kMultipartFlow);
  put16(s, more ? 1 : 0);
  putZeros(s, 4);
  for (const auto& f : flows) {
    size_t entry = s.size();
    put16(s, 0);  // length, below
    put8(s, f.table_id);
    putZeros(s, 1);
    put32(s, 0);  // duration
    put32(s, 0);
    put16(s, f.rule.priority);
    put16(s, 0);  // idle timeout
    put16(s, 0);  // hard timeout
    put16(s, 0);  // flags
    putZeros(s, 4);
    put64(s, f.rule.cookie);
    put64(s, f.packet_count);
    put64(s, f.byte_count);
    putMatch(s, f.rule);
    putInstructions(s, f.rule);
    set16(s, entry, static_cast<uint16_t>(s.size() - entry));
  }
  finish(s, start);
  return s;
}

std::optional<ErrorReply> parseError(std::string_view msg) {
  auto h = parseHeader(msg);
  if (!h || h->type != static_cast<uint8_t>(MsgType::Error) || msg.size() < kHeaderSize + 4) {
    return std::nullopt;
  }
  return ErrorReply{get16(msg, 8), get16(msg, 10)};
}

std::string describeError(uint16_t type, uint16_t code) {
  struct Type {
    const char* words;
    const char* name;
    const char* code_prefix;
    std::vector<const char*> codes;
  };
  static const std::vector<Type> types = {
      {"hello failed", "OFPET_HELLO_FAILED", "OFPHFC_", {"INCOMPATIBLE", "EPERM"}},
      {"bad request",
       "OFPET_BAD_REQUEST",
       "OFPBRC_",
       {"BAD_VERSION", "BAD_TYPE", "BAD_MULTIPART", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "EPERM",
        "BAD_LEN", "BUFFER_EMPTY", "BUFFER_UNKNOWN", "BAD_TABLE_ID", "IS_SLAVE", "BAD_PORT",
        "BAD_PACKET", "MULTIPART_BUFFER_OVERFLOW"}},
      {"bad action",
       "OFPET_BAD_ACTION",
       "OFPBAC_",
       {"BAD_TYPE", "BAD_LEN", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_OUT_PORT", "BAD_ARGUMENT",
        "EPERM", "TOO_MANY", "BAD_QUEUE", "BAD_OUT_GROUP", "MATCH_INCONSISTENT",
        "UNSUPPORTED_ORDER", "BAD_TAG", "BAD_SET_TYPE", "BAD_SET_LEN", "BAD_SET_ARGUMENT"}},
      {"bad instruction",
       "OFPET_BAD_INSTRUCTION",
       "OFPBIC_",
       {"UNKNOWN_INST", "UNSUP_INST", "BAD_TABLE_ID", "UNSUP_METADATA", "UNSUP_METADATA_MASK",
        "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_LEN", "EPERM"}},
      {"bad match",
       "OFPET_BAD_MATCH",
       "OFPBMC_",
       {"BAD_TYPE", "BAD_LEN", "BAD_TAG", "BAD_DL_ADDR_MASK", "BAD_NW_ADDR_MASK", "BAD_WILDCARDS",
        "BAD_FIELD", "BAD_VALUE", "BAD_MASK", "BAD_PREREQ", "DUP_FIELD", "EPERM"}},
      {"flow mod failed",
       "OFPET_FLOW_MOD_FAILED",
       "OFPFMFC_",
       {"UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND",
        "BAD_FLAGS"}},
      {"group mod failed", "OFPET_GROUP_MOD_FAILED", "OFPGMFC_", {}},
      {"port mod failed", "OFPET_PORT_MOD_FAILED", "OFPPMFC_", {}},
      {"table mod failed", "OFPET_TABLE_MOD_FAILED", "OFPTMFC_", {}},
      {"queue operation failed", "OFPET_QUEUE_OP_FAILED", "OFPQOFC_", {}},
      {"switch config failed", "OFPET_SWITCH_CONFIG_FAILED", "OFPSCFC_", {}},
      {"role request failed", "OFPET_ROLE_REQUEST_FAILED", "OFPRRFC_", {}},
      {"meter mod failed", "OFPET_METER_MOD_FAILED", "OFPMMFC_", {}},
      {"table features failed", "OFPET_TABLE_FEATURES_FAILED", "OFPTFFC_", {}},
  };
  if (type == 0xffff)
    return "experimenter error (OFPET_EXPERIMENTER, code " + std::to_string(code) + ")";
  if (type >= types.size()) {
    return "error type " + std::to_string(type) + ", code " + std::to_string(code);
  }
  const Type& t = types[type];
  if (code >= t.codes.size()) {
    return std::string(t.words) + ": code " + std::to_string(code) + " (" + t.name + ")";
  }
  std::string words = t.codes[code];
  for (auto& c : words) c = c == '_' ? ' ' : static_cast<char>(std::tolower(c));
  return std::string(t.words) + ": " + words + " (" + t.name + ", " + t.code_prefix +
         t.codes[code] + ")";
}

Result<FlowMod> parseFlowMod(std::string_view msg) {
  auto h = parseHeader(msg);
  if (!h || h->type != static_cast<uint8_t>(MsgType::FlowMod) || h->length != msg.size() ||
      msg.size() < 56) {
    return Error(ErrorCode::InvalidArgument, "openflow: not a whole FLOW_MOD");
  }
  Reader r(msg.substr(kHeaderSize));
  FlowMod f;
  f.cookie = r.u64();
  f.cookie_mask = r.u64();
  f.table_id = r.u8();
  uint8_t command = r.u8();
  if (command > 4) return Error(ErrorCode::InvalidArgument, "openflow: bad FLOW_MOD command");
  f.command = static_cast<FlowModCommand>(command);
  f.idle_timeout = r.u16();
  f.hard_timeout = r.u16();
  f.rule.priority = r.u16();
  f.buffer_id = r.u32();
  f.out_port = r.u32();
  f.out_group = r.u32();
  f.flags = r.u16();
  r.skip(2);
  f.rule.cookie = f.cookie;
  auto tlvs = readMatch(r);
  if (!tlvs.ok()) return std::move(tlvs).error();
  CORCH_TRY(matchToRule(*tlvs, f.rule));
  CORCH_TRY(instructionsToRule(r.take(r.left()), f.rule));
  return f;
}

std::optional<MultipartReply> parseMultipartReply(std::string_view msg) {
  auto h = parseHeader(msg);
  if (!h || h->type != static_cast<uint8_t>(MsgType::MultipartReply) || msg.size() < 16) {
    return std::nullopt;
  }
  MultipartReply m;
  m.type = get16(msg, 8);
  m.flags = get16(msg, 10);
  m.body = msg.substr(16);
  return m;
}

Result<std::vector<FlowStats>> parseFlowStats(std::string_view body,
                                              std::vector<std::string>* skipped) {
  std::vector<FlowStats> out;
  Reader r(body);
  while (r.left() > 0) {
    if (!r.has(2)) return Error(ErrorCode::InvalidArgument, "openflow: truncated flow stats");
    uint16_t length = get16(body, body.size() - r.left());
    if (length < 56 || !r.has(length)) {
      return Error(ErrorCode::InvalidArgument, "openflow: bad flow stats length");
    }
    Reader e(r.take(length));
    e.skip(2);
    FlowStats f;
    f.table_id = e.u8();
    e.skip(1 + 8);  // pad, duration
    f.rule.priority = e.u16();
    e.skip(2 + 2 + 2 + 4);  // timeouts, flags, pad
    f.rule.cookie = e.u64();
    f.packet_count = e.u64();
    f.byte_count = e.u64();
    auto tlvs = readMatch(e);
    if (!tlvs.ok()) return std::move(tlvs).error();
    std::string_view instructions = e.take(e.left());
    Result<void> decoded = matchToRule(*tlvs, f.rule);
    if (decoded.ok()) decoded = instructionsToRule(instructions, f.rule);
    if (!decoded.ok()) {
      if (skipped) {
        skipped->push_back("table=" + std::to_string(f.table_id) + " cookie=" + hex(f.rule.cookie) +
                           " priority=" + std::to_string(f.rule.priority) + " " + matchText(*tlvs) +
                           " " + instructionsText(instructions) + ": " + decoded.error().message());
      }
      continue;
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::string describe(std::string_view msg) {
  auto h = parseHeader(msg);
  if (!h) return "<truncated message>";
  const char* name = typeName(h->type);
  std::ostringstream out;
  out << (name ? name : "TYPE" + std::to_string(h->type)) << " xid=" << h->xid;
  if (h->version != kVersion) out << " version=" << unsigned{h->version};
  if (h->length != msg.size()) {
    out << " <length " << h->length << " but " << msg.size() << " bytes>";
    return out.str();
  }
  switch (static_cast<MsgType>(h->type)) {
    case MsgType::Hello: {
      Reader r(msg.substr(kHeaderSize));
      while (r.has(4)) {
        uint16_t type = r.u16();
        uint16_t len = r.u16();
        if (len < 4 || !r.has(len - 4)) break;
        std::string_view body = r.take(len - 4);
        if (type == kHelloElemVersionBitmap && body.size() >= 4) {
          out << " versions=" << hex(get32(body, 0));
        } else {
          out << " element" << type;
        }
        r.skip(std::min<size_t>((8 - len % 8) % 8, r.left()));
      }
      break;
    }
    case MsgType::Error: {
      auto e = parseError(msg);
      if (e) out << " " << describeError(e->type, e->code);
      break;
    }
    case MsgType::FlowMod: {
      if (msg.size() < 56) break;
      Reader r(msg.substr(kHeaderSize));
      uint64_t cookie = r.u64();
      uint64_t mask = r.u64();
      uint8_t table = r.u8();
      uint8_t command = r.u8();
      uint16_t idle = r.u16();
      uint16_t hard = r.u16();
      uint16_t priority = r.u16();
      uint32_t buffer = r.u32();
      uint32_t out_port = r.u32();
      uint32_t out_group = r.u32();
      uint16_t flags = r.u16();
      r.skip(2);
      out << " cmd=" << commandName(command)
          << " table=" << (table == kTableAll ? std::string("all") : std::to_string(table))
          << " cookie=" << hex(cookie) << "/" << hex(mask) << " priority=" << priority
          << " idle=" << idle << " hard=" << hard << " flags=" << hex(flags)
          << " buffer=" << (buffer == kNoBuffer ? std::string("none") : hex(buffer))
          << " out_port=" << portText(out_port)
          << " out_group=" << (out_group == kGroupAny ? std::string("any") : hex(out_group));
      auto tlvs = readMatch(r);
      if (!tlvs.ok()) {
        out << " <" << tlvs.error().message() << ">";
        break;
      }
      out << " " << matchText(*tlvs);
      // An add without instructions drops; a delete has none to show.
      if (command <= static_cast<uint8_t>(FlowModCommand::ModifyStrict) || r.left() > 0) {
        out << " " << instructionsText(r.take(r.left()));
      }
      break;
    }
    case MsgType::MultipartRequest: {
      if (msg.size() < 16) break;
      uint16_t type = get16(msg, 8);
      out << " type=" << type << " flags=" << hex(get16(msg, 10));
      if (type == kMultipartFlow && msg.size() >= 16 + 32) {
        Reader r(msg.substr(16));
        uint8_t table = r.u8();
        r.skip(3);
        uint32_t out_port = r.u32();
        uint32_t out_group = r.u32();
        r.skip(4);
        uint64_t cookie = r.u64();
        uint64_t mask = r.u64();
        out << " flow table=" << (table == kTableAll ? std::string("all") : std::to_string(table))
            << " out_port=" << portText(out_port)
            << " out_group=" << (out_group == kGroupAny ? std::string("any") : hex(out_group))
            << " cookie=" << hex(cookie) << "/" << hex(mask);
        auto tlvs = readMatch(r);
        if (tlvs.ok()) out << " " << matchText(*tlvs);
      }
      break;
    }
    case MsgType::MultipartReply: {
      auto m = parseMultipartReply(msg);
      if (!m) break;
      out << " type=" << m->type << " flags=" << hex(m->flags);
      if (m->type == kMultipartFlow) {
        std::vector<std::string> skipped;
        auto flows = parseFlowStats(m->body, &skipped);
        if (!flows.ok()) {
          out << " <" << flows.error().message() << ">";
          break;
        }
        for (const auto& f : *flows) out << " [" << toString(f.rule) << "]";
        for (const auto& s : skipped) out << " [skipped " << s << "]";
      }
      break;
    }
    default:
      if (msg.size() > kHeaderSize) out << " body=" << msg.size() - kHeaderSize << "B";
      break;
  }
  return out.str();
}

Result<TsRule> normalizeRule(const TsRule& input) {
  TsRule rule = input;
  MatchFields& m = rule.fields;
  const Modifications& a = rule.mods;
  auto invalid = [&](const std::string& message) {
    return fieldError(ErrorCode::InvalidArgument, input, message);
  };
  auto unsupported = [&](const std::string& message) {
    return fieldError(ErrorCode::Unsupported, input, message);
  };

  // Ranges the types do not enforce.
  if (m.vlan_id && *m.vlan_id > 4095) return invalid("vlan_id must be 0-4095");
  if (m.vlan_pcp && *m.vlan_pcp > 7) return invalid("vlan_pcp must be 0-7");
  if (m.ip_dscp && *m.ip_dscp > 63) return invalid("ip_dscp must be 0-63");
  if (a.push_vlan && *a.push_vlan > 4095) return invalid("push_vlan must be a VLAN id 0-4095");
  if (a.set_vlan_id && *a.set_vlan_id > 4095) return invalid("set_vlan_id must be 0-4095");
  if (!rule.output_vlans.empty() && rule.output_vlans.size() != rule.outputs.size()) {
    return invalid("output_vlans must have one VLAN id (or 0) per output");
  }
  for (uint16_t vid : rule.output_vlans) {
    if (vid > 4095) return invalid("an output's VLAN id must be 1-4095");
  }
  if (std::all_of(rule.output_vlans.begin(), rule.output_vlans.end(),
                  [](uint16_t vid) { return vid == 0; })) {
    rule.output_vlans.clear();
  }
  if (m.arp_opcode && *m.arp_opcode > 255) {
    return unsupported("arp_opcode " + std::to_string(*m.arp_opcode) +
                       " is above 255, which Open vSwitch cannot match");
  }

  // The ether_type every field requires, and who requires it: conflicting requirements are a
  // contradiction, a single one is inferred when ether_type is absent.
  std::optional<uint16_t> need;
  std::string need_by;
  auto require = [&](uint16_t ether_type, const std::string& by) -> Result<void> {
    if (m.ether_type && *m.ether_type != ether_type) {
      return invalid(by + " needs ether_type " + hex4(ether_type) + ", but the rule matches " +
                     hex4(*m.ether_type));
    }
    if (need && *need != ether_type) {
      return invalid(by + " needs ether_type " + hex4(ether_type) + ", but " + need_by + " needs " +
                     hex4(*need));
    }
    need = ether_type;
    need_by = by;
    return Ok();
  };
  if (m.source_ip)
    CORCH_TRY(require(m.source_ip->addr.v6 ? kEthTypeIpv6 : kEthTypeIpv4, "source_ip"));
  if (m.dest_ip) CORCH_TRY(require(m.dest_ip->addr.v6 ? kEthTypeIpv6 : kEthTypeIpv4, "dest_ip"));
  if (m.arp_opcode) CORCH_TRY(require(kEthTypeArp, "arp_opcode"));
  bool icmp = m.icmp_type || m.icmp_code;
  std::string icmp_name = m.icmp_type ? "icmp_type" : "icmp_code";
  if (icmp) {
    if (m.protocol == 1)
      CORCH_TRY(require(kEthTypeIpv4, icmp_name + " with protocol 1 (ICMP)"));
    else if (m.protocol == 58)
      CORCH_TRY(require(kEthTypeIpv6, icmp_name + " with protocol 58 (ICMPv6)"));
    else
      return invalid(icmp_name + " needs protocol 1 (ICMP) or 58 (ICMPv6)");
  }
  // IP-only fields: need an IP ether_type, which they cannot choose by themselves.
  std::optional<uint16_t> ip_type = m.ether_type ? m.ether_type : need;
  if (!ip_type && m.protocol == 1) ip_type = kEthTypeIpv4;
  if (!ip_type && m.protocol == 58) ip_type = kEthTypeIpv6;
  auto requireIp = [&](const std::string& by) -> Result<void> {
    if (!ip_type) {
      return invalid(by +
                     " needs ether_type 0x0800 or 0x86dd (or an IP address) to say which "
                     "IP version it applies to");
    }
    if (!isIpEthType(*ip_type)) {
      return invalid(by + " needs ether_type 0x0800 or 0x86dd, but the rule matches " +
                     hex4(*ip_type));
    }
    return require(*ip_type, by);
  };
  if (m.protocol) CORCH_TRY(requireIp("protocol"));
  if (m.ip_dscp) CORCH_TRY(requireIp("ip_dscp"));
  bool l4 = m.protocol == 6 || m.protocol == 17 || m.protocol == 132;
  if (m.source_port && !l4)
    return invalid("source_port needs protocol 6 (TCP), 17 (UDP) or 132 (SCTP)");
  if (m.dest_port && !l4)
    return invalid("dest_port needs protocol 6 (TCP), 17 (UDP) or 132 (SCTP)");
  if (m.vlan_pcp && !m.vlan_id) {
    return unsupported(
        "vlan_pcp needs vlan_id in the same rule (OpenFlow matches the priority "
        "only of tagged packets)");
  }

  // Actions and what they need from the match (Open vSwitch rejects the rest as inconsistent).
  int tags = (m.vlan_id ? 1 : 0) + (a.push_vlan ? 1 : 0);
  if (a.pop_vlan) {
    if (tags == 0) return invalid("pop_vlan needs a vlan_id match (or push_vlan) to remove a tag");
    --tags;
  }
  if (a.set_vlan_id && tags == 0) {
    return invalid("set_vlan_id needs a tagged packet: a vlan_id match or push_vlan");
  }
  auto requireMatchIp = [&](const std::string& by, std::optional<bool> v6) -> Result<void> {
    std::optional<uint16_t> t = m.ether_type ? m.ether_type : need;
    if (!t && m.protocol == 1) t = kEthTypeIpv4;
    if (!t && m.protocol == 58) t = kEthTypeIpv6;
    if (!t || !isIpEthType(*t)) {
      std::string which = !v6 ? "an IP" : (*v6 ? "an IPv6" : "an IPv4");
      return invalid(by + " needs " + which + " match (ether_type " +
                     (!v6 ? "0x0800 or 0x86dd" : (*v6 ? "0x86dd" : "0x0800")) +
                     " or an IP address)");
    }
    if (v6 && (*t == kEthTypeIpv6) != *v6) {
      return invalid(by + " is an IPv" + (*v6 ? "6" : "4") + " address but the rule matches " +
                     "ether_type " + hex4(*t));
    }
    return require(*t, by);
  };
  if (a.set_source_ip) CORCH_TRY(requireMatchIp("set_source_ip", a.set_source_ip->v6));
  if (a.set_dest_ip) CORCH_TRY(requireMatchIp("set_dest_ip", a.set_dest_ip->v6));
  if (a.dec_ttl) CORCH_TRY(requireMatchIp("dec_ttl", std::nullopt));
  if (a.set_source_port && !l4) {
    return invalid("set_source_port needs protocol 6 (TCP), 17 (UDP) or 132 (SCTP) in the match");
  }
  if (a.set_dest_port && !l4) {
    return invalid("set_dest_port needs protocol 6 (TCP), 17 (UDP) or 132 (SCTP) in the match");
  }
  if (!m.ether_type && need) m.ether_type = need;
  // A zero-length prefix matches every address: OpenFlow has no such field, only its ether_type.
  if (m.source_ip && m.source_ip->length == 0) m.source_ip.reset();
  if (m.dest_ip && m.dest_ip->length == 0) m.dest_ip.reset();
  return rule;
}

}  // namespace corch::drivers::ovs::openflow
