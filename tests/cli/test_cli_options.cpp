// The option rules of the built `wick` binary: wick train's --config files, aliases and run.toml (the option
// table: src/train/train_options.h), an option given twice, Hub ids not in the cache.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli_harness.h"
#include "io/safetensors.h"

using namespace wick::test::cli;

namespace {

std::vector<json> loss_records(const fs::path& dir) {
  std::vector<json> out;
  std::ifstream f(dir / "metrics.jsonl");
  for (std::string l; std::getline(f, l);) {
    json r = json::parse(l);
    r.erase("tokens_per_s");
    if (r.contains("loss")) out.push_back(r);
  }
  return out;
}

TEST_F(Cli, ConfigFileWithAliasesTheCommandLineOverridesAndRunTomlRepeats) {
  const fs::path cfg = root_ / "c.toml";
  std::ofstream(cfg) << "model = \"" << small_.string() << "\"\ndata = \"" << data("dc.jsonl", 6, 9)
                     << "\"\nlearning_rate = 5e-3\nlora_r = 2\nmax_steps = 5\ndevice = \"cpu\"\n"
                     << "target_modules = [\"q_proj\", \"v_proj\"]\nper_device_train_batch_size = 2\n";
  const fs::path a = root_ / "cfg-a", b = root_ / "cfg-b";
  const Result t = run_wick({"train", "--config", cfg.string(), "--output-dir", a.string(), "--max-steps", "2",
                             "--lora-alpha", "8", "--gradient-accumulation-steps", "2"});
  ASSERT_EQ(t.rc, 0) << t.err;
  for (const std::string& want : {"LoRA   r 2, alpha 8 (scale 4)", "targets q_proj,v_proj", "AdamW  lr 0.005",
                                  "batch 2 x grad-accum 2", "step 2/2"})
    EXPECT_NE(t.err.find(want), std::string::npos) << want << " in\n" << t.err;
  const std::string toml = wick::io::read_file((a / "run.toml").string());
  for (const std::string& want : {"max_steps = 2\n", "rank = 2\n", "alpha = 8.0\n", "grad_accum = 2\n", "lr = 0.005\n"})
    EXPECT_NE(toml.find(want), std::string::npos) << want << " in\n" << toml;
  const Result r = run_wick({"train", "--config", (a / "run.toml").string(), "--out", b.string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(loss_records(a), loss_records(b));
  EXPECT_EQ(wick::io::read_file((a / "adapter_model.safetensors").string()),
            wick::io::read_file((b / "adapter_model.safetensors").string()));
  // A misspelt key names itself.
  std::ofstream(root_ / "bad.toml") << "learning_rat = 1\n";
  const Result bad = run_wick({"train", "--config", (root_ / "bad.toml").string()});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("learning_rat"), std::string::npos) << bad.err;
}

// One option given twice on the command line, under one spelling or two (--rank 8 --lora-r 16, --rank 8 --rank 16):
// the last one used to win without a word. Different values are refused before any work, naming both flags and
// values; the same value twice (as the option reads it: 1e-4 and 0.0001) is accepted.
TEST_F(Cli, AnOptionGivenTwiceWithDifferentValuesIsRefused) {
  const std::string d = data("twice.jsonl", 4, 5);
  struct Case {
    std::vector<std::string> flags, mentions;
  };
  const std::vector<Case> cases = {
      {{"--rank", "8", "--lora-r", "16"}, {"'--rank' (8) and '--lora-r' (16) name one option, rank, with different values"}},
      {{"--rank", "8", "--rank", "16"}, {"--rank: given twice with different values, 8 and 16"}},
      {{"--r", "4", "--rank", "4", "--lora-r=2"}, {"'--r' (4)", "'--lora-r' (2)"}},
      {{"--lr", "1e-4", "--learning-rate", "2e-4"}, {"'--lr' (1e-4)", "'--learning-rate' (2e-4)"}},
      {{"--max-seq-length", "64", "--max-seq-len", "128"}, {"'--max-seq-length' (64)", "'--max-seq-len' (128)"}},
      {{"--targets", "q_proj", "--targets", "v_proj"}, {"--targets: given twice", "q_proj and v_proj"}},
      {{"--rslora", "--use-rslora=false"}, {"'--rslora' (true)", "'--use-rslora' (false)"}},
  };
  for (const Case& c : cases) {
    const fs::path out = root_ / "twice-refused";
    std::vector<std::string> a = {"train", "--model", small_.string(), "--data", d, "--out", out.string(), "--device",
                                  "cpu", "--max-steps", "1"};
    a.insert(a.end(), c.flags.begin(), c.flags.end());
    const Result r = run_wick(a);
    EXPECT_EQ(r.rc, 1) << c.flags[0] << "\n" << r.err;
    EXPECT_EQ(r.err_lines().size(), 1u) << c.flags[0] << "\n" << r.err;
    for (const std::string& m : c.mentions) EXPECT_NE(r.err.find(m), std::string::npos) << m << " in\n" << r.err;
    EXPECT_FALSE(fs::exists(out)) << c.flags[0] << ": nothing written";
    fs::remove_all(out);
  }
  // The same value twice, under two spellings or one: accepted, and that value is what runs.
  const fs::path out = root_ / "twice-same";
  const Result ok = run_wick({"train", "--model", small_.string(), "--data", d, "--out", out.string(), "--device", "cpu",
                              "--max-steps", "1", "--rank", "8", "--lora-r", "8", "--lr", "1e-4", "--learning-rate",
                              "0.0001", "--targets", "q_proj,v_proj", "--targets", "q_proj,v_proj", "--packing",
                              "--packing", "--sample-prompt", "first", "--sample-prompt", "second"});
  ASSERT_EQ(ok.rc, 0) << ok.err;
  for (const std::string& want : {"LoRA   r 8,", "targets q_proj,v_proj", "AdamW  lr 0.0001"})
    EXPECT_NE(ok.err.find(want), std::string::npos) << want << " in\n" << ok.err;
  // A repeatable option (--sample-prompt) still takes every value.
  const std::string toml = wick::io::read_file((out / "run.toml").string());
  for (const std::string& want : {"rank = 8\n", "packing = true\n", "sample_prompt = [ \"first\", \"second\" ]\n"})
    EXPECT_NE(toml.find(want), std::string::npos) << want << " in\n" << toml;
  // A flag's value (--packing=false) is its value: it overrides the config file's (it was ignored: packing ran).
  const fs::path cfg = root_ / "packing.toml", out2 = root_ / "flag-value";
  std::ofstream(cfg) << "packing = true\n";
  const Result off = run_wick({"train", "--config", cfg.string(), "--model", small_.string(), "--data", d, "--out",
                               out2.string(), "--device", "cpu", "--max-steps", "1", "--packing=false"});
  ASSERT_EQ(off.rc, 0) << off.err;
  const std::string toml2 = wick::io::read_file((out2 / "run.toml").string());
  EXPECT_NE(toml2.find("packing = false\n"), std::string::npos) << toml2;
}

// Every other command takes train's rule for a repeated option (cli/commands.h take_repeats_of_one_value): the same
// value again runs as if given once, different values are one line naming the option and both values.
TEST_F(Cli, OtherCommandsTakeARepeatedOptionOfOneValueAndRefuseTwoValues) {
  const std::vector<std::string> base = {"generate", "--model", model_.string(), "--device", "cpu", "--ids"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return run_wick(a);
  };
  const Result once = with({"--prompt-ids", "11,22,33", "--max-new-tokens", "4", "--temperature", "0.7", "--seed", "5"});
  ASSERT_EQ(once.rc, 0) << once.err;
  const Result twice = with({"--prompt-ids", "11,22,33", "--prompt-ids", "11,22,33", "--max-new-tokens", "4",
                             "--temperature", "0.7", "--temperature", "0.7", "--seed", "5", "--seed", "5"});
  ASSERT_EQ(twice.rc, 0) << twice.err;
  expect_ids(last_json_line(twice.out), 4);
  EXPECT_EQ(last_json_line(twice.out), last_json_line(once.out)) << "the same values twice must run as once";
  // A repeatable option keeps every value (two stop strings are not a conflict).
  const Result stops = with({"--prompt-ids", "11,22,33", "--max-new-tokens", "2", "--stop", "x", "--stop", "y"});
  EXPECT_EQ(stops.rc, 0) << stops.err;
  struct Case {
    std::vector<std::string> args;
    std::string option, values;
  };
  const fs::path tok = model_ / "tokenizer.json";
  std::vector<Case> cases = {
      {{"generate", "--model", model_.string(), "--device", "cpu", "--prompt-ids", "1,2", "--max-new-tokens", "2",
        "--max-new-tokens", "3"},
       "--max-new-tokens", "2 and 3"},
      {{"generate", "--model", model_.string(), "--device", "cpu", "--prompt-ids", "1,2", "--prompt-ids", "1,3"},
       "--prompt-ids", "1,2 and 1,3"},
      {{"info", "--model", model_.string(), "--model", root_.string()}, "--model", model_.string() + " and "},
  };
  if (have_tok_) cases.push_back({{"tokenize", "--model", model_.string(), "--text", "a", "--text", "b"}, "--text", "a and b"});
  for (const Case& c : cases) {
    const Result r = run_wick(c.args);
    EXPECT_EQ(r.rc, 1) << c.args[0] << " " << c.option << "\n" << r.err;
    EXPECT_EQ(r.err_lines().size(), 1u) << r.err;
    EXPECT_NE(r.err.find(c.option + ": given twice with different values, " + c.values), std::string::npos) << r.err;
  }
}

TEST_F(Cli, AHubIdNotInTheCacheShowsTheDownloadCommand) {
  const fs::path cache = root_ / "empty-cache";
  fs::create_directories(cache);
  setenv("HF_HUB_CACHE", cache.c_str(), 1);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"generate", "--model", "Org/Missing", "--prompt-ids", "1"},
        std::vector<std::string>{"info", "--model", "Org/Missing"},
        std::vector<std::string>{"train", "--model", "Org/Missing", "--data", data("dh.jsonl", 2, 1), "--out",
                                 (root_ / "hub-out").string()}}) {
    const Result r = run_wick(args);
    EXPECT_EQ(r.rc, 1) << args[0] << r.err;
    EXPECT_NE(r.err.find("huggingface-cli download Org/Missing"), std::string::npos) << args[0] << r.err;
  }
  unsetenv("HF_HUB_CACHE");
}

}  // namespace
