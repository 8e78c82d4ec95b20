// The harness of the tests that drive the built `wick` binary (tests/cli/test_cli*.cpp): run_wick runs it as a
// user would, Cli makes the tiny models once per suite.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/subprocess.h"

#ifndef WICK_BINARY
#error "tests/CMakeLists.txt defines WICK_BINARY, the path of the built wick"
#endif

namespace wick::test::cli {

namespace fs = std::filesystem;
using nlohmann::json;

struct Result {
  int rc = -1;
  std::string out, err;
  std::vector<std::string> err_lines() const {
    std::vector<std::string> l;
    std::istringstream ss(err);
    for (std::string s; std::getline(ss, s);) l.push_back(s);
    return l;
  }
};

// Runs wick with args; stdout goes to a file, stderr is read line by line (on_line may signal the child).
Result run_wick(const std::vector<std::string>& args, const OnLine& on_line = nullptr,
                const std::string& exe = WICK_BINARY);

class Cli : public ::testing::Test {
 protected:
  // model_: `wick init-model --preset tiny`; small_: the same geometry with a 1024-token vocabulary, for
  // the tests that run many training steps (a step's cost is mostly the vocabulary projection).
  static fs::path root_, model_, small_;
  static bool have_tok_;
  static Result init_;  // of `wick init-model` (when the tokenizer is present)
  static void SetUpTestSuite();
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static std::string data(const std::string& name, int n, uint64_t seed);  // n rows of random input_ids
  static json last_json_line(const std::string& out) {
    std::istringstream ss(out);
    std::string l, last;
    while (std::getline(ss, l))
      if (!l.empty()) last = l;
    return json::parse(last, nullptr, false);
  }
  static void every_family_trains_merges_and_generates(const std::string& device);  // test_cli.cpp
  static void expect_ids(const json& j, size_t max_n);  // token ids of the tiny model, 1..max_n of them
};

}  // namespace wick::test::cli
