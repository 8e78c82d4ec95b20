// Helpers for file-format tests: a temp folder removed afterwards, raw byte files, hand-built
// safetensors bytes, and a check that a call throws wick::Error mentioning given words.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace wick::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wick-io-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

inline std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; i++) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// 8-byte little-endian header length + header text + data bytes (no padding added).
inline std::string st_bytes(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const wick::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a wick::Error: ") + e.what() + ">";
  }
  return "<no error>";
}

}  // namespace wick::test

// Expects stmt to throw wick::Error whose message contains every one of the given strings.
#define EXPECT_WICK_ERROR(stmt, ...)                                                    \
  do {                                                                                  \
    const std::string wick_msg_ = ::wick::test::error_message([&] { (void)(stmt); });   \
    for (const std::string& wick_needle_ : std::vector<std::string>{__VA_ARGS__})       \
      EXPECT_NE(wick_msg_.find(wick_needle_), std::string::npos)                        \
          << "error message: " << wick_msg_ << "\nshould mention: " << wick_needle_;    \
  } while (0)
