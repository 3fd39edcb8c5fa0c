// corchctl: the command-line client of corchd's northbound REST API (DESIGN sections 5 and 10).
// With authentication on in corchd, `corchctl login USER` gets a token, which the other commands
// send as X-Auth-Token (--token, or $CORCH_TOKEN).
//
// Exit status: 0 success, 1 the request failed (the server answered an error, or could not be
// reached, or a local file could not be read), 2 the command line is wrong.
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/api_client.h"
#include "security/secret_input.h"

namespace corch::ctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;

constexpr const char* kDefaultUrl = "http://127.0.0.1:8080";
constexpr int kDefaultTimeoutSeconds = 300;

struct Command {
  const char* name;
  const char* synopsis;  // after "corchctl [options] "
  const char* summary;
  size_t args;  // positional arguments after the command name
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
    {"login", "login USER",
     "Logs in as USER and prints the token (and nothing else) for the other commands:\n"
     "  export CORCH_TOKEN=$(corchctl login admin)\n"
     "The password is read from stdin (asked, without echo, on a terminal).",
     1},
};

const Command* findCommand(const std::string& name) {
  for (const auto& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

std::string generalUsage() {
  std::ostringstream out;
  out << "usage: corchctl [--url URL] [--token TOKEN] [--timeout SECONDS] COMMAND [ARGS]\n\n"
      << "Commands:\n";
  for (const auto& c : kCommands) out << "  " << c.synopsis << "\n";
  out << "\nOptions:\n"
      << "  --url URL          corchd's REST API (default: $CORCH_URL, else " << kDefaultUrl
      << ")\n"
      << "  --token TOKEN      a token from 'corchctl login', sent as X-Auth-Token (default:\n"
      << "                     $CORCH_TOKEN); needed when corchd has authentication on\n"
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

std::optional<UsageError> parseArgs(int argc, char** argv, Invocation& inv) {
  const char* env_url = std::getenv("CORCH_URL");
  inv.url = env_url && *env_url ? env_url : kDefaultUrl;
  const char* env_token = std::getenv("CORCH_TOKEN");
  inv.token = env_token ? env_token : "";
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
    // Options with a value: "--name VALUE" or "--name=VALUE".
    std::string name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name != "--url" && name != "--timeout" && name != "--id" && name != "--token") {
      return UsageError{"unknown option '" + arg + "'"};
    }
    if (!has_value) {
      if (i + 1 >= argc) return UsageError{"option " + name + " needs a value"};
      value = argv[++i];
    }
    if (name == "--url") {
      inv.url = value;
    } else if (name == "--token") {
      inv.token = value;
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
  if (positional.empty()) {
    if (inv.help) return std::nullopt;
    return UsageError{"no command given"};
  }
  inv.command = findCommand(positional[0]);
  if (!inv.command) return UsageError{"unknown command '" + positional[0] + "'"};
  if (inv.help) return std::nullopt;
  inv.args.assign(positional.begin() + 1, positional.end());
  if (inv.args.size() != inv.command->args) {
    return UsageError{std::string(inv.command->name) + ": expected " +
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
    std::cerr << "  (log in first: export CORCH_TOKEN=$(corchctl login USER), or --token)\n";
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

int login(ApiClient& api, const std::string& user) {
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
  std::cout << token << "\n";
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
  auto api = ApiClient::create(inv.url, std::chrono::seconds(inv.timeout_seconds));
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
  if (command == "login") return login(client, inv.args[0]);
  std::cerr << "corchctl: " << command << ": not implemented\n";
  return kUsage;
}

}  // namespace
}  // namespace corch::ctl

int main(int argc, char** argv) {
  try {
    return corch::ctl::run(argc, argv);
  } catch (const std::exception& e) {
    // Nothing below is expected to throw; say what happened rather than abort.
    std::cerr << "corchctl: " << e.what() << "\n";
    return 1;
  }
}
