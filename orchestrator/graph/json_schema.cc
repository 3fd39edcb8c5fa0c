#include "graph/json_schema.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <cstdlib>
#include <unordered_set>

namespace corch::graph {

namespace {

using rapidjson::Value;

[[noreturn]] void schemaBug(std::string_view what) {
  std::fprintf(stderr, "corch: bad built-in JSON schema: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

bool hasType(std::string_view type, const Value& value) {
  if (type == "string") return value.IsString();
  if (type == "integer") return value.IsInt64() || value.IsUint64();
  if (type == "number") return value.IsNumber();
  if (type == "boolean") return value.IsBool();
  if (type == "object") return value.IsObject();
  if (type == "array") return value.IsArray();
  if (type == "null") return value.IsNull();
  schemaBug("unknown type");
}

std::string typeWords(std::string_view type) {
  if (type == "integer" || type == "object" || type == "array") return "an " + std::string(type);
  if (type == "null") return "null";
  return "a " + std::string(type);
}

std::string kindOf(const Value& value) {
  if (value.IsString()) return "a string";
  if (value.IsInt64() || value.IsUint64()) return "an integer";
  if (value.IsNumber()) return "a floating-point number";
  if (value.IsBool()) return "a boolean";
  if (value.IsObject()) return "an object";
  if (value.IsArray()) return "an array";
  return "null";
}

std::string compact(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

// The schema's "type" (a name or a list of names) in words: "a string or an integer".
std::string expectedTypes(const Value& type) {
  if (type.IsString()) return typeWords(stringView(type));
  std::string words;
  for (rapidjson::SizeType i = 0; i < type.Size(); ++i) {
    if (i > 0) words += i + 1 == type.Size() ? " or " : ", ";
    words += typeWords(stringView(type[i]));
  }
  return words;
}

bool matchesType(const Value& type, const Value& value) {
  if (type.IsString()) return hasType(stringView(type), value);
  for (const auto& name : type.GetArray()) {
    if (hasType(stringView(name), value)) return true;
  }
  return false;
}

// The message of a failed minLength or minItems.
std::string atLeast(const Value& min, std::string_view unit) {
  if (min.GetUint64() == 1) return "must not be empty";
  return "must have at least " + std::to_string(min.GetUint64()) + " " + std::string(unit);
}

size_t codePoints(std::string_view text) {
  size_t count = 0;
  for (unsigned char c : text) count += (c & 0xc0) != 0x80;
  return count;
}

}  // namespace

std::string_view stringView(const Value& string) {
  return {string.GetString(), string.GetStringLength()};
}

const Value* findMember(const Value& object, std::string_view key) {
  auto it = object.FindMember(Value(rapidjson::StringRef(key.data(), key.size())));
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string appendPointer(const std::string& base, std::string_view token) {
  std::string pointer = base + "/";
  for (char c : token) {
    if (c == '~') {
      pointer += "~0";
    } else if (c == '/') {
      pointer += "~1";
    } else {
      pointer += c;
    }
  }
  return pointer;
}

std::string appendPointer(const std::string& base, size_t index) {
  return base + "/" + std::to_string(index);
}

std::optional<std::string> findTooDeep(const Value& root, size_t max_depth) {
  struct Pending {
    const Value* value;
    size_t depth;
    std::string pointer;
  };
  std::vector<Pending> stack;
  if (root.IsObject() || root.IsArray()) stack.push_back({&root, 1, ""});
  while (!stack.empty()) {
    Pending top = std::move(stack.back());
    stack.pop_back();
    if (top.depth > max_depth) return top.pointer;
    auto push = [&](const Value& child, std::string pointer) {
      if (child.IsObject() || child.IsArray()) {
        stack.push_back({&child, top.depth + 1, std::move(pointer)});
      }
    };
    if (top.value->IsObject()) {
      for (const auto& m : top.value->GetObject()) {
        push(m.value, appendPointer(top.pointer, stringView(m.name)));
      }
    } else {
      for (rapidjson::SizeType i = 0; i < top.value->Size(); ++i) {
        push((*top.value)[i], appendPointer(top.pointer, i));
      }
    }
  }
  return std::nullopt;
}

bool isValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;  // cut short
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::optional<std::string> findBadString(const Value& root) {
  struct Pending {
    const Value* value;
    std::string pointer;
  };
  std::vector<Pending> stack{{&root, ""}};
  while (!stack.empty()) {
    Pending top = std::move(stack.back());
    stack.pop_back();
    const Value& v = *top.value;
    if (v.IsString()) {
      if (!isValidUtf8(stringView(v))) return top.pointer;
    } else if (v.IsObject()) {
      for (const auto& m : v.GetObject()) {
        if (!isValidUtf8(stringView(m.name))) return top.pointer;
        stack.push_back({&m.value, appendPointer(top.pointer, stringView(m.name))});
      }
    } else if (v.IsArray()) {
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        stack.push_back({&v[i], appendPointer(top.pointer, i)});
      }
    }
  }
  return std::nullopt;
}

JsonSchema::JsonSchema(std::string_view text) {
  schema_.Parse(text.data(), text.size());
  if (schema_.HasParseError() || !schema_.IsObject()) schemaBug("not a JSON object");
  compiled_ = std::make_unique<rapidjson::SchemaDocument>(schema_);
}

const Value& JsonSchema::resolve(const Value& schema) const {
  const Value* current = &schema;
  // A chain of references longer than this is a loop.
  for (int hops = 0; hops < 16; ++hops) {
    const Value* ref = current->IsObject() ? findMember(*current, "$ref") : nullptr;
    if (ref == nullptr) return *current;
    if (!ref->IsString() || ref->GetStringLength() == 0 || ref->GetString()[0] != '#') {
      schemaBug("only local $ref are supported");
    }
    rapidjson::Pointer target(ref->GetString(), ref->GetStringLength());
    current = target.IsValid() ? target.Get(schema_) : nullptr;
    if (current == nullptr) schemaBug(stringView(*ref));
  }
  schemaBug("$ref loop");
}

std::vector<FieldError> JsonSchema::check(const Value& document) const {
  std::vector<FieldError> errors;
  walk(schema_, document, "", errors);
  return errors;
}

void JsonSchema::walk(const Value& schema_ref, const Value& value, const std::string& pointer,
                      std::vector<FieldError>& errors) const {
  const Value& schema = resolve(schema_ref);
  if (const Value* type = findMember(schema, "type"); type && !matchesType(*type, value)) {
    errors.push_back({pointer, "expected " + expectedTypes(*type) + ", got " + kindOf(value)});
    return;  // nothing below makes sense on a value of the wrong type
  }
  if (const Value* allowed = findMember(schema, "enum")) {
    bool found = false;
    std::string list;
    for (const auto& candidate : allowed->GetArray()) {
      found = found || candidate == value;
      list += list.empty() ? "" : ", ";
      list += candidate.IsString() ? std::string(stringView(candidate)) : compact(candidate);
    }
    if (!found) {
      std::string shown =
          value.IsString() ? "'" + std::string(stringView(value)) + "'" : compact(value);
      errors.push_back({pointer, shown + " is not one of: " + list});
      return;
    }
  }
  if (const Value* min = findMember(schema, "minLength"); min && value.IsString()) {
    if (codePoints(stringView(value)) < min->GetUint64()) {
      errors.push_back({pointer, atLeast(*min, "characters")});
    }
  }
  if (const Value* min = findMember(schema, "minimum"); min && value.IsNumber()) {
    bool below = value.IsInt64() ? static_cast<double>(value.GetInt64()) < min->GetDouble()
                                 : !value.IsUint64() && value.GetDouble() < min->GetDouble();
    if (below) errors.push_back({pointer, "must be at least " + compact(*min)});
  }
  if (value.IsObject()) walkObject(schema, value, pointer, errors);
  if (value.IsArray()) {
    if (const Value* min = findMember(schema, "minItems"); min && value.Size() < min->GetUint64()) {
      errors.push_back({pointer, atLeast(*min, "items")});
    }
    if (const Value* items = findMember(schema, "items"); items && items->IsObject()) {
      for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
        walk(*items, value[i], appendPointer(pointer, i), errors);
      }
    }
  }
}

void JsonSchema::walkObject(const Value& schema, const Value& value, const std::string& pointer,
                            std::vector<FieldError>& errors) const {
  const Value* properties = findMember(schema, "properties");
  const Value* additional = findMember(schema, "additionalProperties");
  // An object with no description of its members (a free "config") is not looked into.
  if (properties == nullptr && additional == nullptr) return;
  std::unordered_set<std::string_view> seen;
  for (const auto& m : value.GetObject()) {
    std::string_view name = stringView(m.name);
    std::string field_pointer = appendPointer(pointer, name);
    if (!seen.insert(name).second) {
      errors.push_back({field_pointer, "duplicate field '" + std::string(name) + "'"});
      continue;
    }
    if (const Value* sub = properties ? findMember(*properties, name) : nullptr) {
      walk(*sub, m.value, field_pointer, errors);
    } else if (additional && additional->IsFalse()) {
      errors.push_back({field_pointer, "unknown field '" + std::string(name) + "'"});
    } else if (additional && additional->IsObject()) {
      walk(*additional, m.value, field_pointer, errors);
    }
  }
  if (const Value* required = findMember(schema, "required")) {
    for (const auto& name : required->GetArray()) {
      if (!seen.contains(stringView(name))) {
        errors.push_back({appendPointer(pointer, stringView(name)),
                          "missing required field '" + std::string(stringView(name)) + "'"});
      }
    }
  }
}

std::optional<FieldError> JsonSchema::validate(const Value& document) const {
  rapidjson::SchemaValidator validator(*compiled_);
  if (document.Accept(validator)) return std::nullopt;
  rapidjson::StringBuffer where;
  validator.GetInvalidDocumentPointer().Stringify(where);
  rapidjson::StringBuffer rule;
  validator.GetInvalidSchemaPointer().StringifyUriFragment(rule);
  return FieldError{where.GetString(), "does not satisfy the schema keyword '" +
                                           std::string(validator.GetInvalidSchemaKeyword()) +
                                           "' at " + rule.GetString()};
}

}  // namespace corch::graph
