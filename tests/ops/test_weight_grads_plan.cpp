// weight_grad_products' launch plans (src/ops/cuda/weight_grads_plan.h), on the CPU: the layout the CUDA kernel
// reads (blocks, offsets, split row ranges) over random sets of products, for both reductions. What matters most:
// a kWave plan never has more blocks than the resident capacity it was given (its blocks spin until the tile's
// other splits arrive: one not resident would never come), and every tile's splits cover its K rows once, in
// order, none empty (a split without rows would still write a partial and arrive).
#include <gtest/gtest.h>

#include <string>

#include "core/rng.h"
#include "ops/cuda/weight_grads_plan.h"

namespace wick {
namespace {

namespace wg = wgrad;

// The fields the plans read and write (weight_grads.cuh's Product and Batch carry the same, with the pointers).
struct PlanProduct {
  int K = 0, M = 0;
  int tiles = 0, splits = 1, split_rows = 0, first_block = 0;
  long long part_offset = 0;
  int counter_offset = 0;
};
struct PlanBatch {
  PlanProduct p[wg::kMaxProducts];
  int n = 0;
  int blocks = 0;
};

// A random set: 1..8 products of one K (a step's tokens: often 8,192 or near it, sometimes short), M a multiple of 8.
PlanBatch random_batch(Rng& rng) {
  PlanBatch b;
  b.n = 1 + static_cast<int>(rng.below(wg::kMaxProducts));
  const int64_t pick = rng.below(4);
  const int K = pick == 0 ? static_cast<int>(rng.below(3000)) : pick == 1 ? 8192 : 8190 + static_cast<int>(rng.below(5));
  for (int i = 0; i < b.n; i++) {
    b.p[i].K = K;
    b.p[i].M = 8 * (1 + static_cast<int>(rng.below(1200)));
  }
  return b;
}

// The layout's bookkeeping, the same for both plans: tiles, consecutive blocks, partials and counters, and the
// returned workspace size; and each tile's splits covering [0, K) in order, none empty.
template <int RT, int TM>
void check_layout(const PlanBatch& b, long long floats, bool wave, int max_splits, const std::string& what) {
  int blocks = 0, counters = 0;
  long long part = 0;
  for (int i = 0; i < b.n; i++) {
    const PlanProduct& p = b.p[i];
    const std::string at = what + ", product " + std::to_string(i) + " (K " + std::to_string(p.K) + ", M " +
                           std::to_string(p.M) + ")";
    ASSERT_EQ(p.tiles, (p.M + TM - 1) / TM) << at;
    ASSERT_EQ(p.first_block, blocks) << at;
    ASSERT_EQ(p.part_offset, part) << at;
    ASSERT_EQ(p.counter_offset, counters) << at;
    ASSERT_GE(p.splits, 1) << at;
    ASSERT_LE(p.splits, max_splits) << at;
    int next = 0;
    for (int s = 0; s < p.splits; s++) {
      int k0 = -1, k1 = -1;
      wg::split_range(p, s, wave, k0, k1);
      ASSERT_EQ(k0, next) << at << ": split " << s << " starts where the one before ended";
      if (p.K > 0) {
        ASSERT_GT(k1, k0) << at << ": split " << s << " has rows";
        ASSERT_LE(k1 - k0, p.split_rows) << at << ": split_rows is the longest split";
        ASSERT_EQ(k0 % wg::kStageK, 0) << at << ": splits start on a 64-row stage";
      }
      next = k1;
    }
    ASSERT_EQ(next, p.K) << at << ": the splits end at K";
    blocks += p.tiles * p.splits;
    part += static_cast<long long>(p.tiles) * p.splits * TM * RT;
    counters += p.tiles;
  }
  ASSERT_EQ(b.blocks, blocks) << what;
  ASSERT_EQ(floats, part) << what;
  ASSERT_EQ(wg::counters_needed(b, TM), counters) << what;
}

template <int RT, int TM> void check_plans(uint64_t seed) {
  Rng rng(seed);
  int waves = 0, declined = 0;
  for (int it = 0; it < 3000; it++) {
    const PlanBatch start = random_batch(rng);
    const int capacity = 1 + static_cast<int>(rng.below(700));
    const std::string what = "RT " + std::to_string(RT) + " TM " + std::to_string(TM) + ", case " +
                             std::to_string(it) + ", capacity " + std::to_string(capacity);
    PlanBatch last = start;
    const long long f1 = wg::plan<RT, TM>(last, capacity);
    check_layout<RT, TM>(last, f1, false, wg::kMaxSplits, what + ", plan");

    PlanBatch wave = start;
    int tiles = 0;
    for (int i = 0; i < wave.n; i++) tiles += (wave.p[i].M + TM - 1) / TM;
    const long long f2 = wg::plan_wave<RT, TM>(wave, capacity);
    if (2 * tiles > capacity) {
      ASSERT_EQ(f2, -1) << what << ": " << tiles << " tiles cannot take two splits in one wave";
      declined++;
      continue;
    }
    ASSERT_GE(f2, 0) << what;
    waves++;
    ASSERT_LE(wave.blocks, capacity) << what << ": a kWave grid is resident all at once";
    check_layout<RT, TM>(wave, f2, true, wg::kMaxWaveSplits, what + ", plan_wave");
    for (int i = 0; i < wave.n; i++) {
      const PlanProduct& p = wave.p[i];
      if (p.K >= 2 * wg::kMinSplitRows)  // room for two splits of kMinSplitRows and two a tile in the wave
        ASSERT_GE(p.splits, 2) << what << ", product " << i << ": a long K is split";
      if (p.splits > 1)
        ASSERT_GE(p.K / p.splits, wg::kMinSplitRows - wg::kStageK) << what << ", product " << i << ": splits of ~kMinSplitRows rows or more";
    }
  }
  EXPECT_GT(waves, 300) << "the random sets exercise plan_wave";
  EXPECT_GT(declined, 300) << "and its fallback";
}

TEST(WeightGradsPlan, LayoutsCoverEveryRowOnceAndWavesFitTheCapacity) {
  check_plans<16, 128>(1);
  check_plans<48, 128>(2);
  check_plans<64, 64>(3);
}

// The training shapes (Qwen2.5-0.5B, 8 x 1024 tokens, r 16) on a capacity like an H100's or H200's (2 blocks of
// the 128-column kernel an SM by shared memory, 132 SMs): the thin products take many splits in one wave.
TEST(WeightGradsPlan, ThinProductsTakeManySplitsInOneWave) {
  PlanBatch qkv_dA;
  qkv_dA.n = 1;
  qkv_dA.p[0].K = 8192;
  qkv_dA.p[0].M = 896;  // dA of q|k|v: x [8192, 896] against du [8192, 48]
  ASSERT_GE((wg::plan_wave<48, 128>(qkv_dA, 264)), 0);
  EXPECT_EQ(qkv_dA.p[0].splits, 32);  // 7 tiles x 32 = 224 blocks of 264
  EXPECT_EQ(qkv_dA.blocks, 224);
  PlanBatch gate_up_15b;  // 1.5B gate/up's dB: 2 x 70 tiles cannot take two splits in 264 blocks
  gate_up_15b.n = 2;
  for (int i = 0; i < 2; i++) gate_up_15b.p[i].K = 8192, gate_up_15b.p[i].M = 8960;
  EXPECT_EQ((wg::plan_wave<16, 128>(gate_up_15b, 264)), -1);
}

}  // namespace
}  // namespace wick
