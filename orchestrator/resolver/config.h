// Configuration of an SF against its template's declared parameters (DESIGN section 4): the
// parameter types ("list" of "int"/"string"/any scalar, "bool", "int", "string"), and the merge of
// a template's defaults with the configuration a graph gives one SF.
#pragma once

#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "corch/error.h"
#include "resolver/repository.h"

namespace corch::resolver {

// Escapes one reference token of an RFC 6901 JSON pointer ("a/b" -> "a~1b", "~" -> "~0").
std::string escapePointerToken(const std::string& token);

// The parameter types and list item types a template may declare.
bool isParamType(const std::string& type);
bool isItemType(const std::string& items);

// Why `value` does not fit a parameter declared as `param` (its type and, for a list, its item
// type): one entry per offending place, each with a pointer suffix ("" for the value itself, "/2"
// for its third item) and a message fragment ("must be an int, got a string"). Empty: it fits.
struct TypeMismatch {
  std::string pointer_suffix;
  std::string message;
};
std::vector<TypeMismatch> typeMismatches(const rapidjson::Value& value, const ConfigParam& param);

// The template's defaults overlaid with `sf_config_json` (the SF's "config" object, compact JSON;
// empty means {}), as a compact JSON object with members sorted by name. A parameter without a
// default that the SF does not set is absent. `pointer` is where the SF's config object sits in
// the client's document ("/sffg/SFs/3/config"): a key the template does not declare, or a value
// of the wrong type, is InvalidArgument with one FieldError per offending key or list item below
// that pointer.
Result<std::string> mergeConfig(const Template& tmpl, const std::string& sf_config_json,
                                const std::string& pointer);

}  // namespace corch::resolver
