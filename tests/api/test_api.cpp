// The public API (include/wick/wick.h) on a tiny random model: generation matches the internal Session it
// wraps, settings and callbacks do what they say, training runs, stops, resumes and learns, and an attached
// adapter changes what the model generates.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "core/warn.h"
#include "train/train_options.h"
#include "io/peft_adapter.h"
#include "core/rng.h"
#include "infer/session.h"
#include "io/safetensors.h"
#include "model/presets.h"
#include "tokenizer/tokenizer_files.h"
#include "wick/wick.h"

namespace fs = std::filesystem;

namespace {

class Api : public ::testing::Test {
 protected:
  // model_: the tiny preset (Qwen's 151936-token vocabulary); small_: the same with 1024 tokens, so that
  // training steps (whose cost is mostly the vocabulary projection) take milliseconds.
  static fs::path root_, model_, small_, model_tok_;
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("wick_api_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    model_ = root_ / "tiny";
    wick::write_random_model(wick::preset_config("tiny"), model_.string(), 7, wick::DType::BF16, "");
    small_ = root_ / "small";
    wick::ModelConfig c = wick::preset_config("tiny");
    c.vocab_size = 1024;
    wick::write_random_model(c, small_.string(), 8, wick::DType::F32, "");
    if (fs::exists(fs::path(wick::default_tokenizer_dir()) / "tokenizer.json")) {
      model_tok_ = root_ / "tiny-tok";
      wick::write_random_model(wick::preset_config("tiny"), model_tok_.string(), 7, wick::DType::BF16,
                               wick::default_tokenizer_dir());
    }
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static wick::LoadSettings cpu() {
    wick::LoadSettings s;
    s.device = "cpu";
    return s;
  }
  // n examples of random ids in [100, 1000) (lengths 8..15) -> path
  static std::string write_data(const std::string& name, int n, uint64_t seed) {
    return wick::test::write_random_ids_jsonl((root_ / name).string(), n, seed);
  }
  static wick::TrainSettings train_settings(const std::string& data, const std::string& out) {
    wick::TrainSettings t;
    t.model_dir = small_.string();
    t.data = data;
    t.out_dir = (root_ / out).string();
    t.device = "cpu";
    return t;
  }
};
fs::path Api::root_, Api::model_, Api::small_, Api::model_tok_;

TEST_F(Api, GenerateIdsMatchesTheSession) {
  wick::Model m(model_.string(), cpu());
  const std::vector<int32_t> prompt = {11, 22, 33, 44, 55};
  wick::GenerateSettings s;
  s.max_new_tokens = 7;
  s.temperature = 0.0f;
  std::vector<int> streamed;
  const wick::Generation g = wick::generate_ids(m, prompt, s, [&](const std::string&, int id) {
    streamed.push_back(id);
    return true;
  });
  wick::SessionOptions so;
  so.model_dir = model_.string();
  so.device = "cpu";
  wick::Session ref(so);
  wick::GenerateOptions o;
  o.max_new_tokens = 7;
  o.sampling.temperature = 0.0f;
  o.eos_ids = ref.generation_config().eos_token_ids;
  const auto r = ref.generate(prompt, o, nullptr);
  EXPECT_EQ(g.ids, r.ids);
  EXPECT_EQ(g.prompt_tokens, 5);
  EXPECT_EQ(g.stop_reason, r.stop_reason);
  EXPECT_EQ(std::vector<int>(g.ids.begin(), g.ids.end()), streamed);
}

TEST_F(Api, CallbackStopsAndSeedsReproduce) {
  wick::Model m(model_.string(), cpu());
  wick::GenerateSettings s;
  s.max_new_tokens = 10;
  s.temperature = 1.0f;
  s.seed = 5;
  int calls = 0;
  const wick::Generation g = wick::generate_ids(m, {1, 2, 3}, s, [&](const std::string&, int) { return ++calls < 3; });
  EXPECT_EQ(g.stop_reason, "callback");
  EXPECT_EQ(g.ids.size(), 3u);
  const wick::Generation a = wick::generate_ids(m, {1, 2, 3}, s), b = wick::generate_ids(m, {1, 2, 3}, s);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.ids.size(), 10u);
  s.seed = 6;
  EXPECT_NE(wick::generate_ids(m, {1, 2, 3}, s).ids, a.ids);  // 10 draws from ~150k near-uniform tokens
}

TEST_F(Api, BadInputsAreErrors) {
  EXPECT_THROW(wick::Model((root_ / "missing").string(), cpu()), wick::Error);
  wick::LoadSettings bad = cpu();
  bad.dtype = "f16";
  EXPECT_THROW(wick::Model(model_.string(), bad), wick::Error);
  wick::Model m(model_.string(), cpu());
  wick::GenerateSettings s;
  s.temperature = -1.0f;
  EXPECT_THROW(wick::generate_ids(m, {1, 2}, s), wick::Error);
  s = {};
  s.max_new_tokens = -3;
  EXPECT_THROW(wick::generate_ids(m, {1, 2}, s), wick::Error);
  EXPECT_THROW(m.encode("hello"), wick::Error);  // this folder has no tokenizer
  EXPECT_THROW(m.attach_adapter((root_ / "missing").string()), wick::Error);
  EXPECT_TRUE(m.info().adapter.empty());
  s = {};
  s.max_new_tokens = 4;
  EXPECT_FALSE(wick::generate_ids(m, {1, 2}, s).ids.empty());  // still usable
  wick::TrainSettings t;
  EXPECT_THROW(wick::train(t), wick::Error);
  t = train_settings(write_data("bad.jsonl", 2, 1), "bad-run");
  t.scheduler = "triangle";
  EXPECT_THROW(wick::train(t), wick::Error);
}

TEST_F(Api, InfoDescribesTheModel) {
  wick::Model m(model_.string(), cpu());
  const wick::ModelInfo i = m.info();
  const wick::ModelConfig c = wick::preset_config("tiny");
  EXPECT_EQ(i.model_type, "qwen2");
  EXPECT_EQ(i.device, "cpu");
  EXPECT_EQ(i.dtype, "f32");
  EXPECT_EQ(i.layers, c.num_layers);
  EXPECT_EQ(i.hidden_size, c.hidden_size);
  EXPECT_EQ(i.vocab_size, c.vocab_size);
  EXPECT_EQ(i.parameters, c.num_parameters());
  EXPECT_FALSE(i.has_tokenizer);
  EXPECT_TRUE(i.adapter.empty());
}

TEST_F(Api, TrainReportsProgressAndWritesTheRun) {
  wick::TrainSettings t = train_settings(write_data("d3.jsonl", 6, 2), "run3");
  t.max_steps = 3;
  std::vector<wick::TrainProgress> seen;
  const wick::TrainSummary s = wick::train(t, [&](const wick::TrainProgress& p) { seen.push_back(p); });
  ASSERT_EQ(seen.size(), 3u);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(seen[i].step, i + 1);
    EXPECT_EQ(seen[i].total_steps, 3);
    EXPECT_TRUE(std::isfinite(seen[i].loss) && seen[i].loss > 0);
    EXPECT_GT(seen[i].tokens, 0);
  }
  EXPECT_EQ(seen[0].smoothed_loss, seen[0].loss);
  EXPECT_EQ(seen[2].eta_s, 0);
  EXPECT_TRUE(s.completed);
  EXPECT_EQ(s.steps, 3);
  EXPECT_EQ(s.tokens, seen[0].tokens + seen[1].tokens + seen[2].tokens);
  EXPECT_EQ(s.final_loss, seen[2].loss);
  EXPECT_EQ(s.batch_size, 4);  // CPU rule, short sequences
  EXPECT_FALSE(s.batch_reason.empty());
  EXPECT_FALSE(s.best_eval_loss.has_value());
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "report.html"})
    EXPECT_TRUE(fs::exists(fs::path(s.out_dir) / f)) << f;
  EXPECT_EQ(s.report_path, (fs::path(s.out_dir) / "report.html").string());
  bool saw_r = false;
  for (const auto& [k, v] : s.settings) saw_r |= k == "r" && v == "16";
  EXPECT_TRUE(saw_r);
  // The adapter is PEFT's: r 16, alpha 32, the seven projections.
  wick::Model m(small_.string(), cpu());
  m.attach_adapter(s.out_dir);
  const wick::ModelInfo i = m.info();
  EXPECT_EQ(i.adapter, s.out_dir);
  EXPECT_EQ(i.lora_r, 16);
  EXPECT_EQ(i.lora_alpha, 32);
  EXPECT_EQ(i.lora_targets.size(), 7u);
  m.detach_adapter();
  EXPECT_TRUE(m.info().adapter.empty());
}

TEST_F(Api, StopSavesACheckpointThatResumes) {
  wick::TrainSettings t = train_settings(write_data("d5.jsonl", 5, 3), "run-stop");
  t.max_steps = 5;
  t.batch_size = 2;
  std::atomic<bool> stop{false};
  const wick::TrainSummary a = wick::train(t, [&](const wick::TrainProgress& p) { stop = p.step == 2; }, &stop);
  EXPECT_FALSE(a.completed);
  EXPECT_EQ(a.steps, 2);
  EXPECT_TRUE(fs::exists(fs::path(a.out_dir) / "checkpoint-2" / "trainer_state.json"));
  EXPECT_TRUE(fs::exists(fs::path(a.out_dir) / "report.html"));
  t.resume = t.out_dir;
  t.batch_size = 0;  // taken from the checkpoint
  std::vector<int64_t> steps;
  const wick::TrainSummary b = wick::train(t, [&](const wick::TrainProgress& p) { steps.push_back(p.step); });
  EXPECT_TRUE(b.completed);
  EXPECT_EQ(b.batch_size, 2);
  EXPECT_EQ(steps, (std::vector<int64_t>{3, 4, 5}));
  std::ifstream f(fs::path(b.out_dir) / "metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(f, l);) lines++;
  EXPECT_EQ(lines, 5);
}

TEST_F(Api, TrainingLearnsASequenceAndTheAdapterCarriesIt) {
  // One sequence, learnt by heart: afterwards greedy generation from its start continues it.
  std::vector<int32_t> seq;
  wick::Rng rng(9);
  for (int i = 0; i < 12; i++) seq.push_back(10 + static_cast<int32_t>(rng.uniform() * 1000));
  const fs::path data = root_ / "one.jsonl";
  std::ofstream(data) << nlohmann::json{{"input_ids", seq}}.dump() << "\n";
  wick::TrainSettings t = train_settings(data.string(), "learn");
  t.max_steps = 40;
  t.lr = 1e-2;
  t.scheduler = "constant";
  t.warmup_steps = 0;
  const wick::TrainSummary s = wick::train(t);
  // ln(1024) = 6.93 at the start. The frozen random embeddings (std 0.02, tied) cap every logit near
  // |h| |e| ~ 2.6, so even a memorised token keeps p ~ 1%: the loss floor is ~4.4, not 0.
  EXPECT_LT(s.final_loss, std::log(1024.0) - 1.5);
  const std::vector<int32_t> prompt(seq.begin(), seq.begin() + 4), want(seq.begin() + 4, seq.end());
  wick::GenerateSettings g;
  g.max_new_tokens = static_cast<int64_t>(want.size());
  g.temperature = 0.0f;
  wick::LoadSettings ls = cpu();
  ls.adapter = s.out_dir;
  wick::Model m(small_.string(), ls);
  EXPECT_EQ(wick::generate_ids(m, prompt, g).ids, want);
  m.detach_adapter();
  EXPECT_NE(wick::generate_ids(m, prompt, g).ids, want);
  m.attach_adapter(s.out_dir);
  EXPECT_EQ(wick::generate_ids(m, prompt, g).ids, want);
}

TEST_F(Api, TextAndChatWithTheQwenTokenizer) {
  if (model_tok_.empty()) GTEST_SKIP() << "no Qwen tokenizer at " << wick::default_tokenizer_dir() << " (scripts/fetch_tokenizer.sh)";
  wick::Model m(model_tok_.string(), cpu());
  EXPECT_TRUE(m.has_tokenizer());
  const std::vector<int32_t> ids = m.encode("Hello, world");
  EXPECT_EQ(m.decode(ids), "Hello, world");
  wick::GenerateSettings s;
  s.max_new_tokens = 6;
  s.temperature = 0.0f;
  std::string streamed;
  const wick::Generation g = wick::generate(m, "Hello", s, [&](const std::string& piece, int) {
    streamed += piece;
    return true;
  });
  EXPECT_EQ(g.prompt_tokens, static_cast<int64_t>(m.encode("Hello").size()));
  EXPECT_EQ(g.ids, wick::generate_ids(m, m.encode("Hello"), s).ids);
  EXPECT_EQ(streamed, g.text);
  const std::vector<wick::Message> chat = {{"user", "Hi there"}};
  const std::string prompt = m.chat_prompt(chat);
  EXPECT_NE(prompt.find("<|im_start|>user\nHi there<|im_end|>"), std::string::npos) << prompt;
  EXPECT_EQ(wick::generate(m, chat, s).ids, wick::generate_ids(m, m.encode(prompt), s).ids);
}

}  // namespace

// ---- the training application layer ----
namespace {

using nlohmann::json;

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

// The training application layer (src/api/train_run.h) through wick::train on the CPU (bit-reproducible):
// run.toml repeats a run exactly; checkpoint-N folders are loadable adapters, kept within the limit, and
// resume continues from the latest complete one exactly; load_best puts the lowest-eval-loss adapter at the
// top; early stopping ends the run; a Hub id from a fake cache trains and is recorded in the adapter and
// model card; TensorBoard and samples are logged.
class TrainRunTest : public Api {
 protected:
  static wick::TrainSettings settings(const std::string& out) {
    wick::TrainSettings t = train_settings(write_data("d.jsonl", 12, 1), out);
    t.lr = 3e-3;
    t.r = 4;
    t.batch_size = 2;
    t.max_steps = 7;
    t.seed = 5;
    t.dropout = 0.1;  // dropout masks must repeat too
    return t;
  }
  static std::string data(const std::string& name, int n, uint64_t seed) { return write_data(name, n, seed); }
  // Trains; stop_after > 0 raises the stop flag once that step is done.
  static wick::TrainSummary train(const wick::TrainSettings& t, int64_t stop_after = 0) {
    std::atomic<bool> stop{false};
    return wick::train(t, [&](const wick::TrainProgress& p) { if (p.step == stop_after) stop = true; }, &stop);
  }
};


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
  // Steps 2, 4, 6 and the final 7 saved; the limit keeps the newest two (no eval: no best to protect).
  std::vector<std::string> want = {t.out_dir + "/checkpoint-6", t.out_dir + "/checkpoint-7"};
  EXPECT_EQ(full.checkpoints, want);
  EXPECT_FALSE(fs::exists(t.out_dir + "/checkpoint-2"));
  EXPECT_FALSE(fs::exists(t.out_dir + "/checkpoint-4"));
  for (const std::string& d : want) {
    const wick::io::AdapterFiles a = wick::io::load_peft_adapter(d);
    EXPECT_EQ(a.cfg.r, 4);
    EXPECT_TRUE(fs::exists(fs::path(d) / "optimizer.safetensors"));
    const json st = json::parse(bytes(fs::path(d) / "trainer_state.json"));
    EXPECT_EQ(d.substr(d.rfind('-') + 1), std::to_string(st.at("step").get<int64_t>()));
  }
  // Interrupted after step 5, and that checkpoint lost (a crash): --resume takes checkpoint-4.
  wick::TrainSettings r = settings("ck-resumed");
  r.save_every = 2;
  r.save_total_limit = 2;
  const wick::TrainSummary part = train(r, 5);
  ASSERT_FALSE(part.completed);
  fs::remove(fs::path(r.out_dir) / "checkpoint-5" / "trainer_state.json");
  r.resume = r.out_dir;
  const wick::TrainSummary rest = train(r);
  ASSERT_TRUE(rest.completed);
  EXPECT_EQ(metrics(t.out_dir, "loss"), metrics(r.out_dir, "loss"));
  EXPECT_EQ(bytes(fs::path(t.out_dir) / "adapter_model.safetensors"), bytes(fs::path(r.out_dir) / "adapter_model.safetensors"));
  // And a resumable state at the top again: resuming the finished run continues from step 7.
  r.resume = r.out_dir;
  EXPECT_EQ(train(r).steps, 7);
}

// A resume (or an --adapter-init) trains the adapter it loads: shape settings left at their defaults take the
// adapter's values, and run.toml records those (a fresh run from it has the shape that ran); a shape setting
// given otherwise is refused, naming the setting and the adapter's value, before any work.
TEST_F(TrainRunTest, AResumeKeepsItsLoraShapeAndRefusesAnother) {
  wick::TrainSettings t = settings("shape");
  t.r = 3;
  t.alpha = 6;
  t.targets = {"q_proj", "down_proj"};
  t.max_steps = 2;
  t.save_every = 1;
  train(t);
  wick::TrainSettings r = settings("shape");  // r 4, alpha 32, targets all: the defaults but r
  r.r = wick::TrainSettings{}.r;
  r.dropout = wick::TrainSettings{}.dropout;
  r.max_steps = 3;
  r.resume = r.out_dir;
  EXPECT_EQ(train(r).steps, 3);
  const wick::TrainSettings toml = wick::train_settings_from_toml(r.out_dir + "/run.toml");
  EXPECT_EQ(toml.r, 3);
  EXPECT_EQ(toml.alpha, 6);
  EXPECT_EQ(toml.dropout, t.dropout);
  EXPECT_EQ(toml.targets, t.targets);
  EXPECT_TRUE(toml.resume.empty());
  struct Case {
    const char* field;
    std::function<void(wick::TrainSettings&)> set;
    const char* theirs;
  };
  const std::vector<Case> cases = {
      {"rank", [](wick::TrainSettings& s) { s.r = 5; }, "r 3, not 5"},
      {"alpha", [](wick::TrainSettings& s) { s.alpha = 7; }, "lora_alpha 6, not 7"},
      {"dropout", [](wick::TrainSettings& s) { s.dropout = 0.25; }, "lora_dropout 0.1, not 0.25"},
      {"rslora", [](wick::TrainSettings& s) { s.rslora = true; }, "use_rslora false"},
      {"targets", [](wick::TrainSettings& s) { s.targets = {"q_proj"}; }, "down_proj is adapted there), not q_proj"},
  };
  for (const bool init : {false, true}) {
    for (const Case& c : cases) {
      wick::TrainSettings bad = r;
      if (init) bad.resume.clear(), bad.adapter_init = r.out_dir, bad.out_dir = (root_ / "shape-init").string();
      c.set(bad);
      try {
        train(bad);
        ADD_FAILURE() << c.field << " was not refused";
      } catch (const wick::Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find(std::string("TrainSettings::") + c.field), std::string::npos) << m;
        EXPECT_NE(m.find(c.theirs), std::string::npos) << m;
        EXPECT_NE(m.find("adapter_config.json"), std::string::npos) << m;
        EXPECT_NE(m.find(init ? "TrainSettings::adapter_init" : "the checkpoint"), std::string::npos) << m;
      }
    }
  }
  EXPECT_FALSE(fs::exists(root_ / "shape-init"));
  // The same values as the adapter's are not a conflict.
  r.r = 3, r.alpha = 6, r.targets = t.targets, r.max_steps = 4;
  EXPECT_EQ(train(r).steps, 4);
}

// A resume onto another base model than the checkpoint's was accepted silently: the adapter's shapes fit any model
// of the same sizes, so the run went on training on weights it had never seen. The checkpoint's base_model.json
// (the config's sizes, a fingerprint of the weights) must now match --model's: another base is refused naming
// the checkpoint, both models and what differs; a copy of the same model elsewhere is the same base; a checkpoint
// without the record (an older wick) resumes with a warning.
TEST_F(TrainRunTest, AResumeOntoAnotherBaseModelIsRefused) {
  wick::TrainSettings t = settings("base");
  t.max_steps = 2;
  t.save_every = 1;
  train(t);
  const fs::path out = t.out_dir, record = out / "checkpoint-2" / "base_model.json";
  ASSERT_TRUE(fs::exists(record));
  ASSERT_TRUE(fs::exists(out / "base_model.json"));
  const json trained = json::parse(bytes(record));
  EXPECT_EQ(trained["model"], small_.string());
  EXPECT_EQ(trained["config"]["vocab_size"], 1024);

  wick::ModelConfig c = wick::preset_config("tiny");
  c.vocab_size = 1024;
  const fs::path reseeded = root_ / "small-reseeded", wider = root_ / "small-wider", copy = root_ / "small-copy";
  wick::write_random_model(c, reseeded.string(), 9, wick::DType::F32, "");  // same sizes, other weights
  c.intermediate_size = 256;
  wick::write_random_model(c, wider.string(), 8, wick::DType::F32, "");
  fs::copy(small_, copy, fs::copy_options::recursive);

  wick::TrainSettings r = t;
  r.max_steps = 3;
  r.resume = t.out_dir;
  const std::vector<std::pair<fs::path, std::string>> others = {
      {reseeded, "(same architecture and sizes, other weights)"}, {wider, "(intermediate_size: trained 352, given 256)"}};
  for (const auto& [model, differs] : others) {
    r.model_dir = model.string();
    try {
      train(r);
      ADD_FAILURE() << model << " was not refused";
    } catch (const wick::Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(record.string()), std::string::npos) << m;
      EXPECT_NE(m.find("trained on another base model"), std::string::npos) << m;
      EXPECT_NE(m.find("trained on " + small_.string() + " (qwen2, 2 layers"), std::string::npos) << m;
      EXPECT_NE(m.find(", TrainSettings::model gives " + model.string()), std::string::npos) << m;
      EXPECT_NE(m.find(differs), std::string::npos) << m;
      EXPECT_NE(m.find("--adapter-init"), std::string::npos) << m;
    }
  }
  EXPECT_FALSE(fs::exists(out / "checkpoint-3"));

  r.model_dir = copy.string();  // the same weights in another folder
  EXPECT_EQ(train(r).steps, 3);
  const json resumed = json::parse(bytes(out / "checkpoint-3" / "base_model.json"));
  EXPECT_EQ(resumed["model"], copy.string());
  EXPECT_EQ(resumed["weights_fingerprint"], trained["weights_fingerprint"]);

  // An older wick's checkpoint: no record, nothing to compare; warned of (naming its adapter_config.json's base).
  fs::remove(out / "checkpoint-3" / "base_model.json");
  r.model_dir = reseeded.string();
  r.max_steps = 4;
  std::vector<std::string> warnings;
  auto old = wick::set_warning_sink([&](const std::string& w) { warnings.push_back(w); });
  const wick::TrainSummary done = train(r);
  wick::set_warning_sink(old);
  EXPECT_EQ(done.steps, 4);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find((out / "checkpoint-3").string() + " has no base_model.json"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("names " + small_.string()), std::string::npos) << warnings[0];
}

TEST_F(TrainRunTest, AnAdapterInitFromAnotherBaseNamesThisRunsBase) {
  wick::TrainSettings t = settings("first");
  t.max_steps = 1;
  train(t);
  wick::ModelConfig c = wick::preset_config("tiny");
  c.vocab_size = 1024;
  const fs::path other = root_ / "small-other";
  wick::write_random_model(c, other.string(), 9, wick::DType::F32, "");
  wick::TrainSettings r = settings("second");
  r.max_steps = 1;
  r.model_dir = other.string();
  r.adapter_init = t.out_dir;
  train(r);
  EXPECT_EQ(json::parse(bytes(fs::path(t.out_dir) / "adapter_config.json"))["base_model_name_or_path"], small_.string());
  EXPECT_EQ(json::parse(bytes(fs::path(r.out_dir) / "adapter_config.json"))["base_model_name_or_path"], other.string());
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
  EXPECT_TRUE(fs::exists(fs::path(t.out_dir) / "checkpoint-3" / "trainer_state.json"));
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
  wick::TrainSettings t = settings("hub-run");
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
  f.overwrite = true;  // a non-empty --out is refused unless asked (issue 10); the README still stays
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
