// SwiGLU on CUDA (ops/swiglu.h), rounding where torch's bf16 graph `act(gate) * up` rounds:
//   s = silu(g) = g / (1 + exp(-g)) in f32, rounded to T; out = r(s * u)
// backward as autograd through it (torch's silu_backward formula):
//   dup = r(dout * s),  dgate = r(r(dout * u) * sig * (1 + g * (1 - sig))),  sig = 1 / (1 + exp(-g))
// One grid-stride launch, 4 elements per thread when aligned. In f32 every r() is the identity.
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

// gate, up [n] -> out [n]
template <typename T, int V> __global__ void swiglu_fwd_kernel(const T* gate, const T* up, T* out, long long n) {
  const long long stride = (long long)gridDim.x * blockDim.x * V;
  for (long long i = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * V; i < n; i += stride) {
    float g[V], u[V];
    cuda::loadv<V>(gate + i, g);
    cuda::loadv<V>(up + i, u);
#pragma unroll
    for (int e = 0; e < V; ++e) g[e] = cuda::round_to<T>(g[e] / (1.0f + expf(-g[e]))) * u[e];
    cuda::storev<V>(out + i, g);
  }
}

// dout, gate, up [n] -> dgate, dup [n]
template <typename T, int V>
__global__ void swiglu_bwd_kernel(const T* dout, const T* gate, const T* up, T* dgate, T* dup, long long n) {
  const long long stride = (long long)gridDim.x * blockDim.x * V;
  for (long long i = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * V; i < n; i += stride) {
    float d[V], g[V], u[V], dg[V], du[V];
    cuda::loadv<V>(dout + i, d);
    cuda::loadv<V>(gate + i, g);
    cuda::loadv<V>(up + i, u);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const float silu = cuda::round_to<T>(g[e] / (1.0f + expf(-g[e])));
      const float sig = 1.0f / (1.0f + expf(-g[e]));
      du[e] = d[e] * silu;
      dg[e] = cuda::round_to<T>(d[e] * u[e]) * sig * (1.0f + g[e] * (1.0f - sig));
    }
    cuda::storev<V>(dgate + i, dg);
    cuda::storev<V>(dup + i, du);
  }
}

template <typename T> bool all_aligned(std::initializer_list<const void*> ps) {
  for (const void* p : ps)
    if (!cuda::aligned4<T>(p)) return false;
  return true;
}

}  // namespace

// gate [N, I], up [N, I] -> out [N, I] (=)
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  const long long n = out.numel();
  if (n == 0) return;
  WICK_CHECK(gate.dtype() == out.dtype() && up.dtype() == out.dtype(), "swiglu_forward " << gate.str() << ", "
                                                                                          << up.str() << " -> " << out.str());
  cudaStream_t s = cuda::stream_of(out);
  cuda::dispatch_float(out.dtype(), "swiglu_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // V = 4 needs n % 4 == 0 too: a thread's 4 elements never straddle the end.
    cuda::dispatch_vec(n % 4 == 0 && all_aligned<T>({gate.raw(), up.raw(), out.raw()}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      swiglu_fwd_kernel<T, V><<<cuda::grid_for(n / V, 256), 256, 0, s>>>(cuda::cptr<T>(gate), cuda::cptr<T>(up),
                                                                        cuda::ptr<T>(out), n);
      WICK_CUDA_LAUNCH_CHECK();
    });
  });
}

// dout [N, I] -> dgate [N, I] (=), dup [N, I] (=)
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  const long long n = dout.numel();
  if (n == 0) return;
  WICK_CHECK(gate.dtype() == dout.dtype() && up.dtype() == dout.dtype() && dgate.dtype() == dout.dtype() &&
                 dup.dtype() == dout.dtype(),
             "swiglu_backward: every tensor must have dtype " << dtype_name(dout.dtype()));
  cudaStream_t s = cuda::stream_of(dgate);
  cuda::dispatch_float(dout.dtype(), "swiglu_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vec = n % 4 == 0 && all_aligned<T>({dout.raw(), gate.raw(), up.raw(), dgate.raw(), dup.raw()});
    cuda::dispatch_vec(vec, [&](auto v) {
      constexpr int V = decltype(v)::value;
      swiglu_bwd_kernel<T, V><<<cuda::grid_for(n / V, 256), 256, 0, s>>>(
          cuda::cptr<T>(dout), cuda::cptr<T>(gate), cuda::cptr<T>(up), cuda::ptr<T>(dgate), cuda::ptr<T>(dup), n);
      WICK_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace wick::cuda_ops
