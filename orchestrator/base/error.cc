#include "corch/error.h"

#include <cerrno>
#include <cstring>

namespace corch {

int httpStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::Malformed:
      return 400;
    case ErrorCode::InvalidArgument:
      return 422;
    case ErrorCode::Unsupported:
      return 422;
    case ErrorCode::NotFound:
      return 404;
    case ErrorCode::AlreadyExists:
      return 409;
    case ErrorCode::Conflict:
      return 409;
    case ErrorCode::ResourceExhausted:
      return 409;
    case ErrorCode::TooLarge:
      return 413;
    case ErrorCode::Unauthenticated:
      return 401;
    case ErrorCode::PermissionDenied:
      return 403;
    case ErrorCode::Unavailable:
      return 503;
    case ErrorCode::Timeout:
      return 504;
    case ErrorCode::Internal:
      return 500;
  }
  return 500;
}

std::string_view codeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::Malformed:
      return "malformed";
    case ErrorCode::InvalidArgument:
      return "invalid-argument";
    case ErrorCode::Unsupported:
      return "unsupported";
    case ErrorCode::NotFound:
      return "not-found";
    case ErrorCode::AlreadyExists:
      return "already-exists";
    case ErrorCode::Conflict:
      return "conflict";
    case ErrorCode::ResourceExhausted:
      return "resource-exhausted";
    case ErrorCode::TooLarge:
      return "too-large";
    case ErrorCode::Unauthenticated:
      return "unauthenticated";
    case ErrorCode::PermissionDenied:
      return "permission-denied";
    case ErrorCode::Unavailable:
      return "unavailable";
    case ErrorCode::Timeout:
      return "timeout";
    case ErrorCode::Internal:
      return "internal";
  }
  return "internal";
}

Error Error::field(ErrorCode code, std::string pointer, std::string message) {
  std::string text = pointer.empty() ? message : pointer + ": " + message;
  return Error(code, std::move(text), {FieldError{std::move(pointer), std::move(message)}});
}

Error Error::context(std::string_view what) const {
  std::string text(what);
  text += ": ";
  text += message_;
  return Error(code_, std::move(text), fields_);
}

Error errnoError(std::string_view what, int err) {
  ErrorCode code = ErrorCode::Internal;
  switch (err) {
    case ENOENT:
    case ENODEV:
    case ESRCH:
      code = ErrorCode::NotFound;
      break;
    case EEXIST:
      code = ErrorCode::AlreadyExists;
      break;
    case EACCES:
    case EPERM:
      code = ErrorCode::PermissionDenied;
      break;
    case EBUSY:
      code = ErrorCode::Conflict;
      break;
    case ETIMEDOUT:
      code = ErrorCode::Timeout;
      break;
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case EAGAIN:
      code = ErrorCode::Unavailable;
      break;
    case EINVAL:
    case ERANGE:
      code = ErrorCode::InvalidArgument;
      break;
    case ENOSPC:
    case ENOMEM:
      code = ErrorCode::ResourceExhausted;
      break;
    default:
      break;
  }
  std::string text(what);
  text += ": ";
  text += std::strerror(err);
  return Error(code, std::move(text));
}

}  // namespace corch
