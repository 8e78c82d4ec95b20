// The fused low-rank product as ONE ordinary launch in which each block recomputes u for its rows:
// LowRankKernel::kRecompute (ops/low_rank.h; dev/low_rank/'s v3). Header-only (CUDA runtime only) so
// dev/low_rank/'s harness builds the very kernel wick runs.
//
// What is fused and why. The cooperative kernel (low_rank.cuh) spreads u = x A^T over the grid and exchanges it
// through L2 with two grid barriers; at the seed suite's shapes (M 64, in = out <= 1,024) the cooperative launch
// and the barriers are most of its 12.7-13.5 us on an H200. Here the grid is (row tiles of TM rows) x (column
// tiles of `out`) (low_rank_tile.cuh) and nothing is exchanged: block (rt, ct) computes u [TM, r] for its own
// TM rows from x and A (read through the read-only cache: A is read by every block, CT RT times in all from L2),
// then its tile of y. Each row tile's u is computed CT times over: M in r CT FMAs in all, which is why this
// pays only while in r is small (measured, f32 M 64: 512 r 8 8.6 us, 1024 r 8 10.9, 1024 r 4 9.9 against the
// cooperative kernel's 12.7-13.5; 1024 r 16 18.7, 1024 r 64 58: ops/low_rank.cpp's rule sends r > 8 elsewhere).
// The block's B tile is staged first (cp.async for f32) and lands while u is computed.
//
// u inside a block: thread (row mm = tid / P, p = tid % P), P = 256 / TM threads a row, keeps r f32 sums (RMAX
// registers, r rounded up to 8, 16, 32 or 64) over the columns i = 4 p + 4 P j (j = 0, 1, ...) of its row, four
// at a time (16-byte f32 / 8-byte bf16 loads where in % 4 == 0 and x, A are so aligned; else one by one, the same
// order); then a butterfly over each warp and the row's warps in order.
// Summation order of u[m, k]: per thread, its columns in order (i, then i + 1 .. i + 3: one fmaf chain); the 32
// lanes of a warp by an xor butterfly (16, 8, 4, 2, 1: every lane gets the same bits); the row's P / 32 warps in
// order. y: low_rank_tile.cuh (k in order). Deterministic; not the cooperative kernel's order, nor split-K's.
// u stays f32; y is rounded once.
#pragma once
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "ops/cuda/low_rank_tile.cuh"

namespace wick::lowrank {

// wick's configuration (the harness sweeps others), best or within 0.1 us of it on each shape measured: TM 4
// rows a block (TM 8: 1.9-3.1 us slower at r <= 8), about 128 blocks (64 or 256: within 0.35 us).
constexpr int kRecomputeTM = 4;
constexpr int kRecomputeBlocks = 128;

// Four consecutive elements of a row as f32 (16-byte f32 / 8-byte bf16 loads; the caller checked alignment).
__device__ __forceinline__ void lr_load4(const float* p, float (&v)[4]) {
  const float4 q = __ldg(reinterpret_cast<const float4*>(p));
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void lr_load4(const __nv_bfloat16* p, float (&v)[4]) {
  const uint2 q = __ldg(reinterpret_cast<const uint2*>(p));
  const __nv_bfloat162 lo = *reinterpret_cast<const __nv_bfloat162*>(&q.x);
  const __nv_bfloat162 hi = *reinterpret_cast<const __nv_bfloat162*>(&q.y);
  v[0] = __low2float(lo), v[1] = __high2float(lo), v[2] = __low2float(hi), v[3] = __high2float(hi);
}

static_assert(sizeof(float) * (kMaxTM * kMaxR + kThreads / 32 * kMaxR) <= kTileStaticSmemBound,
              "recompute_kernel's static shared memory (us, red) is what tile_smem_allow assumes");

// Grid (RT, CT): block (rt, ct) takes rows rt TM .., columns ct tn .. (a.part, a.G1 unused). r <= RMAX.
template <typename T, int TM, int RMAX> __global__ void __launch_bounds__(kThreads) recompute_kernel(TileArgs<T> a) {
  static_assert(TM == 4 || TM == 8, "32 or 64 threads a row");
  constexpr int P = kThreads / TM;  // threads per row
  constexpr int W = P / 32;         // warps per row
  extern __shared__ __align__(16) float bs[];
  __shared__ __align__(16) float us[kMaxTM * kMaxR];
  __shared__ float red[kThreads / 32][RMAX];
  const int m0 = blockIdx.x * TM, o0 = blockIdx.y * a.tn;
  tile_stage_b(a, bs, o0);
  const int mm = threadIdx.x / P, p = threadIdx.x % P, m = m0 + mm;
  const int r = a.r, in = a.in;
  float acc[RMAX];
#pragma unroll
  for (int k = 0; k < RMAX; k++) acc[k] = 0.0f;
  if (m < a.M) {
    const T* xr = a.x + (size_t)m * in;
    constexpr int kAlign = 4 * (int)sizeof(T);
    const bool vec = in % 4 == 0 && reinterpret_cast<uintptr_t>(a.x) % kAlign == 0 &&
                     reinterpret_cast<uintptr_t>(a.A) % kAlign == 0;
    if (vec) {
      for (int i = 4 * p; i < in; i += 4 * P) {
        float xv[4];
        lr_load4(xr + i, xv);
#pragma unroll
        for (int k = 0; k < RMAX; k++) {
          if (k < r) {
            float av[4];
            lr_load4(a.A + (size_t)k * in + i, av);
#pragma unroll
            for (int e = 0; e < 4; e++) acc[k] = fmaf(xv[e], av[e], acc[k]);
          }
        }
      }
    } else {
      for (int i = 4 * p; i < in; i += 4 * P)
        for (int e = 0; e < 4 && i + e < in; e++) {
          const float xv = lr_to_f(xr[i + e]);
#pragma unroll
          for (int k = 0; k < RMAX; k++)
            if (k < r) acc[k] = fmaf(xv, lr_to_f(a.A[(size_t)k * in + i + e]), acc[k]);
        }
    }
  }
  // The row's sum: butterfly within each warp (every lane ends with the same bits), then its W warps in order.
#pragma unroll
  for (int k = 0; k < RMAX; k++) {
#pragma unroll
    for (int s = 16; s >= 1; s /= 2) acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], s);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
#pragma unroll
    for (int k = 0; k < RMAX; k++) red[warp][k] = acc[k];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < TM * RMAX; e += kThreads) {
    const int row = e / RMAX, k = e % RMAX;
    float s = red[row * W][k];
    for (int w = 1; w < W; w++) s += red[row * W + w][k];
    us[row * kMaxR + k] = s;
  }
  if constexpr (sizeof(T) == 4) __pipeline_wait_prior(0);
  __syncthreads();
  tile_write_y<T, TM>(a, us, bs, m0, o0);
}

// y (=|+=) scale (x A^T) B^T by recompute_kernel with TM rows a block and about `target` blocks (ct > 0: that
// many column tiles); the grid used goes to *used when given. M in [1, kMaxM], r in [1, kMaxR], in, out >= 1.
template <typename T, int TM = kRecomputeTM>
cudaError_t recompute_launch(const T* x, const T* A, const T* B, T* y, int M, int in, int r, int out, float scale,
                             bool accumulate, cudaStream_t s, int target = kRecomputeBlocks, int ct = 0,
                             TileGrid* used = nullptr) {
  TileArgs<T> a{x, A, B, y, nullptr, M, in, r, out, scale, accumulate ? 1 : 0, 0, 0};
  const TileGrid g = tile_grid(M, out, r, TM, target, ct);
  a.tn = g.tn;
  if (used) *used = g;
  if (r <= 8) return tile_launch(recompute_kernel<T, TM, 8>, a, g, false, s);
  if (r <= 16) return tile_launch(recompute_kernel<T, TM, 16>, a, g, false, s);
  if (r <= 32) return tile_launch(recompute_kernel<T, TM, 32>, a, g, false, s);
  return tile_launch(recompute_kernel<T, TM, 64>, a, g, false, s);
}

}  // namespace wick::lowrank
