// The y tile of the two fused low-rank designs without grid barriers (low_rank_recompute.cuh: kRecompute,
// low_rank_split_k.cuh: kSplitK; ops/low_rank.h). Header-only (CUDA runtime only) so dev/low_rank/'s harness
// builds the very kernels wick runs.
//
// Both launch a grid of (RT row tiles of TM rows) x (CT column tiles of tn columns of `out`): block (rt, ct) gets
// u [TM, r] (f32) for its rows into shared memory, each its own way, and writes y[rows, columns] = scale u
// B[columns]^T from a copy of B's tn rows (contiguous in B [out, r]) in shared memory, staged first so that the
// copy overlaps getting u (cp.async for f32 B; plain loads for bf16). RT CT is kept near a target (~128 blocks:
// about one per SM) so that each block's B tile is small; a tile never passes kMaxTileSmem.
// Summation order of y[m, o]: k = 0 .. r - 1 in order (one fmaf chain), then times scale, then (accumulate)
// plus y[m, o] read as f32; rounded once to y's dtype.
#pragma once
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "ops/cuda/low_rank.cuh"
#include "ops/cuda/pdl.cuh"

namespace wick::lowrank {

constexpr int kMaxTM = 8;  // rows a block, at most (TM is 4 or 8)
constexpr size_t kMaxTileSmem = 96 * 1024;  // bytes of a block's B tile, at most

template <typename T> struct TileArgs {
  const T* x;   // [M, in]
  const T* A;   // [r, in]
  const T* B;   // [out, r]
  T* y;         // [M, out]
  float* part;  // kSplitK: [G1, M r] f32 partials (unused by kRecompute)
  int M, in, r, out;
  float scale;
  int accumulate;  // 0: y = ..., 1: y += ...
  int tn;          // columns of y per block
  int G1;          // kSplitK: partial blocks
};

// B's row stride in shared memory: odd, so that consecutive columns c (consecutive threads) hit distinct banks.
__host__ __device__ inline int tile_b_stride(int r) { return r + 1 + (r & 1); }
// Dynamic shared memory of a block: its B tile, f32.
inline size_t tile_smem_bytes(int tn, int r) { return (size_t)tn * tile_b_stride(r) * sizeof(float); }

// B rows o0 .. o0 + tn - 1 (contiguous in B) -> bs[c * stride + k] as f32; rows past out are zeros. In f32 by
// cp.async (the caller waits with __pipeline_wait_prior(0), then a barrier), else by plain loads.
template <typename T> __device__ void tile_stage_b(const TileArgs<T>& a, float* bs, int o0) {
  const int r = a.r, stride = tile_b_stride(r), n = a.tn * r;
  for (int e = threadIdx.x; e < n; e += kThreads) {
    const int c = e / r, k = e - c * r;
    float* dst = bs + c * stride + k;
    if (o0 + c >= a.out) {
      *dst = 0.0f;
    } else if constexpr (sizeof(T) == 4) {
      __pipeline_memcpy_async(dst, a.B + (size_t)o0 * r + e, 4);
    } else {
      *dst = lr_to_f(a.B[(size_t)o0 * r + e]);
    }
  }
  if constexpr (sizeof(T) == 4) __pipeline_commit();
}

// y[m0 .. m0 + TM - 1, o0 .. o0 + tn - 1] from us[TM][kMaxR] (f32, shared) and the staged B tile: thread (row
// mm = tid / P, p = tid % P) takes columns o0 + p, o0 + p + P, ...
template <typename T, int TM>
__device__ void tile_write_y(const TileArgs<T>& a, const float* us, const float* bs, int m0, int o0) {
  constexpr int P = kThreads / TM;
  const int mm = threadIdx.x / P, p = threadIdx.x % P, m = m0 + mm;
  if (m >= a.M) return;
  const int r = a.r, stride = tile_b_stride(r);
  const float* um = us + mm * kMaxR;
  for (int c = p; c < a.tn; c += P) {
    const int o = o0 + c;
    if (o >= a.out) break;
    const float* bc = bs + c * stride;
    float acc = 0.0f;
    for (int k = 0; k < r; k++) acc = fmaf(um[k], bc[k], acc);
    T* py = a.y + (size_t)m * a.out + o;
    const float v = a.scale * acc;
    *py = lr_from_f<T>(a.accumulate ? lr_to_f(*py) + v : v);
  }
}

// The grid: RT = ceil(M / TM) row tiles and CT column tiles with RT CT near `target` blocks (ct > 0 forces
// CT), more column tiles when a block's B tile would pass kMaxTileSmem; tn = ceil(out / CT).
struct TileGrid {
  int RT, CT, tn;
};
inline TileGrid tile_grid(int M, int out, int r, int TM, int target, int ct) {
  TileGrid g;
  g.RT = (M + TM - 1) / TM;
  int CT = ct > 0 ? ct : target / g.RT;
  if (CT < 1) CT = 1;
  const int tn_cap = (int)(kMaxTileSmem / (sizeof(float) * tile_b_stride(r)));
  if ((out + CT - 1) / CT > tn_cap) CT = (out + tn_cap - 1) / tn_cap;
  if (CT > out) CT = out;
  g.tn = (out + CT - 1) / CT;
  g.CT = (out + g.tn - 1) / g.tn;
  return g;
}

// Lets `kernel` take `smem` bytes of dynamic shared memory. A kernel may take 48 KB in all (static and dynamic)
// without asking; these kernels' static arrays stay under kTileStaticSmemBound, so past that the limit is raised.
constexpr size_t kTileStaticSmemBound = 12 * 1024;
template <typename K> cudaError_t tile_smem_allow(K* kernel, size_t smem) {
  if (smem + kTileStaticSmemBound <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
}

// Launches `kernel` on grid g with the B tile's dynamic shared memory (tile_smem_allow), plainly or by
// pdl::launch. Returns the launch's error.
template <typename T>
cudaError_t tile_launch(void (*kernel)(TileArgs<T>), const TileArgs<T>& a, TileGrid g, bool pdl_launch,
                        cudaStream_t s) {
  const size_t smem = tile_smem_bytes(g.tn, a.r);
  const cudaError_t e = tile_smem_allow(kernel, smem);
  if (e != cudaSuccess) return e;
  if (pdl_launch) return pdl::launch(kernel, dim3(g.RT, g.CT), dim3(kThreads), smem, s, a);
  kernel<<<dim3(g.RT, g.CT), kThreads, smem, s>>>(a);
  return cudaGetLastError();
}

}  // namespace wick::lowrank
