// Variant v2 of the fused small-M low-rank product (ops/low_rank.h), a dev/ experiment (the op runs v1,
// src/ops/cuda/low_rank.cuh): thread-block clusters, y (=|+=) scale * (x A^T) B^T in ONE launch with no
// grid-wide barrier. Built only by the harness beside it.
//
// Why a second kernel. The cooperative kernel (low_rank.cuh) spreads both products over the whole grid and
// exchanges u through global memory behind two grid barriers; on an H200 the barriers alone cost ~1.8 us
// and each exchange a round trip through L2, so it cannot go below ~12 us a call timed as the seed suite times
// it (the floor, an empty kernel timed that way, is 5.9 us: dev/low_rank/low_rank_bench-h200-2026-12-03.txt).
// Here u never leaves the cluster:
//   1. every cluster computes all of u = x A^T, split over its C blocks by 16-column tiles of `in` (block c takes
//      tiles c, c + C, ...); a block stages up to kPassTiles of its tiles at once, rows of x and A as they lie
//      in memory (every load in flight together: one memory round trip a pass; an odd row stride in shared
//      memory, so neither the staging writes nor the reads conflict), only the rows of x that exist, and keeps
//      its partial u_c [M, r] (f32) in its shared memory;
//   2. after a cluster barrier each block sums the C partials, reading its peers' shared memory (distributed
//      shared memory), in the fixed order c = 0, 1, .., C - 1: every block of every cluster holds the same u,
//      bit for bit;
//   3. y = scale u B^T as in the cooperative kernel's phase 3, the 16-column tiles of `out` spread over every
//      block of the grid; the first tile's B rows are loaded at the start, while phase 1 runs.
// A last cluster barrier keeps each block's partial alive until its peers have read it.
// Each cluster reads all of x and A (G / C copies in all: a few MB of L2 reads at the seed shapes). A pass of
// loads covers C * kPassTiles * 16 columns of `in` (2,048 with 16 blocks a cluster, 1,024 with 8).
// Status: measured against the cooperative kernel (v1) on an H200, 2026-12-03 (low_rank_bench-h200-session15.txt),
// and slower on every shape. The first version: 20-47 us against 12-17 (its staging writes conflicted 8 to 32
// ways in shared memory, and every block staged all 64 rows of x). This version (rows staged as they lie in
// memory with an odd stride, only the rows that exist, the peers' partials loaded together): 19.7-41.9 us
// against v1's 12.4-18.3 on the seed rows, 13.4-72 against 12.3-32 on decode shapes. What is left is the
// cluster launch and its two cluster barriers; the seed rows' goal (<= 10 us, the floor 6 us) is not reached
// this way.
//
// Rounding and order: u in f32 (registers, shared memory), never rounded to the input dtype; f32 accumulation;
// y rounded once (as low_rank.cuh). u sums each tile's 16 columns in order, a block's tiles in order, then the
// blocks in order; y sums r in four strands, then the strands pairwise (phase 3 of low_rank.cuh). Deterministic.
#pragma once
#include <cooperative_groups.h>

#include "ops/cuda/low_rank.cuh"  // LowRankArgs, tiles, strides, conversions

namespace wick::lowrank {

constexpr int kPassTiles = 8;       // 16-column tiles of `in` a block stages per pass (128 columns)
constexpr int kMaxClusterBlocks = 16;
constexpr int kClusterMaxPasses = 2;  // wider inputs take the cooperative kernel (low_rank_cluster_fits)

// Dynamic shared memory of the cluster kernel, in floats (see the layout below).
constexpr int kClusterPartFloats = kMaxM * kMaxR;                              // this block's partial u
constexpr int kClusterBFloats = kMaxR * kBStride;                              // one B tile, bs[k][o]
constexpr int kPassCols = kPassTiles * kTile;                                  // columns of `in` a pass stages
constexpr int kStageStride = kPassCols + 1;                                    // odd: no bank conflicts
constexpr int kClusterStageFloats = (kMaxM + kMaxR) * kStageStride;            // phase 1: x and A rows
constexpr int kClusterUFloats = kMaxR * kUStride;                              // phase 3: u transposed
constexpr int kClusterUnionFloats = kClusterStageFloats > kClusterUFloats ? kClusterStageFloats : kClusterUFloats;
constexpr size_t kClusterSmemBytes = sizeof(float) * (kClusterPartFloats + kClusterBFloats + kClusterUnionFloats);

// B rows o0 .. o0 + 15 into bs[k][o] (zeros past out and r).
template <typename T>
__device__ __forceinline__ void stage_b_tile(const T* B, int o0, int out, int r, int rpad, float* bs, int tid) {
  for (int e = tid; e < kTile * rpad; e += kThreads) {
    const int o = e / rpad, k = e % rpad;
    bs[k * kBStride + o] = (k < r && o0 + o < out) ? lr_to_f(B[(size_t)(o0 + o) * r + k]) : 0.0f;
  }
}

template <typename T> __global__ void __launch_bounds__(kThreads) low_rank_cluster_kernel(LowRankArgs<T> a) {
  namespace cg = cooperative_groups;
  extern __shared__ __align__(16) float smem[];
  float* part = smem;                                   // [M r], row-major: this block's partial u
  float* bs = part + kClusterPartFloats;                // [kMaxR][kBStride]
  float* xs = bs + kClusterBFloats;                     // phase 1: x rows [kMaxM][kStageStride]
  float* as = xs + kMaxM * kStageStride;                // phase 1: A rows [kMaxR][kStageStride]
  float* us = bs + kClusterBFloats;                     // phase 3 (over xs): [kMaxR][kUStride]
  cg::cluster_group cluster = cg::this_cluster();
  const int tid = threadIdx.x;
  const int C = static_cast<int>(cluster.num_blocks()), c = static_cast<int>(cluster.block_rank());
  const int G = gridDim.x, gb = blockIdx.x;
  const int M = a.M, in = a.in, r = a.r, out = a.out;
  const int rpad = (r + 3) & ~3;
  const int tiles_out = (out + kTile - 1) / kTile;

  // The first B tile of phase 3 does not depend on u: its loads overlap phase 1.
  if (gb < tiles_out) stage_b_tile(a.B, gb * kTile, out, r, rpad, bs, tid);

  // ---- phase 1: part = x[:, tiles of c] A[:, tiles of c]^T, 4 x 4 per thread at (tm, tk)
  {
    const int tm = tid / 16, tk = tid % 16;  // rows 4 tm .. 4 tm + 3, ranks 4 tk .. 4 tk + 3
    const bool live = 4 * tm < M && 4 * tk < r;
    const int mpad = (M + 3) & ~3;
    float acc[4][4] = {};
    const int tiles_in = (in + kTile - 1) / kTile;
    for (int first = c; first < tiles_in; first += C * kPassTiles) {  // uniform over the block
      // Stage this pass's tiles first + C j (j < kPassTiles), row-major as x and A lie in memory: column jj =
      // j * 16 + i of the stage holds column (first + C j) * 16 + i of in. Consecutive threads write
      // consecutive columns (coalesced reads, no bank conflicts: the row stride is odd). Zeros past M, r (up
      // to the 4-row tiles the threads read), in and the last tile.
      for (int e = tid; e < mpad * kPassCols; e += kThreads) {
        const int jj = e % kPassCols, m = e / kPassCols;
        const int col = (first + C * (jj / kTile)) * kTile + jj % kTile;
        xs[m * kStageStride + jj] = (m < M && col < in) ? lr_to_f(a.x[(size_t)m * in + col]) : 0.0f;
      }
      for (int e = tid; e < rpad * kPassCols; e += kThreads) {
        const int jj = e % kPassCols, k = e / kPassCols;
        const int col = (first + C * (jj / kTile)) * kTile + jj % kTile;
        as[k * kStageStride + jj] = (k < r && col < in) ? lr_to_f(a.A[(size_t)k * in + col]) : 0.0f;
      }
      __syncthreads();
      if (live) {
        const float* xr0 = xs + 4 * tm * kStageStride;
        const float* ar0 = as + 4 * tk * kStageStride;
        for (int jj = 0; jj < kPassCols; jj++) {
          float xr[4], ar[4];
#pragma unroll
          for (int p = 0; p < 4; p++) xr[p] = xr0[p * kStageStride + jj], ar[p] = ar0[p * kStageStride + jj];
#pragma unroll
          for (int p = 0; p < 4; p++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[p][q] = fmaf(xr[p], ar[q], acc[p][q]);
        }
      }
      __syncthreads();
    }
    if (live) {
#pragma unroll
      for (int p = 0; p < 4; p++)
#pragma unroll
        for (int q = 0; q < 4; q++) {
          const int m = 4 * tm + p, k = 4 * tk + q;
          if (m < M && k < r) part[m * r + k] = acc[p][q];
        }
    }
  }
  cluster.sync();  // every partial of the cluster written (release / acquire across its blocks)

  // ---- phase 2: u = sum over the cluster's blocks (in rank order) of their partials, into us[k][m]
  // Every peer's value is loaded before the sum (the loads are independent: one round trip, not C).
  for (int e = tid; e < kMaxM * kMaxR; e += kThreads) {
    const int k = e % kMaxR, m = e / kMaxR;
    float sum = 0.0f;
    if (m < M && k < r) {
      float v[kMaxClusterBlocks];
#pragma unroll
      for (int p = 0; p < kMaxClusterBlocks; p++) v[p] = p < C ? cluster.map_shared_rank(part, p)[m * r + k] : 0.0f;
#pragma unroll
      for (int p = 0; p < kMaxClusterBlocks; p++)
        if (p < C) sum += v[p];
    }
    us[k * kUStride + m] = sum;
  }
  __syncthreads();

  // ---- phase 3: y[:, tiles gb, gb + G, ..] = scale * u B[tiles]^T (the first tile's B is staged already)
  const int ks = tid & 3, to = (tid >> 2) & 3, tm = tid >> 4;
  for (int t = gb; t < tiles_out; t += G) {
    const int o0 = t * kTile;
    if (t != gb) {
      __syncthreads();  // bs no longer read
      stage_b_tile(a.B, o0, out, r, rpad, bs, tid);
      __syncthreads();
    }
    float acc[4][4] = {};
    if (4 * tm < M) {
      for (int k = ks; k < rpad; k += 4) {
        const float4 uv = *reinterpret_cast<const float4*>(&us[k * kUStride + 4 * tm]);
        const float4 bv = *reinterpret_cast<const float4*>(&bs[k * kBStride + 4 * to]);
        const float ur[4] = {uv.x, uv.y, uv.z, uv.w}, br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
        for (int p = 0; p < 4; p++)
#pragma unroll
          for (int q = 0; q < 4; q++) acc[p][q] = fmaf(ur[p], br[q], acc[p][q]);
      }
    }
#pragma unroll
    for (int p = 0; p < 4; p++)
#pragma unroll
      for (int q = 0; q < 4; q++) {
        acc[p][q] += __shfl_xor_sync(0xffffffffu, acc[p][q], 1);
        acc[p][q] += __shfl_xor_sync(0xffffffffu, acc[p][q], 2);
      }
    float row[4];
#pragma unroll
    for (int p = 0; p < 4; p++)
      if (p == ks)
#pragma unroll
        for (int q = 0; q < 4; q++) row[q] = acc[p][q];
    const int m = 4 * tm + ks;
    if (m < M) {
#pragma unroll
      for (int q = 0; q < 4; q++) {
        const int o = o0 + 4 * to + q;
        if (o < out) {
          T* py = a.y + (size_t)m * out + o;
          const float v = a.scale * row[q];
          *py = lr_from_f<T>(a.accumulate ? lr_to_f(*py) + v : v);
        }
      }
    }
  }
  cluster.sync();  // peers may still be reading this block's partial
}

// Blocks per cluster and clusters of a launch: C spreads the 16-column tiles of `in` (at most max_cluster, at
// least 1); the grid gives every 16-column tile of `out` its own block, up to about one block per SM.
struct ClusterGrid {
  int C = 1, clusters = 1;
  int blocks() const { return C * clusters; }
};
inline ClusterGrid low_rank_cluster_grid(int in, int out, int sm_count, int max_cluster) {
  ClusterGrid g;
  const int tiles_in = (in + kTile - 1) / kTile, tiles_out = (out + kTile - 1) / kTile;
  g.C = tiles_in < max_cluster ? tiles_in : max_cluster;
  if (g.C < 1) g.C = 1;
  int q = (tiles_out + g.C - 1) / g.C;
  const int cap = sm_count / g.C > 0 ? sm_count / g.C : 1;
  g.clusters = q < 1 ? 1 : (q > cap ? cap : q);
  return g;
}

// Whether the cluster kernel takes `in` with clusters of C blocks (at most kClusterMaxPasses passes of loads).
inline bool low_rank_cluster_fits(int in, int C) {
  const int tiles_in = (in + kTile - 1) / kTile;
  return C >= 1 && tiles_in <= C * kPassTiles * kClusterMaxPasses;
}

// Opts the kernel into its shared memory and (max_cluster 16) the non-portable cluster size; returns the largest
// cluster size (16 or 8) the device can run with that shared memory, or 0 when it cannot run clusters at all.
template <typename T> int low_rank_cluster_setup() {
  auto k = low_rank_cluster_kernel<T>;
  if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kClusterSmemBytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  for (int C : {kMaxClusterBlocks, 8}) {
    if (C > 8 && cudaFuncSetAttribute(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = C, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
    cfg.gridDim = dim3(C), cfg.blockDim = dim3(kThreads), cfg.dynamicSmemBytes = kClusterSmemBytes;
    cfg.attrs = &attr, cfg.numAttrs = 1;
    int n = 0;
    if (cudaOccupancyMaxActiveClusters(&n, k, &cfg) == cudaSuccess && n > 0) return C;
    (void)cudaGetLastError();
  }
  return 0;
}

// Launches the cluster kernel on `stream` (M in [1, kMaxM], r in [1, kMaxR], in, out >= 1; the caller checks and
// has called low_rank_cluster_setup<T>).
template <typename T>
cudaError_t low_rank_cluster_launch(const T* x, const T* A, const T* B, T* y, int M, int in, int r, int out,
                                    float scale, bool accumulate, ClusterGrid g, cudaStream_t stream) {
  LowRankArgs<T> a = {};
  a.x = x, a.A = A, a.B = B, a.y = y;
  a.M = M, a.in = in, a.r = r, a.out = out;
  a.scale = scale;
  a.accumulate = accumulate ? 1 : 0;
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = g.C, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
  cfg.gridDim = dim3(g.blocks()), cfg.blockDim = dim3(kThreads), cfg.dynamicSmemBytes = kClusterSmemBytes;
  cfg.stream = stream;
  cfg.attrs = &attr, cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, low_rank_cluster_kernel<T>, a);
}

}  // namespace wick::lowrank
