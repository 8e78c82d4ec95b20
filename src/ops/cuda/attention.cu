// Causal GQA attention forward on CUDA (ops/attention.h), scheme in attention.cuh.
// Online softmax over key tiles (running max m, running sum l, rescaled accumulator), so any kv length
// fits: shared memory depends only on D. lse = m + log(l) of the scaled scores.
//
// Naive parts (speed-ups for later): f32 CUDA-core math instead of tensor-core MMA (bf16 mma.sync / wgmma
// as FlashAttention-2/3); no double-buffered (cp.async / TMA) tile loads; one block per 8 rows, so a decode
// step (T = 1) runs only B * Hkv blocks over the whole cache: split the keys over blocks and combine
// (flash-decoding) to fill the GPU.
#include "ops/cuda/attention.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

using namespace attn;
using cuda::bf16;

size_t fwd_smem_bytes(const Dims& a) {
  return sizeof(float) * (size_t(kTile) * a.KS + size_t(kTile) * a.D4 + size_t(kWarps) * a.D4 + kWarps * kTile + kTile);
}

// q [B, T, H, D], k/v [B, S, Hkv, D] -> out [B, T, H, D], lse [B, H, T] (may be null).
// grid (ceil(T * n_rep / 8), Hkv, B), kThreads threads.
template <typename T, int DPL>
__global__ void __launch_bounds__(kThreads)
    attn_fwd_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ out,
                    float* __restrict__ lse, Dims a) {
  extern __shared__ float4 smem4[];
  float* Ks = reinterpret_cast<float*>(smem4);  // [kTile][KS]
  float* Vs = Ks + kTile * a.KS;                // [kTile][D4]
  float* Qs = Vs + kTile * a.D4;                // [kWarps][D4]
  float* Ps = Qs + kWarps * a.D4;               // [kWarps][kTile]
  int* Ss = reinterpret_cast<int*>(Ps + kWarps * kTile);  // [kTile] segment ids of the tile's keys
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = blockIdx.y, b = blockIdx.z;
  const int rows = a.T * a.n_rep;
  const int row0 = (gridDim.x - 1 - blockIdx.x) * kWarps;  // late rows (most keys) are scheduled first
  const int r = row0 + warp;
  const bool active = r < rows;
  int t = 0, h = 0;
  if (active) row_to_th(a, g, r, t, h);
  const int key_end = active ? a.kv_start + t + 1 : 0;  // this row's keys: [0, key_end)
  const int block_key_end = a.kv_start + (min(rows, row0 + kWarps) - 1) / a.n_rep + 1;
  const long long kv_b = (long long)b * a.S * a.Hkv * a.D + (long long)g * a.D;  // k/v of (b, key 0, g)
  const long long kv_row = (long long)a.Hkv * a.D;
  const long long q_off = (((long long)b * a.T + t) * a.H + h) * a.D;

  float* qs = Qs + warp * a.D4;
  for (int d = lane; d < a.D4; d += 32) qs[d] = active && d < a.D ? cuda::to_f(q[q_off + d]) : 0.0f;
  const int my_seg = a.seg && active ? a.seg[(long long)b * a.T + t] : 0;

  float m = -INFINITY, l = 0.0f, acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) acc[i] = 0.0f;

  for (int k0 = 0; k0 < block_key_end; k0 += kTile) {
    __syncthreads();  // the previous tile is consumed
    for (int idx = threadIdx.x; idx < kTile * a.D4; idx += kThreads) {
      const int j = idx / a.D4, d = idx - j * a.D4;
      const int key = k0 + j;
      float kv = 0.0f, vv = 0.0f;
      if (key < block_key_end && d < a.D) {
        const long long off = kv_b + key * kv_row + d;
        kv = cuda::to_f(k[off]);
        vv = cuda::to_f(v[off]);
      }
      Ks[j * a.KS + d] = kv;
      Vs[j * a.D4 + d] = vv;
    }
    if (a.seg && threadIdx.x < kTile) {
      const int key = k0 + threadIdx.x;
      Ss[threadIdx.x] = key < block_key_end ? a.seg[(long long)b * a.T + key] : 0;
    }
    __syncthreads();
    if (!active || k0 >= key_end) continue;  // warp-uniform

    const int key = k0 + lane;
    const bool ok = key < key_end && (!a.seg || Ss[lane] == my_seg);
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
    const int jn = min(kTile, key_end - k0);
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
  const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    if (d < a.D) out[q_off + d] = cuda::from_f<T>(acc[i] * inv_l);
  }
  if (lse && lane == 0) lse[((long long)b * a.H + h) * a.T + t] = l > 0.0f ? m + logf(l) : -INFINITY;
}

}  // namespace

// q [B, T, H, D], k/v [B, S, Hkv, D] -> out [B, T, H, D] (=), lse [B, H, T] f32 (=, when given)
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args, Tensor& out,
                       Tensor* lse) {
  WICK_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype() && q.dtype() == out.dtype(),
             "attention_forward: q, k, v, out must share a dtype: " << q.str() << ", " << k.str());
  const Dims a = make_dims(q, k, args);
  if (a.B == 0 || a.T == 0 || a.H == 0 || a.D == 0) return;
  const int dev = out.device().index;
  cudaStream_t s = cuda::stream_of(out);
  const size_t smem = fwd_smem_bytes(a);
  const dim3 grid((a.T * a.n_rep + kWarps - 1) / kWarps, a.Hkv, a.B);
  cuda::dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_dpl(a.D, [&](auto dpl) {
      constexpr int DPL = decltype(dpl)::value;
      prepare_smem(attn_fwd_kernel<T, DPL>, smem, dev);
      attn_fwd_kernel<T, DPL><<<grid, kThreads, smem, s>>>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v),
                                                          cuda::ptr<T>(out), lse ? cuda::ptr<float>(*lse) : nullptr, a);
      WICK_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace wick::cuda_ops
