// An OpenFlow 1.3 encoder and decoder for what corch needs (OpenFlow Switch Specification 1.3.5):
// HELLO, ECHO, ERROR, BARRIER, FLOW_MOD (add, delete, delete_strict) with OXM matches and
// apply-actions, and MULTIPART flow statistics. Rules are corch::TsRule (flow.h): every rule goes
// in table 0 with its cookie and priority, its match as OXM fields in prerequisite order, and its
// modifications and outputs as one apply-actions instruction.
//
// Pure functions, no I/O; a benchmark or a fake switch may use them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "corch/flow.h"

namespace corch::drivers::ovs::openflow {

inline constexpr uint8_t kVersion = 0x04;  // OpenFlow 1.3
inline constexpr size_t kHeaderSize = 8;
inline constexpr uint8_t kTableAll = 0xff;

enum class MsgType : uint8_t {
  Hello = 0,
  Error = 1,
  EchoRequest = 2,
  EchoReply = 3,
  Experimenter = 4,
  FeaturesRequest = 5,
  FeaturesReply = 6,
  PacketIn = 10,
  FlowRemoved = 11,
  PortStatus = 12,
  FlowMod = 14,
  MultipartRequest = 18,
  MultipartReply = 19,
  BarrierRequest = 20,
  BarrierReply = 21,
};

enum class FlowModCommand : uint8_t {
  Add = 0,
  Modify = 1,
  ModifyStrict = 2,
  Delete = 3,
  DeleteStrict = 4,
};

struct Header {
  uint8_t version = kVersion;
  uint8_t type = 0;
  uint16_t length = 0;
  uint32_t xid = 0;
};

// The header at the start of bytes (at least kHeaderSize of them), or nullopt.
std::optional<Header> parseHeader(std::string_view bytes);

// Splits a byte stream into whole messages (by the length in each header).
class MessageFramer {
 public:
  // Appends bytes and calls on_message for each complete message. Returns false on a header
  // whose length is smaller than a header (the stream cannot be resynchronised).
  template <class F>
  bool feed(std::string_view bytes, F&& on_message) {
    buf_.append(bytes);
    size_t pos = 0;
    while (buf_.size() - pos >= kHeaderSize) {
      auto header = parseHeader(std::string_view(buf_).substr(pos));
      if (!header || header->length < kHeaderSize) return false;
      if (buf_.size() - pos < header->length) break;
      on_message(std::string_view(buf_).substr(pos, header->length));
      pos += header->length;
    }
    buf_.erase(0, pos);
    return true;
  }

 private:
  std::string buf_;
};

// --- Encoding ---

// HELLO with a version bitmap offering OpenFlow 1.3 only.
std::string encodeHello(uint32_t xid);
std::string encodeEchoRequest(uint32_t xid, std::string_view payload = {});
std::string encodeEchoReply(uint32_t xid, std::string_view payload);
std::string encodeBarrierRequest(uint32_t xid);
// MULTIPART_REQUEST for the statistics of every flow of every table.
std::string encodeFlowStatsRequest(uint32_t xid);

// The FLOW_MOD that adds (Add) or removes exactly (DeleteStrict) a rule in table 0. The rule must
// have passed normalizeRule(): the encoder relies on its prerequisites being explicit.
std::string encodeFlowMod(const TsRule& rule, FlowModCommand command, uint32_t xid);
// A FLOW_MOD deleting every flow of every table whose cookie & mask == cookie & mask (mask 0:
// every flow).
std::string encodeDeleteByCookie(uint64_t cookie, uint64_t mask, uint32_t xid);

// What identifies a flow in a table, as OpenFlow keys flows (an ADD of the same key replaces the
// flow, a DELETE_STRICT of it removes it): the priority and the match, as bytes. The rule must
// have passed normalizeRule(), so that one match has one encoding.
std::string flowKey(const TsRule& rule);

// Checks that a rule can be expressed in OpenFlow 1.3 as Open vSwitch accepts it, and returns it
// with its prerequisites made explicit: ether_type 0x0800 / 0x86dd inferred from IP addresses or
// from protocol 1 / 58, 0x0806 from arp_opcode; an address prefix of length 0 (any address) is
// dropped, its ether_type kept. Errors name the field by its SF-FG name: InvalidArgument for
// values that contradict each other or are out of range ("source_port needs protocol 6 (TCP),
// 17 (UDP) or 132 (SCTP)"), Unsupported for what OpenFlow or Open vSwitch cannot match or do.
Result<TsRule> normalizeRule(const TsRule& rule);

// --- Decoding ---

struct ErrorReply {
  uint16_t type = 0;
  uint16_t code = 0;
};
std::optional<ErrorReply> parseError(std::string_view msg);
// An error type and code in words: "bad action: bad output port (OFPET_BAD_ACTION,
// OFPBAC_BAD_OUT_PORT)".
std::string describeError(uint16_t type, uint16_t code);

struct FlowMod {
  FlowModCommand command = FlowModCommand::Add;
  uint8_t table_id = 0;
  uint64_t cookie = 0;
  uint64_t cookie_mask = 0;
  uint16_t idle_timeout = 0;
  uint16_t hard_timeout = 0;
  uint16_t flags = 0;
  uint32_t buffer_id = 0;
  uint32_t out_port = 0;
  uint32_t out_group = 0;
  TsRule rule;  // cookie, priority, match, modifications and outputs
};
// Decodes a FLOW_MOD whose match and actions a TsRule can hold; Unsupported otherwise.
Result<FlowMod> parseFlowMod(std::string_view msg);

struct MultipartReply {
  uint16_t type = 0;
  uint16_t flags = 0;
  std::string_view body;  // points into the message
  bool more() const { return flags & 1; }
};
std::optional<MultipartReply> parseMultipartReply(std::string_view msg);

struct FlowStats {
  uint8_t table_id = 0;
  uint64_t packet_count = 0;
  uint64_t byte_count = 0;
  TsRule rule;
};
// Decodes the body of a flow statistics reply. A flow that a TsRule cannot hold (a field or an
// action corch never installs) is not returned; it is described in `skipped` instead. Malformed
// bytes are an error.
Result<std::vector<FlowStats>> parseFlowStats(std::string_view body,
                                              std::vector<std::string>* skipped);
// A flow statistics reply holding these flows (for fake switches and tests).
std::string encodeFlowStatsReply(uint32_t xid, const std::vector<FlowStats>& flows,
                                 bool more = false);

// A one-line human-readable rendering of any message this codec knows, field by field, in
// OpenFlow's own names ("FLOW_MOD xid=7 cmd=add table=0 cookie=0x1/0x0 priority=10 ...
// match(in_port=1,eth_type=0x0800) apply_actions(dec_nw_ttl,output:2)"): golden files, logs.
std::string describe(std::string_view msg);

}  // namespace corch::drivers::ovs::openflow
