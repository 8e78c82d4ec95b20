// Training steps as CUDA graphs (LossAndGrads::set_step_graphs) against the same steps launched one kernel at a
// time: the per-step loss sums and every adapter gradient bit for bit, over steps whose batches, counted rows, loss
// scales, adapters (moved between steps as an optimizer would) and shapes change, with two micro-batches a step;
// bf16 and f32, packed rows (positions and segments change every step), and with dropout (every micro-batch its own
// seed, which the replayed kernels read from the device: the masks must be the eager run's).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/model_checks.h"
#include "common/testutil.h"
#include "core/device.h"
#include "core/rng.h"
#include "lora/lora.h"
#include "model/loss_and_grads.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

// Rows of random tokens and targets; the targets of the positions where ignore[i] is set are ignored (the counted
// rows: the loss's shapes). packed: each row packs examples of random lengths (positions restart, segments number
// them).
TrainBatch random_batch(Rng& rng, int64_t B, int64_t T, int64_t V, const std::vector<char>& ignore, bool packed) {
  std::vector<int32_t> ids(B * T), targets(B * T), positions(B * T), segments(B * T);
  for (int64_t b = 0; b < B; b++) {
    int64_t seg = 0, pos = 0, left = 1 + static_cast<int64_t>(rng.below(T));
    for (int64_t t = 0; t < T; t++, left--) {
      if (left == 0) seg++, pos = 0, left = 1 + static_cast<int64_t>(rng.below(T));
      const int64_t i = b * T + t;
      ids[i] = static_cast<int32_t>(rng.below(V));
      targets[i] = ignore[i] ? kIgnoreIndex : static_cast<int32_t>(rng.below(V));
      positions[i] = static_cast<int32_t>(pos++);
      segments[i] = static_cast<int32_t>(seg);
    }
  }
  TrainBatch tb;
  tb.ids = Tensor::from_i32(ids, {B, T});
  tb.targets = Tensor::from_i32(targets, {B, T});
  if (packed) {
    tb.positions = Tensor::from_i32(positions, {B, T});
    tb.segments = Tensor::from_i32(segments, {B, T});
  }
  return tb;
}

struct TrainRun {
  std::unique_ptr<CausalLM> m;
  std::unique_ptr<LossAndGrads> lg;
};

TrainRun make_run(const ModelConfig& c, DType dt, bool graphs, float dropout) {
  TrainRun r;
  r.m = CausalLM::random(c, Device::cuda(), dt, 41);
  io::LoraConfig lc;
  lc.r = 8;
  lc.alpha = 16;
  lc.dropout = dropout;
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
  ModelConfig c = tiny_config(300);  // 2 layers, untied lm_head; wider, with 2 / 1 heads of 64
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 64;
  c.max_position_embeddings = 128;
  const int64_t B = 2, T = 64, N = B * T;
  struct Case {
    DType dt;
    bool packed;
    float dropout;  // each micro-batch draws its masks from its own seed (uploaded with its inputs)
  };
  for (const Case& cs : {Case{DType::BF16, false, 0.0f}, Case{DType::F32, false, 0.0f}, Case{DType::BF16, true, 0.0f},
                         Case{DType::BF16, false, 0.1f}}) {
    const DType dt = cs.dt;
    SCOPED_TRACE(std::string(dtype_name(dt)) + (cs.packed ? ", packed" : "") + (cs.dropout > 0 ? ", dropout" : ""));
    TrainRun eager = make_run(c, dt, false, cs.dropout), graphed = make_run(c, dt, true, cs.dropout);
    // Steps 0-5 one shape, 6-7 shorter rows (T / 2: the buffers are made again), 8-13 back to T (made again once
    // more: the graphs of the first set must not replay over the new one, whatever addresses it got). Every
    // micro-batch ignores its own random share of targets (0-90%: the counted rows, the loss's shapes and its scale
    // change every time, as on chat data); with packing, every third step has plain rows (no segments).
    const std::vector<int64_t> lengths = {T, T, T, T, T, T, T / 2, T / 2, T, T, T, T, T, T};
    Rng data_eager(45), data_graphed(45);
    for (size_t step = 0; step < lengths.size(); step++) {
      SCOPED_TRACE("step " + std::to_string(step));
      std::vector<double> sums[2];
      std::vector<std::vector<float>> grads[2];
      TrainRun* runs[2] = {&eager, &graphed};
      Rng* data[2] = {&data_eager, &data_graphed};
      const int64_t Ts = lengths[step];
      const bool packed = cs.packed && step % 3 != 1;
      // Before step 11 the scratch block is replaced by a larger one (as an evaluation or a sample between steps
      // may do): the graphs captured with the old block must not replay.
      if (step == 11) device_scratch_reserve(Device::cuda(), 2 * device_scratch_bytes(Device::cuda()));
      for (int w = 0; w < 2; w++) {
        TrainRun& r = *runs[w];
        zero_lora_grads(*r.m);
        Rng& d = *data[w];
        std::vector<char> ignore[2];
        for (std::vector<char>& ig : ignore) {
          const uint64_t share = d.below(10);  // in tenths
          for (int64_t i = 0; i < B * Ts; i++) ig.push_back(d.below(10) < share);
        }
        const TrainBatch b1 = random_batch(d, B, Ts, c.vocab_size, ignore[0], packed);
        const TrainBatch b2 = random_batch(d, B, Ts, c.vocab_size, ignore[1], packed);
        const float scale = 1.0f / static_cast<float>(b1.counted() + b2.counted());
        r.lg->queue_step(b1, scale, 1000 * step + 1);
        r.lg->queue_step(b2, scale, 1000 * step + 2);
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
    // A key is captured the second time it is seen, after at most two eager micro-batches (the first may grow the
    // scratch block, changing the key) and shared by both micro-batches of a step: each run of one shape and
    // scratch block (12, 4, 6 and 6 micro-batches) replays all but its first two or three. Packing's plain steps (1, 4, 10, 13) have
    // their own key: their first two may run eagerly too, and the buffers for plain positions are made again
    // when they come (their address is in the key), and again after. Dropout replays as the plain rows do (its
    // seed is an upload, not a kernel argument). None replay in the eager run.
    const int64_t micro_batches = 2 * static_cast<int64_t>(lengths.size());
    if (!cs.packed) {
      EXPECT_GE(graphed.lg->graph_replays(), micro_batches - 12);
      EXPECT_LE(graphed.lg->graph_replays(), micro_batches - 4);
    } else {
      EXPECT_GE(graphed.lg->graph_replays(), 6);
      EXPECT_LE(graphed.lg->graph_replays(), micro_batches - 6);
    }
    EXPECT_EQ(eager.lg->graph_replays(), 0);
  }
}

// The trainer (optimizer, clipping on the device, gradient accumulation) with its steps as graphs, stopped after
// step 3 and resumed, against an uninterrupted run without graphs: the same checkpoint bytes and losses.
TEST(CudaTrainGraphs, TrainerWithGraphsAndAResumeEqualsTheRunWithout) {
  WICK_REQUIRE_CUDA();
  TempDir tmp;
  Rng rng(7);
  ModelConfig c = tiny_config(211);
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.head_dim = 32;
  std::vector<Example> ex;  // one length, everything counted: every step has the same shapes
  for (int i = 0; i < 40; i++) ex.push_back(random_example(rng, 33, 0, c.vocab_size));
  const Dataset data = write_and_load(ex, tmp.file("d.jsonl"), c.vocab_size);
  TrainOptions o;
  o.lora.r = 8;
  o.lora.alpha = 16;
  o.lora.target_modules = all_lora_targets();
  o.max_steps = 7;
  o.batch_size = 2;
  o.grad_accum = 2;
  o.max_grad_norm = 0.05;  // clipping on: the norm's bits reach every update
  o.lr = 1e-3;
  auto run = [&](const std::string& dir, bool graphs, int64_t stop_after, bool resume) {
    if (graphs) unsetenv("WICK_TRAIN_GRAPHS");
    else setenv("WICK_TRAIN_GRAPHS", "0", 1);
    TrainOptions x = o;
    x.out_dir = dir;
    if (resume) x.resume = dir;
    auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 3);
    Trainer t(*m, data, x);
    run_trainer(t, stop_after);
    unsetenv("WICK_TRAIN_GRAPHS");
  };
  run(tmp.file("eager"), false, -1, false);
  run(tmp.file("graphs"), true, 3, false);
  run(tmp.file("graphs"), true, -1, true);
  for (const char* f : {"adapter_model.safetensors", "optimizer.safetensors"})
    EXPECT_TRUE(file_bytes(ckpt(tmp.file("eager")) + "/" + f) == file_bytes(ckpt(tmp.file("graphs")) + "/" + f)) << f;
  const auto a = read_metrics(tmp.file("eager")), b = read_metrics(tmp.file("graphs"));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i++)
    if (a[i].contains("loss")) EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "record " << i;
}

}  // namespace
}  // namespace wick::test
