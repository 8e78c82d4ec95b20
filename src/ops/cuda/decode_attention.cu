// Decode attention on CUDA: one query per (batch row, head) over a short KV cache, in one launch.
//
// Why. A decode step (T = 1) of Qwen2.5-0.5B has 2 kv heads; the general kernel (attention.cu) then splits
// the keys over many blocks (flash-decoding) and combines the parts in a second launch. At a few hundred keys
// that is two launches and a round trip of partial sums through memory for ~100 KB of keys and values, and
// it was the largest kernel of a replayed decode step. Here one block owns (batch row b, query head h) and walks
// all the keys its query sees (kDecodeHeadsPerBlock says why a head a block and not a kv head's group: the
// other blocks of the group read the same keys and values, from L2):
//   - the keys [first, pos] are dealt to the block's kDecodeWarps warps 32 at a time; per 32 keys a warp computes
//     the scores lane-per-key (lane j reads key j's row in 16-byte vectors, q from shared memory as broadcasts),
//     updates a running max m, sum l and accumulator (online softmax, f32), then adds p * v lane-per-dim (lane
//     owns D/32 consecutive dims of each value row: coalesced; the step's 32 value slices are loaded into
//     registers before the scores, so their latency hides behind the softmax);
//   - at the end the warps' (m, l, acc) are merged through shared memory and the block writes out (and lse).
// Taken for T = 1, head dim 64 or 128, no segment ids, and at most kDecodeMaxKeys keys a query may see (the
// cache's capacity when the positions are on the device: a replayed graph plans for the longest); beyond that
// the split-key path fills the GPU better. WICK_DECODE_ATTENTION=0 turns it off (the split-key path then runs).
//
// Numerics: f32 inside, expf, one rounding to T on the store; the summation order differs from the split-key
// kernel's (scores over dims in 16-byte chunks; the warps' parts merged in warp order; the heads a block takes do
// not change it, the warps a block do).
//
// rope_cache_attention (ops/attention.h) runs the step's RoPE and KV-cache append in the same launch
// (RopeAppend): each block rotates its query head (written back to q) and its kv head's key as it loads them
// (rope_rotate.cuh: rope.cu's arithmetic, so the same bits), keeps the new key and value row in shared memory and
// attends to it from there, and the block of the group's first head stores both rows at row positions[b] of the
// caches. A decode layer then runs one kernel fewer, and the append costs no extra round trip: its loads go out
// with the query's. The keys and values are read with __ldcg (through L2), never the non-coherent path: the
// caches are written in this launch (other rows than the ones read).
#include <algorithm>

#include "core/env.h"
#include "ops/cuda/attention.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.cuh"
#include "ops/cuda/rope_rotate.cuh"
#include "ops/cuda/vec16.cuh"

namespace wick::cuda_ops {
namespace {

using namespace attn;
using cuda::bf16;

// Warps a block (the kernel's W): 16 lets a block walk up to 512 keys in one 32-key step a warp. Measured on an
// H200 (session 20, a block per query head, RoPE inside; same build, alternating): 8 -> 16 warps, 0.5B 1,249 ->
// 1,382 tok/s, 1.5B 676 -> 689, 7B 243.0 -> 247.8; 4 warps: 0.5B 1,066, 1.5B 631. (Other greedy tokens on the
// random-weight models: the warps' parts merge in another order.)
constexpr int kDecodeWarps = 16;
constexpr int kDecodeMaxKeys = 1024;
// Query heads a block takes (the kernel's NREP). Measured on an H200 (session 20, wick generate, batch 1, 128-token
// prompt + 256 new, with the RoPE and cache append in the kernel): 8 (a block per kv head, all its query heads) ->
// 4 -> 2 -> 1: 0.5B 1,107 -> 1,182 -> 1,215 -> 1,238 tok/s, 1.5B 539 -> 615 -> 630 -> 644, 7B 208.5 -> 221.6 ->
// 223.3 -> 226.4. More blocks each with less arithmetic a step (the scores, the softmax and P.V are per head)
// shorten the chain more than the repeated key and value reads (from L2 after the first block) cost.
constexpr int kDecodeHeadsPerBlock = 1;

// A lane's DPL consecutive elements of one value row as loaded (1, 2 or 4 32-bit words), widened when used.
template <typename T, int DPL> struct VSlice {
  static constexpr int kWords = DPL * static_cast<int>(sizeof(T)) / 4;
  static_assert(kWords == 1 || kWords == 2 || kWords == 4, "a lane's slice is 4, 8 or 16 bytes");
  uint32_t w[kWords];
  __device__ __forceinline__ void load(const T* p) {
    if constexpr (kWords == 1) {
      w[0] = __ldcg(reinterpret_cast<const unsigned int*>(p));
    } else if constexpr (kWords == 2) {
      const uint2 u = __ldcg(reinterpret_cast<const uint2*>(p));
      w[0] = u.x, w[1] = u.y;
    } else {
      const uint4 u = __ldcg(reinterpret_cast<const uint4*>(p));
      w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
    }
  }
  // From shared memory (the appended row, RopeAppend): a plain load.
  __device__ __forceinline__ void load_generic(const T* p) {
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

// rope_cache_attention's part (null inv_freq: plain attention): this step's projections, rotated and appended by
// the kernel. q is then the kernel's q too; the kernel's k, v are the caches.
template <typename T> struct RopeAppend {
  const float* inv_freq = nullptr;  // [D/2] (rope_inv_freq_device)
  T* q = nullptr;                   // the kernel's q, writable: rotated in place
  const T* k = nullptr;             // [B, 1, Hkv, D]: rotated and stored at row positions[b] of the k cache
  const T* v = nullptr;             // [B, 1, Hkv, D]: stored at row positions[b] of the v cache
  const int32_t* pos = nullptr;     // [B, 1] (a.pos is the same tensor)
  T* k_cache = nullptr;             // the kernel's k and v, writable
  T* v_cache = nullptr;
};

// Which query heads a block takes: block x of a batch row takes chunk c = x % chunks of kv head g = x / chunks, i.e.
// query heads [h0, h0 + nh) of g's n_rep (a.n_rep split into `chunks` chunks of up to `hpb` heads).
struct HeadChunk {
  int g, c, h0, nh;
  __device__ HeadChunk(const Dims& a, int chunks, int hpb) {
    g = blockIdx.x / chunks;
    c = blockIdx.x - g * chunks;
    h0 = g * a.n_rep + c * hpb;
    nh = min(hpb, a.n_rep - c * hpb);
  }
};

// The block's query heads [NREP][D] into qs as f32 (rows >= nh zero). With ra.inv_freq, first the RoPE and the
// cache append of rope_qk_cache_write: the block's query heads rotated (and written back to q: each head belongs to
// one block), the key of head g rotated into knew and the value copied into vnew (every block of g does it for
// itself and attends to the new row from there, so that no block reads what another block writes), and the first
// chunk's block stores both rows at row positions[b] of the caches. ra.k is left as it is (several blocks read it).
// Ends with a barrier.
template <typename T, int D, int NREP, int W>
__device__ __forceinline__ void load_queries(const T* q, const RopeAppend<T>& ra, const Dims& a, int b,
                                             const HeadChunk& hc, float (&qs)[NREP][D], float (&cs)[2][D / 2],
                                             T* knew, T* vnew) {
  const int nh = hc.nh, h0 = hc.h0, g = hc.g;
  if (!ra.inv_freq) {
    for (int i = threadIdx.x; i < NREP * D; i += W * 32) {
      const int h = i / D, d = i - h * D;
      qs[h][d] = h < nh ? cuda::to_f(q[((long long)b * a.H + h0 + h) * D + d]) : 0.0f;
    }
    __syncthreads();
    return;
  }
  constexpr int half = D / 2;
  const long long p = ra.pos[b];
  if (p < 0 || p >= a.S) {
    printf("wick rope_cache_attention: positions[%d] = %lld is outside the cache's [0, %lld)\n", b, p, a.S);
    __trap();
  }
  for (int i = threadIdx.x; i < half; i += W * 32)
    cuda::rope_math::cos_sin<T>(static_cast<float>(p), ra.inv_freq[i], cs[0][i], cs[1][i]);
  for (int i = threadIdx.x; i < (NREP - nh) * D; i += W * 32) qs[nh + i / D][i % D] = 0.0f;
  __syncthreads();
  const bool writer = hc.c == 0;
  const long long row = ((long long)b * a.S + p) * a.Hkv * D + (long long)g * D;  // (b, p, g) in the caches
  const T* kr = ra.k + ((long long)b * a.Hkv + g) * D;
  // nh query pairs, one key pair and D value elements, one item a thread.
  for (int i = threadIdx.x; i < (nh + 1) * half + D; i += W * 32) {
    if (i >= (nh + 1) * half) {
      const int d = i - (nh + 1) * half;
      const T x = ra.v[((long long)b * a.Hkv + g) * D + d];
      vnew[d] = x;
      if (writer) ra.v_cache[row + d] = x;
      continue;
    }
    const int h = i / half, j = i - h * half;
    const bool key = h == nh;
    const T* x = key ? kr : ra.q + ((long long)b * a.H + h0 + h) * D;
    float y1, y2;
    cuda::rope_math::rotate<T, false>(cuda::to_f(x[j]), cuda::to_f(x[j + half]), cs[0][j], cs[1][j], y1, y2);
    const T r1 = cuda::from_f<T>(y1), r2 = cuda::from_f<T>(y2);
    if (key) {
      knew[j] = r1;
      knew[j + half] = r2;
      if (writer) {
        ra.k_cache[row + j] = r1;
        ra.k_cache[row + j + half] = r2;
      }
    } else {
      T* xq = ra.q + ((long long)b * a.H + h0 + h) * D;
      xq[j] = r1;
      xq[j + half] = r2;
      qs[h][j] = cuda::to_f(r1);
      qs[h][j + half] = cuda::to_f(r2);
    }
  }
  __syncthreads();
}

// q [B, 1, H, D], k/v [B, S, Hkv, D] -> out [B, 1, H, D], lse [B, H, 1] (may be null). grid (Hkv * chunks, B):
// HeadChunk says which query heads a block takes (hpb <= NREP of them); W warps. ra: see RopeAppend (q, k, v may
// then be written by this kernel: not restrict).
template <typename T, int D, int NREP, int W>
__global__ void __launch_bounds__(W * 32)
    attn_decode_kernel(const T* q, const T* k, const T* v, T* __restrict__ out, float* __restrict__ lse, Dims a,
                       RopeAppend<T> ra, int chunks, int hpb) {
  pdl::enter();  // launched with pdl::launch
  constexpr int DPL = D / 32;                    // dims a lane owns in P.V
  constexpr int E = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte vector
  __shared__ __align__(16) float qs[NREP][D];
  __shared__ float ps[W][NREP][32];
  __shared__ float ms[W][NREP], ls[W][NREP];
  __shared__ __align__(16) float accs[W][NREP][D];
  __shared__ float cs[2][D / 2];              // RoPE's cos and sin (ra.inv_freq)
  __shared__ __align__(16) T knew[D], vnew[D];  // the appended key and value row (ra.inv_freq)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int b = blockIdx.y;
  const HeadChunk hc(a, chunks, hpb);
  const int nh = hc.nh, h0 = hc.h0, g = hc.g;
  load_queries<T, D, NREP, W>(q, ra, a, b, hc, qs, cs, knew, vnew);
  const int pos = query_pos(a, b, 0);
  const int key_lo = first_key_at(a, pos), key_end = pos + 1;
  // The key read from knew / vnew instead of the caches: the appended row (positions[b]; pos is it clamped to
  // kv_len - 1, so a position past kv_len, whose row the two ops would not attend to either, matches no key).
  const int fresh = ra.inv_freq ? ra.pos[b] : -1;
  const long long kv_b = (long long)b * a.S * a.Hkv * D + (long long)g * D;  // k/v of (b, key 0, g)
  const long long kv_row = (long long)a.Hkv * D;

  float m[NREP], l[NREP], acc[NREP][DPL];
#pragma unroll
  for (int h = 0; h < NREP; h++) {
    m[h] = -INFINITY, l[h] = 0.0f;
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[h][i] = 0.0f;
  }
  for (int k0 = key_lo + warp * 32; k0 < key_end; k0 += W * 32) {
    // This step's value rows (the lane's DPL dims of each) are loaded first: they do not depend on the scores,
    // so they arrive while the scores and the softmax are computed (read after it, they were a chain of L2 round
    // trips at the end of every step).
    const int jn = min(32, key_end - k0);
    VSlice<T, DPL> vs[32];
#pragma unroll
    for (int j = 0; j < 32; j++)
      if (j < jn) {
        if (k0 + j == fresh) vs[j].load_generic(vnew + lane * DPL);
        else vs[j].load(v + kv_b + (long long)(k0 + j) * kv_row + lane * DPL);
      }
    // Scores, lane per key.
    const int key = k0 + lane;
    const bool ok = key < key_end;
    float s[NREP];
#pragma unroll
    for (int h = 0; h < NREP; h++) s[h] = 0.0f;
    if (ok) {
      const T* kr = k + kv_b + key * kv_row;
      const bool from_new = key == fresh;
#pragma unroll
      for (int c = 0; c < D; c += E) {
        float kf[E];
        const uint4 kv = from_new ? *reinterpret_cast<const uint4*>(knew + c)
                                  : __ldcg(reinterpret_cast<const uint4*>(kr + c));
        vec16::unpack(kv, static_cast<const T*>(nullptr), kf);
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
  for (int i = threadIdx.x; i < nh * D; i += W * 32) {
    const int h = i / D, d = i - h * D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < W; w++) M = fmaxf(M, ms[w][h]);
    float L = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < W; w++) {
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

// Whether the one-launch kernel takes a call with these dims (k, v: what it reads the keys and values from).
bool decode_kernel_applies(const Tensor& k, const Tensor& v, const Dims& a) {
  const int span = a.window > 0 ? std::min(a.window, a.kv_len) : a.kv_len;  // keys a query may see, at most
  return decode_attention_on() && a.T == 1 && (a.D == 64 || a.D == 128) && !a.seg &&
         span <= kDecodeMaxKeys && a.B <= 65535 && aligned16(k) && aligned16(v);
}

// One launch of the kernel (decode_kernel_applies said yes); ra.inv_freq null: plain attention.
template <typename T>
void launch_decode(const T* q, const T* k, const T* v, T* out, float* lse, const Dims& a, const RopeAppend<T>& ra,
                   cudaStream_t s) {
  const int hpb = std::min(kDecodeHeadsPerBlock, a.n_rep), chunks = (a.n_rep + hpb - 1) / hpb;
  const dim3 grid(a.Hkv * chunks, a.B);
  const auto go = [&](auto d_tag) {
    constexpr int D = decltype(d_tag)::value;
    WICK_CUDA_CHECK(pdl::launch(attn_decode_kernel<T, D, kDecodeHeadsPerBlock, kDecodeWarps>, grid,
                                dim3(kDecodeWarps * 32), 0, s, q, k, v, out, lse, a, ra, chunks, hpb));
  };
  if (a.D == 64) go(std::integral_constant<int, 64>{});
  else go(std::integral_constant<int, 128>{});
}

}  // namespace

bool decode_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const attn::Dims& a, Tensor& out,
                              Tensor* lse) {
  if (!decode_kernel_applies(k, v, a)) return false;
  float* lse_p = lse ? cuda::ptr<float>(*lse) : nullptr;
  cuda::dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_decode<T>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), cuda::ptr<T>(out), lse_p, a, RopeAppend<T>{},
                     cuda::stream_of(out));
  });
  return true;
}

bool rope_cache_attention(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                          Tensor& k_cache, Tensor& v_cache, const AttentionArgs& args, Tensor& out, Tensor* lse) {
  static const bool on = env_default_on("WICK_ROPE_ATTENTION");
  // The kernel attends at the positions it appends at: a decode step with its positions on the device.
  if (!on || q.dim(1) != 1 || !args.positions || args.positions->raw() != positions.raw() || args.segments ||
      positions.dtype() != DType::I32)
    return false;
  const int64_t B = k.dim(0), S = k_cache.dim(1), Hkv = k.dim(2), D = k.dim(3);
  const Tensor kc4 = k_cache.view({B, S, Hkv, D}), vc4 = v_cache.view({B, S, Hkv, D});
  const Dims a = make_dims(q, kc4, args);
  if (a.B == 0 || a.H == 0 || !decode_kernel_applies(kc4, vc4, a)) return false;
  const float* inv = rope_inv_freq_device(out.device().index, f, static_cast<int>(D));
  float* lse_p = lse ? cuda::ptr<float>(*lse) : nullptr;
  cuda::dispatch_float(q.dtype(), "rope_cache_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    RopeAppend<T> ra;
    ra.inv_freq = inv;
    ra.q = cuda::ptr<T>(q);
    ra.k = cuda::ptr<T>(k);
    ra.v = cuda::cptr<T>(v);
    ra.pos = cuda::cptr<int32_t>(positions);
    ra.k_cache = cuda::ptr<T>(k_cache);
    ra.v_cache = cuda::ptr<T>(v_cache);
    launch_decode<T>(ra.q, ra.k_cache, ra.v_cache, cuda::ptr<T>(out), lse_p, a, ra, cuda::stream_of(out));
  });
  return true;
}

}  // namespace wick::cuda_ops
