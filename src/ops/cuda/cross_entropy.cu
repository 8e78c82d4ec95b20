// Cross-entropy on CUDA (ops/cross_entropy.h): one block per row (up to 1024 threads; V up to a few 100k),
// f32 statistics, 4 logits per thread when aligned.
// Forward: running (max, sum of exp) per thread, combined over the block: lse = max + log(sum),
// loss = lse - logit[target] (0 for ignored rows). Backward: elementwise from lse, no reduction; may run in
// place (dlogits == logits: each element is read and then written by the same thread).
// A target outside [0, V) that is not kIgnoreIndex prints and traps (a device-side assert).
#include <cstdio>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

__device__ __forceinline__ int checked_target(const int32_t* targets, long long row, int V) {
  const int t = targets[row];
  if (t != kIgnoreIndex && (t < 0 || t >= V)) {
    if (threadIdx.x == 0) printf("wick cross_entropy: targets[%lld] = %d is outside [0, %d)\n", row, t, V);
    __trap();
  }
  return t;
}

// logits [N, V], targets [N] -> losses [N], lse [N]
// Each thread loads kUnroll vectors of VW logits before it uses any (one row is ~300 KB: with one vector in flight
// per thread and a (max, sum) update chained behind each load, the 0.5B loss forward ran at ~1.4 TB/s), then
// folds them into its running (max, sum) with one rescale. +inf logits: the sum counts each as exp(0) = 1 once
// the max is +inf (instead of exp(inf - inf) = NaN), as an element-by-element running max would.
constexpr int kUnroll = 4;
template <typename TL, int VW>
__global__ void ce_fwd_kernel(const TL* logits, const int32_t* targets, float* losses, float* lse, int V) {
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const TL* x = logits + row * V;
  const int stride = blockDim.x * VW;
  float m = -INFINITY, s = 0.0f;
  for (int c0 = threadIdx.x * VW; c0 < V; c0 += stride * kUnroll) {
    float v[kUnroll][VW];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * stride;
      if (c < V) {
        cuda::loadv<VW>(x + c, v[u]);
      } else {
#pragma unroll
        for (int i = 0; i < VW; ++i) v[u][i] = -INFINITY;
      }
    }
    float lm = m;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int i = 0; i < VW; ++i) lm = fmaxf(lm, v[u][i]);
    if (lm == -INFINITY) continue;  // nothing but -inf so far: adds nothing (and -inf - -inf would be NaN)
    if (lm > m) {
      s = m == -INFINITY ? 0.0f : s * expf(m - lm);
      m = lm;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int i = 0; i < VW; ++i) s += v[u][i] == m ? 1.0f : expf(v[u][i] - m);
  }
  const float M = cuda::block_max(m, shm);
  const float S = cuda::block_sum(m == -INFINITY ? 0.0f : s * expf(m - M), shm);
  if (threadIdx.x == 0) {
    const float l = M + logf(S);
    const int t = checked_target(targets, row, V);
    lse[row] = l;
    losses[row] = t == kIgnoreIndex ? 0.0f : l - cuda::to_f(x[t]);
  }
}

// dlogits [N, V] = (exp(logits - lse) - onehot(target)) * grad_scale; 0 for ignored rows.
template <typename TL, typename TD, int VW>
__global__ void ce_bwd_kernel(const TL* logits, const int32_t* targets, const float* lse, float grad_scale, TD* dlogits,
                              int V) {
  const long long row = blockIdx.x;
  const TL* x = logits + row * V;
  TD* d = dlogits + row * V;
  const int t = checked_target(targets, row, V);
  if (t == kIgnoreIndex) {
    const float zero[VW] = {};
    for (int c = threadIdx.x * VW; c < V; c += blockDim.x * VW) cuda::storev<VW>(d + c, zero);
    return;
  }
  const float l = lse[row];
  for (int c = threadIdx.x * VW; c < V; c += blockDim.x * VW) {
    float v[VW];
    cuda::loadv<VW>(x + c, v);
#pragma unroll
    for (int i = 0; i < VW; ++i) v[i] = (expf(v[i] - l) - (c + i == t ? 1.0f : 0.0f)) * grad_scale;
    cuda::storev<VW>(d + c, v);
  }
}

}  // namespace

// logits [N, V] f32/bf16, targets [N] i32 -> losses [N] f32 (=), lse [N] f32 (=)
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) {
  const long long V = logits.dim(-1);
  const long long N = V ? logits.numel() / V : 0;
  if (N == 0) return;
  WICK_CHECK(V <= 0x7fffffffLL && targets.dtype() == DType::I32, "cross_entropy " << logits.str() << ", " << targets.str());
  cudaStream_t s = cuda::stream_of(losses);
  cuda::dispatch_float(logits.dtype(), "cross_entropy_forward", [&](auto tl) {
    using TL = typename decltype(tl)::type;
    cuda::dispatch_vec(V % 4 == 0 && cuda::aligned4<TL>(logits.raw()), [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      ce_fwd_kernel<TL, VW><<<(unsigned)N, cuda::row_threads(V, VW * 4, 1024), 0, s>>>(
          cuda::cptr<TL>(logits), cuda::cptr<int32_t>(targets), cuda::ptr<float>(losses), cuda::ptr<float>(lse), (int)V);
      WICK_CUDA_LAUNCH_CHECK();
    });
  });
}

// -> dlogits [N, V] (=; may alias logits)
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, float grad_scale,
                            Tensor& dlogits) {
  const long long V = logits.dim(-1);
  const long long N = V ? logits.numel() / V : 0;
  if (N == 0) return;
  WICK_CHECK(V <= 0x7fffffffLL && targets.dtype() == DType::I32, "cross_entropy " << logits.str() << ", " << targets.str());
  WICK_CHECK(logits.raw() != dlogits.raw() || logits.dtype() == dlogits.dtype(),
             "cross_entropy_backward in place needs one dtype: " << logits.str() << " -> " << dlogits.str());
  cudaStream_t s = cuda::stream_of(dlogits);
  cuda::dispatch_float(logits.dtype(), "cross_entropy_backward", [&](auto tl) {
    using TL = typename decltype(tl)::type;
    cuda::dispatch_float(dlogits.dtype(), "cross_entropy_backward", [&](auto td) {
      using TD = typename decltype(td)::type;
      const bool vec = V % 4 == 0 && cuda::aligned4<TL>(logits.raw()) && cuda::aligned4<TD>(dlogits.raw());
      cuda::dispatch_vec(vec, [&](auto vw) {
        constexpr int VW = decltype(vw)::value;
        ce_bwd_kernel<TL, TD, VW><<<(unsigned)N, cuda::row_threads(V, VW * 4, 1024), 0, s>>>(
            cuda::cptr<TL>(logits), cuda::cptr<int32_t>(targets), cuda::cptr<float>(lse), grad_scale,
            cuda::ptr<TD>(dlogits), (int)V);
        WICK_CUDA_LAUNCH_CHECK();
      });
    });
  });
}

}  // namespace wick::cuda_ops
