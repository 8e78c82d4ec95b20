// The hand check, automated: the fixture's training batch written as two pre-tokenized JSONL lines,
// trained by the Trainer (the library, as `wick train` drives it) from adapter_init with the fixture's
// hyperparameters, reproduces transformers + PEFT + torch.optim.AdamW: the per-step losses and grad norms in
// metrics.jsonl, and the adapter it writes equals adapter_trained. Data-driven over every family's fixtures.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "common/model_checks.h"
#include "io/peft_adapter.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class TrainerFixture : public ::testing::TestWithParam<std::string> {};

// Rows of a [B, T] integer tensor as examples: input_ids and labels exactly as the fixture holds them.
std::vector<Example> fixture_examples(const Fixture& f) {
  const Tensor ids = f.get("train_input_ids"), labels = f.get("train_labels");
  const int64_t B = ids.dim(0), T = ids.dim(1);
  const auto vi = ids.to_i64_vector(), vl = labels.to_i64_vector();
  std::vector<Example> out(B);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) {
      out[b].ids.push_back(static_cast<int32_t>(vi[b * T + t]));
      out[b].labels.push_back(static_cast<int32_t>(vl[b * T + t]));
    }
  return out;
}

TEST_P(TrainerFixture, SixStepsMatchPeftAndTorch) {
  const Fixture f = load_fixture(GetParam());
  const json ref = json::parse(f.reference_json);
  const json& tr = ref.at("train");
  auto m = CausalLM::load(f.dir, Device::cpu(), DType::F32);
  TempDir tmp;
  const std::vector<Example> ex = fixture_examples(f);
  ASSERT_EQ(ex.size(), 2u);
  const Dataset data = write_and_load(ex, tmp.file("train.jsonl"), m->config().vocab_size);

  TrainOptions o;
  o.out_dir = tmp.file("out");
  o.adapter_init = (fs::path(f.dir) / "adapter_init").string();
  o.lr = tr.at("lr").get<double>();
  o.beta1 = tr.at("betas")[0].get<double>();
  o.beta2 = tr.at("betas")[1].get<double>();
  o.eps = tr.at("eps").get<double>();
  o.weight_decay = tr.at("weight_decay").get<double>();
  o.max_grad_norm = tr.at("max_grad_norm").get<double>();
  o.scheduler = "constant";
  o.warmup_steps = 0;
  o.max_steps = tr.at("steps").get<int64_t>();
  o.batch_size = 2;
  o.grad_accum = 1;
  o.shuffle = false;
  ASSERT_EQ(o.lr, 1e-2);
  ASSERT_EQ(o.weight_decay, 0.01);
  ASSERT_EQ(o.max_grad_norm, 1.0);
  ASSERT_EQ(o.max_steps, 6);

  Trainer t(*m, data, o);
  EXPECT_EQ(t.total_steps(), 6);
  std::vector<StepReport> reports;
  EXPECT_TRUE(t.run([&](const StepReport& r) { reports.push_back(r); }));
  EXPECT_EQ(t.step(), 6);

  // Per-step losses (each before that step's update) and grad norms before clipping, from metrics.jsonl.
  const auto rec = read_metrics(o.out_dir);
  ASSERT_EQ(rec.size(), 6u);
  ASSERT_EQ(reports.size(), 6u);
  int64_t counted = 0;
  for (const Example& e : ex)
    for (size_t i = 1; i < e.labels.size(); i++) counted += e.labels[i] != -100;
  for (size_t s = 0; s < 6; s++) {
    const double want = ref.at("losses")[s].get<double>(), got = rec[s].at("loss").get<double>();
    const double want_norm = ref.at("grad_norms_before_clip")[s].get<double>();
    std::printf("[measured] %s step %zu: loss rel %.3g, grad norm rel %.3g\n", f.dir.c_str(), s + 1,
                std::fabs(got - want) / want, std::fabs(rec[s].at("grad_norm").get<double>() - want_norm) / want_norm);
    EXPECT_EQ(rec[s].at("step").get<int64_t>(), static_cast<int64_t>(s + 1));
    EXPECT_NEAR(got, want, 1e-5 * std::fabs(want)) << f.dir << " loss at step " << s + 1;
    EXPECT_NEAR(rec[s].at("grad_norm").get<double>(), want_norm, 1e-4 * want_norm) << f.dir << " grad norm at step " << s + 1;
    EXPECT_EQ(rec[s].at("lr").get<double>(), 1e-2) << "constant schedule, no warmup";
    EXPECT_EQ(rec[s].at("counted_tokens").get<int64_t>(), counted);
    EXPECT_EQ(reports[s].loss, got) << "on_step and metrics.jsonl report the same loss";
  }

  // The checkpoint names its step; the adapter is the one PEFT + torch trained.
  const json st = json::parse(file_bytes(ckpt(o.out_dir) + "/trainer_state.json"));
  EXPECT_EQ(st.at("step").get<int64_t>(), 6);
  const io::AdapterFiles got = io::load_peft_adapter(o.out_dir);
  const io::AdapterFiles want = io::load_peft_adapter((fs::path(f.dir) / "adapter_trained").string());
  EXPECT_EQ(got.cfg.r, want.cfg.r);
  EXPECT_EQ(got.cfg.alpha, want.cfg.alpha);
  EXPECT_EQ(std::set<std::string>(got.cfg.target_modules.begin(), got.cfg.target_modules.end()),
            std::set<std::string>(want.cfg.target_modules.begin(), want.cfg.target_modules.end()));
  ASSERT_EQ(got.modules.size(), want.modules.size());
  // Tolerances of check_training_trace on the CPU (tests/model/test_model_fixtures.cpp): each tensor within
  // 5e-4 L2-normalised, every element within 0.1 lr (Adam amplifies rounding noise of near-zero gradients).
  const double lr = o.lr;
  for (const auto& [mod, pair] : want.modules) {
    auto it = got.modules.find(mod);
    ASSERT_NE(it, got.modules.end()) << mod;
    for (int which = 0; which < 2; which++) {
      const Tensor& g = which ? it->second.B : it->second.A;
      const Tensor& r = which ? pair.B : pair.A;
      const std::string what = f.dir + " trained " + mod + (which ? ".lora_B" : ".lora_A");
      ASSERT_EQ(g.shape(), r.shape()) << what;
      const double e = rel_err(g, r), mx = max_abs_diff(g, r);
      std::printf("[measured] %s: ||diff||/||ref|| %.3g, max abs diff %.2f lr\n", what.c_str(), e, mx / lr);
      EXPECT_LE(e, 5e-4) << what;
      EXPECT_LE(mx, 0.1 * lr) << what;
    }
  }
  // The adapter moved from adapter_init by much more than the tolerance (the comparison can fail).
  const io::AdapterFiles init = io::load_peft_adapter(o.adapter_init);
  double moved = 0;
  for (const auto& [mod, pair] : init.modules) moved = std::max(moved, rel_err(got.modules.at(mod).B, pair.B));
  EXPECT_GT(moved, 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TrainerFixture, ::testing::ValuesIn(model_fixture_dirs()), param_name);

}  // namespace
}  // namespace wick::test
