// Inverted dropout, counter-based mask (ops/dropout.h): the same mask as the CPU twin, bit for bit.
#include "ops/cuda/common.cuh"
#include "ops/dropout.h"

namespace wick::cuda_ops {
namespace {

template <typename T>
__global__ void dropout_kernel(const T* __restrict__ x, T* __restrict__ y, long long n, float p, float scale,
                               const int64_t* __restrict__ base, uint64_t mix) {
  const uint64_t seed = dropout_mask_seed(static_cast<uint64_t>(*base), mix);  // read when the kernel runs
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float u = dropout_uniform(seed, static_cast<uint64_t>(i));
    y[i] = cuda::from_f<T>(u >= p ? cuda::to_f(x[i]) * scale : 0.0f);
  }
}

}  // namespace

void dropout_forward(const Tensor& x, float p, const Tensor& base, uint64_t mix, Tensor& y) {
  const long long n = x.numel();
  if (n == 0) return;
  const float scale = 1.0f / (1.0f - p);
  if (x.dtype() == DType::BF16)
    dropout_kernel<cuda::bf16><<<cuda::grid_for(n, 256), 256, 0, cuda::stream_of(x)>>>(
        cuda::cptr<cuda::bf16>(x), cuda::ptr<cuda::bf16>(y), n, p, scale, base.data<int64_t>(), mix);
  else
    dropout_kernel<float><<<cuda::grid_for(n, 256), 256, 0, cuda::stream_of(x)>>>(x.data<float>(), y.data<float>(), n,
                                                                                p, scale, base.data<int64_t>(), mix);
  WICK_CUDA_LAUNCH_CHECK();
}

}  // namespace wick::cuda_ops
