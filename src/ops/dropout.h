// Inverted dropout with a counter-based mask: element i is kept when hash(seed, i) >= p, and kept values
// are scaled by 1 / (1 - p). The mask is a pure function of (seed, i), identical on every device, so
// backward recomputes it instead of storing it, and a resumed run draws the same masks.
//
// The seed is a micro-batch's seed (`base`) mixed with the adapter's place in the model (`mix`): base is read
// from a tensor on the data's device when the kernel runs, so a training step captured as a CUDA graph draws
// each replay's masks from the seed uploaded before it (model/loss_and_grads.cpp).
#pragma once
#include <cstdint>

#include "core/tensor.h"

// The mask's arithmetic is shared by the CPU twin and the CUDA kernel (ops/cuda/dropout.cu).
#if defined(__CUDACC__)
#define WICK_DROPOUT_FN __host__ __device__ __forceinline__
#else
#define WICK_DROPOUT_FN inline
#endif

namespace wick {

// The mask's seed from the micro-batch's seed and the adapter's mix.
WICK_DROPOUT_FN uint64_t dropout_mask_seed(uint64_t base, uint64_t mix) { return base * 0x100000001b3ULL + mix; }

// x [N, C] -> y [N, C] (=), f32 or bf16 (one dtype; bf16: f32 math, one rounding). y may alias x. p in [0, 1).
// base: i64 [1] on x's device; the mask is dropout_uniform(dropout_mask_seed(base, mix), i) >= p.
// accumulate: y += dropout(x) instead, with the bits of dropout into a buffer then add() (ops/elementwise.h): the
// dropped value rounded to the dtype, the sum rounded again (the adapter's backward, dx += dropout'(du A)).
void dropout_forward(const Tensor& x, float p, const Tensor& base, uint64_t mix, Tensor& y, bool accumulate = false);
// The mask's uniform draw for element i (24-bit, in [0, 1)).
WICK_DROPOUT_FN float dropout_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
}

}  // namespace wick
