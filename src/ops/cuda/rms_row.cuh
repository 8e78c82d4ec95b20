// RMSNorm's arithmetic, shared by the norm kernel (ops/cuda/norm.cu) and the small-row projections that normalise
// their own input (ops/cuda/small_m_linear.cuh, Args::norm_w: decode's norm inside the launch of the projection
// after it), so that the two give the same bits. Header-only (cuda_bf16 only) for the dev/ harnesses.
//
// The order: a row of C elements is summed by nt threads (nt = threads(C, V), V = 4 when C % 4 == 0 and the
// pointers allow 4-element accesses, else 1); thread t squares and adds its V-element groups t, t + nt, ... in
// element order into one f32 (fmaf); each warp of 32 threads sums its threads' values by the xor butterfly;
// then lanes < nt / 32 hold the warps' sums and the butterfly sums those. rstd = rsqrt(sum / C + eps).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace wick::rms_row {

// Threads a row takes: one V-element group each, a multiple of 32 in [32, 512] (the norm kernel's block size).
inline int threads(long long C, int V) {
  long long t = (C + V - 1) / V;
  t = (t + 31) / 32 * 32;
  return static_cast<int>(t < 32 ? 32 : t > 512 ? 512 : t);
}

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ float round_to(float v);
template <> __device__ __forceinline__ float round_to<float>(float v) { return v; }
template <> __device__ __forceinline__ float round_to<__nv_bfloat16>(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// One element's square added to thread t's sum.
__device__ __forceinline__ float add_square(float ss, float v) { return fmaf(v, v, ss); }

// Thread t's sum over its groups of a row x [C] (any alignment: element loads, the same values as 4-wide ones).
template <typename T> __device__ __forceinline__ float thread_sum(const T* x, int C, int V, int t, int nt) {
  float ss = 0.0f;
  for (int c = t * V; c < C; c += nt * V)
    for (int i = 0; i < V; ++i) ss = add_square(ss, to_f(x[c + i]));
  return ss;
}

__device__ __forceinline__ float butterfly_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float rstd(float sum, int C, float eps) { return rsqrtf(sum / static_cast<float>(C) + eps); }

// The normalised element before its rounding to T: Qwen2RMSNorm round_T(x * rstd) * w, or (kOffset) Gemma3RMSNorm
// (x * rstd) * (1 + w).
template <typename T, bool kOffset> __device__ __forceinline__ float scaled(float x, float r, float w) {
  return kOffset ? (x * r) * (1.0f + w) : round_to<T>(x * r) * w;
}

}  // namespace wick::rms_row
