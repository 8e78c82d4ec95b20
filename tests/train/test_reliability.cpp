// Issue 10 "nothing lost, nothing silently wrong" (docs/reliability.md), library level: options validated
// before any work against the loaders' rules, output folders never replaced unasked, non-finite steps
// stopped (or skipped) without touching the last good checkpoint, a step with no counted token reported as
// no loss, the model file changed under a running process, and config.json disagreeing with the weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include <unistd.h>

#include "core/warn.h"
#include "io/peft_adapter.h"
#include "io/output_folder.h"
#include "lora/lora.h"
#include "model/presets.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TrainOptions good_options(const std::string& out) {
  TrainOptions o;
  o.out_dir = out;
  o.lora.r = 4;
  o.lora.alpha = 8;
  o.lora.target_modules = {"q_proj", "v_proj"};
  o.max_steps = 3;
  o.batch_size = 2;
  return o;
}

TEST(Reliability, EveryOptionIsValidatedWithOneClearLine) {
  // Each bad value is refused by validate_train_options (called by `wick train` and wick::train before
  // loading anything) with an error naming the option - including the ones that used to train and then
  // fail at the end (--dropout -0.5: the written adapter_config.json was refused by wick's own loader).
  struct Case {
    const char* name;
    std::function<void(TrainOptions&)> set;
    const char* mentions;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<Case> cases = {
      {"dropout -0.5", [](TrainOptions& o) { o.lora.dropout = -0.5; }, "--dropout"},
      {"dropout 1", [](TrainOptions& o) { o.lora.dropout = 1.0; }, "--dropout"},
      {"alpha NaN", [&](TrainOptions& o) { o.lora.alpha = nan; }, "--alpha"},
      {"alpha inf", [&](TrainOptions& o) { o.lora.alpha = inf; }, "--alpha"},
      {"rank 0", [](TrainOptions& o) { o.lora.r = 0; }, "--rank"},
      {"no targets", [](TrainOptions& o) { o.lora.target_modules.clear(); }, "--targets"},
      {"lr -1e-4", [](TrainOptions& o) { o.lr = -1e-4; }, "--lr"},
      {"lr NaN", [&](TrainOptions& o) { o.lr = nan; }, "--lr"},
      {"max-steps 0", [](TrainOptions& o) { o.max_steps = 0; }, "--max-steps"},
      {"max-steps -5", [](TrainOptions& o) { o.max_steps = -5; }, "--max-steps"},
      {"epochs 0", [](TrainOptions& o) { o.max_steps = -1, o.epochs = 0; }, "--epochs"},
      {"epochs -1", [](TrainOptions& o) { o.max_steps = -1, o.epochs = -1; }, "--epochs"},
      {"epochs NaN", [&](TrainOptions& o) { o.max_steps = -1, o.epochs = nan; }, "--epochs"},
      {"max-seq-len 1", [](TrainOptions& o) { o.max_seq_len = 1; }, "--max-seq-len"},
      {"max-seq-len 0", [](TrainOptions& o) { o.max_seq_len = 0; }, "--max-seq-len"},
      {"warmup-steps -3", [](TrainOptions& o) { o.warmup_steps = -3; }, "--warmup-steps"},
      {"warmup-ratio -0.1", [](TrainOptions& o) { o.warmup_ratio = -0.1; }, "--warmup-ratio"},
      {"warmup-ratio 1.5", [](TrainOptions& o) { o.warmup_ratio = 1.5; }, "--warmup-ratio"},
      {"weight-decay -0.01", [](TrainOptions& o) { o.weight_decay = -0.01; }, "--weight-decay"},
      {"eps 0", [](TrainOptions& o) { o.eps = 0; }, "--eps"},
      {"eps -1e-8", [](TrainOptions& o) { o.eps = -1e-8; }, "--eps"},
      {"beta1 1", [](TrainOptions& o) { o.beta1 = 1.0; }, "--betas"},
      {"beta2 -0.1", [](TrainOptions& o) { o.beta2 = -0.1; }, "--betas"},
      {"beta2 NaN", [&](TrainOptions& o) { o.beta2 = nan; }, "--betas"},
      {"grad-accum 0", [](TrainOptions& o) { o.grad_accum = 0; }, "--grad-accum"},
      {"batch-size -1", [](TrainOptions& o) { o.batch_size = -1; }, "--batch-size"},
      {"max-grad-norm -1", [](TrainOptions& o) { o.max_grad_norm = -1; }, "--max-grad-norm"},
      {"max-grad-norm NaN", [&](TrainOptions& o) { o.max_grad_norm = nan; }, "--max-grad-norm"},
      {"save-every -1", [](TrainOptions& o) { o.save_every = -1; }, "--save-every"},
      {"eval-every -1", [](TrainOptions& o) { o.eval_every = -1; }, "--eval-every"},
      {"scheduler", [](TrainOptions& o) { o.scheduler = "cosine_with_restarts"; }, "constant_with_warmup"},
      {"on-nan", [](TrainOptions& o) { o.on_nan = "ignore"; }, "--on-nan"},
      {"no out", [](TrainOptions& o) { o.out_dir.clear(); }, "--out"},
  };
  EXPECT_NO_THROW(validate_train_options(good_options("x")));
  for (const Case& c : cases) {
    TrainOptions o = good_options("x");
    c.set(o);
    const std::string msg = error_message([&] { validate_train_options(o); });
    EXPECT_NE(msg.find(c.mentions), std::string::npos) << c.name << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.name << ": one line: " << msg;
    EXPECT_EQ(msg.find("<no error>"), std::string::npos) << c.name;
    EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << c.name << ": " << msg;
  }
  // The Trainer applies the same rules (a library user who skips the check still cannot start such a run).
  TempDir tmp;
  Rng rng(1);
  const Dataset data = write_and_load(random_examples(rng, 4, 3, 8, tiny_config().vocab_size), tmp.file("d.jsonl"),
                                      tiny_config().vocab_size);
  TrainOptions o = good_options(tmp.file("out"));
  o.lora.dropout = -0.5;
  auto m = CausalLM::random(tiny_config(), Device::cpu(), DType::F32, 1);
  EXPECT_WICK_ERROR(Trainer(*m, data, o), "--dropout");
}

TEST(Reliability, TheAdapterConfigRulesAreTheLoadersRules) {
  // What validation accepts, the loader reads back; what the loader refuses, validation refuses.
  for (double d : {-0.5, 0.0, 0.3, 0.999, 1.0, 2.0}) {
    io::LoraConfig c;
    c.dropout = d;
    const bool ok = error_message([&] { c.check("x"); }) == "<no error>";
    const bool loads = error_message([&] { io::LoraConfig::from_json_string(c.to_json(), "x"); }) == "<no error>";
    EXPECT_EQ(ok, loads) << "dropout " << d;
  }
}

TEST(Reliability, NonEmptyOutputFolderIsRefusedUnlessOverwrite) {
  TempDir tmp;
  const std::string run = tmp.file("run");
  TrainOptions o = good_options(run);
  EXPECT_NO_THROW(check_train_output(o));  // absent
  fs::create_directories(run);
  EXPECT_NO_THROW(check_train_output(o));  // empty
  write_bytes(run + "/adapter_model.safetensors", "x");
  EXPECT_WICK_ERROR(check_train_output(o), "not empty", run, "--overwrite", "--resume");
  o.overwrite = true;
  EXPECT_NO_THROW(check_train_output(o));
  o.overwrite = false;
  o.resume = run;  // resuming into itself
  EXPECT_NO_THROW(check_train_output(o));
  fs::create_directories(run + "/checkpoint-4");
  o.resume = run + "/checkpoint-4";  // or from one of its checkpoints
  EXPECT_NO_THROW(check_train_output(o));
  o.resume = tmp.file("other");  // another run's checkpoint into this non-empty folder
  EXPECT_WICK_ERROR(check_train_output(o), "not empty", "--overwrite");
  // A file where the folder should be.
  write_bytes(tmp.file("file"), "x");
  EXPECT_WICK_ERROR(io::check_output_folder(tmp.file("file"), false, "hint"), "not a folder");
}

TEST(Reliability, MergeIntoAnotherModelsFolderNeedsOverwriteAndLeavesNothingOld) {
  TempDir tmp;
  ModelConfig c = tiny_config();
  const std::string base = tmp.file("base"), other = tmp.file("other"), adapter = tmp.file("adapter");
  write_random_model(c, base, 1, DType::F32, "");
  write_random_model(c, other, 2, DType::F32, "");
  // The other folder looks like a sharded model with a tokenizer: none of it may survive the merge.
  write_bytes(other + "/model.safetensors.index.json", R"({"weight_map": {}})");
  write_bytes(other + "/model-00001-of-00002.safetensors", "old");
  write_bytes(other + "/tokenizer.json", "{}");
  write_bytes(other + "/notes.txt", "mine");
  {
    auto m = CausalLM::random(c, Device::cpu(), DType::F32, 1);
    io::LoraConfig lc;
    lc.r = 2;
    attach_new_adapters(*m, lc, 3);
    io::save_peft_adapter(adapter, lc, export_adapters(*m));
  }
  EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, other), "not empty", other, "--overwrite");
  EXPECT_EQ(file_bytes(other + "/tokenizer.json"), "{}");  // untouched
  merge_adapter_folder(base, adapter, other, 5'000'000'000, true);
  EXPECT_FALSE(fs::exists(other + "/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(other + "/model-00001-of-00002.safetensors"));
  EXPECT_FALSE(fs::exists(other + "/tokenizer.json"));  // base has none
  EXPECT_TRUE(fs::exists(other + "/notes.txt"));        // not a model file
  EXPECT_NO_THROW(CausalLM::load(other, Device::cpu(), DType::F32));
}

// A merge whose --out is, lies inside or holds an input folder: --overwrite would remove the input's
// *.safetensors before writing (the adapter's weights were lost so). Refused, with or without --overwrite,
// the inputs untouched.
TEST(Reliability, MergeNeverWritesIntoOrOverItsInputFolders) {
  TempDir tmp;
  ModelConfig c = tiny_config();
  const std::string base = tmp.file("base"), adapter = tmp.file("adapter");
  write_random_model(c, base, 1, DType::F32, "");
  {
    auto m = CausalLM::random(c, Device::cpu(), DType::F32, 1);
    io::LoraConfig lc;
    lc.r = 2;
    attach_new_adapters(*m, lc, 3);
    io::save_peft_adapter(adapter, lc, export_adapters(*m));
  }
  const std::string weights = file_bytes(adapter + "/adapter_model.safetensors");
  for (bool overwrite : {false, true}) {
    SCOPED_TRACE(overwrite);
    EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, adapter, 5'000'000'000, overwrite), "--out", "is the --adapter folder");
    EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, adapter + "/", 5'000'000'000, overwrite), "is the --adapter folder");
    EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, adapter + "/sub/merged", 5'000'000'000, overwrite),
                      "lies inside the --adapter folder");
    EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, base + "/../adapter/.", 5'000'000'000, overwrite),
                      "is the --adapter folder");
    EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, base, 5'000'000'000, overwrite), "is the --model folder");
    EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, base + "/merged", 5'000'000'000, overwrite),
                      "lies inside the --model folder");
    EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, tmp.path(), 5'000'000'000, overwrite), "holds the --model folder");
  }
  // A symbolic link to the adapter folder is the adapter folder.
  fs::create_directory_symlink(adapter, tmp.file("adapter-link"));
  EXPECT_WICK_ERROR(merge_adapter_folder(base, adapter, tmp.file("adapter-link"), 5'000'000'000, true), "--adapter");
  EXPECT_EQ(file_bytes(adapter + "/adapter_model.safetensors"), weights);
  EXPECT_FALSE(fs::exists(adapter + "/sub"));
  EXPECT_FALSE(fs::exists(base + "/merged"));
  // A sibling folder whose name starts like an input's is not inside it.
  EXPECT_NO_THROW(merge_adapter_folder(base, adapter, tmp.file("adapter-merged")));
}

TEST(Reliability, AnOutputFileIsNeverAnInputFile) {
  TempDir tmp;
  const std::string m = tmp.file("m");
  write_bytes(m + "/model.safetensors", "weights");
  write_bytes(m + "/config.json", "{}");
  const std::vector<std::pair<std::string, std::string>> in = {{"--model", m}, {"--adapter", ""}};
  EXPECT_WICK_ERROR(io::check_output_file_not_input(m + "/model.safetensors", "--out", in), "--out", "--model");
  EXPECT_WICK_ERROR(io::check_output_file_not_input(m + "/./x/../model.safetensors", "--out", in), "--model");
  EXPECT_WICK_ERROR(io::check_output_file_not_input(m + "/new.safetensors", "--out", in), "lies inside the --model folder");
  EXPECT_NO_THROW(io::check_output_file_not_input(m + "/new.gguf", "--out", in));  // where llama.cpp writes
  fs::create_hard_link(m + "/model.safetensors", tmp.file("hard"));
  EXPECT_WICK_ERROR(io::check_output_file_not_input(tmp.file("hard"), "--out", in), "is the --model file");
  fs::create_symlink(m + "/config.json", tmp.file("soft"));
  EXPECT_WICK_ERROR(io::check_output_file_not_input(tmp.file("soft"), "--out", in), "is the --model file");
  EXPECT_NO_THROW(io::check_output_file_not_input(tmp.file("m.gguf"), "--out", in));
  EXPECT_NO_THROW(io::check_output_file_not_input(tmp.file("new/m.gguf"), "--out", in));
  EXPECT_EQ(file_bytes(m + "/model.safetensors"), "weights");
}

// One run at a time per output folder: a second lock fails at once naming the folder and the holder's pid;
// the lock file is not output (a folder holding only it is empty) and goes with the lock, as does a folder
// the lock created and nothing filled.
TEST(Reliability, AnOutputFolderIsLockedByOneRunAtATime) {
  TempDir tmp;
  const std::string run = tmp.file("run");
  {
    io::OutputLock lock(run, "--out");
    EXPECT_TRUE(fs::exists(run + "/" + io::kLockFileName));
    EXPECT_WICK_ERROR(io::OutputLock(run, "--out"), run, "pid " + std::to_string(::getpid()), "--out");
    EXPECT_TRUE(io::folder_is_empty(run));
    EXPECT_NO_THROW(check_train_output(good_options(run)));
  }
  EXPECT_FALSE(fs::exists(run));  // created by the lock, left empty
  fs::create_directories(run);
  write_bytes(run + "/" + io::kLockFileName, "12345\n");  // a stale one: its process is gone
  {
    io::OutputLock lock(run, "--out");
    write_bytes(run + "/adapter_model.safetensors", "x");
    EXPECT_WICK_ERROR(io::OutputLock(run, "--out"), "pid " + std::to_string(::getpid()));
    EXPECT_FALSE(io::folder_is_empty(run));
  }
  EXPECT_FALSE(fs::exists(run + "/" + io::kLockFileName));
  EXPECT_TRUE(fs::exists(run + "/adapter_model.safetensors"));
}

struct NanRun : ::testing::Test {
  TempDir tmp;
  Dataset data;
  void SetUp() override {
    Rng rng(5);
    data = write_and_load(random_examples(rng, 8, 4, 10, tiny_config().vocab_size), tmp.file("d.jsonl"),
                          tiny_config().vocab_size);
  }
  // lr 1e30: step 1 moves B to ~1e30, so step 2's forward overflows to inf/NaN.
  TrainOptions blowup(const std::string& out) {
    TrainOptions o = good_options(out);
    o.lr = 1e30;
    o.scheduler = "constant";
    o.max_grad_norm = 0;
    o.max_steps = 4;
    o.save_every = 1;
    return o;
  }
};

TEST_F(NanRun, StopKeepsTheLastGoodCheckpointAndNamesStepAndTensor) {
  const std::string out = tmp.file("nan");
  auto m = CausalLM::random(tiny_config(), Device::cpu(), DType::F32, 7);
  Trainer t(*m, data, blowup(out));
  const std::string msg = error_message([&] { run_trainer(t); });
  EXPECT_NE(msg.find("step 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lora_"), std::string::npos) << "names the tensor: " << msg;
  EXPECT_NE(msg.find("checkpoint-1"), std::string::npos) << "says where the good checkpoint is: " << msg;
  EXPECT_NE(msg.find("--on-nan skip"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("<no error>"), std::string::npos) << "a NaN run used to finish \"done\"";
  // The last good checkpoint is step 1's, finite, and resumable; metrics hold only the good step.
  EXPECT_EQ(ckpt(out), out + "/checkpoint-1");
  for (float v : io::SafeTensorsFile::open(out + "/adapter_model.safetensors")->get(
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").to_f32_vector())
    ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ(read_metrics(out).size(), 1u);
}

TEST_F(NanRun, SkipUpdatesNothingAndLogsTheStep) {
  const std::string out = tmp.file("skip");
  TrainOptions o = blowup(out);
  o.on_nan = "skip";
  auto m = CausalLM::random(tiny_config(), Device::cpu(), DType::F32, 7);
  Trainer t(*m, data, o);
  std::vector<std::string> told;
  t.set_skip_callback([&](const std::string& l) { told.push_back(l); });
  EXPECT_TRUE(run_trainer(t));
  EXPECT_EQ(t.skipped_steps(), 3);
  ASSERT_EQ(told.size(), 3u);
  EXPECT_NE(told[0].find("step 2"), std::string::npos) << told[0];
  const auto recs = read_metrics(out);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_FALSE(recs[0].contains("skipped"));
  for (size_t i = 1; i < 4; i++) EXPECT_TRUE(recs[i].value("skipped", false)) << i;
  // The skipped steps changed nothing: the adapter is step 1's, finite, and AdamW counted one update.
  for (float v : io::SafeTensorsFile::open(out + "/adapter_model.safetensors")->get(
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").to_f32_vector())
    ASSERT_TRUE(std::isfinite(v));
  const json st = json::parse(file_bytes(ckpt(out) + "/trainer_state.json"));
  EXPECT_EQ(st.at("optimizer_steps").get<int64_t>(), 1);
}

TEST(Reliability, AStepWithNoCountedTokenHasNoLoss) {
  // Every label -100: there is no loss to report (it used to log 0.0, a perfect score).
  TempDir tmp;
  Dataset d;
  d.path = "masked";
  for (int i = 0; i < 2; i++) {
    Example e;
    e.ids = {1, 2, 3, 4};
    e.labels = {-100, -100, -100, -100};
    d.examples.push_back(e);
  }
  Rng rng(3);
  d.examples.push_back(random_example(rng, 6, 1, tiny_config().vocab_size));
  TrainOptions o = good_options(tmp.file("out"));
  o.shuffle = false;
  o.batch_size = 1;
  o.max_steps = 3;
  auto m = CausalLM::random(tiny_config(), Device::cpu(), DType::F32, 2);
  Trainer t(*m, d, o);
  std::vector<double> losses;
  ASSERT_TRUE(t.run([&](const StepReport& r) { losses.push_back(r.loss); }));
  ASSERT_EQ(losses.size(), 3u);
  EXPECT_TRUE(std::isnan(losses[0]));
  EXPECT_TRUE(std::isnan(losses[1]));
  EXPECT_TRUE(std::isfinite(losses[2]) && losses[2] > 0);
  const auto recs = read_metrics(tmp.file("out"));
  EXPECT_TRUE(recs[0].at("loss").is_null()) << recs[0].dump();
  EXPECT_EQ(recs[0].at("counted_tokens").get<int64_t>(), 0);
}

TEST(Reliability, ModelFileTruncatedWhileRunningDoesNotCrash) {
  // The weights are copied out of the mmapped file at load: truncating or rewriting model.safetensors in
  // place under a running process used to kill it with SIGBUS at the next forward.
  TempDir tmp;
  const ModelConfig c = tiny_config();
  const std::string dir = tmp.file("m");
  write_random_model(c, dir, 4, DType::F32, "");
  auto m = CausalLM::load(dir, Device::cpu(), DType::F32);
  const Tensor ids = Tensor::from_i32({1, 2, 3, 4}, {1, 4});
  const std::vector<float> before = m->forward(ids, nullptr, false).to_f32_vector();
  fs::resize_file(dir + "/model.safetensors", 0);
  write_bytes(dir + "/model.safetensors", "rewritten");
  const std::vector<float> after = m->forward(ids, nullptr, false).to_f32_vector();
  EXPECT_EQ(before, after);
}

TEST(Reliability, ConfigWithFewerLayersThanTheCheckpointIsRefused) {
  TempDir tmp;
  ModelConfig c = tiny_config();
  c.num_layers = 3;
  const std::string dir = tmp.file("m");
  write_random_model(c, dir, 4, DType::F32, "");
  json cfg = json::parse(file_bytes(dir + "/config.json"));
  cfg["num_hidden_layers"] = 2;
  write_bytes(dir + "/config.json", cfg.dump());
  EXPECT_WICK_ERROR(CausalLM::load(dir, Device::cpu(), DType::F32), "layer 2", "num_hidden_layers = 2");
}

TEST(Reliability, UnusedTensorsAreReported) {
  TempDir tmp;
  const ModelConfig c = tiny_config();
  const std::string dir = tmp.file("m");
  write_random_model(c, dir, 4, DType::F32, "");
  // Add a tensor the architecture does not use.
  {
    const auto f = io::SafeTensorsFile::open(dir + "/model.safetensors");
    std::vector<std::pair<std::string, Tensor>> all;
    for (const auto& ti : f->tensors()) all.emplace_back(ti.name, f->get(ti.name).clone());
    all.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", Tensor::zeros({4}, DType::F32));
    io::save_safetensors(dir + "/model.safetensors", all);
  }
  std::vector<std::string> warnings;
  auto old = set_warning_sink([&](const std::string& w) { warnings.push_back(w); });
  EXPECT_NO_THROW(CausalLM::load(dir, Device::cpu(), DType::F32));
  set_warning_sink(old);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("rotary_emb.inv_freq"), std::string::npos) << warnings[0];
}

// A warmup as long as the run never reaches the learning rate: warned of (the run still does what was asked, as
// transformers' schedules do); a shorter one is not.
TEST(Reliability, AWarmupAsLongAsTheRunIsWarnedOf) {
  TempDir tmp;
  const ModelConfig c = tiny_config();
  Rng rng(3);
  const Dataset data = write_and_load(random_examples(rng, 4, 3, 8, c.vocab_size), tmp.file("d.jsonl"), c.vocab_size);
  for (const int64_t warmup : {10, 3, 2}) {
    TrainOptions o = good_options(tmp.file("out" + std::to_string(warmup)));
    o.max_steps = 3;
    o.warmup_steps = warmup;
    o.scheduler = "linear";
    auto m = CausalLM::random(c, Device::cpu(), DType::F32, 1);
    std::vector<std::string> warnings;
    auto old = set_warning_sink([&](const std::string& w) { warnings.push_back(w); });
    Trainer t(*m, data, o);
    set_warning_sink(old);
    if (warmup >= 3) {
      ASSERT_EQ(warnings.size(), 1u) << "warmup " << warmup;
      EXPECT_NE(warnings[0].find("the warmup (" + std::to_string(warmup) + " steps) is as long as the run (3 steps)"),
                std::string::npos)
          << warnings[0];
    } else {
      EXPECT_TRUE(warnings.empty()) << "warmup " << warmup << ": " << warnings[0];
    }
  }
}

}  // namespace
}  // namespace wick::test
