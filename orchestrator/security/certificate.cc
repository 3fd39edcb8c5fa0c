#include "security/certificate.h"

#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>

#include "security/atomic_file.h"

namespace corch::security {
namespace {

namespace fs = std::filesystem;

constexpr long kValidDays = 825;  // the longest validity CA/Browser Forum rules allowed

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

void freeBio(BIO* bio) { BIO_free_all(bio); }
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, freeBio>>;

// OpenSSL's last error, for a message; clears the queue.
std::string sslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

Error fail(const std::string& step) {
  return Error(ErrorCode::Internal,
               "cannot generate a TLS certificate: " + step + ": " + sslError());
}

bool isIpAddress(const std::string& host) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
  if (!ip) {
    ERR_clear_error();
    return false;
  }
  ASN1_OCTET_STRING_free(ip);
  return true;
}

Result<std::string> pem(const std::function<int(BIO*)>& write, const std::string& what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return fail("PEM of the " + what);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

Result<void> makeFolder(const std::string& file) {
  fs::path folder = fs::path(file).parent_path();
  if (folder.empty() || fs::is_directory(folder)) return Ok();
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) {
    return Error(ErrorCode::Internal,
                 "cannot create folder " + folder.string() + " for " + file + ": " + ec.message());
  }
  ::chmod(folder.c_str(), 0700);
  return Ok();
}

}  // namespace

Result<CertificateOrigin> ensureCertificate(const std::string& cert_file,
                                            const std::string& key_file,
                                            const std::vector<std::string>& hosts) {
  std::error_code ec;
  const bool have_cert = fs::exists(cert_file, ec);
  const bool have_key = fs::exists(key_file, ec);
  if (have_cert && have_key) return CertificateOrigin::Existing;
  if (have_cert || have_key) {
    return Error(ErrorCode::NotFound,
                 "TLS " +
                     std::string(have_cert ? "certificate " + cert_file +
                                                 " exists but its "
                                                 "private key " +
                                                 key_file
                                           : "private key " + key_file +
                                                 " exists but its certificate " + cert_file) +
                     " does not: give both (tls.certificate and tls.private-key), or remove the "
                     "other one to have corchd generate a new self-signed pair");
  }

  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return fail("EC P-256 key");
  CertPtr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return fail("X509_new");
  // A random positive 127-bit serial (RFC 5280 4.1.2.2: at most 20 octets, positive).
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) return fail("serial number");
  serial_bytes[0] &= 0x7f;
  BnPtr serial(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  if (!serial || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return fail("serial number");
  }
  // Valid from an hour ago, so that a client whose clock is slightly behind accepts it.
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValidDays * 24 * 3600)) {
    return fail("validity");
  }
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return fail("public key");

  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& host : hosts) {
    if (!host.empty() && host != "0.0.0.0" && seen.insert(host).second) names.push_back(host);
  }
  for (std::string fixed : {"127.0.0.1", "localhost"}) {
    if (seen.insert(fixed).second) names.push_back(fixed);
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const std::string cn = "corchd " + names.front();
  if (X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("corch"), -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), subject) != 1) {
    return fail("subject");
  }
  std::string san;
  for (const auto& name : names) {
    san += (san.empty() ? "" : ",") + std::string(isIpAddress(name) ? "IP:" : "DNS:") + name;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  // Self-signed, it is its own trust anchor: CA:TRUE as `openssl req -x509` makes it, so that
  // every verifier accepts it as the root of the one-certificate chain it is.
  const std::pair<int, std::string> extensions[] = {
      {NID_subject_alt_name, san},
      {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
  };
  for (const auto& [nid, value] : extensions) {
    ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
      return fail(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
    }
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return fail("signature");

  auto key_pem = pem(
      [&](BIO* bio) {
        return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      "private key");
  if (!key_pem) return std::move(key_pem).error();
  auto cert_pem = pem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()); }, "certificate");
  if (!cert_pem) return std::move(cert_pem).error();
  CORCH_TRY(makeFolder(key_file));
  CORCH_TRY(makeFolder(cert_file));
  // The key first: a crash between the two writes leaves a key alone, which the next start
  // reports rather than pairing it with a certificate of another key.
  CORCH_TRY(writeFileAtomically(key_file, *key_pem, 0600));
  CORCH_TRY(writeFileAtomically(cert_file, *cert_pem, 0644));
  return CertificateOrigin::Generated;
}

Result<std::string> certificateFingerprint(const std::string& cert_file) {
  BioPtr bio(BIO_new_file(cert_file.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return errnoError("cannot read certificate " + cert_file, errno ? errno : ENOENT);
  }
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return Error(ErrorCode::InvalidArgument,
                 "no PEM certificate in " + cert_file + ": " + sslError());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert.get(), EVP_sha256(), digest, &length) != 1) {
    return Error(ErrorCode::Internal, "cannot compute the fingerprint of " + cert_file);
  }
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    if (i) out += ':';
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace corch::security
