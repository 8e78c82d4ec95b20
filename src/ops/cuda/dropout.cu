// Inverted dropout, counter-based mask (ops/dropout.h): the same mask as the CPU twin, bit for bit.
#include "ops/cuda/common.cuh"
#include "ops/dropout.h"

namespace wick::cuda_ops {
namespace {

template <typename T>
__global__ void dropout_kernel(const T* __restrict__ x, T* __restrict__ y, long long n, float p, float scale,
                               unsigned long long seed) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    unsigned long long z = seed + 0x9e3779b97f4a7c15ULL * (static_cast<unsigned long long>(i) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
    y[i] = cuda::from_f<T>(u >= p ? cuda::to_f(x[i]) * scale : 0.0f);
  }
}

}  // namespace

void dropout_forward(const Tensor& x, float p, uint64_t seed, Tensor& y) {
  const long long n = x.numel();
  if (n == 0) return;
  const float scale = 1.0f / (1.0f - p);
  if (x.dtype() == DType::BF16)
    dropout_kernel<cuda::bf16><<<cuda::grid_for(n, 256), 256, 0, cuda::stream_of(x)>>>(
        cuda::cptr<cuda::bf16>(x), cuda::ptr<cuda::bf16>(y), n, p, scale, seed);
  else
    dropout_kernel<float><<<cuda::grid_for(n, 256), 256, 0, cuda::stream_of(x)>>>(x.data<float>(), y.data<float>(), n,
                                                                                p, scale, seed);
  WICK_CUDA_LAUNCH_CHECK();
}

}  // namespace wick::cuda_ops
