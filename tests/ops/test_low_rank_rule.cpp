// The rule choosing among low_rank_product's fused CUDA kernels (ops/low_rank.h, low_rank_rule): it picks what
// was measured fastest on the seed suite's shapes, and the op registry's low_rank shapes (tests/common/op_cases.cpp)
// reach every kernel, each with accumulate on and off, so the CUDA op suites (test_ops_cuda.cpp) run all three
// without a forced kernel. Host only: no GPU needed.
#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "common/op_cases.h"
#include "ops/low_rank.h"

namespace wick::test {
namespace {

TEST(LowRankRule, PicksTheMeasuredKernelOnTheSeedRows) {
  // f32, M 64, in = out (dev/low_rank/low_rank_bench-h200-session27.txt)
  EXPECT_EQ(low_rank_rule(64, 512, 8, 512), LowRankKernel::kRecompute);
  EXPECT_EQ(low_rank_rule(64, 1024, 8, 1024), LowRankKernel::kRecompute);
  EXPECT_EQ(low_rank_rule(64, 1024, 4, 1024), LowRankKernel::kRecompute);
  EXPECT_EQ(low_rank_rule(64, 512, 16, 512), LowRankKernel::kSplitK);
  EXPECT_EQ(low_rank_rule(64, 1024, 16, 1024), LowRankKernel::kSplitK);
  EXPECT_EQ(low_rank_rule(64, 1024, 32, 1024), LowRankKernel::kSplitK);
  EXPECT_EQ(low_rank_rule(64, 1024, 64, 1024), LowRankKernel::kSplitK);
  EXPECT_EQ(low_rank_rule(64, 2048, 8, 2048), LowRankKernel::kCooperative);
  EXPECT_EQ(low_rank_rule(64, 2048, 64, 2048), LowRankKernel::kCooperative);
  // decode shapes (bf16): Qwen2.5-0.5B q_proj 896 -> 896 r 16; down 4864 -> 896; 7B 3584 -> 3584
  EXPECT_EQ(low_rank_rule(1, 896, 16, 896), LowRankKernel::kSplitK);
  EXPECT_EQ(low_rank_rule(1, 4864, 16, 896), LowRankKernel::kCooperative);
  EXPECT_EQ(low_rank_rule(1, 3584, 16, 3584), LowRankKernel::kCooperative);
}

TEST(LowRankRule, RegistryShapesReachEveryKernelWithAccumulateOnAndOff) {
  std::set<std::pair<LowRankKernel, bool>> seen;
  bool fallback = false;
  for (const opcheck::LowRankShape& s : low_rank_shapes()) {
    if (!low_rank_fused(s.M, s.r)) {
      fallback = true;
      continue;
    }
    seen.insert({low_rank_rule(s.M, s.in, s.r, s.out), s.accumulate});
  }
  for (LowRankKernel k : {LowRankKernel::kCooperative, LowRankKernel::kRecompute, LowRankKernel::kSplitK})
    for (bool acc : {false, true})
      EXPECT_TRUE(seen.count({k, acc})) << "no fused shape of the registry runs kernel " << static_cast<int>(k)
                                        << " with accumulate " << acc;
  EXPECT_TRUE(fallback) << "no shape of the registry takes the two-matmul fallback";
}

}  // namespace
}  // namespace wick::test
