// An HTTP answer as the REST tests read it (cpprest client side): status, headers, body, and the
// body as JSON (a test fails at once if it is not JSON).
#pragma once

#include <cpprest/http_client.h>
#include <rapidjson/document.h>
#include <boost/test/unit_test.hpp>

#include <string>

namespace corch::test {

struct Answer {
  int status = 0;
  std::string reason;
  std::string content_type;
  std::string body;
  web::http::http_headers headers;

  rapidjson::Document json() const {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    BOOST_REQUIRE_MESSAGE(!doc.HasParseError(), "not JSON: " << body);
    return doc;
  }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

inline Answer toAnswer(web::http::http_response response) {
  Answer a;
  a.status = response.status_code();
  a.reason = response.reason_phrase();
  a.headers = response.headers();
  a.content_type = response.headers().content_type();
  a.body = response.extract_utf8string(true).get();
  return a;
}

}  // namespace corch::test
