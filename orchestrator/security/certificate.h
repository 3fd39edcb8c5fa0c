// The certificate of corchd's HTTPS listener (DESIGN section 5, "Security"). A node that has none
// gets a self-signed one at its first start, so that `make run` serves HTTPS with no step: an EC
// P-256 key and an X.509 v3 certificate naming the listen host, 127.0.0.1 and localhost in its
// subjectAltName, valid 825 days. Clients trust it by its file (curl --cacert, corchctl
// --cacert) or by its SHA-256 fingerprint, which corchd logs.
#pragma once

#include <string>
#include <vector>

#include "corch/error.h"

namespace corch::security {

// Whether ensureCertificate() found the files or made them.
enum class CertificateOrigin { Existing, Generated };

// Makes a self-signed certificate at `cert_file` and its private key at `key_file` when neither
// exists (their folders are created, 0700 if new; the key is written 0600, the certificate 0644,
// each atomically). Both existing: nothing is done (their content is checked by the listener).
// Only one of them existing is an error naming the other: a key without its certificate (or the
// reverse) is an operator's half-done change, not something to overwrite. `hosts` are the names
// and IP addresses the certificate is for (duplicates dropped).
Result<CertificateOrigin> ensureCertificate(const std::string& cert_file,
                                            const std::string& key_file,
                                            const std::vector<std::string>& hosts);

// The SHA-256 fingerprint of the (first) certificate in a PEM file, as "AB:CD:...:EF" (what
// `openssl x509 -noout -fingerprint -sha256` prints). NotFound, or InvalidArgument if the file
// holds no certificate.
Result<std::string> certificateFingerprint(const std::string& cert_file);

}  // namespace corch::security
