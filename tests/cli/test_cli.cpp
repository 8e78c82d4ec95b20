// End-to-end: the built `wick` binary as a user drives it. init-model -> generate -> train -> generate with
// the adapter; Ctrl-C saves a checkpoint and prints a command that resumes; bad input gives one error line
// and exit code 1; every option of every subcommand has a description in --help.
// The option rules (--config, aliases, an option given twice, Hub ids) are in test_cli_options.cpp; the harness
// (run_wick, the Cli fixture) in cli_harness.h.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "core/rng.h"
#include "io/safetensors.h"
#include "common/model_checks.h"
#include "common/testutil.h"
#include "model/presets.h"
#include "tokenizer/tokenizer_files.h"
#include "train/checkpoint_dir.h"

#include "cli/cli_harness.h"

using namespace wick::test::cli;

namespace {

TEST_F(Cli, InitGenerateTrainGenerateWithTheAdapter) {
  if (have_tok_) {
    ASSERT_EQ(init_.rc, 0) << init_.err;
    EXPECT_NE(init_.err.find("tiny"), std::string::npos) << init_.err;
    EXPECT_TRUE(fs::exists(model_ / "tokenizer.json"));
  }
  for (const char* f : {"config.json", "model.safetensors", "generation_config.json"}) ASSERT_TRUE(fs::exists(model_ / f)) << f;

  Result g = run_wick({"generate", "--model", model_.string(), "--prompt-ids", "11,22,33", "--max-new-tokens", "5",
                   "--device", "cpu", "--ids"});
  ASSERT_EQ(g.rc, 0) << g.err;
  expect_ids(last_json_line(g.out), 5);

  const fs::path out = root_ / "run";
  Result t = run_wick({"train", "--model", model_.string(), "--data", data("d.jsonl", 6, 1), "--out", out.string(),
                   "--max-steps", "3", "--device", "cpu", "--lr", "1e-3"});
  ASSERT_EQ(t.rc, 0) << t.err;
  // The start lists the effective settings, the batch size says why, the end where things are.
  for (const std::string& want : std::vector<std::string>{"LoRA   r 16, alpha 32", "targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                           "AdamW  lr 0.001, cosine schedule, warmup 1 steps", "batch  4: CPU rule",
                           "step 3/3", "done: 3 of 3 steps", "adapter in " + out.string(), "report.html"})
    EXPECT_NE(t.err.find(want), std::string::npos) << "missing '" << want << "' in:\n" << t.err;
  std::ifstream mf(out / "metrics.jsonl");
  int64_t step = 0;
  for (std::string l; std::getline(mf, l);) {
    const json r = json::parse(l);
    EXPECT_EQ(r.at("step").get<int64_t>(), ++step);
    EXPECT_TRUE(std::isfinite(r.at("loss").get<double>()));
    EXPECT_GT(r.at("tokens").get<int64_t>(), 0);
  }
  EXPECT_EQ(step, 3);
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "checkpoint-3/trainer_state.json", "report.html"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const std::string html = wick::io::read_file((out / "report.html").string());
  EXPECT_NE(html.find("<polyline class=\"loss\""), std::string::npos);

  g = run_wick({"generate", "--model", model_.string(), "--adapter", out.string(), "--prompt-ids", "11,22,33",
            "--max-new-tokens", "5", "--device", "cpu", "--ids"});
  ASSERT_EQ(g.rc, 0) << g.err;
  expect_ids(last_json_line(g.out), 5);
}

TEST_F(Cli, PipeProgressEveryNSteps) {
  const Result t = run_wick({"train", "--model", small_.string(), "--data", data("d10.jsonl", 4, 2), "--out",
                         (root_ / "run10").string(), "--max-steps", "10", "--log-every", "4", "--batch-size", "1",
                         "--device", "cpu"});
  ASSERT_EQ(t.rc, 0) << t.err;
  std::vector<int> steps;
  const std::regex re("^step (\\d+)/10  epoch");
  for (const std::string& l : t.err_lines()) {
    std::smatch m;
    if (std::regex_search(l, m, re)) steps.push_back(std::stoi(m[1]));
  }
  EXPECT_EQ(steps, (std::vector<int>{1, 4, 8, 10}));  // the first, every 4th, the last
  EXPECT_NE(t.err.find("batch  1: given"), std::string::npos) << t.err;
}

TEST_F(Cli, CtrlCSavesAndPrintsACommandThatResumes) {
  const fs::path out = root_ / "run-int";
  bool sent = false;
  const Result t = run_wick({"train", "--model", small_.string(), "--data", data("d20.jsonl", 8, 3), "--out", out.string(),
                         "--max-steps", "20", "--log-every", "1", "--device", "cpu", "--seed", "7"},
                        [&](const std::string& line, pid_t pid) {
                          if (!sent && line.rfind("step 1/20", 0) == 0) kill(pid, SIGINT), sent = true;
                        });
  ASSERT_TRUE(sent) << t.err;
  EXPECT_EQ(t.rc, 130) << t.err;
  EXPECT_NE(t.err.find("stopping after this step"), std::string::npos) << t.err;
  std::string cmd;
  for (const std::string& l : t.err_lines())
    if (l.rfind("wick train: resume with: ", 0) == 0) cmd = l.substr(std::strlen("wick train: resume with: "));
  ASSERT_FALSE(cmd.empty()) << t.err;
  EXPECT_NE(cmd.find("--seed 7"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--resume " + out.string()), std::string::npos) << cmd;
  EXPECT_TRUE(wick::latest_checkpoint(out.string()).has_value());  // checkpoint-<the step it stopped at>
  EXPECT_TRUE(fs::exists(out / "report.html"));
  // The printed command, run as printed (through the shell), finishes the run.
  ASSERT_EQ(cmd.rfind("wick train ", 0), 0u) << cmd;
  const Result r = run_wick({"-c", std::string("exec ") + WICK_BINARY + cmd.substr(4)}, nullptr, "/bin/sh");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("as in the run being resumed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("done: 20 of 20 steps"), std::string::npos) << r.err;
  std::ifstream mf(out / "metrics.jsonl");
  int n = 0;
  for (std::string l; std::getline(mf, l);) EXPECT_EQ(json::parse(l).at("step").get<int>(), ++n);
  EXPECT_EQ(n, 20);
}

// A port another server listens on is refused, even one that allows sharing it (SO_REUSEPORT, which cpp-httplib
// sets by default): two servers on one port would split the requests between them without a word.
TEST_F(Cli, ServeRefusesAPortAnotherServerListensOn) {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  int yes = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof yes);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 4), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string port = std::to_string(ntohs(a.sin_port));
  // Should it listen after all, the test stops it (and fails) instead of waiting for it.
  const Result r = run_wick({"serve", "--model", small_.string(), "--device", "cpu", "--port", port},
                            [](const std::string& line, pid_t pid) {
                              if (line.find("listening on") != std::string::npos) kill(pid, SIGKILL);
                            });
  close(s);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + port), std::string::npos) << r.err;
}

TEST_F(Cli, BadInputGivesOneErrorLineAndExitCodeOne) {
  const fs::path bad = root_ / "bad.jsonl";
  std::ofstream(bad) << "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [1, \"two\"]}\n";
  const fs::path empty_dir = root_ / "not-an-adapter";
  fs::create_directories(empty_dir);
  const fs::path adapter_only = root_ / "an-adapter-not-a-model";  // a PEFT adapter folder given as --model
  fs::create_directories(adapter_only);
  std::ofstream(adapter_only / "adapter_config.json") << "{\"r\": 8}\n";
  const fs::path a_file = root_ / "a-file-not-a-folder";
  std::ofstream(a_file) << "not a folder\n";
  const std::string m = small_.string();
  struct Case {
    std::vector<std::string> args;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {{"generate", "--model", m, "--prompt-ids", "1,x", "--device", "cpu"}, "--prompt-ids"},
      {{"generate", "--model", m, "--device", "cpu"}, "--prompt"},
      {{"generate", "--model", m, "--adapter", empty_dir.string(), "--prompt-ids", "1", "--device", "cpu"}, "not-an-adapter"},
      {{"train", "--model", m, "--data", bad.string(), "--out", (root_ / "o1").string(), "--device", "cpu"}, "bad.jsonl"},
      {{"train", "--model", m, "--data", data("ok.jsonl", 2, 4), "--out", (root_ / "o2").string(), "--device", "cpu",
        "--scheduler", "triangle"}, "cosine"},
      {{"train", "--data", bad.string(), "--out", (root_ / "o3").string()}, "--model"},
      {{"generate", "--model", (root_ / "no-such-model").string(), "--prompt-ids", "1"}, "no-such-model"},
      {{"serve", "--model", m, "--device", "cpu", "--port", "70000"}, "--port"},
      {{"serve", "--model", m, "--device", "cpu", "--port", "-1"}, "--port"},
      {{"serve", "--model", m, "--device", "cpu", "--max-tokens", "0"}, "--max-tokens"},
      {{"serve", "--model", m, "--device", "cpu", "--max-body-mb", "nan"}, "--max-body-mb"},
      {{"train", "--model", m, "--data", root_.string(), "--out", (root_ / "o4").string(), "--device", "cpu"},
       "it is a directory"},
      // A negative seed (an unsigned option that would wrap around).
      {{"generate", "--model", m, "--prompt-ids", "1", "--device", "cpu", "--seed", "-5"}, "--seed"},
      // The flags' own rules before the model loads (the model here does not exist), named as flags.
      {{"generate", "--model", "no-model", "--prompt-ids", "1", "--max-new-tokens", "0"}, "--max-new-tokens: must be >= 1"},
      {{"generate", "--model", "no-model", "--prompt-ids", "1", "--top-p", "1.5"}, "--top-p: must be in [0, 1] (1 = off), got 1.5"},
      {{"generate", "--model", "no-model", "--prompt-ids", "1", "--top-k", "-3"}, "--top-k: must be 0 (off) or a positive count, got -3"},
      {{"generate", "--model", "no-model", "--prompt-ids", "1", "--repetition-penalty", "nan"}, "--repetition-penalty"},
      {{"chat", "--model", "no-model", "--min-p", "2"}, "--min-p: must be in [0, 1]"},
      {{"generate", "--model", m, "--prompt", ""}, "--prompt: is empty"},
      // A file where the output folder would go: refused, --overwrite or not (it was an internal error).
      {{"init-model", "--preset", "tiny", "--out", a_file.string(), "--overwrite"}, "is a file, not a folder"},
      {{"merge", "--model", m, "--adapter", m, "--out", (a_file / "sub").string()}, "lies under a file"},
      {{"train", "--model", m, "--data", bad.string(), "--out", a_file.string(), "--overwrite"}, "is a file, not a folder"},
      // A folder the system will not create (/proc takes no new entries): its path and reason, not an internal error.
      {{"init-model", "--preset", "tiny", "--out", "/proc/wick-cannot-create-this"}, "cannot create directories"},
      {{"init-model", "--preset", "tiny", "--out", (root_ / "neg-seed").string(), "--seed", "-3"}, "--seed"},
      // A folder that is not a model's, to each command that reads one.
      {{"info", "--model", empty_dir.string()}, "no config.json in the model folder"},
      {{"info", "--model", adapter_only.string()}, "pass this one as --adapter"},
      {{"generate", "--model", adapter_only.string(), "--prompt-ids", "1", "--device", "cpu"}, "it holds a PEFT adapter"},
      {{"export-gguf", "--model", empty_dir.string(), "--out", (root_ / "x.gguf").string()}, "no config.json in the model folder"},
      {{"merge", "--model", empty_dir.string(), "--adapter", empty_dir.string(), "--out", (root_ / "mm").string()},
       "not-an-adapter"},
  };
  for (const Case& c : cases) {
    const Result r = run_wick(c.args);
    std::string cmd;
    for (const auto& a : c.args) cmd += a + " ";
    EXPECT_EQ(r.rc, 1) << cmd << "\n" << r.err;
    int error_lines = 0;
    for (const std::string& l : r.err_lines()) error_lines += l.find("rror") != std::string::npos ? 1 : 0;
    EXPECT_EQ(error_lines, 1) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find(c.mentions), std::string::npos) << cmd << "\n" << r.err;
    EXPECT_EQ(r.err.find("internal"), std::string::npos) << cmd << "\n" << r.err;
  }
}

TEST_F(Cli, HelpDescribesEveryOption) {
  for (const char* sub : {"train", "generate", "chat", "merge", "init-model", "info", "tokenize", "selfcheck"}) {
    const Result r = run_wick({sub, "--help"});
    ASSERT_EQ(r.rc, 0) << sub << ": " << r.err;
    std::vector<std::string> lines;
    std::istringstream ss(r.out);
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
    // CLI11 starts every description at one column: the one of -h's; when the option's names fill that
    // column, the description starts the next line there instead.
    size_t col = std::string::npos;
    for (const std::string& l : lines)
      if (l.find("-h,--help") != std::string::npos) col = l.find("Print this help");
    ASSERT_NE(col, std::string::npos) << r.out;
    for (size_t i = 0; i < lines.size(); i++) {
      const std::string& l = lines[i];
      const size_t p = l.find_first_not_of(' ');
      if (p == std::string::npos || p == 0 || p >= col || l[p] != '-') continue;
      const bool inline_desc = l.size() > col && l[col - 1] == ' ' && l[col] != ' ';
      const bool next_desc = i + 1 < lines.size() && lines[i + 1].size() > col &&
                             lines[i + 1].find_first_not_of(' ') == col;
      EXPECT_TRUE(inline_desc || next_desc) << "wick " << sub << " --help: no description for: " << l;
    }
  }
  const Result t = run_wick({"train", "--help"});
  for (const char* opt : {"--log-every", "--batch-size", "--rank", "--alpha", "--targets", "--lr", "--scheduler",
                          "--warmup-ratio", "--epochs", "--max-steps", "--grad-accum", "--max-seq-len", "--resume"})
    EXPECT_NE(t.out.find(opt), std::string::npos) << opt;
}

TEST_F(Cli, ProgressBarRedrawsInPlaceOnATerminal) {
  if (std::system("command -v script > /dev/null 2>&1") != 0) GTEST_SKIP() << "no `script` (util-linux) to make a terminal";
  // script(1) runs wick on a pseudo-terminal, so isatty(stderr) holds. 200 columns: at script's default 80 the bar
  // is left out whenever the line's text is long enough (a 5-character tok/s figure did it on a busy machine).
  const std::string inner = "stty cols 200 2>/dev/null; " + std::string(WICK_BINARY) + " train --model " + small_.string() + " --data " +
                            data("dtty.jsonl", 4, 5) + " --out " + (root_ / "run-tty").string() +
                            " --max-steps 3 --device cpu";
  const Result r = run_wick({"-qec", inner, "/dev/null"}, nullptr, "/usr/bin/script");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const std::string& o = r.out;
  EXPECT_NE(o.find("\r\x1b[2K"), std::string::npos) << o;
  EXPECT_NE(o.find("100% ["), std::string::npos) << o;
  EXPECT_NE(o.find(" 3/3  ep "), std::string::npos) << o;
  EXPECT_EQ(o.find("step 1/3  epoch"), std::string::npos) << "plain lines on a terminal:\n" << o;
}

// ---- Reliability (docs/reliability.md): kill -9 at every point of a save, SIGTERM, ---------------------
TEST_F(Cli, SigtermSavesLikeCtrlC) {
  const fs::path out = root_ / "run-term";
  bool sent = false;
  const Result t = run_wick({"train", "--model", small_.string(), "--data", data("dterm.jsonl", 8, 3), "--out",
                             out.string(), "--max-steps", "20", "--log-every", "1", "--device", "cpu"},
                            [&](const std::string& line, pid_t pid) {
                              if (!sent && line.rfind("step 1/20", 0) == 0) kill(pid, SIGTERM), sent = true;
                            });
  ASSERT_TRUE(sent) << t.err;
  EXPECT_EQ(t.rc, 128 + SIGTERM) << t.err;
  EXPECT_NE(t.err.find("stopping after this step"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("resume with: "), std::string::npos) << t.err;
  EXPECT_TRUE(wick::latest_checkpoint(out.string()).has_value());
}

// Environment variable for the child processes of one scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const std::string& n, const std::string& v) : name(n) { setenv(n.c_str(), v.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

TEST_F(Cli, KillNineAtEveryPointOfASaveResumesBitExactly) {
  // A real SIGKILL (WICK_TEST_KILL_AT, train/checkpoint_dir.h) at each point of the final save of step 3,
  // over the save_every checkpoint of step 2; then `--resume` finishes the run, and its adapter, optimizer
  // state and metrics equal the uninterrupted run's byte for byte (default thread count).
  const std::string d = data("dkill.jsonl", 6, 9);
  auto train = [&](const fs::path& out, bool resume) {
    std::vector<std::string> a = {"train", "--model", small_.string(), "--data", d, "--out", out.string(), "--max-steps", "3",
                                  "--save-every", "2", "--batch-size", "2", "--device", "cpu", "--seed", "5", "--dropout", "0.1"};
    if (resume) a.insert(a.end(), {"--resume", out.string()});
    return run_wick(a);
  };
  const fs::path ref = root_ / "kill-ref";
  ASSERT_EQ(train(ref, false).rc, 0);
  const auto bytes = [](const fs::path& p) { return wick::io::read_file(p.string()); };
  for (const char* point : {"tmp-adapter", "tmp-optimizer", "tmp-written", "aside", "renamed", "linked-model",
                            "linked-config", "pruned-rename", "pruned"}) {
    SCOPED_TRACE(point);
    const fs::path out = root_ / (std::string("kill-") + point);
    {
      ScopedEnv env("WICK_TEST_KILL_AT", std::string(point) + "@3");
      const Result k = train(out, false);
      ASSERT_EQ(k.rc, 128 + SIGKILL) << k.err;
    }
    const Result r = train(out, true);
    ASSERT_EQ(r.rc, 0) << r.err;
    for (const char* f : {"checkpoint-3/adapter_model.safetensors", "checkpoint-3/optimizer.safetensors",
                          "checkpoint-3/trainer_state.json", "adapter_model.safetensors", "adapter_config.json"})
      EXPECT_TRUE(bytes(ref / f) == bytes(out / f)) << f;
    std::ifstream a(ref / "metrics.jsonl"), b(out / "metrics.jsonl");
    std::string la, lb;
    int n = 0;
    while (std::getline(a, la) && std::getline(b, lb)) {
      json ja = json::parse(la), jb = json::parse(lb);
      for (auto* j : {&ja, &jb}) j->erase("tokens_per_s");
      EXPECT_EQ(ja, jb) << "record " << n;
      n++;
    }
    EXPECT_EQ(n, 3);
    // --save-total-limit 0 (default) keeps every checkpoint, as transformers does; the pruning itself is
    // CheckpointPolicy's (tests/train/test_checkpoint_policy.cpp).
    EXPECT_TRUE(fs::exists(out / "checkpoint-2" / "trainer_state.json"));
  }
}

TEST_F(Cli, BadOptionsFailBeforeAnyWork) {
  // --dropout -0.5 used to train to the end and then be refused by wick's own adapter loader; now every
  // option is checked first: exit 1, one line naming the option, nothing written.
  const std::string d = data("dopt.jsonl", 2, 4);
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"--dropout", "-0.5"}, {"--lr", "-1"}, {"--max-steps", "0"}, {"--epochs", "0"}, {"--max-seq-len", "1"},
           {"--warmup-steps", "-2"}, {"--weight-decay", "-1"}, {"--eps", "0"}, {"--alpha", "nan"}, {"--betas", "0.9,1.5"},
           {"--on-nan", "maybe"}}) {
    const fs::path out = root_ / ("opt" + bad[0]);
    std::vector<std::string> a = {"train", "--model", small_.string(), "--data", d, "--out", out.string(), "--device", "cpu"};
    a.insert(a.end(), bad.begin(), bad.end());
    const Result r = run_wick(a);
    EXPECT_EQ(r.rc, 1) << bad[0] << "\n" << r.err;
    EXPECT_EQ(r.err_lines().size(), 1u) << bad[0] << "\n" << r.err;
    EXPECT_NE(r.err.find(bad[0]), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << bad[0] << ": nothing written";
  }
}

TEST_F(Cli, OutputFoldersAreNotReplacedUnasked) {
  // train --out on a finished run, init-model --out on a model: refused (exit 1, says --overwrite) and
  // untouched; with --overwrite they are replaced.
  const fs::path run = root_ / "run-once";
  const std::string d = data("donce.jsonl", 4, 6);
  const std::vector<std::string> train = {"train", "--model", small_.string(), "--data", d, "--out", run.string(),
                                          "--max-steps", "1", "--batch-size", "2", "--device", "cpu"};
  ASSERT_EQ(run_wick(train).rc, 0);
  const std::string adapter = wick::io::read_file((run / "adapter_model.safetensors").string());
  std::vector<std::string> again = train;
  again.insert(again.end(), {"--seed", "9"});
  Result r = run_wick(again);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;
  EXPECT_EQ(wick::io::read_file((run / "adapter_model.safetensors").string()), adapter);
  again.push_back("--overwrite");
  r = run_wick(again);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(wick::io::read_file((run / "adapter_model.safetensors").string()), adapter);

  const std::string weights = wick::io::read_file((small_ / "model.safetensors").string());
  r = run_wick({"init-model", "--preset", "tiny", "--out", small_.string(), "--tokenizer-dir", small_.string()});
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;
  EXPECT_EQ(wick::io::read_file((small_ / "model.safetensors").string()), weights);
}

// Two runs started at once into one new --out: both used to pass the "not empty" check (made once, at the
// start) and one's results were lost. The second now fails at once naming the folder and the pid of the
// run that holds it; the holder's Ctrl-C checkpoint resumes as before, and the lock file is left in no folder.
TEST_F(Cli, ASecondTrainIntoAFolderInUseFailsAtOnce) {
  const fs::path out = root_ / "run-locked";
  const std::string d = data("dlock.jsonl", 8, 12);
  const std::vector<std::string> train = {"train", "--model", small_.string(), "--data", d, "--out", out.string(),
                                          "--max-steps", "20", "--log-every", "1", "--device", "cpu", "--seed", "5"};
  Result second;
  pid_t first_pid = 0;
  const Result first = run_wick(train, [&](const std::string& line, pid_t pid) {
    if (first_pid || line.rfind("step 1/20", 0) != 0) return;
    first_pid = pid;
    kill(pid, SIGSTOP);  // paused, holding the folder, however fast the steps are
    std::vector<std::string> other = train;
    other.insert(other.end(), {"--overwrite"});  // --overwrite does not let a second run in either
    second = run_wick(other);
    kill(pid, SIGINT);
    kill(pid, SIGCONT);
  });
  ASSERT_NE(first_pid, 0) << first.err;
  EXPECT_EQ(second.rc, 1) << second.err;
  EXPECT_EQ(second.err_lines().size(), 1u) << second.err;
  EXPECT_NE(second.err.find(out.string()), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("pid " + std::to_string(first_pid)), std::string::npos) << second.err;
  EXPECT_EQ(second.err.find("step 1/"), std::string::npos) << second.err;  // it never trained
  EXPECT_EQ(first.rc, 130) << first.err;
  ASSERT_TRUE(wick::latest_checkpoint(out.string()).has_value()) << first.err;
  // The interrupted run's lock is gone with its process: --resume takes the folder again and finishes.
  std::vector<std::string> resume = train;
  resume.insert(resume.end(), {"--resume", out.string()});
  const Result r = run_wick(resume);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("done: 20 of 20 steps"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out / ".wick.lock"));
  // A stale lock file (a run killed with -9 leaves one) neither blocks nor makes a folder "not empty".
  const fs::path fresh = root_ / "run-stale-lock";
  fs::create_directories(fresh);
  std::ofstream(fresh / ".wick.lock") << "999999\n";
  const Result f = run_wick({"train", "--model", small_.string(), "--data", d, "--out", fresh.string(), "--max-steps",
                             "1", "--device", "cpu"});
  EXPECT_EQ(f.rc, 0) << f.err;
  EXPECT_FALSE(fs::exists(fresh / ".wick.lock"));
}

// export-gguf --overwrite replaced the model's own weights (or the adapter being read) with the GGUF file:
// an --out that is an input file, a link to one, or a non-.gguf file in an input folder is refused and nothing
// changes; a new .gguf in an input folder is written (llama.cpp's converter writes into the model folder).
TEST_F(Cli, ExportGgufNeverWritesOverItsInputs) {
  const fs::path m = root_ / "exp-model", ad = root_ / "exp-adapter";
  fs::copy(small_, m, fs::copy_options::recursive);
  ASSERT_EQ(run_wick({"train", "--model", m.string(), "--data", data("dexp.jsonl", 4, 13), "--out", ad.string(),
                      "--max-steps", "1", "--rank", "4", "--device", "cpu"}).rc, 0);
  const std::string weights = wick::io::read_file((m / "model.safetensors").string());
  const std::string adapter = wick::io::read_file((ad / "adapter_model.safetensors").string());
  fs::create_hard_link(m / "model.safetensors", root_ / "exp-hardlink.safetensors");
  fs::create_symlink(ad / "adapter_model.safetensors", root_ / "exp-symlink.safetensors");
  struct Case {
    std::vector<std::string> args;
    std::string input;  // what the error names
  };
  const std::vector<Case> cases = {
      {{"--model", m.string(), "--out", (m / "model.safetensors").string()}, "--model"},
      {{"--model", m.string(), "--out", (m / "new.safetensors").string()}, "--model"},  // a new file a reader takes
      {{"--model", m.string(), "--out", (root_ / "exp-hardlink.safetensors").string()}, "--model"},
      {{"--model", m.string(), "--adapter", ad.string(), "--lora-only", "--out", (ad / "adapter_model.safetensors").string()},
       "--adapter"},
      {{"--model", m.string(), "--adapter", ad.string(), "--lora-only", "--out", (root_ / "exp-symlink.safetensors").string()},
       "--adapter"},
      {{"--model", m.string(), "--adapter", ad.string(), "--out", (ad / "adapter_config.json").string()}, "--adapter"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"export-gguf"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.push_back("--overwrite");
    const Result r = run_wick(args);
    SCOPED_TRACE(args[args.size() - 2]);
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.input), std::string::npos) << r.err;
  }
  EXPECT_EQ(wick::io::read_file((m / "model.safetensors").string()), weights);
  EXPECT_EQ(wick::io::read_file((ad / "adapter_model.safetensors").string()), adapter);
  EXPECT_FALSE(fs::exists(m / "new.safetensors"));
  // Outside the input folders it writes, and a new .gguf inside the model folder.
  const Result in_model = run_wick({"export-gguf", "--model", m.string(), "--adapter", ad.string(), "--lora-only",
                                    "--out", (m / "adapter.gguf").string(), "--type", "f32"});
  EXPECT_EQ(in_model.rc, 0) << in_model.err;
  EXPECT_TRUE(fs::exists(m / "adapter.gguf"));
  EXPECT_EQ(wick::io::read_file((m / "model.safetensors").string()), weights);
  const Result ok = run_wick({"export-gguf", "--model", m.string(), "--adapter", ad.string(), "--lora-only", "--out",
                              (root_ / "exp-adapter.gguf").string(), "--type", "f32"});
  EXPECT_EQ(ok.rc, 0) << ok.err;
}

// merge --out on the adapter folder deleted the adapter's weights (--overwrite removes *.safetensors there
// first): an --out that is, lies inside or holds an input folder is refused. --max-shard-size, documented
// but refused by the parser before, shards the weights.
TEST_F(Cli, MergeNeverWritesOverItsInputsAndTakesMaxShardSize) {
  const fs::path work = root_ / "merge-work", m = work / "model", ad = work / "adapter";
  fs::create_directories(work);
  fs::copy(small_, m, fs::copy_options::recursive);
  ASSERT_EQ(run_wick({"train", "--model", m.string(), "--data", data("dmerge.jsonl", 4, 14), "--out", ad.string(),
                      "--max-steps", "1", "--rank", "4", "--device", "cpu"}).rc, 0);
  const std::string weights = wick::io::read_file((m / "model.safetensors").string());
  const std::string adapter = wick::io::read_file((ad / "adapter_model.safetensors").string());
  const std::vector<std::pair<fs::path, std::string>> bad = {
      {ad, "--adapter"}, {ad / "merged", "--adapter"}, {work, "--model"}, {m, "--model"}, {m / "merged", "--model"}};
  for (const auto& [out, input] : bad) {
    SCOPED_TRACE(out.string());
    const Result r = run_wick({"merge", "--model", m.string(), "--adapter", ad.string(), "--out", out.string(), "--overwrite"});
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(input), std::string::npos) << r.err;
  }
  EXPECT_EQ(wick::io::read_file((m / "model.safetensors").string()), weights);
  EXPECT_EQ(wick::io::read_file((ad / "adapter_model.safetensors").string()), adapter);
  EXPECT_FALSE(fs::exists(ad / "merged"));

  for (const std::string junk : {"5 parsecs", "GB", "0", "-1MB", "1.2.3GB"}) {
    const Result r = run_wick({"merge", "--model", m.string(), "--adapter", ad.string(), "--out",
                               (root_ / "merged-junk").string(), "--max-shard-size", junk});
    EXPECT_EQ(r.rc, 1) << junk << ": " << r.err;
    EXPECT_NE(r.err.find("--max-shard-size"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(root_ / "merged-junk")) << junk;
  }
  // The small model's f32 weights are ~1 MB (the 1024 x 128 embedding alone is 512 KB): 10MB keeps one file,
  // 200KB (and the same in plain bytes) shards them with an index that names every tensor.
  const fs::path one = root_ / "merged-10mb";
  Result r = run_wick({"merge", "--model", m.string(), "--adapter", ad.string(), "--out", one.string(), "--max-shard-size", "10MB"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::exists(one / "model.safetensors"));
  EXPECT_FALSE(fs::exists(one / "model.safetensors.index.json"));
  for (const std::string size : {"200KB", "200000"}) {
    const fs::path sharded = root_ / ("merged-" + size);
    r = run_wick({"merge", "--model", m.string(), "--adapter", ad.string(), "--out", sharded.string(), "--max-shard-size", size});
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_FALSE(fs::exists(sharded / "model.safetensors")) << size;
    std::ifstream idx(sharded / "model.safetensors.index.json");
    ASSERT_TRUE(idx.good()) << size;
    const json index = json::parse(idx);
    std::set<std::string> files;
    for (const auto& [name, file] : index.at("weight_map").items()) files.insert(file.get<std::string>());
    EXPECT_GT(files.size(), 1u) << size;
    for (const std::string& f : files) EXPECT_TRUE(fs::exists(sharded / f)) << f;
  }
}

// Every family the fixtures hold (tests/fixtures/<family>-tiny-*, $WICK_EXTRA_FIXTURES), through the CLI as a
// user runs it: info names the family, train writes a PEFT adapter, merge folds it into a model folder of the
// same family and tensor names, and greedy generation from the merged folder gives the ids of the base model
// with the adapter attached (f32; a flip would need two logits within rounding of each other). Training and
// generation run on `device`.
}  // namespace
void wick::test::cli::Cli::every_family_trains_merges_and_generates(const std::string& device) {
  const std::vector<std::string> dirs = wick::test::model_fixture_dirs();
  ASSERT_FALSE(dirs.empty());
  wick::Rng rng(77);
  for (const std::string& dir : dirs) {
    SCOPED_TRACE(dir);
    std::ifstream cf(fs::path(dir) / "config.json");
    const json cfg = json::parse(cf);
    const std::string family = cfg.at("model_type").get<std::string>();
    const int64_t vocab = cfg.at("vocab_size").get<int64_t>();
    const fs::path work = root_ / ("family_" + device + "_" + fs::path(dir).filename().string());
    fs::create_directories(work);

    const Result info = run_wick({"info", "--model", dir});
    ASSERT_EQ(info.rc, 0) << info.err;
    EXPECT_NE((info.out + info.err).find(family), std::string::npos) << info.out;

    const fs::path data_file = work / "data.jsonl";
    {
      std::ofstream f(data_file);
      for (int i = 0; i < 24; i++) {
        std::vector<int32_t> ids(6 + static_cast<int>(rng.uniform() * 10));
        for (auto& id : ids) id = static_cast<int32_t>(rng.uniform() * static_cast<double>(vocab - 1));
        f << json{{"input_ids", ids}}.dump() << "\n";
      }
    }
    const fs::path adapter = work / "adapter", merged = work / "merged";
    const Result tr = run_wick({"train", "--model", dir, "--data", data_file.string(), "--out", adapter.string(),
                                "--device", device, "--r", "4", "--alpha", "8", "--lr", "2e-2", "--batch-size", "4",
                                "--max-steps", "3", "--seed", "5", "--no-report"});
    ASSERT_EQ(tr.rc, 0) << tr.err;
    ASSERT_TRUE(fs::exists(adapter / "adapter_model.safetensors"));
    ASSERT_TRUE(fs::exists(adapter / "adapter_config.json"));

    const Result mg = run_wick({"merge", "--model", dir, "--adapter", adapter.string(), "--out", merged.string()});
    ASSERT_EQ(mg.rc, 0) << mg.err;
    std::ifstream mcf(merged / "config.json");
    EXPECT_EQ(json::parse(mcf).at("model_type").get<std::string>(), family);
    auto names = [](const fs::path& f) {
      std::vector<std::string> n;
      const auto file = wick::io::SafeTensorsFile::open(f.string());
      for (const auto& t : file->tensors()) n.push_back(t.name);
      std::sort(n.begin(), n.end());
      return n;
    };
    EXPECT_EQ(names(merged / "model.safetensors"), names(fs::path(dir) / "model.safetensors"));

    const std::vector<std::string> gen = {"--prompt-ids", "1,2,3,4,5", "--max-new-tokens", "8", "--temperature", "0",
                                          "--device", device, "--dtype", "f32", "--ignore-eos", "--ids"};
    std::vector<std::string> with_adapter = {"generate", "--model", dir, "--adapter", adapter.string()};
    std::vector<std::string> from_merged = {"generate", "--model", merged.string()};
    with_adapter.insert(with_adapter.end(), gen.begin(), gen.end());
    from_merged.insert(from_merged.end(), gen.begin(), gen.end());
    const Result a = run_wick(with_adapter), m = run_wick(from_merged);
    ASSERT_EQ(a.rc, 0) << a.err;
    ASSERT_EQ(m.rc, 0) << m.err;
    const json ids_a = last_json_line(a.out), ids_m = last_json_line(m.out);
    ASSERT_TRUE(ids_a.is_array()) << a.out;
    EXPECT_EQ(ids_a.size(), 8u);
    for (const auto& v : ids_a) EXPECT_LT(v.get<int64_t>(), vocab);
    EXPECT_EQ(ids_a, ids_m) << "merged model vs base + adapter";
  }
}
namespace {

TEST_F(Cli, EveryFixtureFamilyTrainsMergesAndGenerates) { every_family_trains_merges_and_generates("cpu"); }

// The same on the GPU (skipped, with the reason, where none is usable).
TEST_F(Cli, EveryFixtureFamilyTrainsMergesAndGeneratesOnCuda) {
  WICK_REQUIRE_CUDA();
  every_family_trains_merges_and_generates("cuda");
}

TEST_F(Cli, GenerateAtTheModelsContextLimit) {
  // A model that reads 16 positions: a 20-token prompt is refused with the real remedy (a shorter prompt),
  // and --max-new-tokens 2^63-1 generates until the context is full instead of overflowing a shape.
  const fs::path m = root_ / "ctx16";
  wick::ModelConfig c = wick::preset_config("tiny");
  c.vocab_size = 1024;
  c.max_position_embeddings = 16;
  wick::write_random_model(c, m.string(), 4, wick::DType::F32, "");
  std::string ids20;
  for (int i = 0; i < 20; i++) ids20 += (i ? "," : "") + std::to_string(100 + i);
  Result r = run_wick({"generate", "--model", m.string(), "--prompt-ids", ids20, "--device", "cpu"});
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("shorten the prompt"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("raise the context length"), std::string::npos) << r.err;
  r = run_wick({"generate", "--model", m.string(), "--prompt-ids", "1,2,3", "--max-new-tokens", "9223372036854775807",
                "--device", "cpu", "--ignore-eos"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("stop: context"), std::string::npos) << r.err;
}

TEST_F(Cli, ChatSurvivesBadLines) {
  // An invalid UTF-8 line and a turn longer than the model reads are reported; the session goes on and
  // answers the next line.
  if (!have_tok_) GTEST_SKIP() << "needs the fetched Qwen tokenizer (chat template)";
  const fs::path m = root_ / "chat16";
  wick::ModelConfig c = wick::preset_config("tiny");
  c.max_position_embeddings = 48;
  wick::write_random_model(c, m.string(), 4, wick::DType::F32, wick::default_tokenizer_dir());
  const fs::path in = root_ / "chat-in.txt";
  std::string longline;
  for (int i = 0; i < 60; i++) longline += "word ";
  std::ofstream(in) << "bad \xff\xfe bytes\n" << longline << "\nhi\n";
  const Result r = run_wick({"-c", std::string("exec ") + WICK_BINARY + " chat --model " + m.string() +
                                       " --device cpu --max-new-tokens 3 < " + in.string()},
                            nullptr, "/bin/sh");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("shorten the prompt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the conversation goes on"), std::string::npos) << r.err;
}

}  // namespace

namespace {

// A missing tokenizer is refused before anything is written: no half-made model folder is left behind.
TEST(CliInitModel, MissingTokenizerLeavesNoFolder) {
  const fs::path base = fs::temp_directory_path() / ("wick_cli_init_" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "empty-tokenizer");
  const fs::path out = base / "model";
  const Result r = run_wick({"init-model", "--preset", "tiny", "--out", out.string(), "--tokenizer-dir",
                             (base / "empty-tokenizer").string()});
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("tokenizer.json"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out / "model.safetensors")) << "weights written before the tokenizer was checked";
  fs::remove_all(base);
}

}  // namespace
