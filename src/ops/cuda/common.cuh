// Device-side helpers shared by wick's kernels: dtype-generic loads and stores (f32 math inside),
// and dispatch from a runtime DType to a template parameter.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/cuda/runtime.h"

namespace wick::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }

// Round an f32 through T (what storing it in a T tensor does).
template <typename T> __device__ __forceinline__ float round_to(float x) { return to_f(from_f<T>(x)); }

// Runtime dtype -> template parameter, C++17 style (CUDA sources build as C++17): f receives a Tag<T>,
//   dispatch_float(x.dtype(), "rms_norm", [&](auto tag) { using T = typename decltype(tag)::type; ... });
template <typename T> struct Tag {
  using type = T;
};

// T = float or bf16.
template <typename F> void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f(Tag<float>{}); return;
    case DType::BF16: f(Tag<bf16>{}); return;
    default: throw Error(std::string(op) + ": CUDA supports f32 and bf16 activations, got " + dtype_name(t));
  }
}

// I = int32_t or int64_t, for an index tensor.
template <typename F> void dispatch_index(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::I32: f(Tag<int32_t>{}); return;
    case DType::I64: f(Tag<int64_t>{}); return;
    default: throw Error(std::string(op) + ": ids must be i32 or i64, got " + dtype_name(t));
  }
}

inline cudaStream_t stream_of(const Tensor& t) {
  set_device(t.device().index);
  return stream(t.device().index);
}

template <typename T> inline T* ptr(const Tensor& t) { return static_cast<T*>(t.raw()); }
template <typename T> inline const T* cptr(const Tensor& t) { return static_cast<const T*>(t.raw()); }

// True when p may be accessed 4 elements of T at a time (load4/store4).
template <typename T> inline bool aligned4(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) == 0;
}

// ---- 4-wide vector loads and stores (16 bytes of f32, 8 bytes of bf16), f32 in registers ----
__device__ __forceinline__ void load4(const float* p, float (&f)[4]) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  f[0] = v.x, f[1] = v.y, f[2] = v.z, f[3] = v.w;
}
__device__ __forceinline__ void load4(const bf16* p, float (&f)[4]) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
  const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
  f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y;
}
__device__ __forceinline__ void store4(float* p, const float (&f)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(f[0], f[1], f[2], f[3]);
}
__device__ __forceinline__ void store4(bf16* p, const float (&f)[4]) {
  const __nv_bfloat162 a = __floats2bfloat162_rn(f[0], f[1]);
  const __nv_bfloat162 b = __floats2bfloat162_rn(f[2], f[3]);
  uint2 u;
  u.x = *reinterpret_cast<const unsigned*>(&a);
  u.y = *reinterpret_cast<const unsigned*>(&b);
  *reinterpret_cast<uint2*>(p) = u;
}

// V = 1 or 4 elements at p (V = 4 needs p aligned4).
template <int V, typename T> __device__ __forceinline__ void loadv(const T* p, float (&f)[V]) {
  if constexpr (V == 4) {
    load4(p, f);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) f[i] = to_f(p[i]);
  }
}
template <int V, typename T> __device__ __forceinline__ void storev(T* p, const float (&f)[V]) {
  if constexpr (V == 4) {
    store4(p, f);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) p[i] = from_f<T>(f[i]);
  }
}

// Calls f(std::integral_constant<int, V>) with V = 4 when vec, else 1.
template <typename F> void dispatch_vec(bool vec, F&& f) {
  if (vec) f(std::integral_constant<int, 4>{});
  else f(std::integral_constant<int, 1>{});
}

// ---- reductions (blockDim.x a multiple of 32, at most 1024) ----
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Block-wide sum/max returned to every thread; shm holds 32 floats. Every thread of the block must call.
__device__ __forceinline__ float block_sum(float v, float* shm) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shm may still be read by a previous reduction
  if (lane == 0) shm[warp] = v;
  __syncthreads();
  return warp_sum(lane < nwarps ? shm[lane] : 0.0f);
}
__device__ __forceinline__ float block_max(float v, float* shm) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shm[warp] = v;
  __syncthreads();
  return warp_max(lane < nwarps ? shm[lane] : -INFINITY);
}

// Threads per block for a row of n elements handled v at a time: a multiple of 32 in [32, max_threads].
inline int row_threads(long long n, int v, int max_threads) {
  long long t = (n + v - 1) / v;
  t = (t + 31) / 32 * 32;
  if (t < 32) t = 32;
  if (t > max_threads) t = max_threads;
  return static_cast<int>(t);
}

}  // namespace wick::cuda
