#include "cli/cli_harness.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/rng.h"
#include "io/safetensors.h"
#include "common/model_checks.h"
#include "model/presets.h"
#include "tokenizer/tokenizer_files.h"

namespace wick::test::cli {

Result run_wick(const std::vector<std::string>& args, const std::function<void(const std::string&, pid_t)>& on_line,
                const std::string& exe) {
  // Numbered: a test may run a second wick while one runs (on_line), each with a file of its own.
  static std::atomic<int> calls{0};
  const std::string out_path = (fs::temp_directory_path() / ("wick_cli_out_" + std::to_string(::getpid()) + "_" +
                                                            std::to_string(calls++))).string();
  // Everything that allocates happens before fork: the child of a threaded process may only make
  // async-signal-safe calls before exec.
  std::vector<char*> argv = {const_cast<char*>(exe.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe(pipefd) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    const int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, STDOUT_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    close(pipefd[0]);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(pipefd[1]);
  Result r;
  FILE* e = fdopen(pipefd[0], "r");
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, e)) > 0) {
    r.err.append(line, n);
    if (on_line) on_line(std::string(line, n), pid);
  }
  std::free(line);
  std::fclose(e);
  int status = 0;
  waitpid(pid, &status, 0);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = wick::io::read_file(out_path);
  fs::remove(out_path);
  return r;
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
  wick::Rng rng(seed);
  const fs::path p = root_ / name;
  std::ofstream f(p);
  for (int i = 0; i < n; i++) {
    std::vector<int32_t> ids(8 + static_cast<int>(rng.uniform() * 8));
    for (auto& id : ids) id = 100 + static_cast<int32_t>(rng.uniform() * 900);
    f << json{{"input_ids", ids}}.dump() << "\n";
  }
  return p.string();
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
