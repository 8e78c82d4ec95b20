// Inverted dropout, counter-based mask (ops/dropout.h): the same mask as the CPU twin, bit for bit.
//
// Memory-bound: a 0.5B training step with LoRA dropout runs it ~500 times over up to [8192, 4864] elements (every
// adapter's input in the forward, again for dA, and on dx in the backward). A thread takes 16 bytes (8 bf16 or 4 f32
// elements) with one load and one store where the sizes and addresses allow, and the backward's dx += dropout'(du A)
// adds into dx in the same pass (accumulate), where a separate add read both again.
#include <cstdint>

#include "ops/cuda/common.cuh"
#include "ops/dropout.h"

namespace wick::cuda_ops {
namespace {

// One element: dropout(x) rounded to T, then (accumulate) added to y's old value and rounded again: the bits of
// dropout into a buffer followed by add().
template <typename T, bool ACC>
__device__ __forceinline__ T dropped(T x, T y_old, uint64_t seed, uint64_t i, float p, float scale) {
  const T d = cuda::from_f<T>(dropout_uniform(seed, i) >= p ? cuda::to_f(x) * scale : 0.0f);
  if constexpr (ACC) return cuda::from_f<T>(cuda::to_f(y_old) + cuda::to_f(d));
  return d;
}

template <typename T, bool ACC>
__global__ void dropout_kernel(const T* __restrict__ x, T* y, long long n, float p, float scale,
                               const int64_t* __restrict__ base, uint64_t mix) {
  const uint64_t seed = dropout_mask_seed(static_cast<uint64_t>(*base), mix);  // read when the kernel runs
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = dropped<T, ACC>(x[i], ACC ? y[i] : T{}, seed, static_cast<uint64_t>(i), p, scale);
}

// 16 bytes a thread (x, y 16-byte aligned, n a multiple of kVec).
template <typename T, bool ACC>
__global__ void dropout_vec_kernel(const T* __restrict__ x, T* y, long long chunks, float p, float scale,
                                   const int64_t* __restrict__ base, uint64_t mix) {
  constexpr int kVec = 16 / sizeof(T);
  const uint64_t seed = dropout_mask_seed(static_cast<uint64_t>(*base), mix);
  for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < chunks;
       c += (long long)gridDim.x * blockDim.x) {
    struct alignas(16) Chunk {
      T e[kVec];
    };
    const Chunk xin = reinterpret_cast<const Chunk*>(x)[c];  // one 16-byte load
    Chunk yio;
    if constexpr (ACC) yio = reinterpret_cast<const Chunk*>(y)[c];
#pragma unroll
    for (int k = 0; k < kVec; k++)
      yio.e[k] = dropped<T, ACC>(xin.e[k], ACC ? yio.e[k] : T{}, seed, static_cast<uint64_t>(c * kVec + k), p, scale);
    reinterpret_cast<Chunk*>(y)[c] = yio;
  }
}

template <typename T, bool ACC>
void launch(const T* x, T* y, long long n, float p, const int64_t* base, uint64_t mix, cudaStream_t stream) {
  const float scale = 1.0f / (1.0f - p);
  constexpr int kVec = 16 / sizeof(T);
  const bool vec =
      n % kVec == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  if (vec)
    dropout_vec_kernel<T, ACC><<<cuda::grid_for(n / kVec, 256), 256, 0, stream>>>(x, y, n / kVec, p, scale, base, mix);
  else
    dropout_kernel<T, ACC><<<cuda::grid_for(n, 256), 256, 0, stream>>>(x, y, n, p, scale, base, mix);
}

template <typename T>
void launch(const T* x, T* y, long long n, float p, const int64_t* base, uint64_t mix, bool accumulate,
            cudaStream_t stream) {
  if (accumulate) launch<T, true>(x, y, n, p, base, mix, stream);
  else launch<T, false>(x, y, n, p, base, mix, stream);
}

}  // namespace

void dropout_forward(const Tensor& x, float p, const Tensor& base, uint64_t mix, Tensor& y, bool accumulate) {
  const long long n = x.numel();
  if (n == 0) return;
  const cudaStream_t stream = cuda::stream_of(x);
  if (x.dtype() == DType::BF16)
    launch(cuda::cptr<cuda::bf16>(x), cuda::ptr<cuda::bf16>(y), n, p, base.data<int64_t>(), mix, accumulate, stream);
  else
    launch(x.data<float>(), y.data<float>(), n, p, base.data<int64_t>(), mix, accumulate, stream);
  WICK_CUDA_LAUNCH_CHECK();
}

}  // namespace wick::cuda_ops
