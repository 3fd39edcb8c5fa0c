// What the SF-FG and NF-FG readers share to turn a client's JSON document into a Graph: parsing
// the text, building the errors, and reading typed values (numbers in range, addresses,
// references, the typed object of a SAP) with an error per field that names its JSON pointer.
//
// A reader runs parseJson(), its JsonSchema's check() (types and required fields are then
// guaranteed: the read functions below rely on it), reads the graph with a DocumentReader while
// recording a GraphSource, and runs checkGraph() (graph_check.h).
#pragma once

#include <rapidjson/document.h>

#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"
#include "corch/flow.h"
#include "graph/graph_check.h"

namespace corch::graph {

// Parses a client's document. Malformed (400) when the text is not JSON (or not UTF-8), with the
// line and column; InvalidArgument when it is nested deeper than max_depth (a hostile document
// must not exhaust the stack of what walks it recursively), its message starting with `what`.
// Iterative: safe on any input.
Result<rapidjson::Document> parseJson(std::string_view json, size_t max_depth,
                                      std::string_view what);

// An InvalidArgument error carrying every field error, its message "<what>: <pointer>: <message>;
// ...".
Error invalidDocument(std::string_view what, std::vector<FieldError> errors);

// Whether a field error says the field is unknown (JsonSchema::check() found a key that the
// schema does not list): the NF-FG API tells those apart.
bool isUnknownField(const FieldError& error);

// Reads the values of a document that its schema has checked, collecting an error for every value
// that cannot be read. The value types the schema guarantees are not checked again.
class DocumentReader {
 public:
  explicit DocumentReader(const Dialect& dialect) : dialect_(dialect) {}

  std::vector<FieldError>& errors() { return errors_; }
  size_t errorCount() const { return errors_.size(); }
  void fail(std::string pointer, std::string message);

  // An id as text: a string, or a non-negative integer as its decimal text (1 is "1", not "0x1").
  static std::string idText(const rapidjson::Value& id);

  // object[key] as a number no larger than max: a decimal or 0x-hex string, or a non-negative
  // integer. nullopt if absent or wrong (the error then names pointer/key).
  std::optional<uint64_t> number(const rapidjson::Value& object, std::string_view key,
                                 const std::string& pointer, uint64_t max);
  template <class T>
  void read(const rapidjson::Value& object, std::string_view key, const std::string& pointer,
            std::optional<T>& out, uint64_t max = std::numeric_limits<T>::max()) {
    if (auto value = number(object, key, pointer, max)) out = static_cast<T>(*value);
  }
  void read(const rapidjson::Value& object, std::string_view key, const std::string& pointer,
            std::optional<MacAddr>& out);
  // An address or a CIDR prefix, its host bits zero.
  void read(const rapidjson::Value& object, std::string_view key, const std::string& pointer,
            std::optional<IpPrefix>& out);
  void read(const rapidjson::Value& object, std::string_view key, const std::string& pointer,
            std::optional<IpAddr>& out);
  // An interface's IPv4 address and prefix length ("192.168.4.1/24", a bare address is a /32):
  // host bits are expected, unlike in a match.
  void readInterfaceAddress(const rapidjson::Value& object, std::string_view key,
                            const std::string& pointer, std::optional<IpPrefix>& out);

  // A reference's syntax in the reader's dialect; whether it resolves is checkGraph()'s part.
  std::optional<PortRef> reference(const rapidjson::Value& text, const std::string& pointer);

  // The object a SAP carries for its type (sap[type]), of the document's SAP types: an error for
  // each object of another type that the SAP also carries, and for a missing one (nullptr).
  // Reads the fields of a SAP's typed object `sub` (at pointer `at`) into `sap`, whose type is
  // set: interface, vlan, gre, host-stack (configuration "static" in any case, else dhcp) and
  // internal (its group under the dialect's name for "group").
  void readSapObject(const rapidjson::Value& sub, const std::string& at, Sap& sap);
  const rapidjson::Value* typedObject(const rapidjson::Value& sap, const std::string& pointer,
                                      std::string_view type,
                                      std::span<const std::string_view> types);

 private:
  const Dialect& dialect_;
  std::vector<FieldError> errors_;
};

}  // namespace corch::graph
