// One error type for the whole of corch.
//
// Every fallible call returns Result<T>: a value or an Error. An Error has a code, a message that
// is a whole sentence saying what was being done and what went wrong ("cannot create namespace
// corch-g1-fw: File exists"), and, for errors in a document sent by a client, the JSON pointers of
// the offending fields. Codes map one-to-one onto HTTP statuses (httpStatus()), so the REST layer
// never guesses. Driver calls return Result and never throw across an interface.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace corch {

enum class ErrorCode {
  Malformed,          // 400: not parseable at all (bad JSON)
  InvalidArgument,    // 422: well-formed but wrong (schema, unknown reference, bad value)
  Unsupported,        // 422: understood, but nothing here can do it (no implementation, field)
  NotFound,           // 404
  AlreadyExists,      // 409
  Conflict,           // 409: another change of the same object is in progress
  ResourceExhausted,  // 409: cores, memory, disk or ids exhausted
  TooLarge,           // 413
  Unauthenticated,    // 401
  PermissionDenied,   // 403
  Unavailable,        // 503: a daemon or driver cannot be reached
  Timeout,            // 504: something we waited on did not answer in time (a start script)
  Internal,           // 500
};

// The HTTP status and a stable lower-case name ("not-found") for a code.
int httpStatus(ErrorCode code);
std::string_view codeName(ErrorCode code);

// One offending field of a client's document: an RFC 6901 JSON pointer and why it is wrong.
struct FieldError {
  std::string pointer;
  std::string message;
  bool operator==(const FieldError&) const = default;
};

class Error {
 public:
  Error(ErrorCode code, std::string message, std::vector<FieldError> fields = {})
      : code_(code), message_(std::move(message)), fields_(std::move(fields)) {}

  // An error about one field of a document; the message is also the field's message.
  static Error field(ErrorCode code, std::string pointer, std::string message);

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<FieldError>& fields() const { return fields_; }
  int httpStatus() const { return corch::httpStatus(code_); }

  // Returns a copy whose message is "what: <message>", to add what the caller was doing.
  Error context(std::string_view what) const;

 private:
  ErrorCode code_;
  std::string message_;
  std::vector<FieldError> fields_;
};

// Builds an error from errno: "<what>: <strerror(err)>", with a code chosen from errno
// (ENOENT -> NotFound, EEXIST -> AlreadyExists, EACCES/EPERM -> PermissionDenied, ...).
Error errnoError(std::string_view what, int err);

// A value or an Error. Deliberately small: ok(), value(), error(), and implicit construction
// from either side.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_{ErrorCode::Internal, ""};
  bool failed_ = false;
};

inline Result<void> Ok() { return {}; }

}  // namespace corch

// Evaluates a Result-returning expression and returns its error from the enclosing function.
#define CORCH_TRY(expr)                                                       \
  do {                                                                        \
    auto corch_try_result_ = (expr);                                          \
    if (!corch_try_result_.ok()) return std::move(corch_try_result_).error(); \
  } while (0)
