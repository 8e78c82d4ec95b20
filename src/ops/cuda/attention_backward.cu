// Causal GQA attention backward on CUDA (ops/attention.h), scheme in attention.cuh. P is recomputed from
// lse (P = exp(scale q.k - lse)); delta = rowsum(dout * out); dS = P * (dout.v - delta).
// Two launches, both deterministic (no atomics):
//  1. query-major, as the forward: one warp per query row loops over key tiles: dq = scale * sum_j dS_j k_j.
//     It also writes delta [B, H, T] into the device scratch buffer for launch 2.
//  2. key-major: one warp per key j of kv head g loops over tiles of 32 query rows of ALL the group's query
//     heads (t >= j): dv_j = sum_r P v-side, dk_j = scale * sum_r dS_r q_r. The sum over the group's heads
//     happens inside the warp, so dk/dv are written (=) once, in a fixed order.
// P and dS are recomputed in both launches. bf16 with head dim 64 / 128 goes to the tensor-core kernels
// instead (flash_attention_bwd.cuh, same two-pass deterministic design); this path keeps f32 and the rest,
// sliding-window attention included (launch 1 starts at the block's first visible key, launch 2 stops at the
// last query row that sees the block's keys).
#include "ops/cuda/attention.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

using namespace attn;
using cuda::bf16;

size_t dq_smem_bytes(const Dims& a) {
  return sizeof(float) * (2 * size_t(kTile) * a.KS + 2 * size_t(kWarps) * a.D4 + kWarps * kTile + kTile);
}
size_t dkdv_smem_bytes(const Dims& a) {
  return sizeof(float) * (2 * size_t(kTile) * a.KS + 2 * size_t(kWarps) * a.D4 + 2 * kWarps * kTile + 3 * kTile);
}

// dout, q, out [B, T, H, D], k/v [B, S, Hkv, D], lse [B, H, T] -> dq [B, T, H, D], delta [B, H, T].
// grid (ceil(T * n_rep / 8), Hkv, B).
template <typename T, int DPL>
__global__ void __launch_bounds__(kThreads)
    attn_bwd_dq_kernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                       const T* __restrict__ v, const T* __restrict__ out, const float* __restrict__ lse,
                       T* __restrict__ dq, float* __restrict__ delta, Dims a) {
  extern __shared__ float4 smem4[];
  float* Ks = reinterpret_cast<float*>(smem4);  // [kTile][KS]
  float* Vs = Ks + kTile * a.KS;                // [kTile][KS]
  float* Qs = Vs + kTile * a.KS;                // [kWarps][D4]
  float* dOs = Qs + kWarps * a.D4;              // [kWarps][D4]
  float* DSs = dOs + kWarps * a.D4;             // [kWarps][kTile]
  int* Ss = reinterpret_cast<int*>(DSs + kWarps * kTile);  // [kTile]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = blockIdx.y, b = blockIdx.z;
  const int rows = a.T * a.n_rep;
  const int row0 = (gridDim.x - 1 - blockIdx.x) * kWarps;
  const int r = row0 + warp;
  const bool active = r < rows;
  int t = 0, h = 0;
  if (active) row_to_th(a, g, r, t, h);
  const int key_lo = active ? first_key(a, t) : 0;  // this row's keys: [key_lo, key_end)
  const int key_end = active ? a.kv_start + t + 1 : 0;
  const int block_key_lo = first_key(a, row0 / a.n_rep);
  const int block_key_end = a.kv_start + (min(rows, row0 + kWarps) - 1) / a.n_rep + 1;
  const long long kv_b = (long long)b * a.S * a.Hkv * a.D + (long long)g * a.D;
  const long long kv_row = (long long)a.Hkv * a.D;
  const long long q_off = (((long long)b * a.T + t) * a.H + h) * a.D;
  const long long stat = ((long long)b * a.H + h) * a.T + t;  // index into lse / delta

  float* qs = Qs + warp * a.D4;
  float* dos = dOs + warp * a.D4;
  float dd = 0.0f;
  for (int d = lane; d < a.D4; d += 32) {
    const bool in = active && d < a.D;
    qs[d] = in ? cuda::to_f(q[q_off + d]) : 0.0f;
    const float go = in ? cuda::to_f(dout[q_off + d]) : 0.0f;
    dos[d] = go;
    dd += in ? go * cuda::to_f(out[q_off + d]) : 0.0f;
  }
  dd = cuda::warp_sum(dd);
  if (active && lane == 0) delta[stat] = dd;
  const float row_lse = active ? lse[stat] : 0.0f;
  const int my_seg = a.seg && active ? a.seg[(long long)b * a.T + t] : 0;

  float acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) acc[i] = 0.0f;

  for (int k0 = block_key_lo; k0 < block_key_end; k0 += kTile) {
    __syncthreads();
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
      Vs[j * a.KS + d] = vv;
    }
    if (a.seg && threadIdx.x < kTile) {
      const int key = k0 + threadIdx.x;
      Ss[threadIdx.x] = key < block_key_end ? a.seg[(long long)b * a.T + key] : 0;
    }
    __syncthreads();
    if (!active || k0 >= key_end) continue;  // warp-uniform

    const int key = k0 + lane;
    float ds = 0.0f;
    if (key >= key_lo && key < key_end && (!a.seg || Ss[lane] == my_seg)) {
      const float p = expf(dot_rows(qs, Ks + lane * a.KS, a.D4) * a.scale - row_lse);
      ds = p * (dot_rows(dos, Vs + lane * a.KS, a.D4) - dd);
    }
    DSs[warp * kTile + lane] = ds;
    __syncwarp();
    const int jn = min(kTile, key_end - k0);
    for (int j = 0; j < jn; ++j) {
      const float dsj = DSs[warp * kTile + j];
      const float* kr = Ks + j * a.KS;
#pragma unroll
      for (int i = 0; i < DPL; ++i) {
        const int d = lane + 32 * i;
        if (d < a.D) acc[i] += dsj * kr[d];
      }
    }
    __syncwarp();
  }

  if (!active) return;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    if (d < a.D) dq[q_off + d] = cuda::from_f<T>(acc[i] * a.scale);
  }
}

// -> dk, dv [B, Tk, Hkv, D] for keys j < T (kv_len == T). grid (ceil(T / 8), Hkv, B); warp w owns key
// blockIdx.x * 8 + w.
template <typename T, int DPL>
__global__ void __launch_bounds__(kThreads)
    attn_bwd_dkdv_kernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                         const T* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ delta,
                         T* __restrict__ dk, T* __restrict__ dv, long long dkv_batch_rows, Dims a) {
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);  // [kTile][KS] query rows of the tile
  float* dOs = Qs + kTile * a.KS;               // [kTile][KS]
  float* Kw = dOs + kTile * a.KS;               // [kWarps][D4] each warp's key
  float* Vw = Kw + kWarps * a.D4;               // [kWarps][D4]
  float* Pw = Vw + kWarps * a.D4;               // [kWarps][kTile]
  float* DSw = Pw + kWarps * kTile;             // [kWarps][kTile]
  float* Ls = DSw + kWarps * kTile;             // [kTile] lse of the tile's rows
  float* Dl = Ls + kTile;                       // [kTile] delta of the tile's rows
  int* Ss = reinterpret_cast<int*>(Dl + kTile); // [kTile] segment of the tile's rows
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = blockIdx.y, b = blockIdx.z;
  const int rows = a.T * a.n_rep;
  const int j0 = blockIdx.x * kWarps;  // first key of the block
  const int j = j0 + warp;
  const bool active = j < a.T;
  const long long kv_b = (long long)b * a.S * a.Hkv * a.D + (long long)g * a.D;
  const long long kv_row = (long long)a.Hkv * a.D;

  float* ks = Kw + warp * a.D4;
  float* vs = Vw + warp * a.D4;
  for (int d = lane; d < a.D4; d += 32) {
    const bool in = active && d < a.D;
    ks[d] = in ? cuda::to_f(k[kv_b + j * kv_row + d]) : 0.0f;
    vs[d] = in ? cuda::to_f(v[kv_b + j * kv_row + d]) : 0.0f;
  }
  const int my_seg = a.seg && active ? a.seg[(long long)b * a.T + j] : 0;

  float acc_k[DPL], acc_v[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) acc_k[i] = acc_v[i] = 0.0f;

  // Rows with t >= j0 (causal) and, with a window, t < j0 + 7 + window (kv_start = 0: query t is at position t).
  const int row_end = a.window ? min(rows, (j0 + kWarps - 1 + a.window) * a.n_rep) : rows;
  for (int r0 = j0 * a.n_rep; r0 < row_end; r0 += kTile) {
    __syncthreads();
    for (int idx = threadIdx.x; idx < kTile * a.D4; idx += kThreads) {
      const int i = idx / a.D4, d = idx - i * a.D4;
      const int r = r0 + i;
      float qv = 0.0f, gv = 0.0f;
      if (r < rows && d < a.D) {
        int t, h;
        row_to_th(a, g, r, t, h);
        const long long off = (((long long)b * a.T + t) * a.H + h) * a.D + d;
        qv = cuda::to_f(q[off]);
        gv = cuda::to_f(dout[off]);
      }
      Qs[i * a.KS + d] = qv;
      dOs[i * a.KS + d] = gv;
    }
    if (threadIdx.x < kTile) {
      const int r = r0 + threadIdx.x;
      float l = 0.0f, dl = 0.0f;
      int sg = 0;
      if (r < rows) {
        int t, h;
        row_to_th(a, g, r, t, h);
        const long long st = ((long long)b * a.H + h) * a.T + t;
        l = lse[st];
        dl = delta[st];
        sg = a.seg ? a.seg[(long long)b * a.T + t] : 0;
      }
      Ls[threadIdx.x] = l;
      Dl[threadIdx.x] = dl;
      Ss[threadIdx.x] = sg;
    }
    __syncthreads();
    if (!active) continue;  // warp-uniform

    const int r = r0 + lane;
    float p = 0.0f, ds = 0.0f;
    if (r < rows && r / a.n_rep >= j && (!a.window || r / a.n_rep < j + a.window) && (!a.seg || Ss[lane] == my_seg)) {
      p = expf(dot_rows(Qs + lane * a.KS, ks, a.D4) * a.scale - Ls[lane]);
      ds = p * (dot_rows(dOs + lane * a.KS, vs, a.D4) - Dl[lane]);
    }
    Pw[warp * kTile + lane] = p;
    DSw[warp * kTile + lane] = ds;
    __syncwarp();
    const int in = min(kTile, rows - r0);
    for (int i2 = 0; i2 < in; ++i2) {
      const float pi = Pw[warp * kTile + i2], dsi = DSw[warp * kTile + i2];
      const float* qr = Qs + i2 * a.KS;
      const float* gr = dOs + i2 * a.KS;
#pragma unroll
      for (int i = 0; i < DPL; ++i) {
        const int d = lane + 32 * i;
        if (d < a.D) {
          acc_v[i] += pi * gr[d];
          acc_k[i] += dsi * qr[d];
        }
      }
    }
    __syncwarp();
  }

  if (!active) return;
  const long long o = ((long long)b * dkv_batch_rows + j) * kv_row + (long long)g * a.D;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    if (d < a.D) {
      dk[o + d] = cuda::from_f<T>(acc_k[i] * a.scale);
      dv[o + d] = cuda::from_f<T>(acc_v[i]);
    }
  }
}

}  // namespace

// dout, q, out [B, T, H, D], k/v [B, S, Hkv, D], lse [B, H, T] (kv_len == T)
// -> dq [B, T, H, D] (=), dk, dv [B, T, Hkv, D] (=)
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const AttentionArgs& args, Tensor& dq, Tensor& dk, Tensor& dv) {
  const DType dt = q.dtype();
  for (const Tensor* x : {&dout, &k, &v, &out, &static_cast<const Tensor&>(dq), &static_cast<const Tensor&>(dk),
                          &static_cast<const Tensor&>(dv)})
    WICK_CHECK(x->dtype() == dt, "attention_backward: " << x->str() << " must have dtype " << dtype_name(dt));
  WICK_CHECK(lse.dtype() == DType::F32, "attention_backward: lse " << lse.str());
  if (attention_cuda_flash(dt, q.dim(1), q.dim(3), args.window))
    return flash_attention_backward(dout, q, k, v, out, lse, args, dq, dk, dv);
  const Dims a = make_dims(q, k, args);
  WICK_CHECK(a.kv_len == a.T, "attention_backward needs kv_len == T (no cache), got kv_len " << a.kv_len << ", T " << a.T);
  WICK_CHECK(dk.dim(1) >= a.T && dv.dim(1) == dk.dim(1), "attention_backward: dk " << dk.str() << ", dv " << dv.str());
  if (a.B == 0 || a.T == 0 || a.H == 0 || a.D == 0) return;
  const int dev = dq.device().index;
  cudaStream_t s = cuda::stream_of(dq);
  float* delta = static_cast<float*>(cuda::scratch(dev, sizeof(float) * size_t(a.B) * a.H * a.T));
  const size_t smem_dq = dq_smem_bytes(a), smem_kv = dkdv_smem_bytes(a);
  const dim3 grid_dq((a.T * a.n_rep + kWarps - 1) / kWarps, a.Hkv, a.B);
  const dim3 grid_kv((a.T + kWarps - 1) / kWarps, a.Hkv, a.B);
  cuda::dispatch_float(dt, "attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_dpl(a.D, [&](auto dpl) {
      constexpr int DPL = decltype(dpl)::value;
      prepare_smem(attn_bwd_dq_kernel<T, DPL>, smem_dq, dev);
      attn_bwd_dq_kernel<T, DPL><<<grid_dq, kThreads, smem_dq, s>>>(
          cuda::cptr<T>(dout), cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), cuda::cptr<T>(out),
          cuda::cptr<float>(lse), cuda::ptr<T>(dq), delta, a);
      WICK_CUDA_LAUNCH_CHECK();
      prepare_smem(attn_bwd_dkdv_kernel<T, DPL>, smem_kv, dev);
      attn_bwd_dkdv_kernel<T, DPL><<<grid_kv, kThreads, smem_kv, s>>>(
          cuda::cptr<T>(dout), cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), cuda::cptr<float>(lse), delta,
          cuda::ptr<T>(dk), cuda::ptr<T>(dv), dk.dim(1), a);
      WICK_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace wick::cuda_ops
