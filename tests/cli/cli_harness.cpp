#include "cli/cli_harness.h"

#include <unistd.h>

#include <atomic>
#include <fstream>

#include "core/rng.h"
#include "io/safetensors.h"
#include "common/model_checks.h"
#include "common/subprocess.h"
#include "common/testutil.h"
#include "model/presets.h"
#include "tokenizer/tokenizer_files.h"

namespace wick::test::cli {

Result run_wick(const std::vector<std::string>& args, const OnLine& on_line,
                const std::string& exe) {
  // Numbered: a test may run a second wick while one runs (on_line), each with a file of its own.
  static std::atomic<int> calls{0};
  const std::string out_path = (fs::temp_directory_path() / ("wick_cli_out_" + std::to_string(::getpid()) + "_" +
                                                            std::to_string(calls++))).string();
  std::vector<std::string> argv = {exe};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult p = run_process(argv, on_line, out_path);
  return Result{p.rc, p.out, p.streamed};
}

fs::path Cli::root_, Cli::model_, Cli::small_;
bool Cli::have_tok_ = false;
Result Cli::init_;

void Cli::SetUpTestSuite() {
  root_ = fs::temp_directory_path() / ("wick_cli_" + std::to_string(::getpid()));
  fs::remove_all(root_);
  fs::create_directories(root_);
  model_ = root_ / "tiny";
  have_tok_ = fs::exists(fs::path(wick::default_tokenizer_dir()) / "tokenizer.json");
  // `wick init-model` needs the fetched Qwen tokenizer; without it the same folder is written in-process.
  if (have_tok_) init_ = run_wick({"init-model", "--preset", "tiny", "--out", model_.string(), "--seed", "3"});
  else wick::write_random_model(wick::preset_config("tiny"), model_.string(), 3, wick::DType::BF16, "");
  small_ = root_ / "small";
  wick::ModelConfig c = wick::preset_config("tiny");
  c.vocab_size = 1024;
  wick::write_random_model(c, small_.string(), 4, wick::DType::F32, "");
}

std::string Cli::data(const std::string& name, int n, uint64_t seed) {
  return write_random_ids_jsonl((root_ / name).string(), n, seed);
}

void Cli::expect_ids(const json& j, size_t max_n) {
  ASSERT_TRUE(j.is_array()) << j.dump();
  EXPECT_GE(j.size(), 1u);
  EXPECT_LE(j.size(), max_n);
  for (const auto& v : j) {
    EXPECT_TRUE(v.is_number_integer());
    EXPECT_GE(v.get<int64_t>(), 0);
    EXPECT_LT(v.get<int64_t>(), wick::preset_config("tiny").vocab_size);
  }
}

}  // namespace wick::test::cli
