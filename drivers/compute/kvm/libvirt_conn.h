// The kvm driver's hold on libvirt: RAII owners of libvirt objects, libvirt errors turned into
// corch::Error, and one persistent connection shared by all calls and reopened when it drops.
//
// Threads: libvirt connections are thread-safe (libvirt serialises the RPC calls of one
// connection, and its last error is per thread). Connection::get() hands out a shared reference,
// so a reconnect never closes a connection under a call still using it.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "corch/error.h"

namespace corch::drivers::kvm {

struct DomainFree {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using DomainPtr = std::unique_ptr<virDomain, DomainFree>;
using ConnPtr = std::shared_ptr<virConnect>;

// libvirt's last error on this thread as an Error: "<what>: libvirt: <message>", with a code
// chosen from libvirt's (no such domain -> NotFound, not running -> Conflict, ...).
Error libvirtError(std::string_view what);
// libvirt's last error code on this thread (VIR_ERR_OK when none).
int lastErrorCode();

class Connection {
 public:
  explicit Connection(std::string uri) : uri_(std::move(uri)) {}
  const std::string& uri() const { return uri_; }
  // The open connection, opened or reopened (when libvirtd dropped it) as needed; Unavailable
  // when libvirtd cannot be reached.
  Result<ConnPtr> get();

 private:
  const std::string uri_;
  std::mutex mu_;
  ConnPtr conn_;
};

// The domain called `name`; NotFound when there is none.
Result<DomainPtr> lookupDomain(virConnectPtr conn, const std::string& name, std::string_view what);
// The domain's state (VIR_DOMAIN_RUNNING, VIR_DOMAIN_SHUTOFF, ...).
Result<int> domainState(virDomainPtr dom, std::string_view what);
// The domain's XML (flags: VIR_DOMAIN_XML_INACTIVE for the persistent definition, 0 for live).
Result<std::string> domainXmlOf(virDomainPtr dom, unsigned flags, std::string_view what);

}  // namespace corch::drivers::kvm
