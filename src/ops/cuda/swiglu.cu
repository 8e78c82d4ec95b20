// Gated activations on CUDA (ops/swiglu.h), rounding where torch's bf16 graph `act(gate) * up` rounds:
//   a = act(g) in f32, rounded to T; out = r(a * u)
// backward as autograd through it (torch's silu_backward / gelu_backward formulas, in f32):
//   dup = r(dout * a),  dgate = r(r(dout * u) * act'(g))
// and, when asked, the forward's out = r(a * u) again in the same pass: training recomputes it there instead
// of keeping an [N, I] tensor per layer (model/layer.cpp), for one more write.
//   silu:      a = g / (1 + exp(-g)),  act' = sig * (1 + g * (1 - sig)),  sig = 1 / (1 + exp(-g))
//   gelu_tanh: a = 0.5 g (1 + tanh(k)),  act' = 0.5 (1 + tanh k) + 0.5 g (1 - tanh^2 k) beta (1 + 3 kappa g^2),
//              k = beta (g + kappa g^3), beta = sqrt(2 / pi), kappa = 0.044715 (torch's gelu approximate="tanh")
// One grid-stride launch, 4 elements per thread when aligned. In f32 every r() is the identity.
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/glu_act.cuh"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

using glu_act::kGeluBeta;
using glu_act::kGeluKappa;

// act(g): the one definition in glu_act.cuh (the fused small-M gate/up + GLU kernel uses it too).
template <GluAct A> __device__ __forceinline__ float act_f(float g) { return glu_act::act<A == GluAct::Silu>(g); }

template <GluAct A> __device__ __forceinline__ float act_grad(float g) {
  if constexpr (A == GluAct::Silu) {
    const float sig = 1.0f / (1.0f + expf(-g));
    return sig * (1.0f + g * (1.0f - sig));
  } else {
    const float g2 = g * g;
    const float th = tanhf(kGeluBeta * (g + kGeluKappa * (g2 * g)));
    return 0.5f * (1.0f + th) + 0.5f * g * (1.0f - th * th) * kGeluBeta * (1.0f + 3.0f * kGeluKappa * g2);
  }
}

// gate, up [n] -> out [n]
template <typename T, int V, GluAct A> __global__ void glu_fwd_kernel(const T* gate, const T* up, T* out, long long n) {
  const long long stride = (long long)gridDim.x * blockDim.x * V;
  for (long long i = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * V; i < n; i += stride) {
    float g[V], u[V];
    cuda::loadv<V>(gate + i, g);
    cuda::loadv<V>(up + i, u);
#pragma unroll
    for (int e = 0; e < V; ++e) g[e] = cuda::round_to<T>(act_f<A>(g[e])) * u[e];
    cuda::storev<V>(out + i, g);
  }
}

// dout, gate, up [n] -> dgate, dup [n]; with kOut also out [n] = the forward's output, glu_fwd_kernel's
// expression (out may be dout: a thread reads its elements before it writes them).
template <typename T, int V, GluAct A, bool kOut>
__global__ void glu_bwd_kernel(const T* dout, const T* gate, const T* up, T* dgate, T* dup, T* out, long long n) {
  const long long stride = (long long)gridDim.x * blockDim.x * V;
  for (long long i = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * V; i < n; i += stride) {
    float d[V], g[V], u[V], dg[V], du[V], o[V];
    cuda::loadv<V>(dout + i, d);
    cuda::loadv<V>(gate + i, g);
    cuda::loadv<V>(up + i, u);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const float a = cuda::round_to<T>(act_f<A>(g[e]));
      du[e] = d[e] * a;
      dg[e] = cuda::round_to<T>(d[e] * u[e]) * act_grad<A>(g[e]);
      if constexpr (kOut) o[e] = a * u[e];
    }
    cuda::storev<V>(dgate + i, dg);
    cuda::storev<V>(dup + i, du);
    if constexpr (kOut) cuda::storev<V>(out + i, o);
  }
}

template <typename T> bool all_aligned(std::initializer_list<const void*> ps) {
  for (const void* p : ps)
    if (!cuda::aligned4<T>(p)) return false;
  return true;
}

// Calls f(std::integral_constant<GluAct, act>{}).
template <typename F> void dispatch_act(GluAct act, F&& f) {
  if (act == GluAct::Silu) f(std::integral_constant<GluAct, GluAct::Silu>{});
  else f(std::integral_constant<GluAct, GluAct::GeluTanh>{});
}

}  // namespace

// gate [N, I], up [N, I] -> out [N, I] (=)
void glu_forward(const Tensor& gate, const Tensor& up, GluAct act, Tensor& out) {
  const long long n = out.numel();
  if (n == 0) return;
  WICK_CHECK(gate.dtype() == out.dtype() && up.dtype() == out.dtype(), "glu_forward " << gate.str() << ", "
                                                                                       << up.str() << " -> " << out.str());
  cudaStream_t s = cuda::stream_of(out);
  cuda::dispatch_float(out.dtype(), "glu_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // V = 4 needs n % 4 == 0 too: a thread's 4 elements never straddle the end.
    cuda::dispatch_vec(n % 4 == 0 && all_aligned<T>({gate.raw(), up.raw(), out.raw()}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      dispatch_act(act, [&](auto a) {
        constexpr GluAct A = decltype(a)::value;
        glu_fwd_kernel<T, V, A><<<cuda::grid_for(n / V, 256), 256, 0, s>>>(cuda::cptr<T>(gate), cuda::cptr<T>(up),
                                                                          cuda::ptr<T>(out), n);
        WICK_CUDA_LAUNCH_CHECK();
      });
    });
  });
}

// dout [N, I] -> dgate [N, I] (=), dup [N, I] (=), out [N, I] (=, when given)
void glu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, GluAct act, Tensor& dgate, Tensor& dup,
                  Tensor* out) {
  const long long n = dout.numel();
  if (n == 0) return;
  WICK_CHECK(gate.dtype() == dout.dtype() && up.dtype() == dout.dtype() && dgate.dtype() == dout.dtype() &&
                 dup.dtype() == dout.dtype() && (!out || out->dtype() == dout.dtype()),
             "glu_backward: every tensor must have dtype " << dtype_name(dout.dtype()));
  cudaStream_t s = cuda::stream_of(dgate);
  cuda::dispatch_float(dout.dtype(), "glu_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vec = n % 4 == 0 && all_aligned<T>({dout.raw(), gate.raw(), up.raw(), dgate.raw(), dup.raw()}) &&
                     (!out || all_aligned<T>({out->raw()}));
    T* o = out ? cuda::ptr<T>(*out) : nullptr;
    cuda::dispatch_vec(vec, [&](auto v) {
      constexpr int V = decltype(v)::value;
      dispatch_act(act, [&](auto a) {
        constexpr GluAct A = decltype(a)::value;
        const auto kernel = o ? glu_bwd_kernel<T, V, A, true> : glu_bwd_kernel<T, V, A, false>;
        kernel<<<cuda::grid_for(n / V, 256), 256, 0, s>>>(cuda::cptr<T>(dout), cuda::cptr<T>(gate), cuda::cptr<T>(up),
                                                           cuda::ptr<T>(dgate), cuda::ptr<T>(dup), o, n);
        WICK_CUDA_LAUNCH_CHECK();
      });
    });
  });
}

}  // namespace wick::cuda_ops
