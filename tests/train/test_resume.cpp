// Resume is bit-exact on the CPU: a run stopped after step k (stop flag, a save_every checkpoint, or
// max_steps then a larger max_steps) and resumed gives the same metrics.jsonl records, the same bytes of
// adapter_model.safetensors, optimizer.safetensors and trainer_state.json as one uninterrupted run - with
// LoRA dropout, shuffling, gradient accumulation, a warmup and a cosine schedule, and accumulated steps that
// cross an epoch boundary and a short last batch.
//
// Stopping happens only between optimizer steps: run() checks the stop flag before drawing a step's
// micro-batches, so there is no state "between micro-batches" to save (documented, not testable).
#include <gtest/gtest.h>

#include <filesystem>

#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kModelSeed = 1234;

struct Resume : ::testing::Test {
  TempDir tmp;
  Dataset data;
  TrainOptions base;

  void SetUp() override {
    Rng rng(99);
    // 9 examples, batch 2: 5 micro-batches an epoch (the last holds one example); grad_accum 2 puts the
    // epoch boundary inside step 3. epochs 2 -> ceil(2 * ceil(5 / 2)) = 6 steps.
    data = write_and_load(random_examples(rng, 9, 3, 14, tiny_config().vocab_size), tmp.file("train.jsonl"),
                          tiny_config().vocab_size);
    base.lora.r = 4;
    base.lora.alpha = 8;
    base.lora.dropout = 0.1;
    base.lora.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    base.lr = 5e-3;
    base.scheduler = "cosine";
    base.warmup_steps = 2;
    base.epochs = 2;
    base.batch_size = 2;
    base.grad_accum = 2;
    base.shuffle = true;
    base.seed = 7;
    base.max_grad_norm = 1.0;
  }

  std::unique_ptr<CausalLM> model() const { return CausalLM::random(tiny_config(), Device::cpu(), DType::F32, kModelSeed); }

  // A full run into dir; returns the trainer's total steps.
  int64_t full_run(const std::string& dir, TrainOptions o) {
    o.out_dir = dir;
    auto m = model();
    Trainer t(*m, data, o);
    EXPECT_TRUE(run_trainer(t));
    return t.total_steps();
  }

  static void expect_same_run(const std::string& a, const std::string& b) {
    const auto ra = read_metrics(a), rb = read_metrics(b);
    ASSERT_EQ(ra.size(), rb.size());
    for (size_t i = 0; i < ra.size(); i++) {
      // Doubles compare exactly: nlohmann writes the shortest text that round-trips.
      EXPECT_EQ(metrics_core(ra[i]), metrics_core(rb[i])) << "metrics record " << i;
      EXPECT_EQ(ra[i].at("step").get<int64_t>(), static_cast<int64_t>(i + 1));
    }
    for (const char* f : {"adapter_model.safetensors", "optimizer.safetensors", "adapter_config.json", "trainer_state.json"})
      EXPECT_TRUE(file_bytes(ckpt(a) + "/" + f) == file_bytes(ckpt(b) + "/" + f)) << f << " differs between " << a << " and " << b;
  }
};

TEST_F(Resume, SettingsAreLive) {
  // The resume tests below mean something only if dropout, shuffling and the schedule change the run.
  const std::string ref = tmp.file("ref");
  EXPECT_EQ(full_run(ref, base), 6);
  const auto r = read_metrics(ref);
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[0].at("lr").get<double>(), 0.0);         // warmup starts at 0
  EXPECT_EQ(r[1].at("lr").get<double>(), 0.5 * 5e-3);  // step 1 of 2 warmup steps
  EXPECT_LT(r[5].at("lr").get<double>(), r[2].at("lr").get<double>());  // cosine decay
  TrainOptions no_dropout = base, no_shuffle = base;
  no_dropout.lora.dropout = 0;
  no_shuffle.shuffle = false;
  full_run(tmp.file("nodrop"), no_dropout);
  full_run(tmp.file("noshuf"), no_shuffle);
  const auto nd = read_metrics(tmp.file("nodrop")), ns = read_metrics(tmp.file("noshuf"));
  // B = 0 at first and the first step's lr is 0 (warmup): dropout shows from step 3 on.
  EXPECT_EQ(nd[1].at("loss"), r[1].at("loss"));
  EXPECT_NE(nd[2].at("loss"), r[2].at("loss")) << "dropout changes the losses";
  EXPECT_NE(ns[0].at("loss"), r[0].at("loss")) << "shuffling changes the first batch";
  EXPECT_FALSE(file_bytes(ref + "/adapter_model.safetensors") == file_bytes(tmp.file("nodrop") + "/adapter_model.safetensors"));
}

TEST_F(Resume, StopFlagThenResumeIsBitExact) {
  const std::string ref = tmp.file("ref");
  ASSERT_EQ(full_run(ref, base), 6);
  for (int64_t k : {0, 1, 3, 5}) {
    SCOPED_TRACE("stopped after step " + std::to_string(k));
    const std::string dir = tmp.file("stop" + std::to_string(k));
    {
      TrainOptions o = base;
      o.out_dir = dir;
      auto m = model();
      Trainer t(*m, data, o);
      EXPECT_FALSE(run_trainer(t, k)) << "run() reports the stop";
      EXPECT_EQ(t.step(), k);
      EXPECT_EQ(json::parse(file_bytes(ckpt(dir) + "/trainer_state.json")).at("step").get<int64_t>(), k);
      EXPECT_EQ(read_metrics(dir).size(), static_cast<size_t>(k));
    }
    TrainOptions o = base;
    o.out_dir = dir;
    o.resume = dir;
    auto m = model();
    Trainer t(*m, data, o);
    EXPECT_EQ(t.step(), k);
    EXPECT_TRUE(run_trainer(t));
    expect_same_run(ref, dir);
  }
}

TEST_F(Resume, StoppedTwiceIsBitExact) {
  const std::string ref = tmp.file("ref"), dir = tmp.file("twice");
  ASSERT_EQ(full_run(ref, base), 6);
  TrainOptions o = base;
  o.out_dir = dir;
  for (int64_t k : {2, 4, -1}) {
    auto m = model();
    Trainer t(*m, data, o);
    EXPECT_EQ(run_trainer(t, k), k < 0);
    o.resume = dir;
  }
  expect_same_run(ref, dir);
}

TEST_F(Resume, FromSaveEveryCheckpointIsBitExact) {
  // save_every 2 writes a checkpoint after step 2; it is copied aside during step 3, when metrics.jsonl
  // already holds step 3's record (which resume must drop).
  const std::string ref = tmp.file("ref"), live = tmp.file("live"), copy = tmp.file("copy");
  ASSERT_EQ(full_run(ref, base), 6);
  {
    TrainOptions o = base;
    o.out_dir = live;
    o.save_every = 2;
    auto m = model();
    Trainer t(*m, data, o);
    EXPECT_TRUE(t.run([&](const StepReport& r) {
      if (r.step == 3) fs::copy(live, copy, fs::copy_options::recursive);
    }));
    expect_same_run(ref, live);  // save_every does not change the run
  }
  ASSERT_EQ(json::parse(file_bytes(ckpt(copy) + "/trainer_state.json")).at("step").get<int64_t>(), 2);
  ASSERT_EQ(read_metrics(copy).size(), 3u);
  TrainOptions o = base;
  o.out_dir = copy;
  o.resume = copy;
  auto m = model();
  Trainer t(*m, data, o);
  EXPECT_EQ(t.step(), 2);
  EXPECT_TRUE(run_trainer(t));
  expect_same_run(ref, copy);
}

TEST_F(Resume, LargerMaxStepsContinuesBitExact) {
  // max_steps 3, then resume with max_steps 6. The cosine schedule is a function of the total steps (as in
  // transformers), so extending a cosine run changes its lr curve by design; with a constant schedule after
  // an explicit warmup, the extended run equals an uninterrupted max_steps 6 run.
  TrainOptions o = base;
  o.scheduler = "constant_with_warmup";
  o.max_steps = 6;
  const std::string ref = tmp.file("ref"), dir = tmp.file("ext");
  ASSERT_EQ(full_run(ref, o), 6);
  o.out_dir = dir;
  {
    TrainOptions first = o;
    first.max_steps = 3;
    auto m = model();
    Trainer t(*m, data, first);
    EXPECT_EQ(t.total_steps(), 3);
    EXPECT_TRUE(run_trainer(t));
  }
  o.resume = dir;
  auto m = model();
  Trainer t(*m, data, o);
  EXPECT_EQ(t.step(), 3);
  EXPECT_EQ(t.total_steps(), 6);
  EXPECT_TRUE(run_trainer(t));
  expect_same_run(ref, dir);
}

TEST_F(Resume, FinishedRunResumesToNothing) {
  // Resuming a finished run does no step and leaves the checkpoint as it was.
  const std::string dir = tmp.file("done");
  TrainOptions o = base;
  full_run(dir, o);
  const std::string before = file_bytes(dir + "/adapter_model.safetensors");
  o.out_dir = dir;
  o.resume = dir;
  auto m = model();
  Trainer t(*m, data, o);
  EXPECT_TRUE(run_trainer(t));
  EXPECT_EQ(t.step(), 6);
  EXPECT_EQ(read_metrics(dir).size(), 6u);
  EXPECT_TRUE(file_bytes(dir + "/adapter_model.safetensors") == before);
}

}  // namespace
}  // namespace wick::test
