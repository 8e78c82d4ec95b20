// Shared by the libFuzzer targets: the bytes as a temp file (the loaders take paths), and the rule every
// target checks - a bad input ends in wick::Error (a clear one-line error in the CLI), never in another
// exception (the CLI's "internal error"), a crash, a hang or a sanitizer report.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"

namespace wick::fuzz {

// A per-process scratch folder (libFuzzer's -fork/-jobs run several processes): $WICK_FUZZ_TMPDIR, else
// /dev/shm (memory: on ext4 a file truncated and rewritten is flushed to disk at close, which was a large
// part of every input's time), else $TMPDIR or /tmp.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("WICK_FUZZ_TMPDIR");
    if (!base || !*base) base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::getenv("TMPDIR");
    std::string d = std::string(base && *base ? base : "/tmp") + "/wick-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    // Removed at a normal exit (the end of -runs / -max_total_time); a crash leaves it for the post-mortem.
    // The path is copied: this handler runs after `dir` is destroyed (it is registered before dir's destructor).
    static const std::string* const for_exit = new std::string(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*for_exit, ec);
    });
    return d;
  }();
  return dir;
}

inline std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// Runs fn; wick::Error is the expected outcome of bad input; anything else aborts (a finding).
template <typename F>
void expect_clean(F&& fn) {
  try {
    fn();
  } catch (const wick::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: not a wick::Error: %s\n", e.what());
    std::abort();
  }
}

}  // namespace wick::fuzz
