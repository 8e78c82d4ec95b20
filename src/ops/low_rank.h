// The low-rank product of a LoRA adapter, y (=|+=) scale * (x A^T) B^T, as ONE op (x A^T then (.) B^T).
//
// What is fused and why: on CUDA, for a few rows (decode: one row per sequence; the seed suite's rows: 64),
// the two GEMMs of an adapter are launch- and latency-bound: ~20 us for the pair on an H200 (docs/benchmarks.md
// section 1, the seed suite's lora rows), for a few MFLOP. The fused kernel (ops/cuda/low_rank.cuh, which says
// how the work is spread) does both products in one launch and keeps u = x A^T in f32 between them. For
// M > kLowRankFusedMaxRows or r > kLowRankFusedMaxRank the CUDA op runs the two matmuls (ops/matmul.h)
// instead, with u [M, r] in x's dtype: always correct, fused where it pays. The CPU twin is two sgemms.
//
// Rounding: the fused path and the CPU keep u = x A^T in f32 (never rounded to x's dtype) and accumulate in
// f32; y is rounded once to its dtype (bf16: round(scale u B^T), or round(y + scale u B^T) with accumulate).
// The CUDA fallback rounds u to x's dtype (bf16: as two bf16 GEMMs do).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace wick {

// The CUDA kernel's bounds: rows of x and the rank r (both inclusive).
constexpr int64_t kLowRankFusedMaxRows = 64;
constexpr int64_t kLowRankFusedMaxRank = 64;

// x [M, in], A [r, in], B [out, r] (the layouts PEFT stores: lora_A.weight, lora_B.weight) -> y [M, out]:
//   y = scale * (x A^T) B^T          (accumulate false)
//   y = y + scale * (x A^T) B^T      (accumulate true)
// All four tensors of one dtype, f32 or bf16 (the CPU widens bf16), on one device. r = 0 or in = 0 gives a
// zero product.
void low_rank_product(const Tensor& x, const Tensor& A, const Tensor& B, float scale, Tensor& y, bool accumulate);

// Whether the CUDA op runs the fused kernel for M rows and rank r (otherwise two matmuls).
inline bool low_rank_fused(int64_t M, int64_t r) {
  return M >= 1 && M <= kLowRankFusedMaxRows && r >= 1 && r <= kLowRankFusedMaxRank;
}

}  // namespace wick
