// The pooled token choice of a server's batch (ops/sampling_pool.h) on the CPU: sample_tokens_pooled is
// sample_tokens over history rows picked from a pool (tests/common/sampling_pool_checks.h; tests/cuda runs the
// same on the GPU), and its arguments are checked clearly.
#include <gtest/gtest.h>

#include "common/sampling_pool_checks.h"
#include "common/testutil.h"
#include "infer/sampler.h"
#include "ops/sampling_pool.h"

namespace wick::test {
namespace {

TEST(SampleTokensPooled, EqualsSampleTokensOnTheGatheredRows) {
  check_sample_tokens_pooled(Device::cpu(), 12, 20, 300, 4, 61);
  check_sample_tokens_pooled(Device::cpu(), 5, 5, 2000, 3, 62);
}

TEST(SampleTokensPooled, RefusesSharedOrMissingRowsAndBadPairs) {
  const int64_t R = 3, V = 50;
  Rng rng(63);
  Tensor logits = randn({R, V}, rng), pool = Tensor::zeros({4, V}, DType::I32, Device::cpu());
  std::vector<SampleRow> rows(3, to_sample_row(SamplingParams{}));
  Tensor params = sample_rows_tensor(rows, Device::cpu()), ids = Tensor::empty({R}, DType::I32, Device::cpu());
  EXPECT_NE(error_of([&] { sample_tokens_pooled(logits, &pool, Tensor::from_i32({0, 2, 0}, {R}), params, ids); })
                .find("both pool row 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { sample_tokens_pooled(logits, &pool, Tensor::from_i32({0, 4, 1}, {R}), params, ids); })
                .find("seen_rows[1] = 4"),
            std::string::npos);
  EXPECT_NE(error_of([&] { sample_tokens_pooled(logits, &pool, Tensor::from_i32({0, 1}, {2}), params, ids); })
                .find("seen_rows"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mark_tokens(pool, Tensor::from_i32({1, 50}, {1, 2})); }).find("at[0] = (1, 50)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { subtract_at(logits, Tensor::from_i32({3, 0}, {1, 2}), Tensor::from_f32({1.0f}, {1})); })
                .find("at[0] = (3, 0)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { subtract_at(logits, Tensor::from_i32({0, 0, 1}, {1, 3}), Tensor::from_f32({1.0f}, {1})); })
                .find("[n, 2]"),
            std::string::npos);
  // All rows without history need no pool.
  sample_tokens_pooled(logits, nullptr, Tensor::from_i32({-1, -1, -1}, {R}), params, ids);
  for (int64_t r = 0; r < R; r++) EXPECT_GE(ids.data<int32_t>()[r], 0);
}

}  // namespace
}  // namespace wick::test
