// The small-row kernels' launch shape (src/ops/cuda/small_m_plan.h), on the CPU: the rule's measured exceptions,
// its overrides, and the one-wave cap of session 33 (an M = 1 launch whose K from the row count would need more
// blocks than the GPU holds at once takes fewer warps a row), over the Qwen2.5 decode shapes and random ones.
#include <gtest/gtest.h>

#include <string>

#include "core/rng.h"
#include "ops/cuda/small_m_plan.h"

namespace wick {
namespace {

namespace sm = small_m;

constexpr int kSms = 132;  // an H100 or H200

sm::LaunchShape qwen(long long rows, int members, long long in, int mode = sm::kPlain, int M = 1, int sms = kSms) {
  sm::Tuning t;
  t.sms = sms;
  return sm::launch_shape(rows, members, in / 8, mode, M, t);  // bf16: 8 elements a 16-byte load
}

TEST(SmallMPlan, QwenDecodeShapes) {
  // 0.5B q|k|v [1152, 896]: K 4 would be 576 blocks for 528 slots; the cap takes K 2 (288 blocks).
  auto s = qwen(896 + 128 + 128, 3, 896);
  EXPECT_EQ(s.k, 2);
  EXPECT_EQ(s.unroll, 4);
  EXPECT_EQ(s.blocks, 288);
  // Without the device's size (the dev harnesses) or at M > 1, the row-count rule alone.
  EXPECT_EQ(qwen(1152, 3, 896, sm::kPlain, 1, 0).k, 4);
  EXPECT_EQ(qwen(1152, 3, 896, sm::kPlain, 4).k, 4);
  // 1.5B q|k|v [2048, 1536]: K 2, 512 blocks fit; o [1536, 1536]: a warp a row, U 8; down [1536, 8960]: 8 and 8;
  // gate/up + GLU [8960, 1536]: 2 and 4.
  s = qwen(1536 + 256 + 256, 3, 1536);
  EXPECT_EQ(s.k, 2);
  EXPECT_EQ(s.blocks, 512);
  s = qwen(1536, 1, 1536);
  EXPECT_EQ(s.k, 1);
  EXPECT_EQ(s.unroll, 8);
  s = qwen(1536, 1, 8960);
  EXPECT_EQ(s.k, 8);
  EXPECT_EQ(s.unroll, 8);
  s = qwen(8960, 2, 1536, sm::kGluSilu);
  EXPECT_EQ(s.k, 2);
  EXPECT_EQ(s.unroll, 4);
  // 0.5B o [896, 896] and down [896, 4864]: K 4, 448 blocks, inside one wave: unchanged.
  EXPECT_EQ(qwen(896, 1, 896).k, 4);
  EXPECT_EQ(qwen(896, 1, 4864).k, 4);
  // lm_head [151936, 896]: a warp a row already; many waves, as before.
  s = qwen(151936, 1, 896);
  EXPECT_EQ(s.k, 1);
  EXPECT_EQ(s.blocks, 151936 / 8);
}

TEST(SmallMPlan, OverridesWin) {
  sm::Tuning t;
  t.sms = kSms;
  t.k = 8;
  t.unroll = 8;
  const auto s = sm::launch_shape(1152, 3, 112, sm::kPlain, 1, t);
  EXPECT_EQ(s.k, 8);
  EXPECT_EQ(s.unroll, 8);
  EXPECT_EQ(s.blocks, 1152);
  t.k = 3;  // not a K: the rule's (capped) choice
  EXPECT_EQ(sm::launch_shape(1152, 3, 112, sm::kPlain, 1, t).k, 2);
}

// Over random launches: the grid covers every row; the cap only lowers K, never below 1, and only for M = 1 with a
// known device; after it, a launch that had K > 1 fits one wave unless K reached 1.
TEST(SmallMPlan, TheCapOnlyLowersKAndFillsOneWave) {
  Rng rng(33);
  for (int it = 0; it < 20000; it++) {
    const long long rows = 1 + static_cast<long long>(rng.below(20000));
    const long long vectors = 1 + static_cast<long long>(rng.below(3000));
    const int members = 1 + static_cast<int>(rng.below(3));
    const int mode = static_cast<int>(rng.below(3));
    const int M = 1 + static_cast<int>(rng.below(sm::kMaxM));
    const int sms = 1 + static_cast<int>(rng.below(200));
    const std::string at = "rows " + std::to_string(rows) + " vectors " + std::to_string(vectors) + " members " +
                           std::to_string(members) + " mode " + std::to_string(mode) + " M " + std::to_string(M) +
                           " sms " + std::to_string(sms);
    sm::Tuning with;
    with.sms = sms;
    const auto capped = sm::launch_shape(rows, members, vectors, mode, M, with);
    const auto plain = sm::launch_shape(rows, members, vectors, mode, M);
    ASSERT_TRUE(capped.k == 1 || capped.k == 2 || capped.k == 4 || capped.k == 8) << at;
    ASSERT_GE(capped.blocks * (sm::kWarps / capped.k), rows) << at;
    ASSERT_LT((capped.blocks - 1) * (sm::kWarps / capped.k), rows) << at;
    ASSERT_EQ(capped.unroll, plain.unroll) << at;
    ASSERT_LE(capped.k, plain.k) << at;
    if (M != 1) ASSERT_EQ(capped.k, plain.k) << at;
    if (capped.k != plain.k) ASSERT_TRUE(capped.k == 1 || capped.blocks <= 1LL * sms * sm::kMinBlocks) << at;
    // and it stopped at the first K that fits: twice as many warps a row would not have
    if (capped.k != plain.k) ASSERT_GT(2 * capped.blocks, 1LL * sms * sm::kMinBlocks) << at;
  }
}

}  // namespace
}  // namespace wick
