// The folder backend of the SF repository: one template per *.json file, all read at once so that
// a broken file is found when corchd starts (or reloads), not when a graph first needs it.
#include "resolver/repository.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <system_error>

#include "corch/log.h"

namespace corch::resolver {
namespace {

namespace fs = std::filesystem;

const log::Logger lg("repository");

// All templates of a folder, sorted by id; an error lists every bad file and duplicate id.
Result<std::vector<Template>> readFolder(const std::string& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return errnoError("cannot read the SF repository folder " + dir, ec.value());
  }
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") || !name.ends_with(".json")) continue;
    std::error_code type_ec;
    if (!entry.is_regular_file(type_ec)) continue;
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());

  std::vector<Template> templates;
  std::vector<std::string> problems;
  std::vector<FieldError> fields;
  std::map<std::string, std::string> source_of_id;
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      problems.push_back("cannot read " + file.string() + ": " + std::strerror(errno));
      continue;
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto parsed = parseTemplate(text.str(), file.string());
    if (!parsed.ok()) {
      problems.push_back(parsed.error().message());
      for (const FieldError& f : parsed.error().fields()) {
        fields.push_back({f.pointer, file.string() + ": " + f.message});
      }
      continue;
    }
    auto [prev, inserted] = source_of_id.emplace(parsed->id, file.string());
    if (!inserted) {
      std::string why = "template id '" + parsed->id + "' is used by both " + prev->second +
                        " and " + file.string();
      problems.push_back(why);
      fields.push_back({"/id", why});
      continue;
    }
    templates.push_back(std::move(parsed).value());
  }
  if (!problems.empty()) {
    std::string message = "invalid SF repository " + dir + ": ";
    for (size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    return Error(ErrorCode::InvalidArgument, std::move(message), std::move(fields));
  }
  std::sort(templates.begin(), templates.end(),
            [](const Template& a, const Template& b) { return a.id < b.id; });
  return templates;
}

class FolderRepository : public Repository {
 public:
  FolderRepository(std::string dir, std::vector<Template> templates)
      : dir_(std::move(dir)), templates_(std::move(templates)) {}

  Result<std::vector<Template>> findByCapability(const std::string& capability) override {
    std::shared_lock lock(mu_);
    std::vector<Template> out;
    for (const Template& t : templates_) {
      if (t.capability == capability) out.push_back(t);
    }
    return out;
  }

  Result<Template> findById(const std::string& id) override {
    std::shared_lock lock(mu_);
    auto it =
        std::lower_bound(templates_.begin(), templates_.end(), id,
                         [](const Template& t, const std::string& key) { return t.id < key; });
    if (it == templates_.end() || it->id != id) {
      return Error(ErrorCode::NotFound, "no template '" + id + "' in the SF repository " + dir_);
    }
    return *it;
  }

  Result<std::vector<Template>> all() override {
    std::shared_lock lock(mu_);
    return templates_;
  }

  Result<void> reload() override {
    // Read outside the lock: lookups go on meanwhile, and a failed read changes nothing.
    auto read = readFolder(dir_);
    if (!read.ok()) {
      CORCH_LOG(lg, Warn) << "reload failed, keeping the previous templates: "
                          << read.error().message();
      return std::move(read).error();
    }
    std::unique_lock lock(mu_);
    templates_ = std::move(read).value();
    CORCH_LOG(lg, Info) << "reloaded " << templates_.size() << " templates from " << dir_;
    return Ok();
  }

 private:
  const std::string dir_;
  std::shared_mutex mu_;
  std::vector<Template> templates_;  // sorted by id
};

}  // namespace

Result<std::unique_ptr<Repository>> openFolderRepository(const std::string& dir) {
  auto read = readFolder(dir);
  if (!read.ok()) return std::move(read).error();
  if (read->empty()) {
    CORCH_LOG(lg, Warn) << "the SF repository " << dir << " holds no template";
  } else {
    CORCH_LOG(lg, Info) << "loaded " << read->size() << " templates from " << dir;
  }
  return std::unique_ptr<Repository>(new FolderRepository(dir, std::move(read).value()));
}

}  // namespace corch::resolver
