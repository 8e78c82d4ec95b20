// One RoPE pair's arithmetic on CUDA, shared by the RoPE kernels (rope.cu) and the decode attention kernel that
// rotates its own queries and key (decode_attention.cu, rope_cache_attention): written once so that both give
// the same bits. ops/cuda/rope.cu's header says where each value is rounded and why.
#pragma once
#include "ops/cuda/common.cuh"

namespace wick::cuda::rope_math {

// cos and sin of pos * inv_freq (f32, precise sincosf), each rounded to T as Hugging Face casts them.
template <typename T> __device__ __forceinline__ void cos_sin(float pos, float inv_freq, float& c, float& s) {
  float sn, cs;
  sincosf(pos * inv_freq, &sn, &cs);
  c = round_to<T>(cs);
  s = round_to<T>(sn);
}

// One rotated pair (a = x[i], b = x[i + D/2]; c, s from cos_sin): every product and sum rounded to T, the products
// as __fmul_rn (never contracted into an FMA with the sum). kBackward: the inverse rotation.
template <typename T, bool kBackward>
__device__ __forceinline__ void rotate(float a, float b, float c, float s, float& ya, float& yb) {
  const float ac = round_to<T>(__fmul_rn(a, c)), bs = round_to<T>(__fmul_rn(b, s));
  const float bc = round_to<T>(__fmul_rn(b, c)), as = round_to<T>(__fmul_rn(a, s));
  ya = kBackward ? ac + bs : ac - bs;
  yb = kBackward ? bc - as : bc + as;
}

}  // namespace wick::cuda::rope_math
