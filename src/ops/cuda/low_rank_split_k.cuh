// The fused low-rank product as two launches chained by programmatic dependent launch: LowRankKernel::kSplitK
// (ops/low_rank.h; dev/low_rank/'s v4). Header-only (CUDA runtime only) so dev/low_rank/'s harness builds the
// very kernels wick runs.
//
// What is fused and why. The cooperative kernel (low_rank.cuh) pays a cooperative launch and two grid barriers
// (an empty cooperative kernel with two barriers: ~8 us on an H200); recomputing u per row tile
// (low_rank_recompute.cuh) pays CT-fold FMAs, too many from r 16. Here the reduction over `in` is split as in
// the cooperative kernel's phase 1 and the barrier replaced by a kernel boundary made cheap by PDL
// (ops/cuda/pdl.cuh):
//   1. partial_kernel, G1 blocks: block b takes a contiguous run of the 16-column tiles of `in` (lr_partial_u,
//      the cooperative kernel's phase 1: x and A staged in shared memory, 4 x 4 register tiles over 64 x 64) and
//      writes its partial u_b [M, r] (f32) to the workspace. Every element of x and A is read once.
//   2. finish_kernel, grid (row tiles) x (column tiles) as low_rank_tile.cuh: launched with the PDL attribute,
//      so its blocks start while the partial kernel runs; each stages its B tile, waits (pdl::enter), sums the
//      G1 partials of its TM rows into u [TM, r] and writes its tile of y.
// No grid barrier and no repeated FMAs; the cost is the second launch, mostly hidden by PDL. Measured (f32, M 64):
// 512 r 16 11.2 us, 1024 r 16 11.8, r 32 12.6, r 64 14.9 against the cooperative kernel's 13.5-17.0; from 2,048
// wide the cooperative kernel is faster (ops/low_rank.cpp's rule). Without PDL (WICK_PDL=0, devices before
// sm_90) the two launches simply follow each other: correct, but not what was measured, so ops/cuda/low_rank.cu
// keeps the cooperative kernel there unless this one is forced.
//
// B before the wait (EARLY_B, wick's choice: 0.15-0.6 us faster on the seed rows at wick's configuration): B is
// an input that neither launch writes, and whatever kernel wrote it before this op has finished by then (the
// partial kernel lets the finish kernel start only after every partial block has passed its own pdl::enter,
// which waits for the kernel before it). y and the partials are touched only after the wait.
//
// Summation order of u[m, k]: per partial block, its tiles in order, each tile's 16 columns in order (one fmaf
// chain, as the cooperative kernel's phase 1); then the G1 partials in block order. y: low_rank_tile.cuh (k in
// order). Deterministic (G1 depends on `in` only); not the order of the other two kernels. u stays f32; y is
// rounded once.
#pragma once
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "ops/cuda/low_rank.cuh"
#include "ops/cuda/low_rank_tile.cuh"
#include "ops/cuda/pdl.cuh"

namespace wick::lowrank {

// wick's configuration (the harness sweeps others): TM 4 rows a finish block, about 128 finish blocks, B staged
// before the wait: on each seed row the best measured or within 0.05 us of it.
constexpr int kSplitKTM = 4;
constexpr int kSplitKBlocks = 128;
constexpr bool kSplitKEarlyB = true;
constexpr int kSplitKMaxPartials = 32;  // the most measured

// Partial blocks for `in` columns: two 16-column tiles each, at most kSplitKMaxPartials. Measured: in 512, r 16:
// G1 16 beat 8 by 2.0 us and 32 by 0.4-1.0; in 1024, r 4..64: G1 32 beat 16 by 0.7-1.9 us.
inline int split_k_partials(int in) {
  const int tiles = (in + kTile - 1) / kTile;
  const int g = (tiles + 1) / 2;
  return g < 1 ? 1 : g > kSplitKMaxPartials ? kSplitKMaxPartials : g;
}
// Workspace floats for G1 partial blocks: G1 partials of M r.
inline size_t split_k_workspace_floats(int G1, int M, int r) { return (size_t)G1 * M * r; }

// Partial block b (every thread of the block): partial u_b over the tiles [b per, (b + 1) per) of `in` into
// a.part + b M r.
template <typename T> __device__ __forceinline__ void split_k_partial(const TileArgs<T>& a, int b, Phase1Smem& sm) {
  const int tiles = (a.in + kTile - 1) / kTile, per = (tiles + a.G1 - 1) / a.G1;
  const int t0 = b * per, t1 = min(tiles, t0 + per);
  float acc[4][4] = {};
  lr_partial_u(a.x, a.A, a.M, a.in, a.r, t0, t1, 1, sm, acc);
  lr_store_partial(a.part + (size_t)b * a.M * a.r, a.M, a.r, acc);
}

// The finish of tile (m0, o0) once every partial is written and the B tile staged (or its cp.async issued): the
// G1 partials of its TM rows summed in block order into us [TM][kMaxR] (read from L2), then its tile of y.
template <typename T, int TM>
__device__ __forceinline__ void split_k_finish(const TileArgs<T>& a, const float* bs, float* us, int m0, int o0) {
  const int r = a.r;
  for (int e = threadIdx.x; e < TM * r; e += kThreads) {
    const int row = e / r, k = e % r, m = m0 + row;
    float s = 0.0f;
    if (m < a.M)
      for (int b = 0; b < a.G1; b++) s += __ldcg(a.part + (size_t)b * a.M * r + m * r + k);
    us[row * kMaxR + k] = s;
  }
  if constexpr (sizeof(T) == 4) __pipeline_wait_prior(0);
  __syncthreads();
  tile_write_y<T, TM>(a, us, bs, m0, o0);
}

// First launch: the partial blocks.
template <typename T> __global__ void __launch_bounds__(kThreads) partial_kernel(TileArgs<T> a) {
  __shared__ __align__(16) Phase1Smem sm;
  pdl::enter();
  split_k_partial(a, blockIdx.x, sm);
}

static_assert(sizeof(float) * kMaxTM * kMaxR <= kTileStaticSmemBound,
              "finish_kernel's static shared memory (us) is what tile_smem_allow assumes");

// Second launch: grid (RT, CT) as low_rank_tile.cuh. EARLY_B: stage B before waiting for the partial kernel.
template <typename T, int TM, bool EARLY_B>
__global__ void __launch_bounds__(kThreads) finish_kernel(TileArgs<T> a) {
  extern __shared__ __align__(16) float bs[];
  __shared__ __align__(16) float us[kMaxTM * kMaxR];
  const int m0 = blockIdx.x * TM, o0 = blockIdx.y * a.tn;
  if (EARLY_B) tile_stage_b(a, bs, o0);
  pdl::enter();
  if (!EARLY_B) tile_stage_b(a, bs, o0);
  split_k_finish<T, TM>(a, bs, us, m0, o0);
}

// The arguments of both launch forms: G1 clamped to [1, the tiles of in], the finish grid (into g) of TM rows a
// block and about `target` blocks.
template <typename T>
TileArgs<T> split_k_args(const T* x, const T* A, const T* B, T* y, int M, int in, int r, int out, float scale,
                         bool accumulate, int G1, float* ws, int TM, int target, TileGrid& g) {
  const int tiles = (in + kTile - 1) / kTile;
  G1 = G1 > tiles ? tiles : G1 < 1 ? 1 : G1;
  g = tile_grid(M, out, r, TM, target, 0);
  return TileArgs<T>{x, A, B, y, ws, M, in, r, out, scale, accumulate ? 1 : 0, g.tn, G1};
}

// y (=|+=) scale (x A^T) B^T by G1 partial blocks (clamped to [1, the tiles of in]; split_k_partials is wick's
// choice), then the finish kernel with TM rows a block and about `target` blocks, chained by PDL (when
// pdl::enabled()). ws holds split_k_workspace_floats(G1, M, r) floats; the grid used goes to *used when given.
// M in [1, kMaxM], r in [1, kMaxR], in, out >= 1.
template <typename T, int TM = kSplitKTM, bool EARLY_B = kSplitKEarlyB>
cudaError_t split_k_launch(const T* x, const T* A, const T* B, T* y, int M, int in, int r, int out, float scale,
                           bool accumulate, int G1, float* ws, cudaStream_t s, int target = kSplitKBlocks,
                           TileGrid* used = nullptr) {
  TileGrid g;
  const TileArgs<T> a = split_k_args(x, A, B, y, M, in, r, out, scale, accumulate, G1, ws, TM, target, g);
  if (used) *used = g;
  const cudaError_t e = pdl::launch(partial_kernel<T>, dim3(a.G1), dim3(kThreads), 0, s, a);
  if (e != cudaSuccess) return e;
  return tile_launch(finish_kernel<T, TM, EARLY_B>, a, g, true, s);
}

}  // namespace wick::lowrank
