// Cross-entropy on CUDA (ops/cross_entropy.h): one block per row (up to 1024 threads; V up to a few 100k),
// f32 statistics, 16-byte loads when aligned (8 bf16 or 4 f32 logits). exp(v - m) is exp2(v log2e - m log2e):
// one FMA and the MUFU.EX2 unit (expf's range reduction made the 0.5B loss forward compute-bound; dev/
// cross_entropy/ce_fwd_bench.cu: 145 -> 113 us for 1,024 x 151,936 bf16 logits on an H200).
// Forward: running (max, sum of exp) per thread, combined over the block: lse = max + log(sum),
// loss = lse - logit[target] (0 for ignored rows). Backward: elementwise from lse, no reduction; may run in
// place (dlogits == logits: each element is read and then written by the same thread). Both in one kernel
// (cross_entropy_forward_backward, the training loss): a row's second read mostly hits L2.
// A target outside [0, V) that is not kIgnoreIndex prints and traps (a device-side assert).
// One read a row (WICK_CE_SINGLE_READ, ops/cross_entropy.h; bf16, V % 8 == 0): the fused kernel above reads the
// 0.5B row (304 KB) twice, and ncu puts it at ~230 us per 1,024-row chunk where one read and one write of its
// 622 MB would take ~130 at HBM speed. ce_single_read_kernel deals a row to a cluster of C blocks (C = the
// fewest that keep a block's part under kSrMaxPartBytes of shared memory: 2 for Qwen's 151,936 ids, 4 for Gemma
// 3's 262,144); each copies its part to shared memory by cp.async (no registers, all of it in flight), reduces
// (max, sum) over it in row_lse's per-thread order, and the C blocks combine their parts in rank order through
// distributed shared memory; the gradient is then computed from shared memory and written once.
#include <cooperative_groups.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <type_traits>

#include "ops/cross_entropy.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cp_async.cuh"
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

// One step of a thread's running (max m, sum s of exp(x - m)) over U vectors of VW logits already loaded: the new
// max with one rescale of s, then the terms (a logit equal to the max counts exp(0) = 1, also when it is +inf).
// Shared by row_lse and ce_single_read_kernel, so that both fold in one order.
template <int U, int VW> __device__ __forceinline__ void fold_max_sum(const float (&v)[U][VW], float& m, float& s) {
  float lm = m;
#pragma unroll
  for (int u = 0; u < U; ++u)
#pragma unroll
    for (int i = 0; i < VW; ++i) lm = fmaxf(lm, v[u][i]);
  if (lm == -INFINITY) return;  // nothing but -inf so far: adds nothing (and -inf - -inf would be NaN)
  if (lm > m) {
    s = m == -INFINITY ? 0.0f : s * expf(m - lm);
    m = lm;
  }
  const float mb = m * kLog2e;
#pragma unroll
  for (int u = 0; u < U; ++u)
#pragma unroll
    for (int i = 0; i < VW; ++i) s += v[u][i] == m ? 1.0f : exp_shifted(v[u][i], mb);
}

// The block's (max, sum of exp(x - max)) from each thread's running pair, to every thread.
__device__ __forceinline__ float2 block_max_sum(float m, float s, float* shm) {
  const float M = cuda::block_max(m, shm);
  return make_float2(M, cuda::block_sum(m == -INFINITY ? 0.0f : s * expf(m - M), shm));
}

// The log-sum-exp of row x [V], returned to every thread of the block (every thread must call; shm: 32 floats).
// Each thread loads kUnroll vectors of VW logits before it uses any (one row is ~300 KB: with one vector in flight
// per thread and a (max, sum) update chained behind each load, the 0.5B loss forward ran at ~1.4 TB/s), then
// folds them into its running (max, sum) with fold_max_sum (+inf logits: see there).
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
    fold_max_sum(v, m, s);
  }
  const float2 ms = block_max_sum(m, s, shm);
  return ms.x + logf(ms.y);
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

// --- One read a row (see the top of the file) ---
constexpr int kSrThreads = 1024;
constexpr int kSrMaxPartBytes = 160 * 1024;  // a block's part in shared memory (an SM has 227 KB)
constexpr int kSrMaxCluster = 8;             // the portable cluster size

// Blocks a row takes (its 16-byte vectors split evenly), or 0 when the row does not fit kSrMaxCluster parts.
int single_read_cluster(long long V) {
  const long long bytes = V * 2;
  const long long c = (bytes + kSrMaxPartBytes - 1) / kSrMaxPartBytes;
  return c <= kSrMaxCluster ? static_cast<int>(std::max(1LL, c)) : 0;
}

// Row blockIdx.x / C of logits [N, V] bf16 (16-byte aligned, V % 8 == 0), its part `rank` = vectors [rank part,
// (rank + 1) part) in shared memory. Forward: lse[row], losses[row] (the block holding the target writes it; the
// rank-0 block writes lse, and losses = 0 for an ignored row). kBackward: dlogits over the part (may alias logits:
// the part was copied before any block writes, and each block writes only its own part).
template <bool kBackward>
__global__ void __launch_bounds__(kSrThreads)
    ce_single_read_kernel(const bf16* logits, const int32_t* targets, float* losses, float* lse, float grad_scale,
                          bf16* dlogits, int V, int part) {
  namespace cg = cooperative_groups;
  extern __shared__ uint4 seg[];  // the part: `part` vectors of 8 logits
  __shared__ float shm[32];
  __shared__ float2 stats;  // this block's (max, sum of exp(x - max)) over its part
  cg::cluster_group cluster = cg::this_cluster();
  const int C = static_cast<int>(cluster.num_blocks()), rank = static_cast<int>(cluster.block_rank());
  const long long row = blockIdx.x / C;
  const int v0 = rank * part, n = max(0, min(V / 8 - v0, part));
  const bf16* x = logits + row * V + (long long)v0 * 8;
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    cp_async::cp_async16(cp_async::smem_u32(seg + i), x + (long long)i * 8, true);
  cp_async::cp_async_commit();
  const int t = checked_target(targets, row, V);
  cp_async::cp_async_wait<0>();
  __syncthreads();
  // row_lse over the part: two vectors a step, a running (max, sum) per thread with one rescale a step.
  float m = -INFINITY, s = 0.0f;
  for (int i0 = threadIdx.x; i0 < n; i0 += 2 * blockDim.x) {
    float v[2][8];
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int i = i0 + u * blockDim.x;
      if (i < n) {
        load_logits<8>(reinterpret_cast<const bf16*>(seg + i), v[u]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[u][e] = -INFINITY;
      }
    }
    fold_max_sum(v, m, s);
  }
  const float2 ms = block_max_sum(m, s, shm);
  if (threadIdx.x == 0) stats = ms;
  cluster.sync();
  // The row's (max, sum) from the C parts in rank order: the same value in every block of the cluster.
  float Mrow = -INFINITY, Srow = 0.0f;
  for (int q = 0; q < C; ++q) Mrow = fmaxf(Mrow, cluster.map_shared_rank(&stats, q)->x);
  for (int q = 0; q < C; ++q) {
    const float2 p = *cluster.map_shared_rank(&stats, q);
    Srow += p.x == -INFINITY ? 0.0f : p.y * expf(p.x - Mrow);
  }
  const float l = Mrow + logf(Srow);
  cluster.sync();  // no block leaves (its shared memory) before every block has read its stats
  if (threadIdx.x == 0) {
    if (rank == 0) {
      lse[row] = l;
      if (t == kIgnoreIndex) losses[row] = 0.0f;
    }
    if (t != kIgnoreIndex && t / 8 >= v0 && t / 8 < v0 + n)
      losses[row] = l - cuda::to_f(reinterpret_cast<const bf16*>(seg + (t / 8 - v0))[t % 8]);
  }
  if constexpr (kBackward) {
    bf16* d = dlogits + row * V + (long long)v0 * 8;
    const float lb = l * kLog2e;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      float v[8];
      if (t == kIgnoreIndex) {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = 0.0f;
      } else {
        load_logits<8>(reinterpret_cast<const bf16*>(seg + i), v);
        const int c = (v0 + i) * 8;
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = (exp_shifted(v[e], lb) - (c + e == t ? 1.0f : 0.0f)) * grad_scale;
      }
      store_values<8>(d + (long long)i * 8, v);
    }
  }
}

// Whether the single-read kernel takes these logits (and dlogits): switched on, bf16, 16-byte rows, a cluster.
bool single_read_takes(const Tensor& logits, const Tensor* dlogits) {
  const long long V = logits.dim(-1);
  auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0; };
  return wick::cross_entropy_single_read() && logits.dtype() == DType::BF16 && V % 8 == 0 && V <= 0x7fffffffLL &&
         aligned(logits) && (!dlogits || aligned(*dlogits)) && single_read_cluster(V) > 0;
}

void launch_single_read(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse, float grad_scale,
                        Tensor* dlogits) {
  const long long V = logits.dim(-1), N = logits.numel() / V;
  const int C = single_read_cluster(V);
  const int part = static_cast<int>((V / 8 + C - 1) / C);
  const size_t smem = static_cast<size_t>(part) * 16;
  const int threads = std::min(kSrThreads, std::max(32, (part + 31) / 32 * 32));
  auto* kernel = dlogits ? ce_single_read_kernel<true> : ce_single_read_kernel<false>;
  WICK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(N * C));
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = cuda::stream_of(losses);
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = C, attr[0].val.clusterDim.y = 1, attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  WICK_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, cuda::cptr<bf16>(logits), cuda::cptr<int32_t>(targets),
                                     cuda::ptr<float>(losses), cuda::ptr<float>(lse), grad_scale,
                                     dlogits ? cuda::ptr<bf16>(*dlogits) : nullptr, (int)V, part));
}

}  // namespace

// logits [N, V] f32/bf16, targets [N] i32 -> losses [N] f32 (=), lse [N] f32 (=)
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) {
  const long long V = logits.dim(-1);
  const long long N = V ? logits.numel() / V : 0;
  if (N == 0) return;
  WICK_CHECK(V <= 0x7fffffffLL && targets.dtype() == DType::I32, "cross_entropy " << logits.str() << ", " << targets.str());
  if (single_read_takes(logits, nullptr)) return launch_single_read(logits, targets, losses, lse, 0.0f, nullptr);
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
  if (single_read_takes(logits, &dlogits)) return launch_single_read(logits, targets, losses, lse, grad_scale, &dlogits);
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
