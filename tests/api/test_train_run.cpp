// The training application layer (src/api/train_run.h) through the public wick::train, on a tiny random
// model on the CPU (bit-reproducible): run.toml repeats a run exactly; checkpoint-N folders are loadable
// adapters, kept within the limit, and --resume continues from the latest complete one exactly; load_best
// puts the lowest-eval-loss adapter at the top; early stopping ends the run; a Hub id from a fake cache
// trains and is recorded in the adapter and model card; TensorBoard and samples are logged.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/train_options.h"
#include "core/rng.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "model/presets.h"
#include "tokenizer/tokenizer_files.h"
#include "wick/wick.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string bytes(const fs::path& p) { return wick::io::read_file(p.string()); }

std::vector<json> metrics(const fs::path& dir, const char* key) {
  std::vector<json> out;
  std::ifstream f(dir / "metrics.jsonl");
  for (std::string l; std::getline(f, l);) {
    json r = json::parse(l);
    if (!r.contains(key)) continue;
    r.erase("tokens_per_s");
    out.push_back(r);
  }
  return out;
}

class TrainRunTest : public ::testing::Test {
 protected:
  static fs::path root_, small_;
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("wick_trainrun_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    small_ = root_ / "small";
    wick::ModelConfig c = wick::preset_config("tiny");
    c.vocab_size = 1024;
    wick::write_random_model(c, small_.string(), 8, wick::DType::F32, "");
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static std::string data(const std::string& name, int n, uint64_t seed) {
    wick::Rng rng(seed);
    const fs::path p = root_ / name;
    std::ofstream f(p);
    for (int i = 0; i < n; i++) {
      std::vector<int32_t> ids(6 + static_cast<int>(rng.below(8)));
      for (auto& id : ids) id = 100 + static_cast<int32_t>(rng.below(900));
      f << json{{"input_ids", ids}}.dump() << "\n";
    }
    return p.string();
  }
  static wick::TrainSettings settings(const std::string& out) {
    wick::TrainSettings t;
    t.model_dir = small_.string();
    t.data = data("d.jsonl", 12, 1);
    t.out_dir = (root_ / out).string();
    t.device = "cpu";
    t.lr = 3e-3;
    t.r = 4;
    t.batch_size = 2;
    t.max_steps = 7;
    t.seed = 5;
    t.dropout = 0.1;  // dropout masks must repeat too
    return t;
  }
  // Trains; stop_after > 0 raises the stop flag once that step is done.
  static wick::TrainSummary train(const wick::TrainSettings& t, int64_t stop_after = 0) {
    std::atomic<bool> stop{false};
    return wick::train(t, [&](const wick::TrainProgress& p) { if (p.step == stop_after) stop = true; }, &stop);
  }
};
fs::path TrainRunTest::root_, TrainRunTest::small_;

TEST_F(TrainRunTest, RunTomlRepeatsTheRunExactly) {
  wick::TrainSettings a = settings("rep-a");
  a.max_steps = 4;
  train(a);
  wick::TrainSettings b = wick::train_settings_from_toml(a.out_dir + "/run.toml");
  EXPECT_EQ(b.model_dir, a.model_dir);
  EXPECT_EQ(b.batch_size, 2);
  b.out_dir = (root_ / "rep-b").string();
  train(b);
  EXPECT_EQ(metrics(a.out_dir, "loss"), metrics(b.out_dir, "loss"));
  EXPECT_EQ(bytes(fs::path(a.out_dir) / "adapter_model.safetensors"), bytes(fs::path(b.out_dir) / "adapter_model.safetensors"));
  // The two run.toml files differ only in the output folder.
  wick::TrainSettings ra = wick::train_settings_from_toml(a.out_dir + "/run.toml");
  const wick::TrainSettings rb = wick::train_settings_from_toml(b.out_dir + "/run.toml");
  ra.out_dir = rb.out_dir;
  EXPECT_EQ(wick::train_settings_toml(ra), wick::train_settings_toml(rb));
}

TEST_F(TrainRunTest, CheckpointFoldersAreAdaptersWithinTheLimitAndResumeExactly) {
  wick::TrainSettings t = settings("ck-full");
  t.save_every = 2;
  t.save_total_limit = 2;
  const wick::TrainSummary full = train(t);
  ASSERT_TRUE(full.completed);
  // Steps 2, 4, 6 saved; the limit keeps the newest two (no eval: no best to protect).
  std::vector<std::string> want = {t.out_dir + "/checkpoint-4", t.out_dir + "/checkpoint-6"};
  EXPECT_EQ(full.checkpoints, want);
  EXPECT_FALSE(fs::exists(t.out_dir + "/checkpoint-2"));
  for (const std::string& d : want) {
    const wick::io::AdapterFiles a = wick::io::load_peft_adapter(d);
    EXPECT_EQ(a.cfg.r, 4);
    EXPECT_TRUE(fs::exists(fs::path(d) / "optimizer.safetensors"));
    const json st = json::parse(bytes(fs::path(d) / "trainer_state.json"));
    EXPECT_EQ(d.substr(d.rfind('-') + 1), std::to_string(st.at("step").get<int64_t>()));
  }
  // Interrupted after step 5, and the top-level state lost (a crash): --resume takes checkpoint-4.
  wick::TrainSettings r = settings("ck-resumed");
  r.save_every = 2;
  r.save_total_limit = 2;
  const wick::TrainSummary part = train(r, 5);
  ASSERT_FALSE(part.completed);
  fs::remove(fs::path(r.out_dir) / "trainer_state.json");
  r.resume = r.out_dir;
  const wick::TrainSummary rest = train(r);
  ASSERT_TRUE(rest.completed);
  EXPECT_EQ(metrics(t.out_dir, "loss"), metrics(r.out_dir, "loss"));
  EXPECT_EQ(bytes(fs::path(t.out_dir) / "adapter_model.safetensors"), bytes(fs::path(r.out_dir) / "adapter_model.safetensors"));
  // And a resumable state at the top again: resuming the finished run continues from step 7.
  r.resume = r.out_dir;
  EXPECT_EQ(train(r).steps, 7);
}

TEST_F(TrainRunTest, LoadBestPutsTheLowestEvalLossAdapterAtTheTop) {
  int swapped = 0;  // seeds whose best adapter was an earlier checkpoint (the swap path ran)
  for (uint64_t seed : {1, 2, 3}) {
    wick::TrainSettings t = settings("best-" + std::to_string(seed));
    t.seed = seed;
    t.lr = 5e-2;  // large: the eval loss moves both ways
    t.max_steps = 5;
    t.eval_split = 0.25;
    t.eval_every = 1;
    t.save_every = 2;
    t.load_best = true;
    const wick::TrainSummary s = train(t);
    ASSERT_TRUE(s.completed);
    // The lowest eval loss among the saved steps (2, 4) and the final one (5).
    int64_t best = -1;
    double lo = 0;
    for (const json& r : metrics(t.out_dir, "eval_loss")) {
      const int64_t step = r.at("step").get<int64_t>();
      if (step % 2 != 0 && step != 5) continue;
      if (best < 0 || r.at("eval_loss").get<double>() < lo) best = step, lo = r.at("eval_loss").get<double>();
    }
    EXPECT_EQ(s.adapter_step, best) << "seed " << seed;
    if (best != 5) {
      swapped++;
      const fs::path from = fs::path(t.out_dir) / ("checkpoint-" + std::to_string(best));
      EXPECT_EQ(bytes(from / "adapter_model.safetensors"), bytes(fs::path(t.out_dir) / "adapter_model.safetensors"));
      EXPECT_FALSE(fs::exists(fs::path(t.out_dir) / "trainer_state.json"));  // the top is no step's state
      EXPECT_TRUE(fs::exists(fs::path(t.out_dir) / "checkpoint-5" / "trainer_state.json"));  // the final one is
    }
  }
  EXPECT_GT(swapped, 0) << "no seed's best adapter was an earlier checkpoint: pick other seeds";
  EXPECT_LT(swapped, 3) << "every seed's best adapter was an earlier checkpoint: pick other seeds";
}

TEST_F(TrainRunTest, EarlyStoppingEndsTheRunAsCompleted) {
  wick::TrainSettings t = settings("early");
  t.max_steps = 20;
  t.eval_split = 0.25;
  t.eval_every = 1;
  t.early_stopping_patience = 2;
  t.early_stopping_threshold = 1e9;  // nothing counts as an improvement after the first evaluation
  const wick::TrainSummary s = train(t);
  EXPECT_TRUE(s.completed);
  EXPECT_TRUE(s.stopped_early);
  EXPECT_EQ(s.steps, 3);  // evaluations 2 and 3 did not improve on 1
  EXPECT_EQ(metrics(t.out_dir, "eval_loss").size(), 3u);
  EXPECT_TRUE(fs::exists(fs::path(t.out_dir) / "trainer_state.json"));
}

TEST_F(TrainRunTest, AHubIdTrainsAndIsRecordedInTheAdapterAndModelCard) {
  const fs::path cache = root_ / "hub";
  const std::string commit = "1111111111111111111111111111111111111111";
  const fs::path snap = cache / "models--Org--Small" / "snapshots" / commit;
  fs::create_directories(snap);
  fs::create_directories(cache / "models--Org--Small" / "refs");
  std::ofstream(cache / "models--Org--Small" / "refs" / "main") << commit;
  for (const auto& e : fs::directory_iterator(small_)) fs::create_symlink(e.path(), snap / e.path().filename());
  const char* old = std::getenv("HF_HUB_CACHE");
  const std::string saved = old ? old : "";
  setenv("HF_HUB_CACHE", cache.c_str(), 1);
  wick::TrainSettings t = settings("hub");
  t.model_dir = "Org/Small";
  t.max_steps = 2;
  const wick::TrainSummary s = train(t);
  const json cfg = json::parse(bytes(fs::path(t.out_dir) / "adapter_config.json"));
  EXPECT_EQ(cfg.at("base_model_name_or_path"), "Org/Small");
  const std::string card = bytes(fs::path(t.out_dir) / "README.md");
  EXPECT_EQ(card.rfind("---\nbase_model: Org/Small\nlibrary_name: peft\n", 0), 0u) << card;
  EXPECT_NE(card.find("- base_model:adapter:Org/Small\n- lora\n"), std::string::npos) << card;
  EXPECT_EQ(wick::train_settings_from_toml(t.out_dir + "/run.toml").model_dir, "Org/Small");
  // The adapter loads on the same id through the public Model.
  wick::LoadSettings ls;
  ls.device = "cpu";
  ls.adapter = s.out_dir;
  wick::Model m("Org/Small", ls);
  EXPECT_EQ(m.info().dir, snap.string());
  if (old) setenv("HF_HUB_CACHE", saved.c_str(), 1);
  else unsetenv("HF_HUB_CACHE");
  // A folder is recorded as an absolute path, and a user's own README.md is left alone.
  wick::TrainSettings f = settings("folder");
  f.max_steps = 1;
  fs::create_directories(f.out_dir);
  std::ofstream(fs::path(f.out_dir) / "README.md") << "mine\n";
  train(f);
  EXPECT_EQ(json::parse(bytes(fs::path(f.out_dir) / "adapter_config.json")).at("base_model_name_or_path"),
            fs::absolute(small_).string());
  EXPECT_EQ(bytes(fs::path(f.out_dir) / "README.md"), "mine\n");
}

TEST_F(TrainRunTest, TensorBoardGetsAScalarPerStep) {
  wick::TrainSettings t = settings("tb");
  t.max_steps = 3;
  t.report_to = "tensorboard";
  train(t);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(t.out_dir) / "tensorboard")) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  const std::string b = bytes(files[0]);
  size_t n = 0;
  for (size_t p = 0; (p = b.find("train/loss", p)) != std::string::npos; p++) n++;
  EXPECT_EQ(n, 3u);
}

TEST_F(TrainRunTest, SamplesGoToMetricsAndTheReport) {
  if (!fs::exists(fs::path(wick::default_tokenizer_dir()) / "tokenizer.json")) GTEST_SKIP() << "no Qwen tokenizer fetched";
  const fs::path model = root_ / "tok-model";
  wick::ModelConfig c = wick::preset_config("tiny");
  wick::write_random_model(c, model.string(), 9, wick::DType::F32, wick::default_tokenizer_dir());
  wick::TrainSettings t = settings("samples");
  t.model_dir = model.string();
  t.data = data("dt.jsonl", 6, 2);
  t.max_steps = 4;
  t.sample_every = 2;
  t.sample_prompts = {"Say <ahoy> & \"hi\"", "second"};
  t.sample_max_new_tokens = 3;
  train(t);
  const std::vector<json> s = metrics(t.out_dir, "sample");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].at("step"), 2);
  EXPECT_EQ(s[1].at("sample_prompt"), "second");
  EXPECT_EQ(s[3].at("step"), 4);
  const std::string html = bytes(fs::path(t.out_dir) / "report.html");
  EXPECT_NE(html.find("<h2>Samples</h2>"), std::string::npos);
  EXPECT_NE(html.find("Say &lt;ahoy&gt; &amp; &quot;hi&quot;"), std::string::npos);
}

TEST_F(TrainRunTest, ApiErrorsNameTheSettingsField) {
  wick::TrainSettings t = settings("err");
  t.grad_accum = 0;
  try {
    wick::train(t);
    ADD_FAILURE();
  } catch (const wick::Error& e) {
    EXPECT_NE(std::string(e.what()).find("TrainSettings::grad_accum"), std::string::npos) << e.what();
  }
}

}  // namespace
