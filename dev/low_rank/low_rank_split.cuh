// Two more designs for the fused small-M low-rank product y (=|+=) scale (x A^T) B^T (ops/low_rank.h), against
// the cooperative kernel wick runs (src/ops/cuda/low_rank.cuh, harness variant v1). An experiment of session 25,
// written without a GPU: low_rank_bench.cu checks both against the f64 reference and times them (v3, v4).
//
// Why. The seed suite's lora_forward / lora_rank_scaling rows (f32, M = 64, in = out = 512..2048, r = 4..64)
// take v1 12.4-18.3 us on an H200 against a goal of <= 10-12; an empty kernel timed the same way takes 5.9-7.3 us,
// an empty cooperative kernel with two grid barriers 7.3-9.8. The work itself is a few hundred KB from L2 and
// under 10 M FMAs: what costs is the cooperative launch, the two barriers and the three dependent phases.
//   v3 (recompute_kernel): one ordinary launch, no barrier. The grid is (row tiles of TM rows) x (column
//      tiles of `out`); each block computes u = x A^T for its own TM rows (so each row tile's u is computed by
//      all CT blocks of that tile: CT-fold redundant FMAs and CT x RT reads of A from L2, which is why the grid
//      is kept near 128 blocks and why this suits small A: r in <= ~64 K elements), then its tile of y. The
//      block's B tile goes to shared memory first (cp.async in f32), overlapping the u phase.
//   v4 (partial_kernel + finish_kernel): two launches chained by programmatic dependent launch (ops/cuda/pdl.cuh).
//      The first splits the reduction over `in` into G1 partial u's (v1's phase 1); the second, row- and
//      column-tiled like v3, starts while the first runs, stages its B tile (optionally before it waits: B is
//      an input neither kernel writes), waits, sums the G1 partials of its rows in a fixed order, and writes
//      its tile. No grid barrier, no redundant FMAs; the cost is a second launch.
// Both are deterministic (fixed summation orders, no atomics). u stays in f32; y = round(scale * u B^T), or
// round(y + scale * u B^T) with accumulate, as v1 rounds.
//   v3 order: u[m, k] = per thread (in order over its i = 4 p + 4 P j, j = 0, 1, ..: x[m, i + e] A[k, i + e],
//   e = 0..3), then the butterfly over the row's P threads' warps, then the warps in order.
//   v4 order: v1's phase 1 per block, then the blocks in order.  y: k = 0 .. r - 1 in order (both).
#pragma once
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "ops/cuda/pdl.cuh"

namespace wick::lowrank_split {

constexpr int kThreads = 256;
constexpr int kMaxM = 64;
constexpr int kMaxR = 64;
constexpr int kMaxTM = 8;
constexpr int kTile = 16;  // v4's partial kernel: columns of `in` per staged tile (as v1)

template <typename T> struct Args {
  const T* x;   // [M, in]
  const T* A;   // [r, in]
  const T* B;   // [out, r]
  T* y;         // [M, out]
  float* part;  // v4: [G1, M r] f32 partials
  int M, in, r, out;
  float scale;
  int accumulate;
  int tn;  // columns of y per block (v3, v4's finish kernel)
  int G1;  // v4: partial blocks
};

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// B's row stride in shared memory: odd, so that consecutive columns c (consecutive threads) hit distinct banks.
__host__ __device__ inline int b_stride(int r) { return r + 1 + (r & 1); }
// Dynamic shared memory of v3 / v4's finish kernel: the B tile, f32.
inline size_t tile_smem_bytes(int tn, int r) { return (size_t)tn * b_stride(r) * sizeof(float); }

// B rows o0 .. o0 + tn - 1 (contiguous in B) -> bs[c * stride + k] as f32; rows past out are zeros. In f32 by
// cp.async (the caller waits with __pipeline_wait_prior(0) and a barrier), else by plain loads.
template <typename T> __device__ void stage_b(const Args<T>& a, float* bs, int o0) {
  const int r = a.r, stride = b_stride(r), n = a.tn * r;
  for (int e = threadIdx.x; e < n; e += kThreads) {
    const int c = e / r, k = e - c * r;
    float* dst = bs + c * stride + k;
    if (o0 + c >= a.out) {
      *dst = 0.0f;
    } else if constexpr (sizeof(T) == 4) {
      __pipeline_memcpy_async(dst, a.B + (size_t)o0 * r + e, 4);
    } else {
      *dst = to_f(a.B[(size_t)o0 * r + e]);
    }
  }
  if constexpr (sizeof(T) == 4) __pipeline_commit();
}

// y[m0 .. m0 + TM - 1, o0 .. o0 + tn - 1] from us[TM][r] (f32, shared) and the staged B tile: thread (row mm =
// tid / P, p = tid % P) takes columns o0 + p, o0 + p + P, ...
template <typename T, int TM> __device__ void write_tile(const Args<T>& a, const float* us, const float* bs, int m0,
                                                         int o0) {
  constexpr int P = kThreads / TM;
  const int mm = threadIdx.x / P, p = threadIdx.x % P, m = m0 + mm;
  if (m >= a.M) return;
  const int r = a.r, stride = b_stride(r);
  const float* um = us + mm * kMaxR;
  for (int c = p; c < a.tn; c += P) {
    const int o = o0 + c;
    if (o >= a.out) break;
    const float* bc = bs + c * stride;
    float acc = 0.0f;
    for (int k = 0; k < r; k++) acc = fmaf(um[k], bc[k], acc);
    T* py = a.y + (size_t)m * a.out + o;
    const float v = a.scale * acc;
    *py = from_f<T>(a.accumulate ? to_f(*py) + v : v);
  }
}

// Four consecutive elements of a row as f32 (vec: 16-byte f32 / 8-byte bf16 loads; the caller checked alignment).
__device__ __forceinline__ void load4(const float* p, float (&v)[4]) {
  const float4 q = __ldg(reinterpret_cast<const float4*>(p));
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void load4(const __nv_bfloat16* p, float (&v)[4]) {
  const uint2 q = __ldg(reinterpret_cast<const uint2*>(p));
  const __nv_bfloat162 lo = *reinterpret_cast<const __nv_bfloat162*>(&q.x), hi = *reinterpret_cast<const __nv_bfloat162*>(&q.y);
  v[0] = __low2float(lo), v[1] = __high2float(lo), v[2] = __low2float(hi), v[3] = __high2float(hi);
}

// ---- v3: grid (RT, CT); block (rt, ct) takes rows rt TM .., columns ct tn ..
template <typename T, int TM, int RMAX> __global__ void __launch_bounds__(kThreads) recompute_kernel(Args<T> a) {
  constexpr int P = kThreads / TM;  // threads per row: 32 or 64 (TM 8 or 4)
  constexpr int W = P / 32;         // warps per row
  extern __shared__ __align__(16) float bs[];
  __shared__ __align__(16) float us[kMaxTM * kMaxR];
  __shared__ float red[kThreads / 32][RMAX];
  const int m0 = blockIdx.x * TM, o0 = blockIdx.y * a.tn;
  stage_b(a, bs, o0);
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
        load4(xr + i, xv);
#pragma unroll
        for (int k = 0; k < RMAX; k++) {
          if (k < r) {
            float av[4];
            load4(a.A + (size_t)k * in + i, av);
#pragma unroll
            for (int e = 0; e < 4; e++) acc[k] = fmaf(xv[e], av[e], acc[k]);
          }
        }
      }
    } else {
      for (int i = 4 * p; i < in; i += 4 * P)
        for (int e = 0; e < 4 && i + e < in; e++) {
          const float xv = to_f(xr[i + e]);
#pragma unroll
          for (int k = 0; k < RMAX; k++)
            if (k < r) acc[k] = fmaf(xv, to_f(a.A[(size_t)k * in + i + e]), acc[k]);
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
  write_tile<T, TM>(a, us, bs, m0, o0);
}

// ---- v4, first launch: partial u_b over `in` columns [b chunk, (b + 1) chunk) in 16-column tiles (v1's phase 1:
// x and A tiles staged in shared memory, 4 x 4 register tiles over 64 x 64).
template <typename T> __global__ void __launch_bounds__(kThreads) partial_kernel(Args<T> a) {
  __shared__ __align__(16) float xs[kTile * (kMaxM + 4)];
  __shared__ __align__(16) float as[kTile * kMaxR];
  pdl::enter();
  const int tid = threadIdx.x, b = blockIdx.x, M = a.M, in = a.in, r = a.r;
  const int tiles = (in + kTile - 1) / kTile, per = (tiles + a.G1 - 1) / a.G1;
  const int t0 = b * per, t1 = min(tiles, t0 + per);
  const int tm = tid / 16, tk = tid % 16;
  const bool live = 4 * tm < M && 4 * tk < r;
  float acc[4][4] = {};
  for (int t = t0; t < t1; t++) {
    const int i0 = t * kTile;
    for (int e = tid; e < kTile * kMaxM; e += kThreads) {
      const int i = e % kTile, m = e / kTile;
      xs[i * (kMaxM + 4) + m] = (m < M && i0 + i < in) ? to_f(a.x[(size_t)m * in + i0 + i]) : 0.0f;
    }
    for (int e = tid; e < kTile * kMaxR; e += kThreads) {
      const int i = e % kTile, k = e / kTile;
      as[i * kMaxR + k] = (k < r && i0 + i < in) ? to_f(a.A[(size_t)k * in + i0 + i]) : 0.0f;
    }
    __syncthreads();
    if (live) {
#pragma unroll
      for (int i = 0; i < kTile; i++) {
        const float4 xv = *reinterpret_cast<const float4*>(&xs[i * (kMaxM + 4) + 4 * tm]);
        const float4 av = *reinterpret_cast<const float4*>(&as[i * kMaxR + 4 * tk]);
        const float xr[4] = {xv.x, xv.y, xv.z, xv.w}, ar[4] = {av.x, av.y, av.z, av.w};
#pragma unroll
        for (int p = 0; p < 4; p++)
#pragma unroll
          for (int q = 0; q < 4; q++) acc[p][q] = fmaf(xr[p], ar[q], acc[p][q]);
      }
    }
    __syncthreads();
  }
  if (live) {
    float* dst = a.part + (size_t)b * M * r;
#pragma unroll
    for (int p = 0; p < 4; p++)
#pragma unroll
      for (int q = 0; q < 4; q++) {
        const int m = 4 * tm + p, k = 4 * tk + q;
        if (m < M && k < r) dst[m * r + k] = acc[p][q];
      }
  }
}

// ---- v4, second launch: grid (RT, CT) as v3. EARLY_B: stage B before waiting for the partial kernel.
template <typename T, int TM, bool EARLY_B> __global__ void __launch_bounds__(kThreads) finish_kernel(Args<T> a) {
  extern __shared__ __align__(16) float bs[];
  __shared__ __align__(16) float us[kMaxTM * kMaxR];
  const int m0 = blockIdx.x * TM, o0 = blockIdx.y * a.tn;
  if (EARLY_B) stage_b(a, bs, o0);
  pdl::enter();
  if (!EARLY_B) stage_b(a, bs, o0);
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
  write_tile<T, TM>(a, us, bs, m0, o0);
}

// Grids. v3 / v4's finish kernel: RT = ceil(M / TM) row tiles and CT column tiles with CT RT near `target`
// blocks (ct > 0 forces CT), more when a block's B tile would pass kMaxTileSmem; tn = ceil(out / CT).
struct TileGrid {
  int RT, CT, tn;
};
constexpr size_t kMaxTileSmem = 96 * 1024;
inline TileGrid tile_grid(int M, int out, int r, int TM, int target, int ct) {
  TileGrid g;
  g.RT = (M + TM - 1) / TM;
  int CT = ct > 0 ? ct : target / g.RT;
  if (CT < 1) CT = 1;
  const int tn_cap = (int)(kMaxTileSmem / (sizeof(float) * b_stride(r)));
  if ((out + CT - 1) / CT > tn_cap) CT = (out + tn_cap - 1) / tn_cap;
  if (CT > out) CT = out;
  g.tn = (out + CT - 1) / CT;
  g.CT = (out + g.tn - 1) / g.tn;
  return g;
}

template <typename T, int TM, int RMAX> cudaError_t launch_v3_r(const Args<T>& a, TileGrid g, cudaStream_t s) {
  const size_t smem = tile_smem_bytes(g.tn, a.r);
  auto k = recompute_kernel<T, TM, RMAX>;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return e;
  }
  k<<<dim3(g.RT, g.CT), kThreads, smem, s>>>(a);
  return cudaGetLastError();
}

template <typename T, int TM> cudaError_t launch_v3_tm(const Args<T>& a, TileGrid g, cudaStream_t s) {
  if (a.r <= 8) return launch_v3_r<T, TM, 8>(a, g, s);
  if (a.r <= 16) return launch_v3_r<T, TM, 16>(a, g, s);
  if (a.r <= 32) return launch_v3_r<T, TM, 32>(a, g, s);
  return launch_v3_r<T, TM, 64>(a, g, s);
}

// v3 with TM (4 or 8) rows a block, about `target` blocks (ct > 0: that many column tiles).
template <typename T>
cudaError_t launch_v3(const T* x, const T* A, const T* B, T* y, int M, int in, int r, int out, float scale, bool acc,
                      int TM, int target, int ct, cudaStream_t s, TileGrid* used = nullptr) {
  Args<T> a{x, A, B, y, nullptr, M, in, r, out, scale, acc ? 1 : 0, 0, 0};
  const TileGrid g = tile_grid(M, out, r, TM, target, ct);
  a.tn = g.tn;
  if (used) *used = g;
  return TM == 8 ? launch_v3_tm<T, 8>(a, g, s) : launch_v3_tm<T, 4>(a, g, s);
}

inline size_t v4_workspace_floats(int G1, int M, int r) { return (size_t)G1 * M * r; }

// v4: G1 partial blocks (at most the 16-column tiles of in), then the finish kernel (TM rows a block, about
// `target` blocks) chained by PDL; early_b stages B before the finish kernel waits. ws: v4_workspace_floats.
template <typename T>
cudaError_t launch_v4(const T* x, const T* A, const T* B, T* y, int M, int in, int r, int out, float scale, bool acc,
                      int G1, int TM, int target, bool early_b, float* ws, cudaStream_t s, TileGrid* used = nullptr) {
  const int tiles = (in + kTile - 1) / kTile;
  if (G1 > tiles) G1 = tiles;
  if (G1 < 1) G1 = 1;
  Args<T> a{x, A, B, y, ws, M, in, r, out, scale, acc ? 1 : 0, 0, G1};
  const TileGrid g = tile_grid(M, out, r, TM, target, 0);
  a.tn = g.tn;
  if (used) *used = g;
  cudaError_t e = pdl::launch(partial_kernel<T>, dim3(G1), dim3(kThreads), 0, s, a);
  if (e != cudaSuccess) return e;
  const size_t smem = tile_smem_bytes(g.tn, r);
  auto pick = [&](auto kernel) -> cudaError_t {
    if (smem > 48 * 1024) {
      const cudaError_t e2 = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
      if (e2 != cudaSuccess) return e2;
    }
    return pdl::launch(kernel, dim3(g.RT, g.CT), dim3(kThreads), smem, s, a);
  };
  if (TM == 8) return early_b ? pick(finish_kernel<T, 8, true>) : pick(finish_kernel<T, 8, false>);
  return early_b ? pick(finish_kernel<T, 4, true>) : pick(finish_kernel<T, 4, false>);
}

}  // namespace wick::lowrank_split
