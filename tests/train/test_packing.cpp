// Packing: several examples in a row must give exactly what the examples give one by one (loss sums and
// LoRA gradients), on a random tiny model with non-zero adapters; the packing itself is checked for layout,
// determinism and exact resume.
#include <algorithm>
#include <filesystem>
#include <set>

#include "common/testutil.h"
#include "train/test_trainer_util.h"
#include "core/error.h"
#include "lora/lora.h"
#include "model/loss_and_grads.h"
#include "ops/cross_entropy.h"
#include "train/batcher.h"
#include "train/trainer.h"

namespace wick::test {
namespace {


// A random model with adapters on every projection and random (non-zero) B, so every gradient is non-trivial.
std::unique_ptr<CausalLM> tiny_model(uint64_t seed) {
  auto m = CausalLM::random(tiny_config(61), Device::cpu(), DType::F32, seed);
  io::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.target_modules = all_lora_targets();
  attach_new_adapters(*m, lc, seed + 1);
  Rng rng(seed + 2);
  for (Linear* l : m->all_linears()) {
    float* b = l->lora.B.data<float>();
    for (int64_t i = 0; i < l->lora.B.numel(); i++) b[i] = 0.1f * rng.normal();
  }
  alloc_lora_grads(*m);
  return m;
}

// Random examples of the given lengths; about a third of the labels masked.

std::vector<Tensor> grads_copy(CausalLM& m) {
  std::vector<Tensor> g;
  for (const LoraParam& p : lora_params(m)) g.push_back(p.grad->to(Device::cpu()).clone());
  return g;
}

TEST(Packing, PackedRowsLayout) {
  const Dataset d = random_dataset({7, 3, 5, 9, 4, 2, 6}, 61, 11, 0.33f);
  const int64_t pack_len = 13;
  const auto rows = pack_examples(d, pack_len);
  std::multiset<int64_t> seen;
  for (const auto& r : rows) {
    int64_t total = 0;
    for (int64_t i : r) {
      seen.insert(i);
      total += static_cast<int64_t>(d.examples[i].ids.size());
    }
    EXPECT_LE(total, pack_len);
  }
  EXPECT_EQ(seen, (std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6}));  // each example exactly once
  // Best-fit decreasing by hand: 9 -> new row (4 left); 7 -> new row (6 left); 6 -> fills that row; 5 -> new
  // row (8 left); 4 -> fills the first row; 3 and 2 -> the third row (3 left: padding).
  EXPECT_EQ(rows, (std::vector<std::vector<int64_t>>{{3, 4}, {0, 6}, {2, 1, 5}}));
  EXPECT_EQ(pack_examples(d, pack_len), rows);  // deterministic

  std::vector<std::vector<const Example*>> pr;
  for (const auto& r : rows) {
    pr.emplace_back();
    for (int64_t i : r) pr.back().push_back(&d.examples[i]);
  }
  const TrainBatch b = Batcher::make_packed_batch(pr, 60);
  const int64_t B = b.ids.dim(0), T = b.ids.dim(1);
  ASSERT_EQ(B, static_cast<int64_t>(rows.size()));
  const int32_t* ids = b.ids.data<int32_t>();
  const int32_t* tg = b.targets.data<int32_t>();
  const int32_t* pos = b.positions.data<int32_t>();
  const int32_t* seg = b.segments.data<int32_t>();
  for (int64_t r = 0; r < B; r++) {
    int64_t t0 = 0;
    for (size_t k = 0; k < pr[r].size(); k++) {
      const Example& e = *pr[r][k];
      const int64_t L = static_cast<int64_t>(e.ids.size());
      for (int64_t t = 0; t < L; t++) {
        EXPECT_EQ(ids[r * T + t0 + t], e.ids[t]);
        EXPECT_EQ(pos[r * T + t0 + t], t);
        EXPECT_EQ(seg[r * T + t0 + t], static_cast<int32_t>(k + 1));
        // The last token of an example predicts nothing (never the next example's first token).
        EXPECT_EQ(tg[r * T + t0 + t], t + 1 < L ? e.labels[t + 1] : kIgnoreIndex);
      }
      t0 += L;
    }
    for (int64_t t = t0; t < T; t++) {
      EXPECT_EQ(ids[r * T + t], 60);
      EXPECT_EQ(tg[r * T + t], kIgnoreIndex);
      EXPECT_EQ(seg[r * T + t], 0);
    }
  }
  EXPECT_THROW(pack_examples(d, 8), Error);  // an example of 9 tokens does not fit
}

TEST(Packing, PackedBatchEqualsExamplesOneByOne) {
  auto m = tiny_model(5);
  const Dataset d = random_dataset({7, 3, 5, 9, 4, 2, 6, 8}, m->config().vocab_size, 21, 0.33f);
  const auto rows = pack_examples(d, 16);
  ASSERT_LT(rows.size(), d.examples.size());  // something was actually packed together
  std::vector<std::vector<const Example*>> pr;
  for (const auto& r : rows) {
    pr.emplace_back();
    for (int64_t i : r) pr.back().push_back(&d.examples[i]);
  }
  const TrainBatch packed = Batcher::make_packed_batch(pr, 0);

  LossAndGrads g(*m);
  zero_lora_grads(*m);
  const LossSum lp = g.step(packed, 1.0f);
  const std::vector<Tensor> gp = grads_copy(*m);

  zero_lora_grads(*m);
  LossSum ls;
  for (const Example& e : d.examples) {
    const LossSum l = g.step(Batcher::make_batch({&e}, 0), 1.0f);
    ls.sum += l.sum;
    ls.count += l.count;
  }
  const std::vector<Tensor> gs = grads_copy(*m);

  EXPECT_EQ(lp.count, d.counted_tokens());
  EXPECT_EQ(lp.count, ls.count);
  EXPECT_NEAR(lp.sum, ls.sum, 1e-5 * std::fabs(ls.sum));
  ASSERT_EQ(gp.size(), gs.size());
  double worst = 0;
  for (size_t i = 0; i < gp.size(); i++) {
    const double e = rel_err(gp[i], gs[i]);
    worst = std::max(worst, e);
    EXPECT_LE(e, 1e-5) << lora_params(*m)[i].name;
    EXPECT_GT(max_abs_diff(gs[i], Tensor::zeros(gs[i].shape(), DType::F32)), 0.0) << lora_params(*m)[i].name << " gradient is zero";
  }
  std::printf("[measured] packed vs one by one: loss sum rel %.3g, worst grad rel %.3g\n",
              std::fabs(lp.sum - ls.sum) / std::fabs(ls.sum), worst);

  // Without segments and positions the same row is one sequence: attention crosses examples and the loss
  // differs, so the check above can fail.
  TrainBatch crossed = packed;
  crossed.segments = Tensor();
  crossed.positions = Tensor();
  EXPECT_GT(std::fabs(g.eval(crossed).sum - ls.sum), 1e-4 * std::fabs(ls.sum));
}

// Every epoch covers each packed row once, in a new order; a restored batcher continues exactly.
TEST(Packing, BatcherEpochsAndResume) {
  const Dataset d = random_dataset({7, 3, 5, 9, 4, 2, 6, 8, 5, 3, 10}, 61, 31, 0.33f);
  Batcher a(d, 2, true, 42, 0, 16);
  ASSERT_TRUE(a.packing());
  const int64_t units = a.units_per_epoch(), per_epoch = a.batches_per_epoch();
  EXPECT_EQ(units, static_cast<int64_t>(pack_examples(d, 16).size()));
  std::vector<std::vector<int64_t>> epoch_ids[2];
  for (int ep = 0; ep < 2; ep++) {
    int64_t counted = 0;
    for (int64_t i = 0; i < per_epoch; i++) {
      const TrainBatch b = a.next();
      counted += b.counted();
      epoch_ids[ep].push_back(b.ids.to_i64_vector());
    }
    EXPECT_EQ(counted, d.counted_tokens()) << "epoch " << ep;
  }
  EXPECT_NE(epoch_ids[0], epoch_ids[1]);  // reshuffled
  // Resume from the middle of epoch 2.
  a.next();
  const BatcherState st = a.state();
  std::vector<TrainBatch> want;
  for (int i = 0; i < 3; i++) want.push_back(a.next());
  Batcher b(d, 2, true, 42, 0, 16);
  b.restore(st);
  for (int i = 0; i < 3; i++) {
    const TrainBatch got = b.next();
    EXPECT_EQ(got.ids.to_i64_vector(), want[i].ids.to_i64_vector()) << i;
    EXPECT_EQ(got.targets.to_i64_vector(), want[i].targets.to_i64_vector()) << i;
    EXPECT_EQ(got.positions.to_i64_vector(), want[i].positions.to_i64_vector()) << i;
    EXPECT_EQ(got.segments.to_i64_vector(), want[i].segments.to_i64_vector()) << i;
  }
  EXPECT_THROW(b.restore(BatcherState{0, units + 1}), Error);
}

// A packed run's batcher index counts rows: resuming it without --packing (or with another row length)
// would continue from the wrong place, so it is refused.
TEST(Packing, ResumeNeedsTheSamePacking) {
  const Dataset d = random_dataset({7, 3, 5, 9, 4}, 61, 41, 0.33f);
  TrainOptions o;
  o.out_dir = (std::filesystem::path(WICK_BINARY_DIR) / "test_scratch" / "packing_resume").string();
  std::filesystem::remove_all(o.out_dir);
  o.lora.r = 2;
  o.lora.target_modules = {"q_proj"};
  o.max_steps = 1;
  o.packing = true;
  o.max_seq_len = 16;
  {
    auto m = CausalLM::random(tiny_config(61), Device::cpu(), DType::F32, 1);
    Trainer t(*m, d, o);
    ASSERT_TRUE(t.run(nullptr));
  }
  TrainOptions r = o;
  r.resume = o.out_dir;
  r.max_steps = 2;
  for (auto [packing, len] : {std::pair{false, int64_t{16}}, std::pair{true, int64_t{32}}}) {
    r.packing = packing;
    r.max_seq_len = len;
    auto m = CausalLM::random(tiny_config(61), Device::cpu(), DType::F32, 1);
    EXPECT_THROW({ Trainer t(*m, d, r); }, Error) << packing << " " << len;
  }
  r.packing = true;
  r.max_seq_len = 16;
  auto m = CausalLM::random(tiny_config(61), Device::cpu(), DType::F32, 1);
  Trainer t(*m, d, r);
  EXPECT_EQ(t.step(), 1);
  EXPECT_TRUE(t.run(nullptr));
}

}  // namespace
}  // namespace wick::test
