// The small-row kernels' launch shape (ops/cuda/small_m_linear.cuh): the bounds of a launch, and how many warps
// take an output row (K), how many loads a lane keeps in flight (U) and how many blocks the grid has, from the
// rows, the row width and the device. Plain C++ (no CUDA header), so that a CPU test
// (tests/ops/test_small_m_plan.cpp) checks the rule: its measured exceptions and the one-wave cap.
#pragma once

namespace wick::small_m {

constexpr int kMaxM = 8;        // rows of x per launch
constexpr int kMaxMembers = 3;  // weights per launch (q, k, v)
constexpr int kThreads = 256;   // 8 warps per block
constexpr int kWarps = kThreads / 32;

enum Mode { kPlain = 0, kGluSilu = 1, kGluGelu = 2 };

// At least kMinBlocks blocks an SM (at most 64 registers a thread) for the M = 1 kernels of decode that fit in them
// without spills (U 4, and plain U 8 without the input norm; the others spill there): an SM then holds 32 warps of
// the bandwidth-bound streams (the input norm's registers had taken gate/up + GLU to 74-80: three blocks).
constexpr int kMinBlocks = 4;

// How a launch spreads the work; 0 = the default rule (default_tuning). dev/small_m/small_m_bench.cu times the
// alternatives against each other.
struct Tuning {
  int unroll = 0;  // U: 4 or 8 loads per lane in flight
  int k = 0;       // K: warps per output row, 1, 2, 4 or 8
  int sms = 0;     // the device's multiprocessors, for the default rule's one-wave cap (0: unknown, no cap)
};

// The default: K from the row count (enough warps in flight to cover the memory latency when the rows are few,
// e.g. o_proj's 896; one per row when they are many), U = 4; and two exceptions measured on an H200 (session 18,
// small_m_bench, M = 1, weights settled; docs/benchmarks.md section 10):
//   - long rows (>= 1024 16-byte vectors: the down projections of Qwen2.5-1.5B and 7B): 8 warps a row, U = 8
//     (7B [3584, 18944] 42.8 -> 36.4 us, 1.5B [1536, 8960] 12.0 -> 10.1 us);
//   - one member of 1024..4095 rows of >= 192 vectors (o_proj of 1.5B and 7B): a warp a row, U = 8
//     (7B [3584, 3584] 9.8 -> 8.8 us, 1.5B [1536, 1536] 4.0 -> 3.4 us);
// and one from session 21's rerun of that table on the kernel as it is now (bench/results/2026-12-04-h200-session21.txt,
// call 2, weights settled):
//   - gate/up + GLU of >= 4096 rows: 2 warps a row, U = 4, fastest or within 0.4 us of it on all three models
//     (0.5B [4864, 896] 7.64 -> 7.41 us, 1.5B [8960, 1536] 16.37 -> 15.16, 7B [18944, 3584] 62.78 -> 61.67).
// Elsewhere (q|k|v, plain gate|up, lm_head, the 0.5B shapes) no configuration measured clearly better than this one
// in the harness. Inside the decode chain (session 33, dev/small_m/tune_env.patch: K and U a shape swept in
// `wick generate`, H100) the rule's choices were the fastest or within noise for every shape of 1.5B, and one more
// exception showed: where K from the row count gives an M = 1 launch more blocks than fit on the GPU at once
// (wave_blocks: SMs x kMinBlocks), K halves until they fit - 0.5B q|k|v [1152, 896] at K 4 was 576 blocks for
// 528 slots on 132 SMs; at K 2 (288 blocks) decode went 1,452 / 1,453 -> 1,525 / 1,512 tok/s (K 1: 1,515 / 1,510).
// A second, nearly empty wave waits for a whole first one.
inline Tuning default_tuning(long long rows, int members, long long vectors_per_row, int mode,
                             long long wave_blocks = 0) {
  if (vectors_per_row >= 1024) return {8, 8};
  if (mode == kPlain && members == 1 && rows >= 1024 && rows < 4096 && vectors_per_row >= 192) return {8, 1};
  if (mode != kPlain && rows >= 4096) return {4, 2};
  Tuning t{4, rows >= 4096 ? 1 : rows >= 2048 ? 2 : 4};
  while (wave_blocks > 0 && t.k > 1 && rows * t.k > wave_blocks * kWarps) t.k /= 2;  // blocks = rows K / kWarps
  return t;
}

// What a launch of `rows` output rows (all members; GLU: I) of `vectors_per_row` loads a row runs: K, U and the
// blocks. tune's k and unroll override the rule where set (1, 2, 4, 8 and 4, 8); tune.sms (the device's
// multiprocessors) gives the rule its one-wave cap for M = 1, whose kernels (U 4, as the rule picks where it caps)
// hold kMinBlocks blocks an SM (small_m_linear.cuh min_blocks).
struct LaunchShape {
  int k, unroll;
  long long blocks;
};
inline LaunchShape launch_shape(long long rows, int members, long long vectors_per_row, int mode, int M,
                                const Tuning& tune = {}) {
  const long long wave_blocks = M == 1 && tune.sms > 0 ? static_cast<long long>(tune.sms) * kMinBlocks : 0;
  const Tuning def = default_tuning(rows, members, vectors_per_row, mode, wave_blocks);
  const int k = tune.k == 1 || tune.k == 2 || tune.k == 4 || tune.k == 8 ? tune.k : def.k;
  const int unroll = tune.unroll == 8 || (tune.unroll == 0 && def.unroll == 8) ? 8 : 4;
  const int rows_per_block = kWarps / k;
  return {k, unroll, (rows + rows_per_block - 1) / rows_per_block};
}

}  // namespace wick::small_m
