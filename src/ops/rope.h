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

// x [B, T, H, D], positions [B, T] i32 (absolute positions; packing restarts them per example)
// -> y [B, T, H, D] (=). y may alias x (in place).
void rope_forward(const Tensor& x, const Tensor& positions, float theta, Tensor& y);
// dy [B, T, H, D] -> dx [B, T, H, D] (=): the inverse rotation. dx may alias dy.
void rope_backward(const Tensor& dy, const Tensor& positions, float theta, Tensor& dx);

}  // namespace wick
