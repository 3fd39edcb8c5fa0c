#include "harness/corchd.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/sandbox.h"

namespace corch::test {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool hasFlag(const std::vector<std::string>& args, const std::string& flag) {
  return std::find(args.begin(), args.end(), flag) != args.end();
}

// The admin's password in `file`, made (32 random hex digits, 0600) if it does not exist yet.
Result<std::string> readOrMakePassword(const std::string& file) {
  std::string known = readFile(file);
  while (!known.empty() && (known.back() == '\n' || known.back() == '\r')) known.pop_back();
  if (!known.empty()) return known;
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[16];
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
    return Error(ErrorCode::Internal, "cannot read /dev/urandom");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string password;
  for (unsigned char b : bytes) {
    password += kHex[b >> 4];
    password += kHex[b & 15];
  }
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errnoError("cannot write " + file, errno);
  std::string line = password + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) return Error(ErrorCode::Internal, "cannot write " + file);
  return password;
}

}  // namespace

HttpResponse httpRequest(const std::string& method, const std::string& url,
                         const std::string& scratch, const std::string& body,
                         const std::string& content_type,
                         const std::vector<std::string>& curl_args) {
  std::string in = scratch + "/request.body";
  std::string out = scratch + "/response.body";
  std::ofstream(in, std::ios::trunc) << body;
  std::ofstream(out, std::ios::trunc);
  std::string extra;
  for (const auto& arg : curl_args) extra += shellQuote(arg) + " ";
  std::string cmd = "curl -sS -o " + shellQuote(out) + " -w '%{http_code}' -X " + method + " " +
                    extra +
                    (body.empty() ? ""
                                  : "-H " + shellQuote("Content-Type: " + content_type) +
                                        " --data-binary @" + shellQuote(in) + " ") +
                    shellQuote(url);
  auto r = runCommand(cmd, std::chrono::seconds(120));
  HttpResponse response;
  if (r.ok()) response.status = std::atoi(r.output.c_str());
  response.body = readFile(out);
  return response;
}

uint16_t freeTcpPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

Result<Corchd> Corchd::start(const std::string& dir, const std::vector<std::string>& args,
                             std::chrono::milliseconds timeout) {
  Corchd c;
  c.dir_ = dir;
  c.port_ = freeTcpPort();
  const bool tls = !hasFlag(args, "--no-tls");
  c.url_ = std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(c.port_);
  auto password = readOrMakePassword(dir + "/admin-password");
  if (!password) return std::move(password).error();
  c.password_ = std::move(*password);
  c.args_ = {std::string(CORCH_BINARY_DIR) + "/orchestrator/corchd", "--listen",
             "127.0.0.1:" + std::to_string(c.port_)};
  // The test's flags first: they may name a configuration, which the harness's flags override.
  c.args_.insert(c.args_.end(), args.begin(), args.end());
  c.args_.insert(c.args_.end(), {"--initial-admin", kAdmin, "--initial-admin-password-file",
                                 dir + "/admin-password"});
  if (tls && !hasFlag(args, "--tls-cert")) {
    c.ca_cert_ = dir + "/tls/cert.pem";
    c.args_.insert(c.args_.end(), {"--tls-cert", c.ca_cert_, "--tls-key", dir + "/tls/key.pem"});
  } else if (tls) {
    c.ca_cert_ = *std::next(std::find(args.begin(), args.end(), "--tls-cert"));
  }
  CORCH_TRY(c.launch(timeout));
  return c;
}

Result<void> Corchd::launch(std::chrono::milliseconds timeout) {
  std::vector<char*> argv;
  for (auto& a : args_) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = dir_ + "/corchd.log";
  token_.clear();
  pid_ = fork();
  if (pid_ < 0) return errnoError("cannot fork corchd", errno);
  if (pid_ == 0) {
    // corchd must not outlive a test that dies without running its destructors.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  bool exited = false;
  // Up when it answers at all: a request without a token is a 401 from a running corchd.
  bool up = waitUntil(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          exited = true;
          return true;
        }
        int answer = requestAs("", "GET", "/graphs").status;
        return answer == 401 || answer == 200;
      },
      timeout, std::chrono::milliseconds(20));
  if (exited || !up) {
    std::string tail = this->log();
    if (exited) pid_ = -1;
    return Error(ErrorCode::Unavailable,
                 std::string("corchd ") + (exited ? "exited" : "did not answer") + ":\n" + tail);
  }
  auto token = login(kAdmin, password_);
  if (!token) return token.error().context("cannot log in to corchd as " + std::string(kAdmin));
  token_ = std::move(*token);
  // For corchctl run by the test (it reads both).
  ::setenv("CORCH_TOKEN", token_.c_str(), 1);
  if (!ca_cert_.empty()) ::setenv("CORCH_CACERT", ca_cert_.c_str(), 1);
  return Ok();
}

Result<std::string> Corchd::login(const std::string& user, const std::string& password) const {
  // The user name and password are the harness's own (no quoting needed in JSON).
  auto answer = requestAs("", "POST", "/login",
                          R"({"username": ")" + user + R"(", "password": ")" + password + "\"}");
  if (answer.status != 200) {
    return Error(ErrorCode::Unauthenticated, "POST /login as " + user + ": " +
                                                 std::to_string(answer.status) + " " + answer.body);
  }
  std::string token = answer.body;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  return token;
}

Corchd::Corchd(Corchd&& other) noexcept
    : dir_(std::move(other.dir_)),
      args_(std::move(other.args_)),
      port_(other.port_),
      url_(std::move(other.url_)),
      token_(std::move(other.token_)),
      ca_cert_(std::move(other.ca_cert_)),
      password_(std::move(other.password_)),
      pid_(other.pid_) {
  other.pid_ = -1;
}

Corchd::~Corchd() { stop(); }

std::string Corchd::log() const { return readFile(dir_ + "/corchd.log"); }

std::vector<std::string> Corchd::curlArgs(const std::string& token) const {
  std::vector<std::string> args;
  if (!ca_cert_.empty()) args.insert(args.end(), {"--cacert", ca_cert_});
  if (!token.empty()) args.insert(args.end(), {"-H", "X-Auth-Token: " + token});
  return args;
}

HttpResponse Corchd::request(const std::string& method, const std::string& path,
                             const std::string& body) const {
  return requestAs(token_, method, path, body);
}

HttpResponse Corchd::requestAs(const std::string& token, const std::string& method,
                               const std::string& path, const std::string& body) const {
  return httpRequest(method, url_ + path, dir_, body, "application/json", curlArgs(token));
}

void Corchd::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (!waitUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout,
                 std::chrono::milliseconds(20))) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

void Corchd::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

Result<void> Corchd::restart(std::chrono::milliseconds timeout) {
  if (pid_ > 0) stop();
  return launch(timeout);
}

}  // namespace corch::test
