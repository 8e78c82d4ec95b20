#include "io/atomic_file.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fs_util.h"
#include "io/safetensors.h"

namespace wick::io {

static std::string errno_str() { return std::strerror(errno); }

static std::string parent_dir(const std::string& path) {
  const std::filesystem::path p = std::filesystem::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  static std::atomic<unsigned> counter{0};
  if (path.empty()) throw Error("empty output path");
  if (is_dir(path)) throw Error("cannot write: it is a directory", path);
  for (int attempt = 0; attempt < 100 && fd_ < 0; attempt++) {
    tmp_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  if (fd_ < 0) throw Error("cannot create a temp file in " + parent_dir(path) + ": " + errno_str(), path);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  if (fd_ < 0) throw Error("write after commit", path_);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n > (1u << 30) ? (1u << 30) : n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write: " + errno_str(), path_);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw Error("commit twice", path_);
  if (::fsync(fd_) != 0) throw Error("cannot fsync: " + errno_str(), path_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error("cannot close: " + errno_str(), path_);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) throw Error("cannot rename the temp file over it: " + errno_str(), path_);
  committed_ = true;
  // Make the rename durable; failing here leaves a complete file, so it is not an error.
  const int dfd = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace wick::io
