// File-system queries on user-given paths that never throw (std::filesystem's plain overloads throw
// filesystem_error on EACCES, ENAMETOOLONG, ...); callers turn "false" into a wick::Error naming the path.
#pragma once
#include <filesystem>
#include <string>

namespace wick::io {

inline bool path_exists(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}
inline bool is_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}
inline bool is_dir(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}

}  // namespace wick::io
