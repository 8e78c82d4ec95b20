// core/input_file.h: a file the user named is read whole or opened for streaming; a directory, a missing path and
// an unreadable one are each a wick::Error naming the path and saying which (an ifstream on a directory opens and
// reads nothing, which callers used to report as an empty or invalid file).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/input_file.h"

namespace wick {
namespace {

namespace fs = std::filesystem;

fs::path scratch_dir() {
  const fs::path d = fs::path(WICK_BINARY_DIR) / "test_scratch" / "input_file";
  fs::create_directories(d);
  return d;
}

// The wick::Error of f (its where() and message), or a failure when none is thrown.
template <class F> Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no wick::Error";
  return Error("");
}

TEST(InputFile, ReadsWholeFilesAndStreams) {
  const fs::path p = scratch_dir() / "bytes.bin";
  std::string bytes;
  for (int i = 0; i < 200000; i++) bytes.push_back(static_cast<char>((i * 7919) % 251));  // > one read() buffer
  bytes[10] = '\0';
  std::ofstream(p, std::ios::binary) << bytes;
  EXPECT_EQ(read_file(p.string()), bytes);
  std::ifstream f = open_input_file(p.string());
  std::string first(16, ' ');
  f.read(first.data(), 16);
  EXPECT_EQ(first, bytes.substr(0, 16));
  const fs::path empty = scratch_dir() / "empty.txt";
  std::ofstream(empty).close();
  EXPECT_EQ(read_file(empty.string()), "");  // an empty file is a file: its callers say what they expected in it
}

TEST(InputFile, DirectoriesMissingAndUnreadablePathsNameThePath) {
  const fs::path dir = scratch_dir() / "a_folder";
  fs::create_directories(dir);
  for (bool stream : {false, true}) {
    const auto open = [&](const std::string& path) {
      if (stream) (void)open_input_file(path);
      else (void)read_file(path);
    };
    Error e = error_of([&] { open(dir.string()); });
    EXPECT_EQ(e.where(), dir.string());
    EXPECT_NE(std::string(e.what()).find("it is a directory"), std::string::npos) << e.what();
    const std::string missing = (scratch_dir() / "no_such_file.jsonl").string();
    e = error_of([&] { open(missing); });
    EXPECT_EQ(e.where(), missing);
    EXPECT_NE(std::string(e.what()).find("cannot open: No such file"), std::string::npos) << e.what();
    e = error_of([&] { open(""); });
    EXPECT_NE(std::string(e.what()).find("empty path"), std::string::npos) << e.what();
    if (::geteuid() != 0) {  // root reads any file whatever its mode
      const fs::path locked = scratch_dir() / "locked.txt";
      std::ofstream(locked) << "x";
      fs::permissions(locked, fs::perms::none);
      e = error_of([&] { open(locked.string()); });
      EXPECT_EQ(e.where(), locked.string());
      EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos) << e.what();
      fs::permissions(locked, fs::perms::owner_all);
    }
  }
}

}  // namespace
}  // namespace wick
