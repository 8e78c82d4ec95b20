// The scheduler's device sampling on CUDA (serve/scheduler.h, ops/sampling_pool.h): the pooled op against its
// CPU-checked definition (tests/common/sampling_pool_checks.h), and the scheduler on the tiny random model giving
// exactly the host path's tokens (SequenceDecoder::sample on copied logits) for random settings: each request
// alone (the same forward shapes, so the same logits: exact in f32 and bf16), and in f32 mixed in one batch,
// joining one by one with chunked prefills, and preempted by a small KV cache. The CPU twin of this test is
// tests/serve/test_serve_scheduler.cpp (DeviceSamplingGivesTheHostPathsTokens).
#include <gtest/gtest.h>

#include "common/sampling_pool_checks.h"
#include "common/serve_checks.h"
#include "common/testutil.h"
#include "model/presets.h"

using namespace wick;
using namespace wick::serve;

namespace {

std::unique_ptr<CausalLM> tiny(DType dt) {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = 1000;
  return CausalLM::random(c, Device::cuda(), dt, 6);
}

}  // namespace

TEST(ServeSamplingCuda, PooledSampleTokensEqualsSampleTokens) {
  WICK_REQUIRE_CUDA();
  test::check_sample_tokens_pooled(Device::cuda(), 12, 20, 1000, 4, 81);
  test::check_sample_tokens_pooled(Device::cuda(), 6, 9, 151936, 3, 82);  // Qwen's V: the bitmap path
}

TEST(ServeSamplingCuda, EachRequestAloneGivesTheHostPathsTokens) {
  WICK_REQUIRE_CUDA();
  for (DType dt : {DType::F32, DType::BF16}) {
    auto m = tiny(dt);
    Rng rng(83);
    for (const auto& r : test::random_sampling_requests(rng, 8, 1000, 40, 32))
      test::expect_scheduler_matches_host(*m, {r}, {}, false);
  }
}

TEST(ServeSamplingCuda, MixedAndPreemptedBatchGivesTheHostPathsTokensF32) {
  WICK_REQUIRE_CUDA();
  auto m = tiny(DType::F32);
  Rng rng(84);
  SchedulerLimits lim;
  lim.max_batch = 8;
  test::expect_scheduler_matches_host(*m, test::random_sampling_requests(rng, 16, 1000, 40, 32), lim, false);
  lim.max_step_tokens = 24;
  test::expect_scheduler_matches_host(*m, test::random_sampling_requests(rng, 12, 1000, 40, 24), lim, true);
  SchedulerLimits tight;
  tight.kv_cache_tokens = 12 * kKvBlockTokens;
  EXPECT_GT(test::expect_scheduler_matches_host(*m, test::random_sampling_requests(rng, 16, 1000, 24, 48), tight, false),
            0u);
}
