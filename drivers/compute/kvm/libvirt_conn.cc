// The kvm driver's libvirt connection and error translation (libvirt_conn.h).
#include "libvirt_conn.h"

#include <libvirt/virterror.h>

#include <cstdlib>

#include "corch/log.h"

namespace corch::drivers::kvm {
namespace {

log::Logger lg("kvm");

// libvirt prints every error to stderr unless told otherwise; ours are returned, not printed.
void silence(void*, virErrorPtr) {}

void initOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, silence);
  });
}

ErrorCode codeFor(int vir_code) {
  switch (vir_code) {
    case VIR_ERR_NO_DOMAIN:
      return ErrorCode::NotFound;
    case VIR_ERR_OPERATION_INVALID:
      return ErrorCode::Conflict;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_RPC:
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_SYSTEM_ERROR:
      return ErrorCode::Unavailable;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_CONFIG_UNSUPPORTED:
      return ErrorCode::InvalidArgument;
    case VIR_ERR_OPERATION_TIMEOUT:
    case VIR_ERR_AGENT_UNRESPONSIVE:
      return ErrorCode::Timeout;
    case VIR_ERR_OPERATION_UNSUPPORTED:
    case VIR_ERR_NO_SUPPORT:
      return ErrorCode::Unsupported;
    default:
      return ErrorCode::Internal;
  }
}

}  // namespace

int lastErrorCode() {
  virErrorPtr err = virGetLastError();
  return err != nullptr ? err->code : VIR_ERR_OK;
}

Error libvirtError(std::string_view what) {
  virErrorPtr err = virGetLastError();
  std::string message =
      std::string(what) +
      ": libvirt: " + (err != nullptr && err->message != nullptr ? err->message : "unknown error");
  return Error(codeFor(err != nullptr ? err->code : VIR_ERR_INTERNAL_ERROR), message);
}

Result<ConnPtr> Connection::get() {
  initOnce();
  std::lock_guard lock(mu_);
  if (conn_ && virConnectIsAlive(conn_.get()) == 1) return conn_;
  if (conn_) CORCH_LOG(lg, Warn) << "the connection to " << uri_ << " dropped; reconnecting";
  conn_.reset();
  virConnectPtr raw = virConnectOpen(uri_.c_str());
  if (raw == nullptr) {
    Error e = libvirtError("cannot connect to libvirt at " + uri_);
    return Error(ErrorCode::Unavailable, e.message());
  }
  conn_ = ConnPtr(raw, [](virConnectPtr c) { virConnectClose(c); });
  return conn_;
}

Result<DomainPtr> lookupDomain(virConnectPtr conn, const std::string& name, std::string_view what) {
  virDomainPtr dom = virDomainLookupByName(conn, name.c_str());
  if (dom == nullptr) return libvirtError(what);
  return DomainPtr(dom);
}

Result<int> domainState(virDomainPtr dom, std::string_view what) {
  int state = 0;
  int reason = 0;
  if (virDomainGetState(dom, &state, &reason, 0) != 0) return libvirtError(what);
  return state;
}

Result<std::string> domainXmlOf(virDomainPtr dom, unsigned flags, std::string_view what) {
  char* xml = virDomainGetXMLDesc(dom, flags);
  if (xml == nullptr) return libvirtError(what);
  std::string out(xml);
  std::free(xml);
  return out;
}

}  // namespace corch::drivers::kvm
