// CUDA out of memory (issue 10): an allocation the device cannot hold, and a training step that does not fit
// in what is left, each end in a wick::Error that says how much was asked for and what to change - no crash,
// no hang - and the device stays usable: the same step runs, with the same bits, once memory is back.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common/model_checks.h"
#include "common/testutil.h"
#include "core/error.h"
#include "core/rng.h"
#include "lora/lora.h"
#include "model/causal_lm.h"
#include "model/loss_and_grads.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

void expect_explained(const std::string& msg) {
  EXPECT_NE(msg.find("out of GPU memory on cuda:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("asked for"), std::string::npos) << msg;
  EXPECT_NE(msg.find("GiB free of"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--batch-size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--grad-checkpointing"), std::string::npos) << msg;
}

TEST(CudaOutOfMemory, AnAllocationBeyondTheDeviceIsExplained) {
  WICK_REQUIRE_CUDA();
  const int64_t n = int64_t{1} << 38;  // 1 TiB of f32: more than any GPU has
  const std::string msg = error_of([&] { Tensor::empty({n}, DType::F32, Device::cuda()); });
  ASSERT_FALSE(msg.empty()) << "a 1 TiB allocation succeeded";
  std::printf("[measured] 1 TiB: %s\n", msg.c_str());
  expect_explained(msg);
  EXPECT_NE(msg.find("asked for 1024.000 GiB"), std::string::npos) << msg;
  // The device still works.
  Rng rng(5);
  Tensor a = randn({64, 9}, rng, 2.0f);
  EXPECT_EQ(max_abs_diff(a.to(Device::cuda()).to(Device::cpu()), a), 0.0);
}

// All but a few MiB of the GPU is held by other tensors (as another process would hold it); a training step
// of a small model on 16 x 1024 tokens that has to allocate its buffers then fails with the explained error.
// With the memory released, the same step runs and gives the loss and gradients of a step before the failure.
TEST(CudaOutOfMemory, AStepThatDoesNotFitIsExplainedAndTheNextStepRuns) {
  WICK_REQUIRE_CUDA();
  ModelConfig c = tiny_config(4096);
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.head_dim = 64;
  c.max_position_embeddings = 1024;
  auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 41);
  io::LoraConfig lc;
  lc.r = 8;
  lc.alpha = 16;
  lc.target_modules = all_lora_targets();
  attach_new_adapters(*m, lc, 42);
  Rng rng(43);
  randomize_lora(*m, rng, 0.1f);
  alloc_lora_grads(*m);
  const int64_t B = 16, T = 1024;  // activations of this step: several hundred MiB
  std::vector<int32_t> ids(B * T), targets(B * T), positions(B * T);
  for (int64_t i = 0; i < B * T; i++) {
    ids[i] = static_cast<int32_t>(rng.below(c.vocab_size));
    targets[i] = static_cast<int32_t>(rng.below(c.vocab_size));
    positions[i] = static_cast<int32_t>(i % T);
  }
  TrainBatch batch;
  batch.ids = Tensor::from_i32(ids, {B, T});
  batch.targets = Tensor::from_i32(targets, {B, T});
  batch.positions = Tensor::from_i32(positions, {B, T});
  // One step with buffers that exist, from lg; one that must allocate its own, from fresh (what runs out).
  LossAndGrads lg(*m), fresh(*m);
  auto step_with = [&](LossAndGrads& g) {
    zero_lora_grads(*m);
    const LossSum s = g.step(batch, 1.0f / static_cast<float>(batch.counted()), 0);
    std::vector<float> out;
    for (const LoraParam& p : lora_params(*m)) {
      const std::vector<float> v = p.grad->to_f32_vector();
      out.insert(out.end(), v.begin(), v.end());
    }
    out.push_back(static_cast<float>(s.sum));
    return out;
  };
  auto step = [&] { return step_with(lg); };
  const std::vector<float> before = step();

  // Hold the GPU's memory in 64 MiB blocks until one more does not fit (that failure trims the pool, so what
  // the pool kept from the first step is taken too): less than 64 MiB stays free.
  std::vector<Tensor> held;
  for (;;) {
    try {
      held.push_back(Tensor::empty({int64_t{16} << 20}, DType::I32, Device::cuda()));
    } catch (const Error&) {
      break;
    }
  }
  ASSERT_FALSE(held.empty());
  const std::string msg = error_of([&] { step_with(fresh); });
  const size_t held_blocks = held.size();
  held.clear();
  ASSERT_FALSE(msg.empty()) << "the step fitted in less than 64 MiB";
  std::printf("[measured] step with %zu x 64 MiB held: %s\n", held_blocks, msg.c_str());
  EXPECT_NE(msg.find("out of GPU memory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("batch"), std::string::npos) << msg;

  // The step that failed runs once memory is back, with the same result as the one before (its buffers were
  // not marked allocated by the failed attempt).
  EXPECT_EQ(step_with(fresh), before) << "the step after an out-of-memory failure differs from the one before it";
  EXPECT_EQ(step(), before);
}

}  // namespace
}  // namespace wick::test
