// Rotary position embedding in the Hugging Face rotate-half (NEOX) layout (formats.md §2.4):
// pair (x[i], x[i + D/2]) rotated by angle pos * inv_freq[i], inv_freq[i] = theta^(-2i/D) computed in f32,
// cos/sin computed in f32 and rounded to the activation dtype before use (as HF casts them).
#pragma once
#include "core/tensor.h"

namespace wick {

// x [B, T, H, D], positions [B, T] i32 (absolute positions; packing restarts them per example)
// -> y [B, T, H, D] (=). y may alias x (in place).
void rope_forward(const Tensor& x, const Tensor& positions, float theta, Tensor& y);
// dy [B, T, H, D] -> dx [B, T, H, D] (=): the inverse rotation. dx may alias dy.
void rope_backward(const Tensor& dy, const Tensor& positions, float theta, Tensor& dx);

}  // namespace wick
