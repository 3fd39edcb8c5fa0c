#include "rest/responses.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace corch::rest {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void writeString(JsonWriter& w, std::string_view text) {
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void writeProblem(JsonWriter& w, const Problem& p) {
  w.StartObject();
  w.Key("type");
  writeString(w, "https://corch.dev/problems/" + p.name);
  w.Key("title");
  writeString(w, reasonPhrase(p.status));
  w.Key("status");
  w.Int(p.status);
  w.Key("detail");
  writeString(w, p.detail);
  if (!p.fields.empty()) {
    w.Key("errors");
    w.StartArray();
    for (const auto& f : p.fields) {
      w.StartObject();
      w.Key("pointer");
      writeString(w, f.pointer);
      w.Key("message");
      writeString(w, f.message);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

void writeStatus(JsonWriter& w, const node::GraphStatus& s) {
  w.StartObject();
  w.Key("state");
  writeString(w, node::toString(s.state));
  w.Key("progress");
  w.Int(s.progress);
  if (s.error) {
    w.Key("error");
    writeProblem(w, Problem::fromError(*s.error));
  }
  if (!s.functions.empty()) {
    w.Key("functions");
    w.StartArray();
    for (const auto& f : s.functions) {
      w.StartObject();
      w.Key("sf");
      writeString(w, f.sf_id);
      w.Key("template");
      writeString(w, f.template_id);
      w.Key("type");
      writeString(w, f.type);
      w.Key("cpus");
      w.StartArray();
      for (unsigned c : f.cpus) w.Uint(c);
      w.EndArray();
      if (!f.placement.empty()) {
        w.Key("placement");
        writeString(w, f.placement);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

void writeNffgStatusMembers(JsonWriter& w, const node::GraphStatus& s) {
  w.Key("status");
  writeString(w, nffgStatusWord(s.state));
  w.Key("percentage_completed");
  w.Int(s.progress);
}

}  // namespace

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

Problem Problem::fromError(const Error& error) {
  return Problem{error.httpStatus(), std::string(codeName(error.code())), error.message(),
                 error.fields()};
}

std::string problemJson(const Problem& problem) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  writeProblem(w, problem);
  return buf.GetString();
}

std::string statusJson(const node::GraphStatus& status) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  writeStatus(w, status);
  return buf.GetString();
}

std::string listJson(const std::vector<node::GraphSummary>& graphs) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("graphs");
  w.StartArray();
  for (const auto& g : graphs) {
    w.StartObject();
    w.Key("id");
    writeString(w, g.id);
    w.Key("name");
    writeString(w, g.name);
    w.Key("state");
    writeString(w, node::toString(g.status.state));
    w.Key("progress");
    w.Int(g.status.progress);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string putJson(const std::string& id, const node::GraphStatus& status,
                    const std::vector<std::string>& changes) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("id");
  writeString(w, id);
  w.Key("status");
  writeStatus(w, status);
  w.Key("changes");
  w.StartArray();
  for (const auto& c : changes) writeString(w, c);
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string_view nffgStatusWord(node::GraphState state) {
  switch (state) {
    case node::GraphState::Deployed:
      return "complete";
    case node::GraphState::Deploying:
    case node::GraphState::Updating:
    case node::GraphState::Deleting:
      return "in_progress";
    case node::GraphState::Failed:
      return "error";
  }
  return "error";
}

std::string nffgStatusJson(const node::GraphStatus& status) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  writeNffgStatusMembers(w, status);
  w.EndObject();
  return buf.GetString();
}

std::string nffgUuidJson(const std::string& id) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("nffg-uuid");
  writeString(w, id);
  w.EndObject();
  return buf.GetString();
}

std::string nffgPutJson(const std::string& id, const node::GraphStatus& status) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("nffg-uuid");
  writeString(w, id);
  writeNffgStatusMembers(w, status);
  w.EndObject();
  return buf.GetString();
}

std::optional<std::string> nffgListJson(const std::vector<NffgEntry>& graphs) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("NF-FG");
  w.StartArray();
  for (const auto& g : graphs) {
    rapidjson::Document doc;
    doc.Parse(g.document.data(), g.document.size());
    if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
    w.StartObject();
    for (const auto& member : doc.GetObject()) {
      if (std::string_view(member.name.GetString(), member.name.GetStringLength()) == "nffg-uuid") {
        continue;  // the id below is the authority
      }
      w.Key(member.name.GetString(), member.name.GetStringLength());
      member.value.Accept(w);
    }
    w.Key("nffg-uuid");
    writeString(w, g.id);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string loginJson(const std::string& token, const std::string& expires) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("token");
  writeString(w, token);
  w.Key("expires");
  writeString(w, expires);
  w.EndObject();
  return buf.GetString();
}

std::optional<std::string> compactJson(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) return std::nullopt;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace corch::rest
