// File-system queries on user-given paths that never throw (std::filesystem's plain overloads throw
// filesystem_error on EACCES, ENAMETOOLONG, ...); callers turn "false" into a wick::Error naming the path.
#pragma once
#include <filesystem>
#include <string>
#include <system_error>

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

// True when a and b name one file or folder: std::filesystem::equivalent where both exist (hard links,
// symbolic links), else the same weakly_canonical path.
inline bool same_path(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path_exists(a) && path_exists(b)) {
    const bool eq = fs::equivalent(a, b, ec);
    if (!ec && eq) return true;
  }
  const fs::path ca = fs::weakly_canonical(fs::absolute(a, ec), ec), cb = fs::weakly_canonical(fs::absolute(b, ec), ec);
  return !ca.empty() && ca.lexically_normal() == cb.lexically_normal();
}

// True when path is dir or lies anywhere under it (compared as weakly_canonical paths, symbolic links
// resolved; "a/bc" is not under "a/b").
inline bool path_within(const std::string& path, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec).lexically_normal();
  fs::path d = fs::weakly_canonical(fs::absolute(dir, ec), ec).lexically_normal();
  if (p.empty() || d.empty()) return false;
  // "a/b/" and "a/b" alike: compare the components, a trailing empty one dropped.
  if (!d.has_filename()) d = d.parent_path();
  if (!p.has_filename()) p = p.parent_path();
  auto pi = p.begin();
  for (auto di = d.begin(); di != d.end(); ++di, ++pi)
    if (pi == p.end() || *pi != *di) return false;
  return true;
}

}  // namespace wick::io
