// Causal GQA attention forward on CUDA (ops/attention.h), scheme in attention.cuh.
// Online softmax over key tiles (running max m, running sum l, rescaled accumulator), so any kv length
// fits: shared memory depends only on D. lse = m + log(l) of the scaled scores.
//
// Split keys (flash-decoding): when the (row block, kv head, batch) grid is too small to fill the GPU (decode:
// T = 1 gives B * Hkv blocks) and the cache is long, each block takes one chunk of the keys and writes its
// unnormalised (m, l, acc[D]) to the device scratch buffer; a second launch combines the chunks per row.
//
// bf16 with head dim 64 / 128 and T >= kFlashMinT goes to the tensor-core kernels instead
// (flash_attention_fwd.cuh; attention_cuda_flash() in ops/attention.h). What stays here: f32 (the exactness
// path), other head dims, decode (few queries over a long cache: the split-key scheme below) and sliding-window
// attention (each row's keys start at first_key(): tiles and splits begin at the lowest key a block sees).
// Decode over a short cache (T = 1, a few hundred keys) goes to decode_attention.cu's one-launch kernel first.
// With query positions on the device (AttentionArgs::positions: a replayed decode graph), the splits are planned
// for kv_len keys, the cache length, and each block clamps to the keys its rows see: splits past them write an
// empty (m = -inf, l = 0) part that the combine skips.
#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "ops/cuda/attention.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.cuh"

namespace wick::cuda_ops {
namespace {

using namespace attn;
using cuda::bf16;

size_t fwd_smem_bytes(const Dims& a) {
  return sizeof(float) * (size_t(kTile) * a.KS + size_t(kTile) * a.D4 + size_t(kWarps) * a.D4 + kWarps * kTile + kTile);
}

// Key split: block (row block, split) covers keys [base + split * chunk, base + (split + 1) * chunk), base the
// first key any query sees (> 0 with a sliding window). part null = one split that normalises and writes
// out/lse itself; else rows write (m, l, acc[0..D)) to part[(split * total_rows + global row) * (D + 2)],
// global row = (b * Hkv + g) * T * n_rep + r.
struct Split {
  int n = 1;
  int chunk = 0x7fffffff;
  int base = 0;
  float* part = nullptr;
};

// q [B, T, H, D], k/v [B, S, Hkv, D] -> out [B, T, H, D], lse [B, H, T] (may be null).
// grid (row_blocks * splits, Hkv, B), row_blocks = ceil(T * n_rep / 8); kThreads threads.
template <typename T, int DPL>
__global__ void __launch_bounds__(kThreads)
    attn_fwd_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ out,
                    float* __restrict__ lse, Dims a, Split sp) {
  pdl::enter();  // the three kernels of this file are launched with pdl::launch (a decode step runs them)
  extern __shared__ float4 smem4[];
  float* Ks = reinterpret_cast<float*>(smem4);  // [kTile][KS]
  float* Vs = Ks + kTile * a.KS;                // [kTile][D4]
  float* Qs = Vs + kTile * a.D4;                // [kWarps][D4]
  float* Ps = Qs + kWarps * a.D4;               // [kWarps][kTile]
  int* Ss = reinterpret_cast<int*>(Ps + kWarps * kTile);  // [kTile] segment ids of the tile's keys
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = blockIdx.y, b = blockIdx.z;
  const int rows = a.T * a.n_rep;
  const int row_blocks = gridDim.x / sp.n;
  const int split = blockIdx.x / row_blocks;
  const int row0 = (row_blocks - 1 - blockIdx.x % row_blocks) * kWarps;  // late rows (most keys) first
  const int r = row0 + warp;
  const bool active = r < rows;
  int t = 0, h = 0;
  if (active) row_to_th(a, g, r, t, h);
  const int my_pos = active ? query_pos(a, b, t) : 0;
  const int key_lo = active ? first_key_at(a, my_pos) : 0;  // this row's keys: [key_lo, key_end)
  const int key_end = active ? my_pos + 1 : 0;
  const int block_key_end = query_pos(a, b, (min(rows, row0 + kWarps) - 1) / a.n_rep) + 1;
  const int split_lo = sp.base + split * sp.chunk;
  const int k_lo = max(split_lo, first_key_at(a, query_pos(a, b, row0 / a.n_rep)));  // this block's keys: [k_lo, k_hi)
  const int k_hi = min(block_key_end, sp.chunk == 0x7fffffff ? block_key_end : split_lo + sp.chunk);
  const long long kv_b = (long long)b * a.S * a.Hkv * a.D + (long long)g * a.D;  // k/v of (b, key 0, g)
  const long long kv_row = (long long)a.Hkv * a.D;
  const long long q_off = (((long long)b * a.T + t) * a.H + h) * a.D;

  float* qs = Qs + warp * a.D4;
  for (int d = lane; d < a.D4; d += 32) qs[d] = active && d < a.D ? cuda::to_f(q[q_off + d]) : 0.0f;
  const int my_seg = a.seg && active ? a.seg[(long long)b * a.T + t] : 0;

  float m = -INFINITY, l = 0.0f, acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) acc[i] = 0.0f;

  for (int k0 = k_lo; k0 < k_hi; k0 += kTile) {
    __syncthreads();  // the previous tile is consumed
    for (int idx = threadIdx.x; idx < kTile * a.D4; idx += kThreads) {
      const int j = idx / a.D4, d = idx - j * a.D4;
      const int key = k0 + j;
      float kv = 0.0f, vv = 0.0f;
      if (key < k_hi && d < a.D) {
        const long long off = kv_b + key * kv_row + d;
        kv = cuda::to_f(k[off]);
        vv = cuda::to_f(v[off]);
      }
      Ks[j * a.KS + d] = kv;
      Vs[j * a.D4 + d] = vv;
    }
    if (a.seg && threadIdx.x < kTile) {
      const int key = k0 + threadIdx.x;
      Ss[threadIdx.x] = key < k_hi ? a.seg[(long long)b * a.T + key] : 0;
    }
    __syncthreads();
    if (!active || k0 >= key_end) continue;  // warp-uniform

    const int key = k0 + lane;
    const bool ok = key >= key_lo && key < key_end && key < k_hi && (!a.seg || Ss[lane] == my_seg);
    const float s = ok ? dot_rows(qs, Ks + lane * a.KS, a.D4) * a.scale : -INFINITY;
    const float m_new = fmaxf(m, cuda::warp_max(s));
    float p = 0.0f, alpha = 1.0f;
    if (m_new != -INFINITY) {  // else every key so far is masked (other segments): nothing to add
      p = ok ? expf(s - m_new) : 0.0f;
      alpha = expf(m - m_new);  // 0 when m = -inf (acc and l are still 0)
    }
    l = l * alpha + cuda::warp_sum(p);
    m = m_new;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[i] *= alpha;
    Ps[warp * kTile + lane] = p;
    __syncwarp();
    const int jn = min(kTile, min(key_end, k_hi) - k0);
    for (int j = 0; j < jn; ++j) {
      const float pj = Ps[warp * kTile + j];
      const float* vr = Vs + j * a.D4;
#pragma unroll
      for (int i = 0; i < DPL; ++i) {
        const int d = lane + 32 * i;
        if (d < a.D) acc[i] += pj * vr[d];
      }
    }
    __syncwarp();  // Ps is rewritten by the next tile
  }

  if (!active) return;
  if (sp.part) {
    float* pr = sp.part + ((long long)split * a.B * a.Hkv * rows + ((long long)b * a.Hkv + g) * rows + r) * (a.D + 2);
    if (lane == 0) pr[0] = m, pr[1] = l;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < a.D) pr[2 + d] = acc[i];
    }
    return;
  }
  const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    if (d < a.D) out[q_off + d] = cuda::from_f<T>(acc[i] * inv_l);
  }
  if (lse && lane == 0) lse[((long long)b * a.H + h) * a.T + t] = l > 0.0f ? m + logf(l) : -INFINITY;
}

// Combines the splits: one warp per global row. out = sum_s acc_s e^(m_s - M) / L, L = sum_s l_s e^(m_s - M).
template <typename T>
__global__ void __launch_bounds__(kThreads) attn_combine_kernel(const float* __restrict__ part, T* __restrict__ out,
                                                                float* __restrict__ lse, Dims a, int splits) {
  pdl::enter();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int rows = a.T * a.n_rep;
  const long long total = (long long)a.B * a.Hkv * rows;
  const long long row = (long long)blockIdx.x * kWarps + warp;
  if (row >= total) return;
  const int r = static_cast<int>(row % rows);
  const int g = static_cast<int>((row / rows) % a.Hkv);
  const int b = static_cast<int>(row / ((long long)rows * a.Hkv));
  int t, h;
  row_to_th(a, g, r, t, h);
  const long long stride = total * (a.D + 2);  // between splits
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, part[s * stride + row * (a.D + 2)]);
  float L = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float* pr = part + s * stride + row * (a.D + 2);
    if (pr[0] != -INFINITY) L += pr[1] * expf(pr[0] - M);
  }
  const float inv_l = L > 0.0f ? 1.0f / L : 0.0f;
  const long long q_off = (((long long)b * a.T + t) * a.H + h) * a.D;
  for (int d = lane; d < a.D; d += 32) {
    float o = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* pr = part + s * stride + row * (a.D + 2);
      if (pr[0] != -INFINITY) o += pr[2 + d] * expf(pr[0] - M);
    }
    out[q_off + d] = cuda::from_f<T>(o * inv_l);
  }
  if (lse && lane == 0) lse[((long long)b * a.H + h) * a.T + t] = L > 0.0f ? M + logf(L) : -INFINITY;
}

// Key splits for a grid of `blocks` blocks over the keys [base, kv_len) any query sees: 1 unless the grid leaves
// most SMs idle and there are at least two key tiles; then down to one tile per split (decode of one sequence has
// B * Hkv blocks, 2 for Qwen2.5-0.5B: without splits a 150-key step took ~34 us on two SMs). chunk is a multiple
// of kTile.
Split choose_split(const Dims& a, long long blocks, int device) {
  Split sp;
  // query 0's first key: the lowest any sees (unknown on the host when the positions are on the device)
  sp.base = a.window && !a.pos ? std::max(0, a.kv_start + 1 - a.window) : 0;
  const int keys = a.kv_len - sp.base;
  const int sms = cuda::sm_count(device);
  if (blocks * 2 > sms || keys < 2 * kTile) return sp;
  const long long by_gpu = (2LL * sms + blocks - 1) / blocks;  // about two blocks per SM
  const long long by_keys = keys / kTile;                      // at least one tile per split
  const long long n = std::min<long long>({by_gpu, by_keys, 256});
  if (n < 2) return sp;
  const long long tiles = (keys + kTile - 1) / kTile;
  sp.chunk = static_cast<int>((tiles + n - 1) / n) * kTile;
  sp.n = static_cast<int>((keys + sp.chunk - 1) / sp.chunk);
  return sp;
}

}  // namespace

// q [B, T, H, D], k/v [B, S, Hkv, D] -> out [B, T, H, D] (=), lse [B, H, T] f32 (=, when given)
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args, Tensor& out,
                       Tensor* lse) {
  WICK_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype() && q.dtype() == out.dtype(),
             "attention_forward: q, k, v, out must share a dtype: " << q.str() << ", " << k.str());
  if (!args.positions && attention_cuda_flash(q.dtype(), q.dim(1), q.dim(3), args.window))
    return flash_attention_forward(q, k, v, args, out, lse);
  const Dims a = make_dims(q, k, args);
  if (a.B == 0 || a.T == 0 || a.H == 0 || a.D == 0) return;
  if (decode_attention_forward(q, k, v, a, out, lse)) return;
  const int dev = out.device().index;
  cudaStream_t s = cuda::stream_of(out);
  const size_t smem = fwd_smem_bytes(a);
  const long long row_blocks = (static_cast<long long>(a.T) * a.n_rep + kWarps - 1) / kWarps;
  Split sp = choose_split(a, row_blocks * a.Hkv * a.B, dev);
  const long long total_rows = static_cast<long long>(a.B) * a.Hkv * a.T * a.n_rep;
  if (sp.n > 1)
    sp.part = static_cast<float*>(cuda::scratch(dev, sizeof(float) * size_t(sp.n) * total_rows * (a.D + 2)));
  WICK_CHECK(row_blocks * sp.n <= 0x7fffffffLL, "attention_forward: grid too large");
  const dim3 grid(static_cast<unsigned>(row_blocks * sp.n), a.Hkv, a.B);
  float* lse_p = lse ? cuda::ptr<float>(*lse) : nullptr;
  cuda::dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_dpl(a.D, [&](auto dpl) {
      constexpr int DPL = decltype(dpl)::value;
      prepare_smem(attn_fwd_kernel<T, DPL>, smem, dev);
      WICK_CUDA_CHECK(pdl::launch(attn_fwd_kernel<T, DPL>, grid, dim3(kThreads), smem, s, cuda::cptr<T>(q),
                                  cuda::cptr<T>(k), cuda::cptr<T>(v), cuda::ptr<T>(out), lse_p, a, sp));
    });
    if (sp.n > 1) {
      WICK_CUDA_CHECK(pdl::launch(attn_combine_kernel<T>, dim3(static_cast<unsigned>((total_rows + kWarps - 1) / kWarps)),
                                  dim3(kThreads), 0, s, sp.part, cuda::ptr<T>(out), lse_p, a, sp.n));
    }
  });
}

namespace {

// One block per (b, t) row and tensor (blockIdx.y: 0 keys, 1 values): cache[b, positions[b, t], :] = rows[b, t, :],
// 16 bytes at a time when the rows allow it. A position outside [0, S) prints it and traps (as embedding ids do).
template <typename V>
__global__ void kv_cache_write_kernel(const V* k_rows, const V* v_rows, const int32_t* positions, V* k_cache,
                                      V* v_cache, int T, long long S, long long n) {
  pdl::enter();
  const long long bt = blockIdx.x;
  const int p = positions[bt];
  if (p < 0 || p >= S) {
    if (threadIdx.x == 0 && blockIdx.y == 0)
      printf("wick kv_cache_write: positions[%lld] = %d is outside the cache's [0, %lld)\n", bt, p, S);
    __trap();
  }
  const long long b = bt / T;
  V* dst = (blockIdx.y ? v_cache : k_cache) + (b * S + p) * n;
  const V* src = (blockIdx.y ? v_rows : k_rows) + bt * n;
  for (long long i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
}

}  // namespace

void kv_cache_write(const Tensor& k_rows, const Tensor& v_rows, const Tensor& positions, Tensor& k_cache,
                    Tensor& v_cache) {
  const int64_t B = k_rows.dim(0), T = k_rows.dim(1), X = k_rows.dim(2), S = k_cache.dim(1);
  if (B * T == 0 || X == 0) return;
  const size_t bytes = static_cast<size_t>(X) * dtype_size(k_rows.dtype());
  cudaStream_t s = cuda::stream_of(k_cache);
  const dim3 grid(static_cast<unsigned>(B * T), 2);
  uintptr_t bases = 0;
  for (const void* p : {k_rows.raw(), v_rows.raw(), k_cache.raw(), v_cache.raw()}) bases |= reinterpret_cast<uintptr_t>(p);
  const auto launch = [&](auto tag, long long n) {
    using V = decltype(tag);
    WICK_CUDA_CHECK(pdl::launch(kv_cache_write_kernel<V>, grid, dim3(128), 0, s, static_cast<const V*>(k_rows.raw()),
                                static_cast<const V*>(v_rows.raw()), cuda::cptr<int32_t>(positions),
                                static_cast<V*>(k_cache.raw()), static_cast<V*>(v_cache.raw()), static_cast<int>(T), S,
                                n));
  };
  if (bytes % 16 == 0 && bases % 16 == 0) launch(int4{}, static_cast<long long>(bytes / 16));
  else launch((unsigned char)0, static_cast<long long>(bytes));
}

}  // namespace wick::cuda_ops
