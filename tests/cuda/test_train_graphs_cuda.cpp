// Training steps as CUDA graphs (LossAndGrads::set_step_graphs) against the same steps launched one kernel at a
// time: the per-step loss sums and every adapter gradient bit for bit, over steps whose batches, adapters (moved
// between steps as an optimizer would) and shapes change, with two micro-batches a step.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/model_checks.h"
#include "common/testutil.h"
#include "core/rng.h"
#include "lora/lora.h"
#include "model/loss_and_grads.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"

namespace wick::test {
namespace {

// Rows of random tokens and targets; the targets of the positions where ignore[i] is set are ignored. The
// ignore pattern fixes the counted rows (a shape of the step); the tokens differ every call.
TrainBatch random_batch(Rng& rng, int64_t B, int64_t T, int64_t V, const std::vector<char>& ignore) {
  std::vector<int32_t> ids(B * T), targets(B * T);
  for (int64_t i = 0; i < B * T; i++) {
    ids[i] = static_cast<int32_t>(rng.below(V));
    targets[i] = ignore[i] ? kIgnoreIndex : static_cast<int32_t>(rng.below(V));
  }
  TrainBatch tb;
  tb.ids = Tensor::from_i32(ids, {B, T});
  tb.targets = Tensor::from_i32(targets, {B, T});
  return tb;
}

struct TrainRun {
  std::unique_ptr<CausalLM> m;
  std::unique_ptr<LossAndGrads> lg;
};

TrainRun make_run(const ModelConfig& c, DType dt, bool graphs) {
  TrainRun r;
  r.m = CausalLM::random(c, Device::cuda(), dt, 41);
  io::LoraConfig lc;
  lc.r = 8;
  lc.alpha = 16;
  lc.target_modules = all_lora_targets();
  attach_new_adapters(*r.m, lc, 42);
  Rng rng(43);
  randomize_lora(*r.m, rng, 0.2f);
  alloc_lora_grads(*r.m);
  r.lg = std::make_unique<LossAndGrads>(*r.m);
  r.lg->set_step_graphs(graphs);
  return r;
}

TEST(CudaTrainGraphs, ReplayedStepsEqualEagerStepsBitForBit) {
  WICK_REQUIRE_CUDA();
  // Head dim 64 and bf16: the attention cuDNN runs where it is present (wick's kernels otherwise).
  ModelConfig c;
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.num_layers = 2;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 64;
  c.vocab_size = 300;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = false;
  const int64_t B = 2, T = 64, N = B * T;
  for (DType dt : {DType::BF16, DType::F32}) {
    SCOPED_TRACE(dtype_name(dt));
    TrainRun eager = make_run(c, dt, false), graphed = make_run(c, dt, true);
    Rng pattern_rng(44);
    std::vector<char> most(N), fewer(N);
    for (int64_t i = 0; i < N; i++) most[i] = pattern_rng.below(5) == 0, fewer[i] = pattern_rng.below(2) == 0;
    // Steps 0-3 one shape (captured at step 2: the eager step 1 saw its key), step 4 another (eager), then back.
    const std::vector<const std::vector<char>*> plan = {&most, &most, &most, &most, &fewer, &most, &most, &most};
    Rng data_eager(45), data_graphed(45);
    for (size_t step = 0; step < plan.size(); step++) {
      SCOPED_TRACE("step " + std::to_string(step));
      std::vector<double> sums[2];
      std::vector<std::vector<float>> grads[2];
      TrainRun* runs[2] = {&eager, &graphed};
      Rng* data[2] = {&data_eager, &data_graphed};
      for (int w = 0; w < 2; w++) {
        TrainRun& r = *runs[w];
        zero_lora_grads(*r.m);
        const TrainBatch b1 = random_batch(*data[w], B, T, c.vocab_size, *plan[step]);
        const TrainBatch b2 = random_batch(*data[w], B, T, c.vocab_size, *plan[step]);
        const float scale = 1.0f / static_cast<float>(b1.counted() + b2.counted());
        r.lg->queue_step(b1, scale);
        r.lg->queue_step(b2, scale);
        sums[w] = r.lg->take_loss_sums();
        for (const LoraParam& p : lora_params(*r.m)) {
          grads[w].push_back(p.grad->to_f32_vector());
          axpy(-0.05f, *p.grad, *p.value);  // the adapters move, as under an optimizer
        }
      }
      ASSERT_EQ(sums[0].size(), 2u);
      EXPECT_EQ(sums[1], sums[0]);
      ASSERT_EQ(grads[1].size(), grads[0].size());
      for (size_t i = 0; i < grads[0].size(); i++) {
        double norm = 0;
        for (float x : grads[0][i]) norm += static_cast<double>(x) * x;
        EXPECT_GT(norm, 0.0) << "gradient " << i << ": a zero gradient checks nothing";
        EXPECT_EQ(grads[1][i], grads[0][i]) << "gradient " << i;
      }
    }
    // Each micro-batch's graph is captured at step 2 (step 1 ran its key eagerly; step 0 also made the buffers and
    // uploaded the positions) and replayed there and at steps 3, 5, 6, 7 (step 4's shape runs eagerly, and the
    // graphs of the first shape are kept): 2 x 5 replays; the eager run none.
    EXPECT_EQ(graphed.lg->graph_replays(), 10);
    EXPECT_EQ(eager.lg->graph_replays(), 0);
  }
}

}  // namespace
}  // namespace wick::test
