// The functions' log files (function_log.h).
#include "compute/common/function_log.h"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace corch::drivers::common {

namespace fs = std::filesystem;

std::string nowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::streamoff> appendLogHeader(const std::string& path, const std::string& what) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) {
    return Error(ErrorCode::Internal,
                 "cannot create the folder of its log " + path + ": " + ec.message());
  }
  std::ofstream out(path, std::ios::app);
  out << "==== corch " << nowUtc() << ": " << what << " ====\n";
  if (!out.flush()) return Error(ErrorCode::Internal, "cannot append to its log " + path);
  out.close();
  return static_cast<std::streamoff>(fs::file_size(path, ec));
}

std::string readFrom(const std::string& path, std::streamoff from) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(from);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> nonBlankLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream split(text);
  for (std::string line; std::getline(split, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string joinLines(const std::vector<std::string>& lines, size_t first) {
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) out += (out.empty() ? "" : " | ") + lines[i];
  return out;
}

std::string lastLines(const std::string& text, size_t count, size_t max_chars) {
  const auto lines = nonBlankLines(text);
  std::string out = joinLines(lines, lines.size() > count ? lines.size() - count : 0);
  if (out.size() > max_chars) out = "..." + out.substr(out.size() - max_chars);
  return out;
}

}  // namespace corch::drivers::common
