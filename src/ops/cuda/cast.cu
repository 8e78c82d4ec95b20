// Elementwise dtype casts on the device; RNE rounding as torch's .to().
#include "ops/cuda/common.cuh"

namespace wick {
namespace {

template <typename S, typename D> __device__ __forceinline__ D cvt(S s);

template <typename S, typename D>
__global__ void cast_kernel(const S* __restrict__ src, D* __restrict__ dst, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    if constexpr (std::is_integral_v<S> && std::is_integral_v<D>) dst[i] = static_cast<D>(src[i]);
    else if constexpr (std::is_integral_v<D>) dst[i] = static_cast<D>(cuda::to_f(src[i]));
    else if constexpr (std::is_integral_v<S>) dst[i] = cuda::from_f<D>(static_cast<float>(src[i]));
    else dst[i] = cuda::from_f<D>(cuda::to_f(src[i]));
  }
}

template <typename S, typename D> void launch(const Tensor& src, Tensor& dst) {
  const long long n = src.numel();
  if (n == 0) return;
  cast_kernel<S, D><<<cuda::grid_for(n, 256), 256, 0, cuda::stream_of(dst)>>>(
      static_cast<const S*>(src.raw()), static_cast<D*>(dst.raw()), n);
  WICK_CUDA_LAUNCH_CHECK();
}

template <typename S> void launch_from(const Tensor& src, Tensor& dst) {
  switch (dst.dtype()) {
    case DType::F32: launch<S, float>(src, dst); break;
    case DType::BF16: launch<S, cuda::bf16>(src, dst); break;
    case DType::F16: launch<S, __half>(src, dst); break;
    case DType::I32: launch<S, int32_t>(src, dst); break;
    case DType::I64: launch<S, int64_t>(src, dst); break;
  }
}

}  // namespace

void cuda_cast(const Tensor& src, Tensor& dst) {
  switch (src.dtype()) {
    case DType::F32: launch_from<float>(src, dst); break;
    case DType::BF16: launch_from<cuda::bf16>(src, dst); break;
    case DType::F16: launch_from<__half>(src, dst); break;
    case DType::I32: launch_from<int32_t>(src, dst); break;
    case DType::I64: launch_from<int64_t>(src, dst); break;
  }
}

}  // namespace wick
