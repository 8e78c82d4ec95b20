#include "io/output_folder.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fs_util.h"

namespace fs = std::filesystem;

namespace wick::io {

bool folder_is_empty(const std::string& dir) {
  if (!path_exists(dir)) return true;
  if (!is_dir(dir)) return false;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) return false;
  for (; !ec && it != end; it.increment(ec))
    if (it->path().filename() != kLockFileName) return false;
  return !ec;
}

void check_output_folder(const std::string& dir, bool overwrite, const std::string& hint) {
  // A file where the folder (or one above it) would go: --overwrite replaces what a folder holds, never a file.
  std::error_code ec;
  const fs::path out = fs::absolute(dir, ec);
  for (fs::path p = out; !p.empty(); p = p.parent_path()) {
    if (path_exists(p)) {
      if (!is_dir(p))
        throw Error(p == out ? "the output path is a file, not a folder"
                             : "the output path lies under a file, not a folder: " + p.string(),
                    dir, "choose another --out");
      break;
    }
    if (p == p.parent_path()) break;
  }
  if (overwrite || folder_is_empty(dir)) return;
  throw Error("the output folder is not empty", dir, hint);
}

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

void remove_model_files(const std::string& dir) {
  static const std::vector<std::string> named = {"config.json", "generation_config.json", "tokenizer.json",
                                                 "tokenizer_config.json", "vocab.json", "merges.txt",
                                                 "special_tokens_map.json", "added_tokens.json", "chat_template.jinja"};
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string n = it->path().filename().string();
    bool hit = ends_with(n, ".safetensors") || ends_with(n, ".safetensors.index.json") || n.rfind("pytorch_model", 0) == 0;
    for (const auto& m : named) hit = hit || n == m;
    if (hit) doomed.push_back(it->path());
  }
  for (const auto& p : doomed)
    if (!fs::remove(p, ec) && ec) throw Error("cannot remove the old model file: " + ec.message(), p.string());
}

// The pid a holder wrote into the lock file, or "" (not written yet: it writes just after locking).
static std::string lock_holder(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.find_first_not_of("0123456789") == std::string::npos ? s : "";
}

OutputLock::OutputLock(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  if (!path_exists(dir)) {
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create the output folder: " + ec.message(), dir, "choose another " + flag);
    dir_ = dir;
  }
  path_ = (fs::path(dir) / kLockFileName).string();
  for (int attempt = 0;; attempt++) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw Error(std::string("cannot create the lock file: ") + std::strerror(errno), path_,
                  "check the permissions of " + flag + " " + dir);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err != EWOULDBLOCK) {
        // A file system without flock (some network mounts): run unlocked rather than not at all, as
        // before the lock existed.
        ::close(fd);
        ::unlink(path_.c_str());
        path_.clear();
        return;
      }
      const std::string pid = lock_holder(fd);
      ::close(fd);
      throw Error("another wick train" + (pid.empty() ? std::string() : " (pid " + pid + ")") +
                      " is writing into this folder",
                  dir, "wait for it to finish, or choose another " + flag);
    }
    // The previous holder removes the file as it releases it: when that happened between the open and the
    // flock, this lock is on a file nobody else opens any more; lock the one under the name instead.
    struct stat held {}, named {};
    if (::fstat(fd, &held) == 0 && ::stat(path_.c_str(), &named) == 0 && held.st_dev == named.st_dev &&
        held.st_ino == named.st_ino) {
      fd_ = fd;
      break;
    }
    ::close(fd);
    if (attempt >= 100) throw Error("cannot lock the output folder (its lock file keeps being replaced)", dir);
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // Only the message of a second run loses the pid; the lock itself holds.
  }
}

OutputLock::~OutputLock() {
  if (fd_ < 0) {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
    return;
  }
  ::unlink(path_.c_str());  // before the unlock: a run waiting on this file sees it gone and starts over
  ::close(fd_);
  // A run that failed before writing anything leaves no folder it created (rmdir removes only an empty one).
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

void check_output_file_not_input(const std::string& out_file, const std::string& out_flag,
                                 const std::vector<std::pair<std::string, std::string>>& inputs) {
  for (const auto& [flag, dir] : inputs) {
    if (dir.empty()) continue;
    // The same file by any name: a link (symbolic or hard) to an input file, e.g. a Hub cache blob, is that file.
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (same_path(out_file, it->path().string()))
        throw Error(out_file + " is the " + flag + " file " + it->path().string() + ", which this command reads",
                    out_flag, "write the output outside the input folders");
    // A new .gguf file there is fine (no reader of a model or adapter folder takes one, and llama.cpp's converter
    // writes into the model folder by default); any other name could be taken for one of the folder's files.
    if (path_within(out_file, dir) && fs::path(out_file).extension() != ".gguf")
      throw Error(out_file + " lies inside the " + flag + " folder " + dir +
                      ", which this command reads (a file of that name could be taken for one of its files)",
                  out_flag, "write the output outside the input folders, or name it *.gguf");
  }
}

void check_output_folder_not_input(const std::string& out_dir, const std::string& out_flag,
                                   const std::vector<std::pair<std::string, std::string>>& inputs) {
  for (const auto& [flag, dir] : inputs) {
    if (dir.empty()) continue;
    const char* how = same_path(out_dir, dir)        ? " is the "
                      : path_within(out_dir, dir)    ? " lies inside the "
                      : path_within(dir, out_dir)    ? " holds the "
                                                     : nullptr;
    if (how)
      throw Error(out_dir + how + flag + " folder " + dir +
                      ", which this command reads (writing there could replace or remove its files)",
                  out_flag, "write into a new folder outside the input folders");
  }
}

}  // namespace wick::io
