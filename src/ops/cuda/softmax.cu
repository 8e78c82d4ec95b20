// Softmax over the last dim on CUDA (ops/softmax.h): one block per row, f32 math, 4 elements per thread
// when aligned. Forward keeps a running (max, sum of exp) per thread (one exp per element), combines them
// over the block, then writes exp(x - max) / sum in a second pass.
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

// x [N, C] -> y [N, C]
template <typename T, int V> __global__ void softmax_fwd_kernel(const T* x, T* y, int C) {
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const T* xr = x + row * C;
  T* yr = y + row * C;
  float m = -INFINITY, s = 0.0f;
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float v[V];
    cuda::loadv<V>(xr + c, v);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      if (v[i] > m) {
        s = s * expf(m - v[i]) + 1.0f;  // expf(-inf) = 0 on the first element
        m = v[i];
      } else if (v[i] != -INFINITY) {  // -inf adds nothing (and -inf - -inf would be NaN)
        s += expf(v[i] - m);
      }
    }
  }
  const float M = cuda::block_max(m, shm);
  const float S = cuda::block_sum(m == -INFINITY ? 0.0f : s * expf(m - M), shm);
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float v[V];
    cuda::loadv<V>(xr + c, v);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = expf(v[i] - M) / S;
    cuda::storev<V>(yr + c, v);
  }
}

// y, dy [N, C] -> dx = y * (dy - sum(dy * y))
template <typename T, int V> __global__ void softmax_bwd_kernel(const T* y, const T* dy, T* dx, int C) {
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const T* yr = y + row * C;
  const T* dyr = dy + row * C;
  T* dxr = dx + row * C;
  float dot = 0.0f;
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float a[V], b[V];
    cuda::loadv<V>(yr + c, a);
    cuda::loadv<V>(dyr + c, b);
#pragma unroll
    for (int i = 0; i < V; ++i) dot += a[i] * b[i];
  }
  dot = cuda::block_sum(dot, shm);
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float a[V], b[V];
    cuda::loadv<V>(yr + c, a);
    cuda::loadv<V>(dyr + c, b);
#pragma unroll
    for (int i = 0; i < V; ++i) a[i] = a[i] * (b[i] - dot);
    cuda::storev<V>(dxr + c, a);
  }
}

bool vec_ok(int C, const void* a, const void* b, const void* c, size_t esize) {
  const auto al = [&](const void* p) { return reinterpret_cast<uintptr_t>(p) % (4 * esize) == 0; };
  return C % 4 == 0 && al(a) && al(b) && (!c || al(c));
}

}  // namespace

// x [N, C] -> y [N, C] (=)
void softmax_forward(const Tensor& x, Tensor& y) {
  const int C = static_cast<int>(x.dim(-1));
  const long long N = C ? x.numel() / C : 0;
  if (N == 0) return;
  WICK_CHECK(x.dtype() == y.dtype(), "softmax_forward " << x.str() << " -> " << y.str());
  cudaStream_t s = cuda::stream_of(y);
  cuda::dispatch_float(x.dtype(), "softmax_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cuda::dispatch_vec(vec_ok(C, x.raw(), y.raw(), nullptr, sizeof(T)), [&](auto v) {
      constexpr int V = decltype(v)::value;
      softmax_fwd_kernel<T, V><<<(unsigned)N, cuda::row_threads(C, V, 512), 0, s>>>(cuda::cptr<T>(x), cuda::ptr<T>(y), C);
      WICK_CUDA_LAUNCH_CHECK();
    });
  });
}

// y, dy [N, C] -> dx [N, C] (=)
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int C = static_cast<int>(y.dim(-1));
  const long long N = C ? y.numel() / C : 0;
  if (N == 0) return;
  WICK_CHECK(y.dtype() == dx.dtype() && dy.dtype() == dx.dtype(), "softmax_backward " << y.str() << ", " << dy.str()
                                                                                          << " -> " << dx.str());
  cudaStream_t s = cuda::stream_of(dx);
  cuda::dispatch_float(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cuda::dispatch_vec(vec_ok(C, y.raw(), dy.raw(), dx.raw(), sizeof(T)), [&](auto v) {
      constexpr int V = decltype(v)::value;
      softmax_bwd_kernel<T, V><<<(unsigned)N, cuda::row_threads(C, V, 512), 0, s>>>(
          cuda::cptr<T>(y), cuda::cptr<T>(dy), cuda::ptr<T>(dx), C);
      WICK_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace wick::cuda_ops
