// Inverted dropout with a counter-based mask: element i is kept when hash(seed, i) >= p, and kept values
// are scaled by 1 / (1 - p). The mask is a pure function of (seed, i), identical on every device, so
// backward recomputes it instead of storing it, and a resumed run draws the same masks.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace wick {

// x [N, C] -> y [N, C] (=), f32 or bf16 (one dtype; bf16: f32 math, one rounding). y may alias x. p in [0, 1).
void dropout_forward(const Tensor& x, float p, uint64_t seed, Tensor& y);
// The mask's uniform draw for element i (24-bit, in [0, 1)); shared by the CPU and CUDA twins.
inline float dropout_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
}

}  // namespace wick
