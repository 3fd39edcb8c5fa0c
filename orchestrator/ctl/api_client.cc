#include "ctl/api_client.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <rapidjson/document.h>

#include <cpprest/http_client.h>
#include <boost/asio/ssl/context.hpp>

namespace corch::ctl {
namespace {

namespace http = web::http;

std::string text(const rapidjson::Value& object, const char* key) {
  auto it = object.FindMember(key);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// cpprest reports every failed connect as "host unreachable"; a refused connection is the usual
// case (corchd not running) and deserves its own words. Connects once more to learn the errno.
std::string whyUnreachable(const web::uri& uri) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int port = uri.port() > 0 ? uri.port() : (uri.scheme() == "https" ? 443 : 80);
  if (int rc = getaddrinfo(uri.host().c_str(), std::to_string(port).c_str(), &hints, &found)) {
    return gai_strerror(rc);
  }
  std::string why;
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    int err = errno;
    close(fd);
    if (rc == 0) {
      why.clear();  // reachable now: the first failure was something else
      break;
    }
    why = std::strerror(err);
  }
  freeaddrinfo(found);
  return why;
}

}  // namespace

struct ApiClient::Impl {
  explicit Impl(const web::uri& uri, const http::client::http_client_config& config)
      : base(uri), client(uri, config) {}
  web::uri base;
  http::client::http_client client;
};

ApiClient::ApiClient(std::string base_url, std::unique_ptr<Impl> impl)
    : base_url_(std::move(base_url)), impl_(std::move(impl)) {}

ApiClient::~ApiClient() = default;

Result<std::unique_ptr<ApiClient>> ApiClient::create(const std::string& base_url,
                                                     std::chrono::seconds timeout,
                                                     const TlsClientOptions& tls) {
  try {
    web::uri uri(base_url);
    if ((uri.scheme() != "http" && uri.scheme() != "https") || uri.host().empty()) {
      return Error(ErrorCode::InvalidArgument,
                   "invalid URL '" + base_url + "': expected http://HOST[:PORT] or https://...");
    }
    http::client::http_client_config config;
    config.set_timeout(timeout);
    if (uri.scheme() == "https") {
      config.set_validate_certificates(!tls.insecure);
      if (!tls.ca_file.empty() && !tls.insecure) {
        if (::access(tls.ca_file.c_str(), R_OK) != 0) {
          return Error(ErrorCode::InvalidArgument, "cannot read the CA certificate " + tls.ca_file +
                                                       ": " + std::strerror(errno));
        }
        // Added to the system's authorities, which cpprest loads before calling this.
        config.set_ssl_context_callback(
            [file = tls.ca_file](boost::asio::ssl::context& ctx) { ctx.load_verify_file(file); });
      }
    }
    std::string shown = base_url;
    while (!shown.empty() && shown.back() == '/') shown.pop_back();
    return std::unique_ptr<ApiClient>(new ApiClient(shown, std::make_unique<Impl>(uri, config)));
  } catch (const std::exception& e) {
    return Error(ErrorCode::InvalidArgument, "invalid URL '" + base_url + "': " + e.what());
  }
}

Result<Response> ApiClient::call(std::string_view method, const std::string& path,
                                 const std::string* json_body, std::string_view accept) {
  try {
    http::http_request request{http::method(method)};
    request.set_request_uri(web::uri(path));
    if (!token_.empty()) request.headers().add("X-Auth-Token", token_);
    if (!accept.empty()) request.headers().add(http::header_names::accept, std::string(accept));
    if (json_body) request.set_body(*json_body, "application/json");
    http::http_response answer = impl_->client.request(request).get();
    Response response;
    response.status = answer.status_code();
    response.reason = answer.reason_phrase();
    response.content_type = answer.headers().content_type();
    response.body = answer.extract_utf8string(true).get();
    return response;
  } catch (const http::http_exception& e) {
    const std::error_code& code = e.error_code();
    if (code == std::errc::timed_out) {
      return Error(ErrorCode::Timeout, "no answer from " + base_url_ + " (" + std::string(method) +
                                           " " + path + "): timed out");
    }
    std::string why = e.what();
    // A handshake refused for the server's certificate: say what to do about it.
    if (why.find("certificate verify failed") != std::string::npos ||
        why.find("handshake") != std::string::npos) {
      why +=
          " (is corchd's certificate trusted? give it with --cacert FILE or $CORCH_CACERT; "
          "make run's is run/state/tls/cert.pem)";
    }
    if (code == std::errc::host_unreachable) {
      if (std::string probed = whyUnreachable(impl_->base); !probed.empty()) why = probed;
    }
    return Error(ErrorCode::Unavailable, "cannot reach " + base_url_ + ": " + why);
  } catch (const std::exception& e) {
    return Error(ErrorCode::Unavailable, "cannot reach " + base_url_ + ": " + e.what());
  }
}

std::string encodeSegment(std::string_view segment) {
  return web::uri::encode_data_string(std::string(segment));
}

std::string graphPath(std::string_view id, std::string_view suffix) {
  return "/graphs/" + encodeSegment(id) + std::string(suffix);
}

std::string describeError(const Response& response) {
  rapidjson::Document doc;
  doc.Parse(response.body.data(), response.body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("status")) {
    std::string out = std::to_string(response.status) + " " + response.reason;
    std::string body = trimmed(response.body);
    if (!body.empty()) out += "\n" + body;
    return out;
  }
  int status = doc["status"].IsInt() ? doc["status"].GetInt() : response.status;
  std::string title = text(doc, "title");
  std::string out = std::to_string(status) + " " + (title.empty() ? response.reason : title);
  if (std::string detail = text(doc, "detail"); !detail.empty()) out += "\ndetail: " + detail;
  if (std::string type = text(doc, "type"); !type.empty()) out += "\ntype: " + type;
  auto errors = doc.FindMember("errors");
  if (errors != doc.MemberEnd() && errors->value.IsArray()) {
    for (const auto& e : errors->value.GetArray()) {
      if (!e.IsObject()) continue;
      std::string pointer = text(e, "pointer");
      out += "\n" + (pointer.empty() ? std::string("(document)") : pointer) + ": " +
             text(e, "message");
    }
  }
  return out;
}

}  // namespace corch::ctl
