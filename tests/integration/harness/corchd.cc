#include "harness/corchd.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace

HttpResponse httpRequest(const std::string& method, const std::string& url,
                         const std::string& scratch, const std::string& body,
                         const std::string& content_type) {
  std::string in = scratch + "/request.body";
  std::string out = scratch + "/response.body";
  std::ofstream(in, std::ios::trunc) << body;
  std::ofstream(out, std::ios::trunc);
  std::string cmd = "curl -sS -o " + shellQuote(out) + " -w '%{http_code}' -X " + method + " " +
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
  uint16_t port = freeTcpPort();
  c.url_ = "http://127.0.0.1:" + std::to_string(port);
  std::vector<std::string> argv_strings = {std::string(CORCH_BINARY_DIR) + "/orchestrator/corchd",
                                           "--listen", "127.0.0.1:" + std::to_string(port)};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = dir + "/corchd.log";
  c.pid_ = fork();
  if (c.pid_ < 0) return errnoError("cannot fork corchd", errno);
  if (c.pid_ == 0) {
    // corchd must not outlive a test that dies without running its destructors.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  bool exited = false;
  bool up = waitUntil(
      [&] {
        int status = 0;
        if (waitpid(c.pid_, &status, WNOHANG) == c.pid_) {
          exited = true;
          return true;
        }
        return c.request("GET", "/graphs").status == 200;
      },
      timeout, std::chrono::milliseconds(20));
  if (exited || !up) {
    std::string tail = c.log();
    if (exited) c.pid_ = -1;
    return Error(ErrorCode::Unavailable,
                 std::string("corchd ") + (exited ? "exited" : "did not answer") + ":\n" + tail);
  }
  return c;
}

Corchd::Corchd(Corchd&& other) noexcept
    : dir_(std::move(other.dir_)), url_(std::move(other.url_)), pid_(other.pid_) {
  other.pid_ = -1;
}

Corchd::~Corchd() { stop(); }

std::string Corchd::log() const { return readFile(dir_ + "/corchd.log"); }

HttpResponse Corchd::request(const std::string& method, const std::string& path,
                             const std::string& body) const {
  return httpRequest(method, url_ + path, dir_, body);
}

void Corchd::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  if (!waitUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout,
                 std::chrono::milliseconds(20))) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

}  // namespace corch::test
