// Properties that the SF-FG and NF-FG targets both check on what the graph codecs return.
#pragma once

#include <rapidjson/document.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "corch/error.h"
#include "fuzz_check.h"
#include "graph/model.h"
#include "graph/nffg_codec.h"
#include "graph/sffg_codec.h"

namespace corch::fuzz {

// A refusal is Malformed (not JSON) or InvalidArgument with at least one field (codec headers).
inline void checkRefusal(const Error& e) {
  FUZZ_CHECK(e.code() == ErrorCode::Malformed || e.code() == ErrorCode::InvalidArgument,
             "a graph parser failed with a code other than Malformed or InvalidArgument");
  FUZZ_CHECK(!e.message().empty(), "a graph parser failed without a message");
  if (e.code() == ErrorCode::InvalidArgument) {
    FUZZ_CHECK(!e.fields().empty(), "an InvalidArgument of a graph parser names no field");
  }
  for (const FieldError& f : e.fields()) {
    FUZZ_CHECK(f.pointer.empty() || f.pointer[0] == '/',
               "a field error's pointer is not a pointer");
    FUZZ_CHECK(!f.message.empty(), "a field error has no message");
  }
}

// Whether the NF-FG can carry a graph whole. nffg_codec.h: printing in the NF-FG drops an SF
// config key that is empty or holds '='. And the NF-FG has no end-point for the internal-port SAPs
// of a graph template's graph (DESIGN section 4), which the SF-FG parser accepts.
inline bool nffgCanCarry(const graph::Graph& g) {
  for (const graph::Sap& sap : g.saps) {
    if (sap.type == graph::SapType::InternalPort || sap.type == graph::SapType::Junction) {
      return false;
    }
  }
  for (const graph::Sf& sf : g.sfs) {
    rapidjson::Document config;
    config.Parse(sf.config_json.c_str(), sf.config_json.size());
    FUZZ_CHECK(!config.HasParseError() && config.IsObject(), "an SF's config is not a JSON object");
    for (const auto& m : config.GetObject()) {
      std::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (key.empty() || key.find('=') != std::string_view::npos) return false;
    }
  }
  return true;
}

// What the NF-FG keeps and the SF-FG has not (nffg_codec.h): cleared for a comparison.
inline graph::Graph withoutNffgOnlyFields(graph::Graph g) {
  g.description.clear();
  g.domain.clear();
  for (auto& r : g.rules) r.description.clear();
  return g;
}

// Every graph a codec returned prints in both formats, and each print reads back as the same
// graph (up to what the other format cannot carry).
inline void checkRoundTrips(const graph::Graph& g) {
  std::string sffg = graph::printSffg(g);
  auto from_sffg = graph::parseSffg(sffg);
  if (!from_sffg.ok()) {
    std::fprintf(stderr, "%s\n%s\n", sffg.c_str(), from_sffg.error().message().c_str());
  }
  FUZZ_CHECK(from_sffg.ok(), "printSffg() of a parsed graph does not parse");
  FUZZ_CHECK(*from_sffg == withoutNffgOnlyFields(g), "parseSffg(printSffg(g)) != g");

  if (!nffgCanCarry(g)) return;
  std::string nffg = graph::printNffg(g);
  auto from_nffg = graph::parseNffg(nffg);
  if (!from_nffg.ok()) {
    std::fprintf(stderr, "%s\n%s\n", nffg.c_str(), from_nffg.error().message().c_str());
  }
  FUZZ_CHECK(from_nffg.ok(), "printNffg() of a parsed graph does not parse");
  if (!(*from_nffg == g)) std::fprintf(stderr, "%s\n", nffg.c_str());
  FUZZ_CHECK(*from_nffg == g, "parseNffg(printNffg(g)) != g");
}

}  // namespace corch::fuzz
