// Cross-entropy on CUDA (ops/cross_entropy.h): one block per row (up to 1024 threads; V up to a few 100k),
// f32 statistics, 16-byte loads when aligned (8 bf16 or 4 f32 logits). exp(v - m) is exp2(v log2e - m log2e):
// one FMA and the MUFU.EX2 unit (expf's range reduction made the 0.5B loss forward compute-bound; dev/
// cross_entropy/ce_fwd_bench.cu: 145 -> 113 us for 1,024 x 151,936 bf16 logits on an H200).
// Forward: running (max, sum of exp) per thread, combined over the block: lse = max + log(sum),
// loss = lse - logit[target] (0 for ignored rows). Backward: elementwise from lse, no reduction; may run in
// place (dlogits == logits: each element is read and then written by the same thread). Both in one kernel
// (cross_entropy_forward_backward, the training loss): a row's second read mostly hits L2.
// A target outside [0, V) that is not kIgnoreIndex prints and traps (a device-side assert).
#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <type_traits>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

constexpr float kLog2e = 1.4426950408889634f;

// exp(v - m) as exp2(v log2e - m log2e), mb = m log2e (see the top of the file).
__device__ __forceinline__ float exp_shifted(float v, float mb) { return exp2f(fmaf(v, kLog2e, -mb)); }

// VW logits at p into f32: 8 bf16 (16 bytes) at once, or cuda::loadv's 4 / 1.
template <int VW, typename T> __device__ __forceinline__ void load_logits(const T* p, float (&f)[VW]) {
  if constexpr (VW == 8) {
    static_assert(sizeof(T) == 2, "8-wide loads are for bf16 logits");
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i]));
      f[2 * i] = a.x, f[2 * i + 1] = a.y;
    }
  } else {
    cuda::loadv<VW>(p, f);
  }
}

// 8 when 16-byte loads of bf16 logits work, 4 for aligned f32 / bf16, else 1.
template <typename TL> int logit_width(long long V, const void* p) {
  if (std::is_same_v<TL, bf16> && V % 8 == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0) return 8;
  return V % 4 == 0 && cuda::aligned4<TL>(p) ? 4 : 1;
}

// VW values as T at p: 8 bf16 as one 16-byte store, or cuda::storev's 4 / 1.
template <int VW, typename T> __device__ __forceinline__ void store_values(T* p, const float (&f)[VW]) {
  if constexpr (VW == 8) {
    static_assert(sizeof(T) == 2, "8-wide stores are for bf16");
    unsigned w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
      w[i] = *reinterpret_cast<const unsigned*>(&h);
    }
    *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
  } else {
    cuda::storev<VW>(p, f);
  }
}

// dlogits row d [V] = (exp(x - lse) - onehot(t)) * grad_scale from logits row x, lb = lse log2e; zeros for an
// ignored row. Each element is read and written by the same thread (in place is safe).
template <int VW, typename TL, typename TD>
__device__ __forceinline__ void row_grad(const TL* x, TD* d, int V, int t, float lb, float grad_scale) {
  if (t == kIgnoreIndex) {
    const float zero[VW] = {};
    for (int c = threadIdx.x * VW; c < V; c += blockDim.x * VW) store_values<VW>(d + c, zero);
    return;
  }
  for (int c = threadIdx.x * VW; c < V; c += blockDim.x * VW) {
    float v[VW];
    load_logits<VW>(x + c, v);
#pragma unroll
    for (int i = 0; i < VW; ++i) v[i] = (exp_shifted(v[i], lb) - (c + i == t ? 1.0f : 0.0f)) * grad_scale;
    store_values<VW>(d + c, v);
  }
}

// Calls launch(std::integral_constant<int, VW>) for the width logit_width chose: 8 (bf16 only), 4 or 1.
template <typename T, class F> void dispatch_width(int w, F&& launch) {
  if constexpr (std::is_same_v<T, bf16>) {
    if (w == 8) return launch(std::integral_constant<int, 8>{});
  }
  if (w >= 4) launch(std::integral_constant<int, 4>{});
  else launch(std::integral_constant<int, 1>{});
}

__device__ __forceinline__ int checked_target(const int32_t* targets, long long row, int V) {
  const int t = targets[row];
  if (t != kIgnoreIndex && (t < 0 || t >= V)) {
    if (threadIdx.x == 0) printf("wick cross_entropy: targets[%lld] = %d is outside [0, %d)\n", row, t, V);
    __trap();
  }
  return t;
}

// The log-sum-exp of row x [V], returned to every thread of the block (every thread must call; shm: 32 floats).
// Each thread loads kUnroll vectors of VW logits before it uses any (one row is ~300 KB: with one vector in flight
// per thread and a (max, sum) update chained behind each load, the 0.5B loss forward ran at ~1.4 TB/s), then
// folds them into its running (max, sum) with one rescale. +inf logits: the sum counts each as exp(0) = 1 once
// the max is +inf (instead of exp(inf - inf) = NaN), as an element-by-element running max would.
template <typename TL, int VW> __device__ float row_lse(const TL* x, int V, float* shm) {
  constexpr int kUnroll = VW == 8 ? 2 : 4;  // bf16: 2 x 16 bytes in flight per thread (the faster in the harness)
  const int stride = blockDim.x * VW;
  float m = -INFINITY, s = 0.0f;
  for (int c0 = threadIdx.x * VW; c0 < V; c0 += stride * kUnroll) {
    float v[kUnroll][VW];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * stride;
      if (c < V) {
        load_logits<VW>(x + c, v[u]);
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
    const float mb = m * kLog2e;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int i = 0; i < VW; ++i) s += v[u][i] == m ? 1.0f : exp_shifted(v[u][i], mb);
  }
  const float M = cuda::block_max(m, shm);
  const float S = cuda::block_sum(m == -INFINITY ? 0.0f : s * expf(m - M), shm);
  return M + logf(S);
}

// logits [N, V], targets [N] -> losses [N], lse [N]
template <typename TL, int VW>
__global__ void ce_fwd_kernel(const TL* logits, const int32_t* targets, float* losses, float* lse, int V) {
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const TL* x = logits + row * V;
  const float l = row_lse<TL, VW>(x, V, shm);
  if (threadIdx.x == 0) {
    const int t = checked_target(targets, row, V);
    lse[row] = l;
    losses[row] = t == kIgnoreIndex ? 0.0f : l - cuda::to_f(x[t]);
  }
}

// Forward and backward of one row per block: row_lse, then dlogits from the lse in registers, the values of
// ce_fwd_kernel and ce_bwd_kernel bit for bit. The row is read twice; the second read follows the first within
// microseconds, so most of it comes from L2 (two 1,024-thread blocks an SM keep ~264 rows, ~80 MB of 0.5B's bf16
// logits, in flight: not all of it fits the 50 MB L2). In place is safe: the target's logit is read before the
// reductions, and every other element is read and written by the same thread after them.
template <typename T, int VW>
__global__ void ce_fwd_bwd_kernel(const T* logits, const int32_t* targets, float* losses, float* lse, float grad_scale,
                                  T* dlogits, int V) {
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const T* x = logits + row * V;
  T* d = dlogits + row * V;
  const int t = checked_target(targets, row, V);
  const float xt = threadIdx.x == 0 && t != kIgnoreIndex ? cuda::to_f(x[t]) : 0.0f;
  const float l = row_lse<T, VW>(x, V, shm);  // its reductions end with __syncthreads: x[t] is read before d[t] is written
  if (threadIdx.x == 0) {
    lse[row] = l;
    losses[row] = t == kIgnoreIndex ? 0.0f : l - xt;
  }
  row_grad<VW>(x, d, V, t, l * kLog2e, grad_scale);
}

// dlogits [N, V] = (exp(logits - lse) - onehot(target)) * grad_scale; 0 for ignored rows.
template <typename TL, typename TD, int VW>
__global__ void ce_bwd_kernel(const TL* logits, const int32_t* targets, const float* lse, float grad_scale, TD* dlogits,
                              int V) {
  const long long row = blockIdx.x;
  const TL* x = logits + row * V;
  TD* d = dlogits + row * V;
  const int t = checked_target(targets, row, V);
  row_grad<VW>(x, d, V, t, t == kIgnoreIndex ? 0.0f : lse[row] * kLog2e, grad_scale);
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
    auto launch = [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      ce_fwd_kernel<TL, VW><<<(unsigned)N, cuda::row_threads(V, VW * 4, 1024), 0, s>>>(
          cuda::cptr<TL>(logits), cuda::cptr<int32_t>(targets), cuda::ptr<float>(losses), cuda::ptr<float>(lse), (int)V);
      WICK_CUDA_LAUNCH_CHECK();
    };
    dispatch_width<TL>(logit_width<TL>(V, logits.raw()), launch);
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

// -> losses, lse (=), dlogits [N, V] (=; the logits' dtype; may alias logits)
void cross_entropy_forward_backward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse,
                                    float grad_scale, Tensor& dlogits) {
  const long long V = logits.dim(-1);
  const long long N = V ? logits.numel() / V : 0;
  if (N == 0) return;
  WICK_CHECK(V <= 0x7fffffffLL && targets.dtype() == DType::I32 && dlogits.dtype() == logits.dtype(),
             "cross_entropy_forward_backward " << logits.str() << ", " << targets.str() << " -> " << dlogits.str());
  cudaStream_t s = cuda::stream_of(losses);
  cuda::dispatch_float(logits.dtype(), "cross_entropy_forward_backward", [&](auto tl) {
    using T = typename decltype(tl)::type;
    auto launch = [&](auto vw) {
      constexpr int VW = decltype(vw)::value;
      ce_fwd_bwd_kernel<T, VW><<<(unsigned)N, cuda::row_threads(V, VW * 4, 1024), 0, s>>>(
          cuda::cptr<T>(logits), cuda::cptr<int32_t>(targets), cuda::ptr<float>(losses), cuda::ptr<float>(lse),
          grad_scale, cuda::ptr<T>(dlogits), (int)V);
      WICK_CUDA_LAUNCH_CHECK();
    };
    dispatch_width<T>(std::min(logit_width<T>(V, logits.raw()), logit_width<T>(V, dlogits.raw())), launch);
  });
}

}  // namespace wick::cuda_ops
