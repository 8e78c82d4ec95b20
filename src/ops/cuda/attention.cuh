// Shared pieces of the CUDA attention kernels (attention.cu forward, attention_backward.cu).
//
// Scheme (all three kernels): a block of 8 warps owns one (batch b, kv head g). A "row" of that problem is
// one query (t, h) with h in g's group: r = t * n_rep + (h - g * n_rep), so a block's rows share kv head g
// and mostly one t. One warp per row; tiles of 32 keys (or 32 rows) are staged in shared memory as f32 and
// reused by the block's 8 warps. Dot products over D are lane-per-key (each lane one key, D/4 float4 reads
// of a padded shared row: conflict-free), accumulations over keys are lane-per-dim (lane owns dims
// lane + 32 i, i < DPL, DPL = ceil(D / 32) rounded up to 2, 4 or 8: D <= 256).
// Everything is f32 inside; rounding to T happens once, on the stores.
#pragma once
#include <cmath>
#include <string>

#include "ops/attention.h"
#include "ops/cuda/common.cuh"

namespace wick::cuda_ops::attn {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kTile = 32;  // keys (forward, dq) or rows (dk/dv) per shared-memory tile
constexpr int kMaxD = 256;

struct Dims {
  int B = 0, T = 0, H = 0, Hkv = 0, D = 0, n_rep = 1;
  int D4 = 0;  // D rounded up to a multiple of 4 (shared rows are zero-padded to it)
  int KS = 0;  // padded shared row stride for lane-per-key float4 reads (KS / 4 odd: no bank conflicts)
  long long S = 0;  // rows of k / v per batch item (cache capacity)
  int kv_len = 0, kv_start = 0;  // query t sits at position kv_start + t; keys [0, kv_start + t]
  int window = 0;  // > 0: keys (kv_start + t - window, kv_start + t] only (sliding window; < kv_len)
  float scale = 1.0f;
  const int32_t* seg = nullptr;  // [B, T] or null
  const int32_t* pos = nullptr;  // [B, T] query positions (AttentionArgs::positions) or null: kv_start + t
};

inline Dims make_dims(const Tensor& q, const Tensor& k, const AttentionArgs& args) {
  Dims d;
  d.B = static_cast<int>(q.dim(0));
  d.T = static_cast<int>(q.dim(1));
  d.H = static_cast<int>(q.dim(2));
  d.D = static_cast<int>(q.dim(3));
  d.S = k.dim(1);
  d.Hkv = static_cast<int>(k.dim(2));
  WICK_CHECK(d.Hkv > 0 && d.H % d.Hkv == 0, "attention: " << d.H << " query heads over " << d.Hkv << " kv heads");
  d.n_rep = d.H / d.Hkv;
  d.D4 = (d.D + 3) / 4 * 4;
  d.KS = (d.D4 / 4) % 2 == 0 ? d.D4 + 4 : d.D4 + 8;
  // kv_len 0 (the struct's default) means a plain causal pass over the T keys.
  d.kv_len = args.kv_len > 0 ? static_cast<int>(args.kv_len) : d.T;
  d.kv_start = d.kv_len - d.T;
  WICK_CHECK(d.kv_start >= 0 && d.kv_len <= d.S, "attention: kv_len " << d.kv_len << " with T " << d.T << ", S " << d.S);
  WICK_CHECK(args.window >= 0, "attention: window " << args.window);
  d.window = args.window > 0 && args.window < d.kv_len ? static_cast<int>(args.window) : 0;
  // scale 0 (the struct's default) means the usual 1/sqrt(D).
  d.scale = args.scale != 0.0f ? args.scale : 1.0f / std::sqrt(static_cast<float>(d.D));
  if (args.segments) {
    WICK_CHECK(d.kv_len == d.T, "attention: segment ids need kv_len == T");
    WICK_CHECK(args.segments->dtype() == DType::I32, "attention: segments " << args.segments->str());
    d.seg = cuda::cptr<int32_t>(*args.segments);
  }
  if (args.positions) d.pos = cuda::cptr<int32_t>(*args.positions);
  if (d.D > kMaxD)
    throw Error("attention: CUDA head dim " + std::to_string(d.D) + " is larger than " + std::to_string(kMaxD));
  return d;
}

// Calls f(std::integral_constant<int, DPL>) for the head dim.
template <typename F> void dispatch_dpl(int D, F&& f) {
  if (D <= 64) f(std::integral_constant<int, 2>{});
  else if (D <= 128) f(std::integral_constant<int, 4>{});
  else f(std::integral_constant<int, 8>{});
}

// Opt into more than 48 KiB of dynamic shared memory when a kernel needs it.
template <typename K> void prepare_smem(K kernel, size_t bytes, int device) {
  if (bytes <= 48 * 1024) return;
  if (bytes > static_cast<size_t>(cuda::max_shared_memory_optin(device)))
    throw Error("attention: head dim needs " + std::to_string(bytes) + " bytes of shared memory, device has " +
                std::to_string(cuda::max_shared_memory_optin(device)));
  WICK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// dot(a, b) over D4 floats of two 16-byte aligned shared rows (zero padded past D).
__device__ __forceinline__ float dot_rows(const float* a, const float* b, int D4) {
  const float4* a4 = reinterpret_cast<const float4*>(a);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  float4 s = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
  for (int i = 0; i < D4 / 4; ++i) {
    const float4 x = a4[i], y = b4[i];
    s.x += x.x * y.x;
    s.y += x.y * y.y;
    s.z += x.z * y.z;
    s.w += x.w * y.w;
  }
  return (s.x + s.y) + (s.z + s.w);
}

// The first key query t sees: its position minus window - 1 (0 without a window).
__device__ __forceinline__ int first_key(const Dims& a, int t) {
  return a.window ? max(0, a.kv_start + t + 1 - a.window) : 0;
}

// Query t of row b: its position (read from a.pos when given, clamped into the keys), and its first key.
__device__ __forceinline__ int query_pos(const Dims& a, int b, int t) {
  return a.pos ? min(max(a.pos[(long long)b * a.T + t], 0), a.kv_len - 1) : a.kv_start + t;
}
__device__ __forceinline__ int first_key_at(const Dims& a, int pos) { return a.window ? max(0, pos + 1 - a.window) : 0; }

// Row r of (b, g) -> t and query head h.
__device__ __forceinline__ void row_to_th(const Dims& a, int g, int r, int& t, int& h) {
  t = r / a.n_rep;
  h = g * a.n_rep + (r - t * a.n_rep);
}

}  // namespace wick::cuda_ops::attn

namespace wick::cuda_ops {
// One query per (batch row, head) over at most a few hundred keys, in one launch (decode_attention.cu): false
// (nothing launched) when the problem is not one it takes.
bool decode_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const attn::Dims& a, Tensor& out,
                              Tensor* lse);
// The tensor-core path (flash_attention.cu), taken when attention_cuda_flash() says so (ops/attention.h).
void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args,
                             Tensor& out, Tensor* lse);
void flash_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, const AttentionArgs& args, Tensor& dq, Tensor& dk,
                              Tensor& dv);
}  // namespace wick::cuda_ops
