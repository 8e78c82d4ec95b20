// The fused small-M low-rank product (ops/low_rank.h): y (=|+=) scale * (x A^T) B^T in ONE launch,
// x [M, in], A [r, in], B [out, r] (PEFT's layouts), for M <= kMaxM and r <= kMaxR. Header-only (CUDA runtime
// and cooperative groups only) so the playground harness (dev/low_rank/) builds the very kernel wick runs.
// The cooperative kernel, LowRankKernel::kCooperative (dev/low_rank/'s v1): the one ops/cuda/low_rank.cu runs
// where in or out passes 1,024; low_rank_recompute.cuh and low_rank_split_k.cuh beside it are the two designs
// without grid barriers that run narrower shapes (ops/low_rank.cpp's rule). Its phase 1 (lr_partial_u) is
// also split-K's partial kernel.
//
// Why this shape of kernel. For a LoRA adapter at decode or in the seed suite's rows (M <= 64, in, out up to
// a few thousand, r <= 64) the arithmetic is tiny (M in r + M r out FMAs: 16.8 M at M 64, 2048, r 64) and the
// cost is the launch plus reading A and B (up to 512 KB each in f32) and x. Estimates (not yet measured for
// this kernel): one SM pulls on the order of 100 GB/s from L2, so a scheme in which any block reads all of A
// (or all of B) costs ~5 us by itself, and one in which each block recomputes u = x A^T for a part of the
// grid costs M in r / 128 FMA cycles per SM per copy of u (2.3 us at the largest shape even spread over a
// 16-block cluster). So both products are spread over the whole grid (up to one block per SM),
// and the intermediate u [M, r] is exchanged through global memory (L2), in three phases with grid-wide
// barriers (a cooperative launch: every block is resident, so the barrier cannot deadlock):
//   1. split-K of u = x A^T: block b takes the 16-column tiles b, b + G, b + 2G, ... of `in`, stages the x and A
//      columns of a tile in shared memory (f32) and accumulates a 64 x 64 register-tiled partial (4 x 4 per
//      thread); it writes its partial u_b [M, r] (f32) to the workspace. Every element of x and A is read once.
//   2. a distributed, fixed-order reduction: block b sums elements [b E/G, (b+1) E/G) of u = sum_b u_b (E = M r),
//      over the G partials in a fixed order (deterministic: the same bits every run), into u [M, r] (f32).
//      Every block reads E floats (16 KB at 64 x 64), not G E.
//   3. y = scale u B^T: every block stages all of u (<= 16 KB, f32) in shared memory, then takes the 16-column
//      tiles of `out` as in phase 1; per tile it stages B's 16 rows (contiguous: B is [out, r]) and computes the
//      64 x 16 tile with 4 x 4 per thread and r split four ways (reduced by warp shuffles in a fixed order).
//      Every element of B is read once, y written once.
// With G <= the SM count, each SM moves ~(in + out)(M + r) 4 B / G: ~16 KB at the largest shape, and does
// 2 M in r / G / 128 FMA cycles (~1000). The costs left are the launch and two grid barriers: that is why
// this is the small-M path. For M > kMaxM the work and the traffic of x and y grow with M while A and B stay
// put, which is what a GEMM library is good at; ops/low_rank.cpp sends those calls to two matmuls.
//
// Rounding: the intermediate u = x A^T stays in f32 (registers, the f32 workspace, shared memory), never
// rounded to the input dtype; all products accumulate in f32. y is rounded once to its dtype: y = round(scale *
// u B^T), or with accumulate y = round(y + scale * u B^T) (y read in f32). In bf16 this differs from two
// bf16 GEMMs (which round u to bf16 in between) by at most that one rounding of u.
// Summation order: u sums each 16-column tile of in (in order), tiles per block in order, blocks in order;
// y sums r in four interleaved strands (k = s mod 4), then the strands pairwise. Deterministic, not the
// order of the CPU twin.
#pragma once
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace wick::lowrank {

constexpr int kMaxM = 64;      // rows of x per launch
constexpr int kMaxR = 64;      // adapter rank
constexpr int kTile = 16;      // columns of in (phase 1) / out (phase 3) per tile
constexpr int kThreads = 256;  // 16 x 16 threads of 4 x 4 register tiles cover kMaxM x kMaxR
// Shared-memory row strides (floats), padded so the 16-byte reads of one quarter-warp hit distinct banks.
constexpr int kXStride = kMaxM + 4;   // xs[i][m], phase 1
constexpr int kUStride = kMaxM + 4;   // us[k][m], phase 3
constexpr int kBStride = kTile + 8;   // bs[k][o], phase 3

template <typename T> struct LowRankArgs {
  const T* x;      // [M, in]
  const T* A;      // [r, in]
  const T* B;      // [out, r]
  T* y;            // [M, out]
  float* part;     // workspace [G, M r] f32: phase 1's partials
  float* u;        // workspace [M r] f32: the reduced u
  int M, in, r, out;
  float scale;
  int accumulate;  // 0: y = ..., 1: y += ...
};

__device__ __forceinline__ float lr_to_f(float v) { return v; }
__device__ __forceinline__ float lr_to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T lr_from_f(float v);
template <> __device__ __forceinline__ float lr_from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 lr_from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

struct Phase1Smem {
  float xs[kTile * kXStride];  // x[m, i0 + i] at xs[i * kXStride + m]
  float as[kTile * kMaxR];     // A[k, i0 + i] at as[i * kMaxR + k]
};
struct Phase3Smem {
  float us[kMaxR * kUStride];  // u[m, k] at us[k * kUStride + m]
  float bs[kMaxR * kBStride];  // B[o0 + o, k] at bs[k * kBStride + o]
  float red[kThreads];         // phase 2's per-thread sums
};
union LowRankSmem {
  Phase1Smem p1;
  Phase3Smem p3;
};

// Phase 1's work in one block (also the partial kernel of ops/cuda/low_rank_split_k.cuh): acc += x[:, tiles]
// A[:, tiles]^T over the 16-column tiles t0, t0 + step, ... (< t1) of `in`, 4 x 4 per thread at (tm, tk) =
// (tid / 16, tid % 16): rows 4 tm .. 4 tm + 3, ranks 4 tk .. 4 tk + 3. Each tile's x and A columns are staged
// in shared memory (f32) by the whole block (so every thread of the block must call this, with the same tiles).
// Summation order of one element: the tiles in order, the 16 columns of a tile in order (one fmaf chain).
template <typename T>
__device__ __forceinline__ void lr_partial_u(const T* x, const T* A, int M, int in, int r, int t0, int t1, int step,
                                             Phase1Smem& sm, float (&acc)[4][4]) {
  const int tid = threadIdx.x;
  const int tm = tid / 16, tk = tid % 16;
  const bool live = 4 * tm < M && 4 * tk < r;
  for (int t = t0; t < t1; t += step) {
    const int i0 = t * kTile;
    // Stage x[:, i0 .. i0 + 15] and A[:, i0 .. i0 + 15]: 16 consecutive threads read one row's 16 columns.
    // Rows past M / r and columns past `in` are zeros (they then add nothing).
    for (int e = tid; e < kTile * kMaxM; e += kThreads) {
      const int i = e % kTile, m = e / kTile;
      sm.xs[i * kXStride + m] = (m < M && i0 + i < in) ? lr_to_f(x[(size_t)m * in + i0 + i]) : 0.0f;
    }
    for (int e = tid; e < kTile * kMaxR; e += kThreads) {
      const int i = e % kTile, k = e / kTile;
      sm.as[i * kMaxR + k] = (k < r && i0 + i < in) ? lr_to_f(A[(size_t)k * in + i0 + i]) : 0.0f;
    }
    __syncthreads();
    if (live) {
#pragma unroll
      for (int i = 0; i < kTile; i++) {
        const float4 xv = *reinterpret_cast<const float4*>(&sm.xs[i * kXStride + 4 * tm]);
        const float4 av = *reinterpret_cast<const float4*>(&sm.as[i * kMaxR + 4 * tk]);
        const float xr[4] = {xv.x, xv.y, xv.z, xv.w}, ar[4] = {av.x, av.y, av.z, av.w};
#pragma unroll
        for (int p = 0; p < 4; p++)
#pragma unroll
          for (int q = 0; q < 4; q++) acc[p][q] = fmaf(xr[p], ar[q], acc[p][q]);
      }
    }
    __syncthreads();
  }
}

// A block's partial u (lr_partial_u's acc) to dst [M, r] row-major (f32).
__device__ __forceinline__ void lr_store_partial(float* dst, int M, int r, const float (&acc)[4][4]) {
  const int tm = threadIdx.x / 16, tk = threadIdx.x % 16;
  if (4 * tm >= M || 4 * tk >= r) return;
#pragma unroll
  for (int p = 0; p < 4; p++)
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const int m = 4 * tm + p, k = 4 * tk + q;
      if (m < M && k < r) dst[m * r + k] = acc[p][q];
    }
}

template <typename T> __global__ void __launch_bounds__(kThreads) low_rank_kernel(LowRankArgs<T> a) {
  namespace cg = cooperative_groups;
  __shared__ __align__(16) LowRankSmem sm;
  const int tid = threadIdx.x;
  const int G = gridDim.x, b = blockIdx.x;
  const int M = a.M, in = a.in, r = a.r, out = a.out;
  const int E = M * r;

  // ---- phase 1: partial u_b = x[:, tiles of b] A[:, tiles of b]^T (tiles b, b + G, ...), written as this
  // block's partial (zeros when it had no tile)
  {
    float acc[4][4] = {};
    lr_partial_u(a.x, a.A, M, in, r, b, (in + kTile - 1) / kTile, G, sm.p1, acc);
    lr_store_partial(a.part + (size_t)b * E, M, r, acc);
  }
  cg::this_grid().sync();

  // ---- phase 2: u[e] = sum over blocks p (in order) of part[p][e], for e in this block's slice
  {
    const int per = (E + G - 1) / G;
    const int e0 = b * per, e1 = min(E, e0 + per);
    const int W = min(per, kThreads);      // threads per slice pass
    const int groups = kThreads / W;       // partial strands: strand g sums blocks g, g + groups, ...
    const int g = tid / W, s = tid % W;
    for (int base = e0; base < e1; base += W) {  // uniform across the block (barriers inside)
      const int e = base + s;
      float acc = 0.0f;
      if (g < groups && e < e1)
        for (int p = g; p < G; p += groups) acc += __ldcg(a.part + (size_t)p * E + e);
      sm.p3.red[tid] = acc;
      __syncthreads();
      if (g == 0 && e < e1) {
        float sum = sm.p3.red[s];
        for (int j = 1; j < groups; j++) sum += sm.p3.red[j * W + s];
        a.u[e] = sum;
      }
      __syncthreads();
    }
  }
  cg::this_grid().sync();

  // ---- phase 3: y[:, tiles of b] = scale * u B[tiles of b]^T
  const int tiles = (out + kTile - 1) / kTile;
  if (b >= tiles) return;  // after the last barrier: nothing below waits for every block
  // u (f32, written by other blocks of this launch: read through L2) transposed into us[k][m]; zeros past M, r.
  for (int e = tid; e < kMaxM * kMaxR; e += kThreads) {
    const int k = e % kMaxR, m = e / kMaxR;
    sm.p3.us[k * kUStride + m] = (m < M && k < r) ? __ldcg(a.u + m * r + k) : 0.0f;
  }
  // 4 x 4 outputs (rows 4 tm.., columns 4 to..) per thread over ranks k = ks, ks + 4, ...; the four ks of one
  // (tm, to) are adjacent lanes, summed by two shuffles.
  const int ks = tid & 3, to = (tid >> 2) & 3, tm = tid >> 4;
  const int rpad = (r + 3) & ~3;
  for (int t = b; t < tiles; t += G) {
    const int o0 = t * kTile;
    __syncthreads();  // us written (first tile) / bs no longer read (later tiles)
    // B rows o0 .. o0 + 15 are contiguous: B[o0 * r + e], e = o r + k. Columns past out, ranks past r: zeros.
    for (int e = tid; e < kTile * rpad; e += kThreads) {
      const int o = e / rpad, k = e % rpad;
      sm.p3.bs[k * kBStride + o] = (k < r && o0 + o < out) ? lr_to_f(a.B[(size_t)(o0 + o) * r + k]) : 0.0f;
    }
    __syncthreads();
    float acc[4][4] = {};
    if (4 * tm < M) {
      for (int k = ks; k < rpad; k += 4) {
        const float4 uv = *reinterpret_cast<const float4*>(&sm.p3.us[k * kUStride + 4 * tm]);
        const float4 bv = *reinterpret_cast<const float4*>(&sm.p3.bs[k * kBStride + 4 * to]);
        const float ur[4] = {uv.x, uv.y, uv.z, uv.w}, br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
        for (int p = 0; p < 4; p++)
#pragma unroll
          for (int q = 0; q < 4; q++) acc[p][q] = fmaf(ur[p], br[q], acc[p][q]);
      }
    }
    // Butterfly over the 4 strands: every lane of the quad ends with the same sums (addition commutes).
#pragma unroll
    for (int p = 0; p < 4; p++)
#pragma unroll
      for (int q = 0; q < 4; q++) {
        acc[p][q] += __shfl_xor_sync(0xffffffffu, acc[p][q], 1);
        acc[p][q] += __shfl_xor_sync(0xffffffffu, acc[p][q], 2);
      }
    // Lane ks of the quad writes row 4 tm + ks of the 4 x 4 tile.
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
}

// Blocks of one launch: enough 16-column tiles for each, at most what can be resident at once (the
// cooperative launch's condition) and at most one per SM (more would only add barrier arrivals).
inline int low_rank_grid(int in, int out, int sm_count, int resident_per_sm) {
  const int tiles_in = (in + kTile - 1) / kTile, tiles_out = (out + kTile - 1) / kTile;
  int g = tiles_in > tiles_out ? tiles_in : tiles_out;
  const int cap = sm_count * (resident_per_sm < 1 ? 1 : resident_per_sm);
  const int one_per_sm = sm_count < cap ? sm_count : cap;
  if (g > one_per_sm) g = one_per_sm;
  return g < 1 ? 1 : g;
}

// Workspace floats for a grid of G blocks: G partials of M r, then u.
inline size_t low_rank_workspace_floats(int G, int M, int r) { return (size_t)(G + 1) * M * r; }

// Launches the kernel on `stream` with G blocks (low_rank_grid); ws holds low_rank_workspace_floats(G, M, r).
// M in [1, kMaxM], r in [1, kMaxR], in, out >= 1 (the caller checks).
template <typename T>
cudaError_t low_rank_launch(const T* x, const T* A, const T* B, T* y, int M, int in, int r, int out, float scale,
                            bool accumulate, float* ws, int G, cudaStream_t stream) {
  LowRankArgs<T> a;
  a.x = x, a.A = A, a.B = B, a.y = y;
  a.part = ws;
  a.u = ws + (size_t)G * M * r;
  a.M = M, a.in = in, a.r = r, a.out = out;
  a.scale = scale;
  a.accumulate = accumulate ? 1 : 0;
  void* args[] = {&a};
  return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(&low_rank_kernel<T>), dim3(G), dim3(kThreads), args,
                                     0, stream);
}

}  // namespace wick::lowrank
