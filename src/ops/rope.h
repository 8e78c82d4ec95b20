// Rotary position embedding in the Hugging Face rotate-half (NEOX) layout (formats.md §2.4):
// pair (x[i], x[i + D/2]) rotated by angle pos * inv_freq[i], inv_freq[i] = theta^(-2i/D) computed in f32,
// cos/sin computed in f32 and rounded to the activation dtype before use (as HF casts them).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace wick {

// inv_freq[i] = 1 / theta^(float(2i) / D), i < D/2, each step an f32 operation as in Hugging Face. Every
// backend takes its inv_freq from here (computed on the host), so that all agree bit for bit: at
// position 30000 one ulp of inv_freq moves the angle by ~2e-3 rad.
std::vector<float> rope_inv_freq(float theta, int64_t D);

// The frequencies of a model's RoPE: theta, and optionally Llama 3's rescaling ("rope_type": "llama3"):
// frequencies whose wavelength 2 pi / f exceeds original_max_position / low_freq_factor are divided by
// factor, those under original_max_position / high_freq_factor are kept, and the band between is blended;
// or, when linear ("rope_type": "linear"), every frequency divided by factor.
// A plain float converts to unscaled frequencies with that theta.
struct RopeFreqs {
  float theta = 10000.0f;
  float factor = 0.0f;  // 0: no rescaling
  float low_freq_factor = 1.0f, high_freq_factor = 4.0f, original_max_position = 8192.0f;
  bool linear = false;  // factor divides every frequency (the low/high/original fields are unused)
  RopeFreqs(float t = 10000.0f) : theta(t) {}  // NOLINT: implicit on purpose (rope_forward(x, pos, 1e4f, y))
  bool scaled() const { return factor != 0.0f; }
};
// Applies f's rescaling (if any) to inv_freq in place, each step an f32 operation in the order of
// transformers' _compute_llama3_parameters / _compute_linear_scaling_rope_parameters (so every backend agrees
// with it and with each other).
void rope_rescale(std::vector<float>& inv_freq, const RopeFreqs& f);
std::vector<float> rope_inv_freq(const RopeFreqs& f, int64_t D);  // rope_inv_freq(theta, D), rescaled

// x [B, T, H, D], positions [B, T] i32 (absolute positions; packing restarts them per example)
// -> y [B, T, H, D] (=). y may alias x (in place).
void rope_forward(const Tensor& x, const Tensor& positions, const RopeFreqs& f, Tensor& y);
// dy [B, T, H, D] -> dx [B, T, H, D] (=): the inverse rotation. dx may alias dy.
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeFreqs& f, Tensor& dx);
// One attention's queries q [B, T, H, D] and keys k [B, T, Hkv, D] rotated in place in one pass (one launch on
// CUDA: the cos/sin of each (position, pair) computed once for both): exactly rope_forward(q), rope_forward(k).
void rope_forward_qk(Tensor& q, Tensor& k, const Tensor& positions, const RopeFreqs& f);
// Their gradients dq, dk in place: exactly rope_backward on each.
void rope_backward_qk(Tensor& dq, Tensor& dk, const Tensor& positions, const RopeFreqs& f);
// A cached forward's RoPE and KV-cache append together (one launch on CUDA where the head dim and alignment allow
// its vector kernel): exactly rope_forward_qk(q, k, positions, f), then kv_cache_write of the rotated k and of v
// (ops/attention.h). q [B, T, H, D], k, v [B, T, Hkv, D] (q, k rotated in place), positions [B, T] i32 in [0, S),
// k_cache, v_cache [B, S, Hkv * D] (rows positions[b, t] written, the others untouched).
void rope_qk_cache_write(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                         Tensor& k_cache, Tensor& v_cache);

}  // namespace wick
