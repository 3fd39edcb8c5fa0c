// libFuzzer target: the OpenFlow 1.3 decoder of the ovs driver (drivers/vswitch/ovs/openflow.h),
// what ovs-vswitchd sends on a bridge's management socket. The input is the byte stream:
// MessageFramer cuts it into messages, and each goes through every decoder (header, error,
// FLOW_MOD, multipart flow statistics, the text rendering). What decodes is encoded again and
// must decode to the same thing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/vswitch/ovs/openflow.h"
#include "fuzz_check.h"

namespace of = corch::drivers::ovs::openflow;

namespace {

void checkFlowMod(const of::FlowMod& f) {
  // Re-encoding needs a rule that passed normalizeRule(), as the driver's rules do.
  auto normal = of::normalizeRule(f.rule);
  if (!normal.ok()) return;
  if (f.command != of::FlowModCommand::Add && f.command != of::FlowModCommand::DeleteStrict) {
    return;
  }
  std::string again = of::encodeFlowMod(*normal, f.command, 7);
  auto back = of::parseFlowMod(again);
  if (!back.ok()) std::fprintf(stderr, "%s\n", back.error().message().c_str());
  FUZZ_CHECK(back.ok(), "encodeFlowMod() of a decoded rule does not decode");
  // A DELETE_STRICT carries what selects the rule (priority, match), not its cookie nor actions.
  corch::TsRule want = *normal;
  if (f.command == of::FlowModCommand::DeleteStrict) {
    want = corch::TsRule{};
    want.priority = normal->priority;
    want.in_port = normal->in_port;
    want.fields = normal->fields;
    back->rule.cookie = 0;
    back->rule.mods = {};
    back->rule.outputs.clear();
    back->rule.output_vlans.clear();
  }
  if (!(back->rule == want)) {
    std::fprintf(stderr, "decoded:    %s\nre-encoded: %s\n", corch::toString(want).c_str(),
                 corch::toString(back->rule).c_str());
  }
  FUZZ_CHECK(back->rule == want, "parseFlowMod(encodeFlowMod(r)) != r");
  (void)of::describe(again);
}

void checkFlowStats(const of::MultipartReply& reply) {
  std::vector<std::string> skipped;
  auto flows = of::parseFlowStats(reply.body, &skipped);
  if (!flows.ok()) return;
  std::string again = of::encodeFlowStatsReply(9, *flows, reply.more());
  auto back_reply = of::parseMultipartReply(again);
  FUZZ_CHECK(back_reply.has_value(), "encodeFlowStatsReply() does not decode as a multipart reply");
  std::vector<std::string> back_skipped;
  auto back = of::parseFlowStats(back_reply->body, &back_skipped);
  FUZZ_CHECK(back.ok(), "encodeFlowStatsReply() of decoded flows does not decode");
  FUZZ_CHECK(back_skipped.empty(), "re-encoded flows are skipped");
  FUZZ_CHECK(back->size() == flows->size(), "re-encoded flow statistics lost flows");
  for (size_t i = 0; i < flows->size(); ++i) {
    FUZZ_CHECK((*back)[i].rule == (*flows)[i].rule, "re-encoded flow statistics changed a rule");
    FUZZ_CHECK((*back)[i].packet_count == (*flows)[i].packet_count &&
                   (*back)[i].byte_count == (*flows)[i].byte_count &&
                   (*back)[i].table_id == (*flows)[i].table_id,
               "re-encoded flow statistics changed a counter");
  }
}

void onMessage(std::string_view msg) {
  auto h = of::parseHeader(msg);
  FUZZ_CHECK(h.has_value(), "the framer handed out a message without a header");
  FUZZ_CHECK(h->length == msg.size(), "the framer handed out a message of another length");
  (void)of::describe(msg);
  if (auto e = of::parseError(msg)) (void)of::describeError(e->type, e->code);
  auto f = of::parseFlowMod(msg);
  if (f.ok()) checkFlowMod(*f);
  if (auto reply = of::parseMultipartReply(msg)) {
    if (reply->type == 1) checkFlowStats(*reply);  // OFPMP_FLOW
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = corch::fuzz::asText(data, size);
  // The header decoders on the raw bytes, framed or not.
  if (auto e = of::parseError(bytes)) (void)of::describeError(e->type, e->code);
  (void)of::describe(bytes);

  std::vector<std::string> whole_msgs;
  of::MessageFramer whole;
  bool whole_ok = whole.feed(bytes, [&](std::string_view m) { whole_msgs.emplace_back(m); });

  std::vector<std::string> piece_msgs;
  of::MessageFramer pieces;
  bool pieces_ok = true;
  size_t step = 1 + size % 17;
  for (size_t at = 0; at < size && pieces_ok; at += step) {
    pieces_ok = pieces.feed(bytes.substr(at, step),
                            [&](std::string_view m) { piece_msgs.emplace_back(m); });
  }
  FUZZ_CHECK(whole_ok == pieces_ok, "MessageFramer's verdict depends on how the bytes arrive");
  FUZZ_CHECK(whole_msgs == piece_msgs, "MessageFramer's messages depend on how the bytes arrive");
  for (const auto& m : whole_msgs) onMessage(m);
  return 0;
}
