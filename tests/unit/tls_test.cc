// HTTPS of the northbound API (DESIGN section 5, "Security"): the self-signed certificate corchd
// generates (security/certificate.h), and a real REST server serving HTTPS with it on a free
// port, asked by curl and openssl s_client: TLS 1.2 and 1.3 accepted, TLS 1.1 refused, the
// certificate verified by its file and its host names.
#define BOOST_TEST_MODULE tls
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <cpprest/http_client.h>
#include <boost/asio/ssl/context.hpp>

#include "corch/log.h"
#include "rest/fake_graph_service.h"
#include "rest/server.h"
#include "security/certificate.h"
#include "util/files.h"
#include "util/http_answer.h"

namespace {

namespace fs = std::filesystem;
using corch::security::certificateFingerprint;
using corch::security::CertificateOrigin;
using corch::security::ensureCertificate;
using corch::test::readFile;
using corch::test::TempDir;

struct Quiet {
  Quiet() { corch::log::setLevel(corch::log::Level::Error); }
};
BOOST_TEST_GLOBAL_FIXTURE(Quiet);

struct Run {
  int status = -1;
  std::string output;
};

// A shell command's exit status and output (stdout and stderr).
Run run(const std::string& command) {
  Run r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

mode_t modeOf(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

// A REST server with HTTPS on a free port of 127.0.0.1, with a certificate generated for it.
struct HttpsServer {
  HttpsServer() {
    auto made = ensureCertificate(cert.string(), key.string(), {"127.0.0.1"});
    BOOST_REQUIRE(made.ok());
    corch::rest::ServerOptions options;
    options.port = 0;
    options.tls = corch::rest::TlsOptions{cert.string(), key.string()};
    server = std::make_unique<corch::rest::Server>(options, service);
    auto started = server->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.error().message());
    BOOST_REQUIRE(server->url().rfind("https://127.0.0.1:", 0) == 0);
  }

  // curl's HTTP status for GET /graphs with `flags` (0 when the connection failed).
  Run curl(std::string flags, const std::string& host = "127.0.0.1") {
    std::string url = "https://" + host + ":" + std::to_string(server->port()) + "/graphs";
    if (host != "127.0.0.1") {
      flags += " --resolve " + host + ":" + std::to_string(server->port()) + ":127.0.0.1";
    }
    return run("curl -sS -o /dev/null -w '%{http_code}' --max-time 10 " + flags + " " + url);
  }

  TempDir dir{"tls"};
  fs::path cert = dir.path() / "tls" / "cert.pem";
  fs::path key = dir.path() / "tls" / "key.pem";
  corch::rest::testing::FakeGraphService service;
  std::unique_ptr<corch::rest::Server> server;
};

}  // namespace

BOOST_AUTO_TEST_CASE(certificate_generated_once_then_reused) {
  TempDir dir{"tls"};
  const fs::path cert = dir.path() / "state" / "tls" / "cert.pem";
  const fs::path key = dir.path() / "state" / "tls" / "key.pem";
  auto first = ensureCertificate(cert.string(), key.string(), {"node1.example", "10.1.2.3"});
  BOOST_REQUIRE(first.ok());
  BOOST_TEST((*first == CertificateOrigin::Generated));
  BOOST_TEST(modeOf(key) == 0600u);
  BOOST_TEST(modeOf(cert) == 0644u);
  BOOST_TEST(modeOf(key.parent_path()) == 0700u);
  const std::string cert_text = readFile(cert), key_text = readFile(key);
  BOOST_TEST(contains(cert_text, "-----BEGIN CERTIFICATE-----"));
  BOOST_TEST(contains(key_text, "PRIVATE KEY-----"));

  // What openssl reads in it: P-256, the names, the same fingerprint as ours.
  auto text = run("openssl x509 -noout -text -in " + cert.string());
  BOOST_TEST(text.status == 0);
  BOOST_TEST(contains(text.output, "prime256v1"), text.output);
  BOOST_TEST(contains(text.output, "DNS:node1.example"), text.output);
  BOOST_TEST(contains(text.output, "IP Address:10.1.2.3"), text.output);
  BOOST_TEST(contains(text.output, "IP Address:127.0.0.1"), text.output);
  BOOST_TEST(contains(text.output, "DNS:localhost"), text.output);
  auto fingerprint = certificateFingerprint(cert.string());
  BOOST_REQUIRE(fingerprint.ok());
  BOOST_TEST(fingerprint->size() == 95u);  // 32 bytes, "AB:" each, the last without ':'
  auto theirs = run("openssl x509 -noout -fingerprint -sha256 -in " + cert.string());
  BOOST_TEST(contains(theirs.output, "=" + *fingerprint), theirs.output << " vs " << *fingerprint);
  BOOST_TEST(run("openssl pkey -noout -in " + key.string()).status == 0);

  // The second start finds them and changes nothing.
  auto second = ensureCertificate(cert.string(), key.string(), {"node1.example"});
  BOOST_REQUIRE(second.ok());
  BOOST_TEST((*second == CertificateOrigin::Existing));
  BOOST_TEST(readFile(cert) == cert_text);
  BOOST_TEST(readFile(key) == key_text);

  // Half a pair is refused, naming the missing file; nothing is overwritten.
  fs::remove(cert);
  auto half = ensureCertificate(cert.string(), key.string(), {});
  BOOST_REQUIRE(!half.ok());
  BOOST_TEST(contains(half.error().message(), cert.string()), half.error().message());
  BOOST_TEST(readFile(key) == key_text);
  BOOST_TEST(!certificateFingerprint(cert.string()).ok());
}

BOOST_FIXTURE_TEST_CASE(https_with_tls_1_2_and_1_3_only, HttpsServer) {
  const std::string cacert = "--cacert " + cert.string();
  auto plain = curl(cacert);
  BOOST_TEST(plain.output == "200", plain.output);
  BOOST_TEST(curl(cacert + " --tlsv1.2 --tls-max 1.2").output == "200");
  BOOST_TEST(curl(cacert + " --tlsv1.3 --tls-max 1.3").output == "200");
  BOOST_TEST(curl(cacert, "localhost").output == "200");

  // TLS 1.1 and 1.0: refused by the server (the client allows them at security level 0).
  for (const std::string version : {"-tls1_1", "-tls1"}) {
    BOOST_TEST_CONTEXT(version) {
      auto old =
          run("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(server->port()) + " " +
              version + " -cipher 'DEFAULT:@SECLEVEL=0'");
      BOOST_TEST(old.status != 0, old.output);
      BOOST_TEST(contains(old.output, "alert protocol version"), old.output);
    }
  }
  auto v12 = run("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(server->port()) +
                 " -tls1_2 -CAfile " + cert.string());
  BOOST_TEST(contains(v12.output, "Verify return code: 0 (ok)"), v12.output);
  BOOST_TEST(contains(v12.output, "ECDHE"), v12.output);  // forward secrecy

  // Not trusted without its certificate, nor for a name it does not carry; nor plain HTTP.
  auto untrusted = curl("");
  BOOST_TEST(untrusted.status == 60, untrusted.output);  // CURLE_PEER_FAILED_VERIFICATION
  auto wrong_name = curl(cacert, "corch.invalid");
  BOOST_TEST(wrong_name.status == 60, wrong_name.output);
  BOOST_TEST(contains(wrong_name.output, "corch.invalid"), wrong_name.output);
  auto http = run("curl -sS -o /dev/null -w '%{http_code}' --max-time 10 http://127.0.0.1:" +
                  std::to_string(server->port()) + "/graphs");
  BOOST_TEST(http.output != "200", http.output);
}

BOOST_FIXTURE_TEST_CASE(cpprest_client_trusts_it_by_file, HttpsServer) {
  web::http::client::http_client_config config;
  config.set_timeout(std::chrono::seconds(10));
  const std::string file = cert.string();
  config.set_ssl_context_callback(
      [file](boost::asio::ssl::context& ctx) { ctx.load_verify_file(file); });
  web::http::client::http_client client(web::uri(server->url()), config);
  auto answer = corch::test::toAnswer(client.request(web::http::methods::GET, "/graphs").get());
  BOOST_TEST(answer.status == 200);
  BOOST_TEST(answer.body == R"({"graphs":[]})");
}

BOOST_AUTO_TEST_CASE(wrong_files_stop_the_start) {
  TempDir dir{"tls"};
  corch::rest::testing::FakeGraphService service;
  corch::rest::ServerOptions options;
  options.port = 0;
  const std::string cert = (dir.path() / "cert.pem").string();
  const std::string key = (dir.path() / "key.pem").string();
  options.tls = corch::rest::TlsOptions{cert, key};
  {
    corch::rest::Server server(options, service);
    auto started = server.start();
    BOOST_REQUIRE(!started.ok());
    BOOST_TEST(contains(started.error().message(), cert), started.error().message());
  }
  // A certificate with another pair's key.
  BOOST_REQUIRE(ensureCertificate(cert, key, {}).ok());
  const std::string other_cert = (dir.path() / "o-cert.pem").string();
  const std::string other_key = (dir.path() / "o-key.pem").string();
  BOOST_REQUIRE(ensureCertificate(other_cert, other_key, {}).ok());
  options.tls = corch::rest::TlsOptions{cert, other_key};
  corch::rest::Server server(options, service);
  auto started = server.start();
  BOOST_REQUIRE(!started.ok());
  BOOST_TEST(contains(started.error().message(), "mismatch"), started.error().message());
}
