#include "core/input_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include "core/error.h"

namespace wick {

namespace {

// Throws when path is empty or a directory (an ifstream on a directory opens and reads nothing). A missing or
// unreadable file is left to open(), whose errno says which ("cannot open: No such file or directory").
void check_input_path(const std::string& path) {
  if (path.empty()) throw Error("an empty path where a file was expected");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error("cannot read: it is a directory", path, "name the file inside it");
}

}  // namespace

std::string read_file(const std::string& path) {
  check_input_path(path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(std::string("cannot open: ") + std::strerror(errno), path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw Error("cannot read: " + why, path);
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

std::ifstream open_input_file(const std::string& path) {
  check_input_path(path);
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    const int err = errno;
    throw Error(std::string("cannot open: ") + (err ? std::strerror(err) : "unknown error"), path);
  }
  return f;
}

}  // namespace wick
