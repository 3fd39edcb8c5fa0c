// corchctl: the command-line client of corchd's northbound REST API (DESIGN sections 5 and 10).
// corchd needs a token: `corchctl login USER` gets one, which the other commands send as
// X-Auth-Token (--token, or $CORCH_TOKEN, or the session `login --save` wrote). corchd serves
// HTTPS, usually with a self-signed certificate: --cacert FILE (or $CORCH_CACERT) trusts it.
//
// The session file ($CORCH_SESSION, default ~/.config/corch/session.json, mode 0600) holds
// {"url", "token", "cacert"}: the defaults of a later corchctl when neither a flag nor the
// environment sets them, the token only for the URL it was issued by.
//
// Exit status: 0 success, 1 the request failed (the server answered an error, or could not be
// reached, or a local file could not be read), 2 the command line is wrong.
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/api_client.h"
#include "security/atomic_file.h"
#include "security/secret_input.h"

namespace corch::ctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;

constexpr const char* kDefaultUrl = "https://127.0.0.1:8080";
constexpr int kDefaultTimeoutSeconds = 300;

struct Command {
  const char* name;
  const char* synopsis;  // after "corchctl [options] "
  const char* summary;
  size_t args;            // positional arguments after the command name (at least, if variadic)
  bool variadic = false;  // more may follow
};

constexpr Command kCommands[] = {
    {"deploy", "deploy FILE [--id ID]",
     "Deploys (or updates) the SF-FG graph in FILE. Its id is the file's sffg.id, or ID\n"
     "(which then replaces sffg.id in the document sent). Waits until it is deployed.",
     1},
    {"get", "get ID", "Prints the graph ID as deployed (SF-FG JSON).", 1},
    {"list", "list", "Lists the graphs with their state.", 0},
    {"delete", "delete ID", "Deletes the graph ID and everything it created.", 1},
    {"status", "status ID",
     "Prints the state of the graph ID, and why it failed if it did; then each function, its "
     "template, driver and CPUs.",
     1},
    {"log", "log ID SF", "Prints the log of the function SF of the graph ID.", 2},
    {"login", "login USER [--save]",
     "Logs in as USER and prints the token (and nothing else) for the other commands:\n"
     "  export CORCH_TOKEN=$(corchctl login admin)\n"
     "The password is read from stdin (asked, without echo, on a terminal). With --save, the\n"
     "URL, token and --cacert are also written to the session file ($CORCH_SESSION, default\n"
     "~/.config/corch/session.json, 0600), which later commands read.",
     1},
    {"user", "user list | user add NAME ROLE | user delete NAME | user groups NAME [GROUP...]",
     "Manages corchd's users (admins only). add reads the new user's password from stdin;\n"
     "ROLE is admin, operator or user. groups sets every group NAME belongs to.",
     1, true},
    {"group", "group list | group set NAME [USER...] | group delete NAME",
     "Manages corchd's groups (admins only): set creates or replaces a group with its members.", 1,
     true},
    {"grant", "grant ID [user:NAME | group:NAME ...]",
     "Sets who may read the graph ID besides operators and admins (none: nobody), and prints\n"
     "it. 'corchctl grant ID' alone with --show prints it unchanged.",
     1, true},
};

const Command* findCommand(const std::string& name) {
  for (const auto& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

std::string generalUsage() {
  std::ostringstream out;
  out << "usage: corchctl [--url URL] [--token TOKEN] [--cacert FILE | --insecure] [--timeout "
         "SECONDS]\n                COMMAND [ARGS]\n\n"
      << "Commands:\n";
  for (const auto& c : kCommands) out << "  " << c.synopsis << "\n";
  out << "\nOptions:\n"
      << "  --url URL          corchd's REST API (default: $CORCH_URL, else " << kDefaultUrl
      << ")\n"
      << "  --token TOKEN      a token from 'corchctl login', sent as X-Auth-Token (default:\n"
      << "                     $CORCH_TOKEN, else the saved session's)\n"
      << "  --cacert FILE      trust corchd's certificate in FILE (PEM; default: $CORCH_CACERT,\n"
      << "                     else the saved session's); make run's is run/state/tls/cert.pem\n"
      << "  --insecure         do not verify corchd's certificate (testing only)\n"
      << "  --timeout SECONDS  how long to wait for an answer (default " << kDefaultTimeoutSeconds
      << ")\n"
      << "  -h, --help         this help; 'corchctl COMMAND --help' for one command\n\n"
      << "Exit status: 0 success, 1 the request failed, 2 usage error.\n";
  return out.str();
}

std::string commandUsage(const Command& c) {
  return std::string("usage: corchctl [--url URL] ") + c.synopsis + "\n\n" + c.summary + "\n";
}

struct Invocation {
  std::string url;
  std::string token;
  std::string cacert;
  bool insecure = false;
  bool save = false;  // login --save
  bool show = false;  // grant --show
  int timeout_seconds = kDefaultTimeoutSeconds;
  bool help = false;
  std::optional<std::string> id_option;  // deploy --id
  const Command* command = nullptr;
  std::vector<std::string> args;
};

// A usage error: what is wrong, and which usage to show.
struct UsageError {
  std::string message;
  const Command* command = nullptr;
};

std::string sessionFile() {
  const char* env = std::getenv("CORCH_SESSION");
  if (env && *env) return env;
  const char* config = std::getenv("XDG_CONFIG_HOME");
  if (config && *config) return std::string(config) + "/corch/session.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/corch/session.json";
}

struct Session {
  std::string url, token, cacert;
};

// The saved session, if there is a readable one.
std::optional<Session> readSession() {
  std::ifstream in(sessionFile());
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  Session session;
  for (auto [key, target] :
       {std::pair{"url", &session.url}, {"token", &session.token}, {"cacert", &session.cacert}}) {
    if (doc.HasMember(key) && doc[key].IsString()) *target = doc[key].GetString();
  }
  return session;
}

std::optional<UsageError> parseArgs(int argc, char** argv, Invocation& inv) {
  const char* env_url = std::getenv("CORCH_URL");
  const char* env_token = std::getenv("CORCH_TOKEN");
  const char* env_cacert = std::getenv("CORCH_CACERT");
  std::optional<std::string> flag_url, flag_token, flag_cacert;
  std::vector<std::string> positional;
  bool options_done = false;
  std::optional<std::string> id_option;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      inv.help = true;
      continue;
    }
    if (arg == "--insecure" || arg == "-k") {
      inv.insecure = true;
      continue;
    }
    if (arg == "--save") {
      inv.save = true;
      continue;
    }
    if (arg == "--show") {
      inv.show = true;
      continue;
    }
    // Options with a value: "--name VALUE" or "--name=VALUE".
    std::string name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name != "--url" && name != "--timeout" && name != "--id" && name != "--token" &&
        name != "--cacert") {
      return UsageError{"unknown option '" + arg + "'"};
    }
    if (!has_value) {
      if (i + 1 >= argc) return UsageError{"option " + name + " needs a value"};
      value = argv[++i];
    }
    if (name == "--url") {
      flag_url = value;
    } else if (name == "--token") {
      flag_token = value;
    } else if (name == "--cacert") {
      flag_cacert = value;
    } else if (name == "--timeout") {
      char* end = nullptr;
      long seconds = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || seconds <= 0 || seconds > 86400) {
        return UsageError{"invalid --timeout '" + value + "': expected seconds, 1 to 86400"};
      }
      inv.timeout_seconds = static_cast<int>(seconds);
    } else {
      id_option = value;
    }
  }
  // Flags, then the environment, then the saved session (its token only for its own URL).
  std::optional<Session> session = readSession();
  inv.url = flag_url                           ? *flag_url
            : env_url && *env_url              ? env_url
            : session && !session->url.empty() ? session->url
                                               : kDefaultUrl;
  inv.token = flag_token                           ? *flag_token
              : env_token                          ? env_token
              : session && session->url == inv.url ? session->token
                                                   : "";
  inv.cacert = flag_cacert                 ? *flag_cacert
               : env_cacert && *env_cacert ? env_cacert
               : session                   ? session->cacert
                                           : "";
  if (positional.empty()) {
    if (inv.help) return std::nullopt;
    return UsageError{"no command given"};
  }
  inv.command = findCommand(positional[0]);
  if (!inv.command) return UsageError{"unknown command '" + positional[0] + "'"};
  if (inv.help) return std::nullopt;
  inv.args.assign(positional.begin() + 1, positional.end());
  if (inv.command->variadic ? inv.args.size() < inv.command->args
                            : inv.args.size() != inv.command->args) {
    return UsageError{std::string(inv.command->name) + ": expected " +
                          std::string(inv.command->variadic ? "at least " : "") +
                          std::to_string(inv.command->args) + " argument(s), got " +
                          std::to_string(inv.args.size()),
                      inv.command};
  }
  if (id_option) {
    if (std::string(inv.command->name) != "deploy") {
      return UsageError{"--id is an option of deploy only", inv.command};
    }
    if (id_option->empty()) return UsageError{"--id needs a non-empty value", inv.command};
    inv.id_option = id_option;
  }
  return std::nullopt;
}

// Prints a server's error answer, or a failure to reach it, and returns the exit status.
int failed(const std::string& what, const Error& error) {
  std::cerr << "corchctl: " << what << ": " << error.message() << "\n";
  return kFailed;
}

// A 401 also says how to log in, unless `login_hint` is false (the login itself failed).
int failed(const std::string& what, const Response& response, bool login_hint = true) {
  std::string text = describeError(response);
  // The first line (status and title) follows the command; the rest is indented below it.
  std::string indented;
  std::istringstream lines(text);
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    indented += first ? line : "\n  " + line;
    first = false;
  }
  std::cerr << "corchctl: " << what << ": " << indented << "\n";
  if (response.status == 401 && login_hint) {
    std::cerr << "  (log in first: corchctl login USER --save, or export "
                 "CORCH_TOKEN=$(corchctl login USER), or --token)\n";
  }
  return kFailed;
}

bool parseJson(const std::string& text, rapidjson::Document& doc) {
  doc.Parse(text.data(), text.size());
  return !doc.HasParseError();
}

std::string str(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject()) return "";
  auto it = object.FindMember(key);
  if (it == object.MemberEnd()) return "";
  if (it->value.IsString()) return std::string(it->value.GetString(), it->value.GetStringLength());
  if (it->value.IsInt64()) return std::to_string(it->value.GetInt64());
  return "";
}

int integer(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject()) return 0;
  auto it = object.FindMember(key);
  return it != object.MemberEnd() && it->value.IsInt() ? it->value.GetInt() : 0;
}

// "deployed (100%)", or "failed: <detail>" followed by the failure's field errors, one a line.
std::string describeStatus(const rapidjson::Value& status) {
  std::string state = str(status, "state");
  if (state == "failed") {
    std::string out = "failed";
    auto error = status.FindMember("error");
    if (error != status.MemberEnd() && error->value.IsObject()) {
      out += ": " + str(error->value, "detail");
      auto errors = error->value.FindMember("errors");
      if (errors != error->value.MemberEnd() && errors->value.IsArray()) {
        for (const auto& e : errors->value.GetArray()) {
          std::string pointer = str(e, "pointer");
          out += "\n  " + (pointer.empty() ? std::string("(document)") : pointer) + ": " +
                 str(e, "message");
        }
      }
    }
    return out;
  }
  return state + " (" + std::to_string(integer(status, "progress")) + "%)";
}

std::string compact(const rapidjson::Document& doc) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  doc.Accept(writer);
  return std::string(buf.GetString(), buf.GetSize());
}

int deploy(ApiClient& api, const std::string& file, const std::optional<std::string>& id_option) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return failed("deploy", Error(ErrorCode::NotFound, "cannot read " + file));
  std::stringstream content;
  content << in.rdbuf();
  if (in.bad()) return failed("deploy", Error(ErrorCode::Internal, "cannot read " + file));
  std::string body = content.str();

  rapidjson::Document doc;
  bool is_json = parseJson(body, doc);
  std::string id;
  if (is_json && doc.IsObject() && doc.HasMember("sffg") && doc["sffg"].IsObject()) {
    id = str(doc["sffg"], "id");
    if (id_option && *id_option != id) {
      // The document says what it is: make it agree with the id it is deployed under.
      rapidjson::Value& sffg = doc["sffg"];
      rapidjson::Value value(id_option->c_str(), doc.GetAllocator());
      if (sffg.HasMember("id")) {
        sffg["id"] = value;
      } else {
        sffg.AddMember("id", value, doc.GetAllocator());
      }
      body = compact(doc);
    }
  } else if (!id_option) {
    // Without a graph id there is nowhere to send it; with one, the server says what is wrong.
    std::string why = is_json
                          ? "it is not an SF-FG document {\"sffg\": {...}}"
                          : "it is not JSON (offset " + std::to_string(doc.GetErrorOffset()) + ")";
    return failed("deploy", Error(ErrorCode::InvalidArgument,
                                  "cannot read the graph id from " + file + ": " + why));
  }
  if (id_option) id = *id_option;
  if (id.empty()) {
    std::cerr << "corchctl: deploy: " << file << " has no sffg.id: give the graph id with --id ID\n"
              << commandUsage(*findCommand("deploy"));
    return kUsage;
  }

  auto response = api.call("PUT", graphPath(id), &body);
  if (!response) return failed("deploy " + id, response.error());
  if (response->status != 200 && response->status != 201) return failed("deploy " + id, *response);
  rapidjson::Document answer;
  if (!parseJson(response->body, answer) || !answer.IsObject()) {
    std::cout << "graph " << id << (response->status == 201 ? " created" : " updated") << "\n";
    return kOk;
  }
  std::string status = answer.HasMember("status") ? describeStatus(answer["status"]) : "";
  std::cout << "graph " << id << (response->status == 201 ? " created" : " updated")
            << (status.empty() ? "" : ": " + status) << "\n";
  if (answer.HasMember("changes") && answer["changes"].IsArray()) {
    for (const auto& change : answer["changes"].GetArray()) {
      if (change.IsString()) std::cout << "  " << change.GetString() << "\n";
    }
  }
  return kOk;
}

int get(ApiClient& api, const std::string& id) {
  auto response = api.call("GET", graphPath(id));
  if (!response) return failed("get " + id, response.error());
  if (response->status != 200) return failed("get " + id, *response);
  rapidjson::Document doc;
  if (!parseJson(response->body, doc)) {
    std::cout << response->body << "\n";
    return kOk;
  }
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buf);
  writer.SetIndent(' ', 2);
  doc.Accept(writer);
  std::cout << buf.GetString() << "\n";
  return kOk;
}

// Prints rows (the first one the header) as columns two spaces apart.
void printRows(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

int list(ApiClient& api) {
  auto response = api.call("GET", "/graphs");
  if (!response) return failed("list", response.error());
  if (response->status != 200) return failed("list", *response);
  rapidjson::Document doc;
  if (!parseJson(response->body, doc) || !doc.IsObject() || !doc.HasMember("graphs") ||
      !doc["graphs"].IsArray()) {
    return failed("list", Error(ErrorCode::Internal, "unexpected answer: " + response->body));
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "NAME", "STATE", "PROGRESS"}};
  for (const auto& g : doc["graphs"].GetArray()) {
    rows.push_back({str(g, "id"), str(g, "name"), str(g, "state"),
                    std::to_string(integer(g, "progress")) + "%"});
  }
  if (rows.size() == 1) {
    std::cout << "no graphs\n";
    return kOk;
  }
  printRows(rows);
  return kOk;
}

int remove(ApiClient& api, const std::string& id) {
  auto response = api.call("DELETE", graphPath(id));
  if (!response) return failed("delete " + id, response.error());
  if (response->status != 204 && response->status != 200) {
    return failed("delete " + id, *response);
  }
  std::cout << "graph " << id << " deleted\n";
  return kOk;
}

int status(ApiClient& api, const std::string& id) {
  auto response = api.call("GET", graphPath(id, "/status"));
  if (!response) return failed("status " + id, response.error());
  if (response->status != 200) return failed("status " + id, *response);
  rapidjson::Document doc;
  if (!parseJson(response->body, doc) || !doc.IsObject()) {
    return failed("status " + id,
                  Error(ErrorCode::Internal, "unexpected answer: " + response->body));
  }
  std::cout << describeStatus(doc) << "\n";
  // Then one line per function: "  fw: firewall-nsf (native), CPUs 1 (dedicated 1 (NUMA 0))".
  auto functions = doc.FindMember("functions");
  if (functions != doc.MemberEnd() && functions->value.IsArray()) {
    for (const auto& f : functions->value.GetArray()) {
      std::string cpus;
      auto list = f.FindMember("cpus");
      if (f.IsObject() && list != f.MemberEnd() && list->value.IsArray()) {
        for (const auto& c : list->value.GetArray()) {
          if (c.IsUint()) cpus += (cpus.empty() ? "" : ",") + std::to_string(c.GetUint());
        }
      }
      std::string placement = str(f, "placement");
      std::cout << "  " << str(f, "sf") << ": " << str(f, "template") << " (" << str(f, "type")
                << "), " << (cpus.empty() ? "no dedicated CPU" : "CPUs " + cpus)
                << (placement.empty() ? "" : " (" + placement + ")") << "\n";
    }
  }
  return kOk;
}

int log(ApiClient& api, const std::string& id, const std::string& sf) {
  auto response = api.call("GET", graphPath(id, "/sfs/" + encodeSegment(sf) + "/log"));
  std::string what = "log " + id + " " + sf;
  if (!response) return failed(what, response.error());
  if (response->status != 200) return failed(what, *response);
  std::cout << response->body;
  if (!response->body.empty() && response->body.back() != '\n') std::cout << "\n";
  return kOk;
}

// Writes the session file (0600, atomically, its folder 0700).
Result<void> saveSession(const Invocation& inv, const std::string& token) {
  std::error_code ec;
  // Absolute, so that the session works from any folder.
  std::string cacert = inv.cacert;
  if (!cacert.empty()) cacert = std::filesystem::absolute(cacert, ec).string();
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buf);
  writer.StartObject();
  for (auto [key, value] : {std::pair{"url", &inv.url}, {"token", &token}, {"cacert", &cacert}}) {
    writer.Key(key);
    writer.String(value->c_str());
  }
  writer.EndObject();
  std::string file = sessionFile();
  std::filesystem::path folder = std::filesystem::path(file).parent_path();
  if (!folder.empty() && !std::filesystem::exists(folder)) {
    std::filesystem::create_directories(folder, ec);
    if (ec) return Error(ErrorCode::Internal, "cannot create " + folder.string());
    std::filesystem::permissions(folder, std::filesystem::perms::owner_all, ec);
  }
  return security::writeFileAtomically(file, std::string(buf.GetString()) + "\n", 0600);
}

int login(ApiClient& api, const std::string& user, const Invocation& inv) {
  auto password = security::readSecret("Password for " + user + ": ", false);
  if (!password) return failed("login " + user, password.error());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  writer.StartObject();
  writer.Key("username");
  writer.String(user.data(), static_cast<rapidjson::SizeType>(user.size()));
  writer.Key("password");
  writer.String(password->data(), static_cast<rapidjson::SizeType>(password->size()));
  writer.EndObject();
  std::string body(buf.GetString(), buf.GetSize());
  auto response = api.call("POST", "/login", &body, "application/json");
  if (!response) return failed("login " + user, response.error());
  if (response->status != 200) return failed("login " + user, *response, false);
  // corchd answers {"token", "expires"} to a client asking for JSON; an un-orchestrator, text.
  rapidjson::Document doc;
  std::string token =
      parseJson(response->body, doc) && doc.IsObject() ? str(doc, "token") : response->body;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) {
    return failed("login " + user,
                  Error(ErrorCode::Internal, "the answer holds no token: " + response->body));
  }
  if (inv.save) {
    if (auto saved = saveSession(inv, token); !saved) return failed("login " + user, saved.error());
    std::cerr << "session saved in " << sessionFile() << "\n";
  }
  std::cout << token << "\n";
  return kOk;
}

// Prints a JSON answer as a table of rows, each `columns` of an array member `list`.
void printTable(const rapidjson::Value& list, const std::vector<const char*>& columns) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  for (const char* c : columns) {
    std::string h = c;
    for (auto& ch : h) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    header.push_back(h);
  }
  rows.push_back(header);
  for (const auto& item : list.GetArray()) {
    std::vector<std::string> row;
    for (const char* c : columns) {
      auto it = item.FindMember(c);
      std::string cell;
      if (it != item.MemberEnd() && it->value.IsArray()) {
        for (const auto& v : it->value.GetArray()) {
          if (v.IsString()) cell += (cell.empty() ? "" : ",") + std::string(v.GetString());
        }
      } else {
        cell = str(item, c);
      }
      row.push_back(cell.empty() ? "-" : cell);
    }
    rows.push_back(row);
  }
  printRows(rows);
}

std::string namesJson(const char* key, const std::vector<std::string>& names) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  writer.StartObject();
  writer.Key(key);
  writer.StartArray();
  for (const auto& n : names) writer.String(n.c_str());
  writer.EndArray();
  writer.EndObject();
  return buf.GetString();
}

// GET `path` and print its `member` list as a table.
int listOf(ApiClient& api, const std::string& what, const std::string& path, const char* member,
           const std::vector<const char*>& columns) {
  auto response = api.call("GET", path);
  if (!response) return failed(what, response.error());
  if (response->status != 200) return failed(what, *response);
  rapidjson::Document doc;
  if (!parseJson(response->body, doc) || !doc.IsObject() || !doc.HasMember(member) ||
      !doc[member].IsArray()) {
    return failed(what, Error(ErrorCode::Internal, "unexpected answer: " + response->body));
  }
  printTable(doc[member], columns);
  return kOk;
}

// PUT or DELETE with an optional body; prints `done` on success.
int change(ApiClient& api, const std::string& what, const std::string& method,
           const std::string& path, const std::string* body, const std::string& done) {
  auto response = api.call(method, path, body);
  if (!response) return failed(what, response.error());
  if (response->status < 200 || response->status > 299) return failed(what, *response);
  std::cout << done << "\n";
  return kOk;
}

int users(ApiClient& api, const std::vector<std::string>& args) {
  const std::string& verb = args[0];
  auto usage = [] {
    std::cerr << commandUsage(*findCommand("user"));
    return kUsage;
  };
  if (verb == "list" && args.size() == 1) {
    return listOf(api, "user list", "/users", "users", {"name", "role", "groups"});
  }
  if (verb == "add" && args.size() == 3) {
    auto password = security::readSecret("Password for " + args[1] + ": ", true);
    if (!password) return failed("user add " + args[1], password.error());
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
    writer.StartObject();
    writer.Key("password");
    writer.String(password->data(), static_cast<rapidjson::SizeType>(password->size()));
    writer.Key("role");
    writer.String(args[2].c_str());
    writer.EndObject();
    std::string body = buf.GetString();
    return change(api, "user add " + args[1], "PUT", "/users/" + encodeSegment(args[1]), &body,
                  "user " + args[1] + " (" + args[2] + ") saved");
  }
  if (verb == "delete" && args.size() == 2) {
    return change(api, "user delete " + args[1], "DELETE", "/users/" + encodeSegment(args[1]),
                  nullptr, "user " + args[1] + " deleted");
  }
  if (verb == "groups" && args.size() >= 2) {
    std::string body = namesJson("groups", {args.begin() + 2, args.end()});
    return change(api, "user groups " + args[1], "PUT", "/users/" + encodeSegment(args[1]), &body,
                  "user " + args[1] + " saved");
  }
  return usage();
}

int groups(ApiClient& api, const std::vector<std::string>& args) {
  const std::string& verb = args[0];
  if (verb == "list" && args.size() == 1) {
    return listOf(api, "group list", "/groups", "groups", {"name", "members"});
  }
  if (verb == "set" && args.size() >= 2) {
    std::string body = namesJson("members", {args.begin() + 2, args.end()});
    return change(api, "group set " + args[1], "PUT", "/groups/" + encodeSegment(args[1]), &body,
                  "group " + args[1] + " saved");
  }
  if (verb == "delete" && args.size() == 2) {
    return change(api, "group delete " + args[1], "DELETE", "/groups/" + encodeSegment(args[1]),
                  nullptr, "group " + args[1] + " deleted");
  }
  std::cerr << commandUsage(*findCommand("group"));
  return kUsage;
}

int grant(ApiClient& api, const std::vector<std::string>& args, bool show) {
  const std::string& id = args[0];
  std::vector<std::string> users, groups;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("user:", 0) == 0) {
      users.push_back(a.substr(5));
    } else if (a.rfind("group:", 0) == 0) {
      groups.push_back(a.substr(6));
    } else {
      std::cerr << "corchctl: grant: '" << a << "' is neither user:NAME nor group:NAME\n"
                << commandUsage(*findCommand("grant"));
      return kUsage;
    }
  }
  std::optional<Result<Response>> response;
  if (show) {
    response = api.call("GET", graphPath(id, "/grants"));
  } else {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
    writer.StartObject();
    for (auto [key, names] : {std::pair{"users", &users}, {"groups", &groups}}) {
      writer.Key(key);
      writer.StartArray();
      for (const auto& n : *names) writer.String(n.c_str());
      writer.EndArray();
    }
    writer.EndObject();
    std::string body = buf.GetString();
    response = api.call("PUT", graphPath(id, "/grants"), &body);
  }
  if (!*response) return failed("grant " + id, response->error());
  if ((*response)->status != 200) return failed("grant " + id, **response);
  rapidjson::Document doc;
  if (!parseJson((*response)->body, doc) || !doc.IsObject()) {
    std::cout << (*response)->body << "\n";
    return kOk;
  }
  rapidjson::Value list(rapidjson::kArrayType);
  list.PushBack(doc, doc.GetAllocator());
  printTable(list, {"graph", "users", "groups"});
  return kOk;
}

int run(int argc, char** argv) {
  Invocation inv;
  if (auto usage = parseArgs(argc, argv, inv)) {
    std::cerr << "corchctl: " << usage->message << "\n"
              << (usage->command ? commandUsage(*usage->command) : generalUsage());
    return kUsage;
  }
  if (inv.help) {
    std::cout << (inv.command ? commandUsage(*inv.command) : generalUsage());
    return kOk;
  }
  if (inv.save && std::string(inv.command->name) != "login") {
    std::cerr << "corchctl: --save is an option of login only\n";
    return kUsage;
  }
  auto api = ApiClient::create(inv.url, std::chrono::seconds(inv.timeout_seconds),
                               TlsClientOptions{inv.cacert, inv.insecure});
  if (!api) {
    std::cerr << "corchctl: " << api.error().message() << "\n";
    return kUsage;
  }
  ApiClient& client = **api;
  client.setToken(inv.token);
  const std::string command = inv.command->name;
  if (command == "deploy") return deploy(client, inv.args[0], inv.id_option);
  if (command == "get") return get(client, inv.args[0]);
  if (command == "list") return list(client);
  if (command == "delete") return remove(client, inv.args[0]);
  if (command == "status") return status(client, inv.args[0]);
  if (command == "log") return log(client, inv.args[0], inv.args[1]);
  if (command == "login") return login(client, inv.args[0], inv);
  if (command == "user") return users(client, inv.args);
  if (command == "group") return groups(client, inv.args);
  if (command == "grant") return grant(client, inv.args, inv.show);
  std::cerr << "corchctl: " << command << ": not implemented\n";
  return kUsage;
}

}  // namespace
}  // namespace corch::ctl

int main(int argc, char** argv) {
  int status = 1;
  try {
    status = corch::ctl::run(argc, argv);
  } catch (const std::exception& e) {
    // Nothing below is expected to throw; say what happened rather than abort.
    std::cerr << "corchctl: " << e.what() << "\n";
  }
  // Out without the exit handlers: cpprest's threads may still be closing a connection (freeing
  // its SSL object) while OpenSSL's handler frees the locks they take, and the process then
  // hangs for ever. Nothing else needs them: the output is flushed here.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(status);
}
