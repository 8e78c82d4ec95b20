// Device-side helpers shared by wick's kernels: dtype-generic loads and stores (f32 math inside),
// and dispatch from a runtime DType to a template parameter.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

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

// Calls f.template operator()<T>() with T = float or bf16 for the tensor's dtype.
template <typename F> void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f.template operator()<float>(); return;
    case DType::BF16: f.template operator()<bf16>(); return;
    default: throw Error(std::string(op) + ": CUDA supports f32 and bf16 activations, got " + dtype_name(t));
  }
}

inline cudaStream_t stream_of(const Tensor& t) {
  set_device(t.device().index);
  return stream(t.device().index);
}

}  // namespace wick::cuda
