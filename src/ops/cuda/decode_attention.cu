// Decode attention on CUDA: one query per (batch row, head) over a short KV cache, in one launch.
//
// Why. A decode step (T = 1) of Qwen2.5-0.5B has 2 kv heads; the general kernel (attention.cu) then splits
// the keys over many blocks (flash-decoding) and combines the parts in a second launch. At a few hundred keys
// that is two launches and a round trip of partial sums through memory for ~100 KB of keys and values, and
// it was the largest kernel of a replayed decode step. Here one block owns (batch row b, kv head g) and all
// n_rep query heads of g, so each key and value row is read once for the whole group:
//   - the keys [first, pos] are dealt to the block's 8 warps 32 at a time; per 32 keys a warp computes the
//     n_rep scores lane-per-key (lane j reads key j's row in 16-byte vectors, q from shared memory as
//     broadcasts), updates a running max m, sum l and accumulator per head (online softmax, f32), then adds
//     p * v lane-per-dim (lane owns D/32 consecutive dims of each value row: coalesced; the step's 32 value
//     slices are loaded into registers before the scores, so their latency hides behind the softmax);
//   - at the end the 8 warps' (m, l, acc) are merged through shared memory and the block writes out (and lse).
// Taken for T = 1, head dim 64 or 128, at most 8 query heads per kv head, no segment ids, and at most
// kDecodeMaxKeys keys a query may see (the cache's capacity when the positions are on the device: a replayed
// graph plans for the longest); beyond that the split-key path fills the GPU better. WICK_DECODE_ATTENTION=0
// turns it off (the split-key path then runs, as before).
//
// Numerics: f32 inside, expf, one rounding to T on the store; the summation order differs from the split-key
// kernel's (scores over dims in 16-byte chunks; the warps' parts merged in warp order).
#include <algorithm>

#include "core/env.h"
#include "ops/cuda/attention.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.cuh"
#include "ops/cuda/vec16.cuh"

namespace wick::cuda_ops {
namespace {

using namespace attn;
using cuda::bf16;

constexpr int kDecodeWarps = 8;
constexpr int kDecodeThreads = kDecodeWarps * 32;
constexpr int kDecodeMaxKeys = 1024;
constexpr int kDecodeMaxRep = 8;

// A lane's DPL consecutive elements of one value row as loaded (1, 2 or 4 32-bit words), widened when used.
template <typename T, int DPL> struct VSlice {
  static constexpr int kWords = DPL * static_cast<int>(sizeof(T)) / 4;
  static_assert(kWords == 1 || kWords == 2 || kWords == 4, "a lane's slice is 4, 8 or 16 bytes");
  uint32_t w[kWords];
  __device__ __forceinline__ void load(const T* p) {
    if constexpr (kWords == 1) {
      w[0] = *reinterpret_cast<const uint32_t*>(p);
    } else if constexpr (kWords == 2) {
      const uint2 u = *reinterpret_cast<const uint2*>(p);
      w[0] = u.x, w[1] = u.y;
    } else {
      const uint4 u = *reinterpret_cast<const uint4*>(p);
      w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
    }
  }
  __device__ __forceinline__ void get(float (&f)[DPL]) const {
    if constexpr (sizeof(T) == 4) {
#pragma unroll
      for (int i = 0; i < DPL; i++) f[i] = __uint_as_float(w[i]);
    } else {
#pragma unroll
      for (int i = 0; i < kWords; i++) {
        const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i]));
        f[2 * i] = a.x, f[2 * i + 1] = a.y;
      }
    }
  }
};

// q [B, 1, H, D], k/v [B, S, Hkv, D] -> out [B, 1, H, D], lse [B, H, 1] (may be null). grid (Hkv, B).
// NREP >= n_rep: compile-time bound on the group's query heads (4 or 8).
template <typename T, int D, int NREP>
__global__ void __launch_bounds__(kDecodeThreads)
    attn_decode_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ out,
                       float* __restrict__ lse, Dims a) {
  pdl::enter();  // launched with pdl::launch
  constexpr int DPL = D / 32;                    // dims a lane owns in P.V
  constexpr int E = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte vector
  __shared__ __align__(16) float qs[NREP][D];
  __shared__ float ps[kDecodeWarps][NREP][32];
  __shared__ float ms[kDecodeWarps][NREP], ls[kDecodeWarps][NREP];
  __shared__ __align__(16) float accs[kDecodeWarps][NREP][D];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = blockIdx.x, b = blockIdx.y, n_rep = a.n_rep, h0 = g * n_rep;
  for (int i = threadIdx.x; i < NREP * D; i += kDecodeThreads) {
    const int h = i / D, d = i - h * D;
    qs[h][d] = h < n_rep ? cuda::to_f(q[((long long)b * a.H + h0 + h) * D + d]) : 0.0f;
  }
  const int pos = query_pos(a, b, 0);
  const int key_lo = first_key_at(a, pos), key_end = pos + 1;
  const long long kv_b = (long long)b * a.S * a.Hkv * D + (long long)g * D;  // k/v of (b, key 0, g)
  const long long kv_row = (long long)a.Hkv * D;
  __syncthreads();

  float m[NREP], l[NREP], acc[NREP][DPL];
#pragma unroll
  for (int h = 0; h < NREP; h++) {
    m[h] = -INFINITY, l[h] = 0.0f;
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[h][i] = 0.0f;
  }
  for (int k0 = key_lo + warp * 32; k0 < key_end; k0 += kDecodeWarps * 32) {
    // This step's value rows (the lane's DPL dims of each) are loaded first: they do not depend on the scores,
    // so they arrive while the scores and the softmax are computed (read after it, they were a chain of L2 round
    // trips at the end of every step).
    const int jn = min(32, key_end - k0);
    VSlice<T, DPL> vs[32];
#pragma unroll
    for (int j = 0; j < 32; j++)
      if (j < jn) vs[j].load(v + kv_b + (long long)(k0 + j) * kv_row + lane * DPL);
    // Scores, lane per key.
    const int key = k0 + lane;
    const bool ok = key < key_end;
    float s[NREP];
#pragma unroll
    for (int h = 0; h < NREP; h++) s[h] = 0.0f;
    if (ok) {
      const T* kr = k + kv_b + key * kv_row;
#pragma unroll
      for (int c = 0; c < D; c += E) {
        float kf[E];
        vec16::unpack(*reinterpret_cast<const uint4*>(kr + c), static_cast<const T*>(nullptr), kf);
#pragma unroll
        for (int h = 0; h < NREP; h++)
#pragma unroll
          for (int e = 0; e < E; e++) s[h] = fmaf(qs[h][c + e], kf[e], s[h]);
      }
    }
    // Online softmax per head; every 32-key step has its first key (lane 0) inside [key_lo, key_end).
#pragma unroll
    for (int h = 0; h < NREP; h++) {
      const float sh = ok ? s[h] * a.scale : -INFINITY;
      const float m_new = fmaxf(m[h], cuda::warp_max(sh));
      const float p = ok ? expf(sh - m_new) : 0.0f;
      const float alpha = expf(m[h] - m_new);  // 0 on the first step (m = -inf)
      l[h] = l[h] * alpha + cuda::warp_sum(p);
      m[h] = m_new;
#pragma unroll
      for (int i = 0; i < DPL; i++) acc[h][i] *= alpha;
      ps[warp][h][lane] = p;
    }
    __syncwarp();
    // P.V, lane per DPL consecutive dims.
#pragma unroll
    for (int j = 0; j < 32; j++) {
      if (j >= jn) break;
      float vf[DPL];
      vs[j].get(vf);
#pragma unroll
      for (int h = 0; h < NREP; h++) {
        const float p = ps[warp][h][j];
#pragma unroll
        for (int i = 0; i < DPL; i++) acc[h][i] = fmaf(p, vf[i], acc[h][i]);
      }
    }
    __syncwarp();  // ps is rewritten by the next step
  }

  // Merge the warps' parts (a warp without keys has m = -inf, l = 0, acc = 0).
#pragma unroll
  for (int h = 0; h < NREP; h++) {
    if (lane == 0) ms[warp][h] = m[h], ls[warp][h] = l[h];
#pragma unroll
    for (int i = 0; i < DPL; i++) accs[warp][h][lane * DPL + i] = acc[h][i];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n_rep * D; i += kDecodeThreads) {
    const int h = i / D, d = i - h * D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; w++) M = fmaxf(M, ms[w][h]);
    float L = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; w++) {
      if (ms[w][h] == -INFINITY) continue;
      const float f = expf(ms[w][h] - M);
      L += ls[w][h] * f;
      o += accs[w][h][d] * f;
    }
    const float inv_l = L > 0.0f ? 1.0f / L : 0.0f;
    out[((long long)b * a.H + h0 + h) * D + d] = cuda::from_f<T>(o * inv_l);
    if (lse && d == 0) lse[(long long)b * a.H + h0 + h] = L > 0.0f ? M + logf(L) : -INFINITY;
  }
}

bool decode_attention_on() {
  static const bool on = env_default_on("WICK_DECODE_ATTENTION");
  return on;
}

bool aligned16(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0; }

}  // namespace

bool decode_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const attn::Dims& a, Tensor& out,
                              Tensor* lse) {
  const int span = a.window > 0 ? std::min(a.window, a.kv_len) : a.kv_len;  // keys a query may see, at most
  if (!decode_attention_on() || a.T != 1 || (a.D != 64 && a.D != 128) || a.n_rep > kDecodeMaxRep || a.seg ||
      span > kDecodeMaxKeys || a.B > 65535 || !aligned16(k) || !aligned16(v))
    return false;
  cudaStream_t s = cuda::stream_of(out);
  float* lse_p = lse ? cuda::ptr<float>(*lse) : nullptr;
  const dim3 grid(a.Hkv, a.B);
  bool done = false;
  cuda::dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto go = [&](auto d_tag, auto rep_tag) {
      constexpr int D = decltype(d_tag)::value, NREP = decltype(rep_tag)::value;
      WICK_CUDA_CHECK(pdl::launch(attn_decode_kernel<T, D, NREP>, grid, dim3(kDecodeThreads), 0, s, cuda::cptr<T>(q),
                                  cuda::cptr<T>(k), cuda::cptr<T>(v), cuda::ptr<T>(out), lse_p, a));
      done = true;
    };
    const auto by_rep = [&](auto d_tag) {
      if (a.n_rep <= 4) go(d_tag, std::integral_constant<int, 4>{});
      else go(d_tag, std::integral_constant<int, 8>{});
    };
    if (a.D == 64) by_rep(std::integral_constant<int, 64>{});
    else by_rep(std::integral_constant<int, 128>{});
  });
  return done;
}

}  // namespace wick::cuda_ops
