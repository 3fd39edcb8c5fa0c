// A JSON Schema (draft-04) that reports every structural error of a document, each with the JSON
// pointer of the offending field, for the northbound parsers (SF-FG, and the NF-FG later).
//
// RapidJSON 1.1's SchemaValidator stops at the first violation and, for an unknown field, names
// the object rather than the field. So a JsonSchema does two things with the same schema text:
//  - check() walks the document alongside the schema and reports all errors of the keywords that
//    describe structure: type, enum, properties, additionalProperties, required, items, minItems,
//    minLength, minimum, $ref (local "#/..." only). It also rejects an object that names the same
//    field twice, which JSON allows and RapidJSON keeps, but which would make one of the two
//    silently ignored. Other keywords (anyOf, not, ...) are left to validate().
//  - validate() runs RapidJSON's SchemaValidator over the whole schema: the last gate, so that a
//    document accepted by the parser always satisfies the schema shipped in the repository.
// A parser runs check(), then its own semantic checks (which explain what anyOf and the like
// express, in better words), then validate().
//
// Thread-safe after construction: check() and validate() are const and keep no state.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/schema.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corch/error.h"

namespace corch::graph {

class JsonSchema {
 public:
  // Compiles a schema. The text is compiled into corchd, so a schema that is not valid JSON is a
  // bug of the build, and aborts.
  explicit JsonSchema(std::string_view text);
  JsonSchema(const JsonSchema&) = delete;
  JsonSchema& operator=(const JsonSchema&) = delete;

  // Every structural error of a document, in document order; empty if none.
  std::vector<FieldError> check(const rapidjson::Value& document) const;

  // RapidJSON's verdict: the first violation of any keyword, or nullopt.
  std::optional<FieldError> validate(const rapidjson::Value& document) const;

 private:
  const rapidjson::Value& resolve(const rapidjson::Value& schema) const;
  void walk(const rapidjson::Value& schema, const rapidjson::Value& value,
            const std::string& pointer, std::vector<FieldError>& errors) const;
  void walkObject(const rapidjson::Value& schema, const rapidjson::Value& value,
                  const std::string& pointer, std::vector<FieldError>& errors) const;

  rapidjson::Document schema_;
  std::unique_ptr<rapidjson::SchemaDocument> compiled_;
};

// The text of a JSON string value (which may hold NUL bytes).
std::string_view stringView(const rapidjson::Value& string);

// The value of an object's member, or nullptr.
const rapidjson::Value* findMember(const rapidjson::Value& object, std::string_view key);

// base + "/" + token, the token escaped as RFC 6901 says ("~" -> "~0", "/" -> "~1").
std::string appendPointer(const std::string& base, std::string_view token);
std::string appendPointer(const std::string& base, size_t index);

// The pointer of the first array or object nested deeper than max_depth (the root is at depth 1),
// or nullopt. Iterative, so that it is safe on any document: run it before anything recursive
// (a schema validator, a writer) touches a document from a client.
std::optional<std::string> findTooDeep(const rapidjson::Value& root, size_t max_depth);

// Whether text is well-formed UTF-8 (no overlong form, no surrogate, nothing past U+10FFFF).
bool isValidUtf8(std::string_view text);
// The pointer of the first member name or string that is not well-formed UTF-8, or nullopt.
// A parser validating its input's encoding still lets a \u escape of a lone surrogate ("\udd80")
// through as such a string, which no JSON writer can then print. Run after findTooDeep.
std::optional<std::string> findBadString(const rapidjson::Value& root);

}  // namespace corch::graph
