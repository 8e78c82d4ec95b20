// weight_grad_products' launch plans (ops/cuda/weight_grads.cuh): how a set of products is laid out over the grid
// - each product's tiles of M, its K splits and their row ranges, its first block and its offsets into the
// workspace and the tile counters - for the kernel's two reductions (plan: kLastBlock, plan_wave: kWave). Plain
// C++ (no CUDA header), templated on the batch type (weight_grads.cuh's Batch: n, blocks and p[] with K, M and
// the planned fields), so that a CPU test (tests/ops/test_weight_grads_plan.cpp) checks the invariants the
// kernel relies on: a kWave grid never exceeds the resident blocks (its blocks wait for each other), and the
// splits of a tile cover its K rows once, in order.
#pragma once

#if defined(__CUDACC__)
#define WICK_WGRAD_HD __host__ __device__
#else
#define WICK_WGRAD_HD
#endif

namespace wick::wgrad {

constexpr int kMaxProducts = 8;  // per launch (the caller splits longer lists)
constexpr int kTileM = 128;      // columns of a per block: 4 warps of 32
constexpr int kStageK = 64;      // rows of a and b per pipeline stage
constexpr int kStages = 4;
constexpr int kMinSplitRows = 256;   // a split streams at least this many rows (4 stages)
// At most this many K splits a tile: the tile's last block sums its splits' partials one L2 round trip a split
// (the first run, with up to 32 splits and a load an element, spent most of its time there).
constexpr int kMaxSplits = 8;
// kWave's cap: its S blocks each sum 1/S of the tile in one round trip, so more splits cost no longer chain. 32
// fills a wave with a thin product (q|k|v's dA, 7 tiles: 224 blocks, where an H100 holds 264 if shared memory
// lets 2 a SM) and, at K 8192, is where a split comes down to kMinSplitRows.
constexpr int kMaxWaveSplits = 32;

// Rows [k0, k1) of split `split` of product p, as planned: kLastBlock's fixed split_rows, or kWave's K stages
// dealt out evenly over the splits (each gets at least one 64-row stage when splits <= stages).
template <class Product> WICK_WGRAD_HD inline void split_range(const Product& p, int split, bool wave, int& k0, int& k1) {
  if (!wave) {
    k0 = split * p.split_rows;
    k1 = k0 + p.split_rows < p.K ? k0 + p.split_rows : p.K;
  } else {
    const long long stages = (p.K + kStageK - 1) / kStageK;
    k0 = int(split * stages / p.splits * kStageK);
    const long long end = (split + 1) * stages / p.splits * kStageK;
    k1 = int(end < p.K ? end : p.K);
  }
}

// The products' tiles (ceil(M / TM) each), and in `most` the fewest K splits any product takes at kMinSplitRows
// rows a split (at least 1, at most `most` as passed).
template <int TM, class Batch> inline int tiles_and_split_cap(const Batch& b, int& most) {
  int tiles = 0;
  for (int i = 0; i < b.n; i++) {
    tiles += (b.p[i].M + TM - 1) / TM;
    const int fit = b.p[i].K / kMinSplitRows > 1 ? b.p[i].K / kMinSplitRows : 1;
    if (fit < most) most = fit;
  }
  return tiles;
}

// Fills every product's tiles, splits and split_rows (splits_of(its 64-row stages, &split_rows) returns the
// splits), first_block, part_offset and counter_offset, and b.blocks; returns the workspace floats.
template <int RT, int TM, class Batch, class SplitsOf> inline long long lay_out(Batch& b, SplitsOf&& splits_of) {
  long long part = 0;
  int blocks = 0, counters = 0;
  for (int i = 0; i < b.n; i++) {
    auto& p = b.p[i];
    p.tiles = (p.M + TM - 1) / TM;
    p.splits = splits_of((p.K + kStageK - 1) / kStageK, p.split_rows);
    p.first_block = blocks;
    p.part_offset = part;
    p.counter_offset = counters;
    blocks += p.tiles * p.splits;
    part += (long long)p.tiles * p.splits * TM * RT;
    counters += p.tiles;
  }
  b.blocks = blocks;
  return part;
}

// Lays the products of b out over the grid: each gets tiles = ceil(M / TM) and one number of K splits S for the
// launch (at most kMaxSplits, at least kMinSplitRows rows a split), chosen against `capacity` (blocks resident at
// once): the fewest rounds of blocks per unit of work, ceil(w) / w with w = blocks / capacity, the larger S on a
// tie. (A launch of 2.02 waves takes three rounds: the first H100 run lost a third of gate/up's time so.)
// Fills part_offset / counter_offset and returns the workspace floats; b.blocks is the grid size.
template <int RT, int TM = kTileM, class Batch> inline long long plan(Batch& b, int capacity) {
  int max_splits = kMaxSplits;
  const int tiles = tiles_and_split_cap<TM>(b, max_splits);
  if (capacity < 1) capacity = 1;
  int best = 1;
  double best_waste = 1e30;
  for (int S = 1; S <= max_splits; S++) {
    const double w = double(tiles) * S / capacity;
    const double waste = w >= 1.0 ? double((tiles * S + capacity - 1) / capacity) / w : 1.0 / w;
    if (waste <= best_waste + 1e-9) best = S, best_waste = waste;
  }
  // Rows a split, whole stages, then the splits those rows need (no empty split).
  return lay_out<RT, TM>(b, [best](int stages, int& split_rows) {
    const int stages_per = (stages + best - 1) / best;
    split_rows = stages_per * kStageK;
    return stages > 0 ? (stages + stages_per - 1) / stages_per : 1;
  });
}
// kWave's plan: every block of the launch resident at once. S = min(kMaxWaveSplits, capacity / tiles, K /
// kMinSplitRows over the products), at least 1; a product's splits = min(S, its 64-row stages), the stages dealt
// out evenly (the kernel computes each split's range; split_rows is the longest). Returns the workspace floats,
// or -1 when fewer than two splits a tile fit `capacity` (the caller then plans and launches kLastBlock instead:
// unsplit tiles in at most one wave, 1.5B gate/up's 140 tiles on ~264 resident blocks say, would stream all of K a
// block on half the GPU, where kLastBlock's plan takes up to 8 splits over a few rounds).
template <int RT, int TM = kTileM, class Batch> inline long long plan_wave(Batch& b, int capacity) {
  int S = kMaxWaveSplits;
  const int tiles = tiles_and_split_cap<TM>(b, S);
  if (tiles == 0 || 2 * tiles > capacity) return -1;
  if (capacity / tiles < S) S = capacity / tiles;
  return lay_out<RT, TM>(b, [S](int stages, int& split_rows) {
    const int splits = stages < 1 ? 1 : (stages < S ? stages : S);
    split_rows = (stages + splits - 1) / splits * kStageK;
    return splits;
  });
}

template <class Batch> inline int counters_needed(const Batch& b, int tm = kTileM) {
  int n = 0;
  for (int i = 0; i < b.n; i++) n += (b.p[i].M + tm - 1) / tm;
  return n;
}

}  // namespace wick::wgrad
