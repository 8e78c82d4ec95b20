// The low-rank product of a LoRA adapter, y (=|+=) scale * (x A^T) B^T, as ONE op (x A^T then (.) B^T).
//
// What is fused and why: on CUDA, for a few rows (decode: one row per sequence; the seed suite's rows: 64),
// the two GEMMs of an adapter are launch- and latency-bound: ~20 us for the pair on an H200 (docs/benchmarks.md
// section 1, the seed suite's lora rows), for a few MFLOP. The fused kernels keep u = x A^T in f32 between
// the two products; three designs, each best on part of the shapes (low_rank_rule below, measured on an H200):
//   kCooperative (ops/cuda/low_rank.cuh): one cooperative launch, split-K of u over the grid, two grid barriers;
//   kRecompute (ops/cuda/low_rank_recompute.cuh): one ordinary launch, each block recomputes u for its rows;
//   kSplitK (ops/cuda/low_rank_split_k.cuh): a split-K launch of partial u's and a finish launch chained by
//     programmatic dependent launch.
// Each header says how its work is spread and in which order it sums. For M > kLowRankFusedMaxRows or
// r > kLowRankFusedMaxRank the CUDA op runs the two matmuls (ops/matmul.h) instead, with u [M, r] in x's
// dtype: always correct, fused where it pays. The CPU twin is two sgemms.
//
// Rounding: the fused kernels and the CPU keep u = x A^T in f32 (never rounded to x's dtype) and accumulate in
// f32; y is rounded once to its dtype (bf16: round(scale u B^T), or round(y + scale u B^T) with accumulate).
// The three kernels sum in different (fixed) orders: each gives the same bits run to run, not the same bits
// as the others. The CUDA fallback rounds u to x's dtype (bf16: as two bf16 GEMMs do).
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

// Whether the CUDA op runs a fused kernel for M rows and rank r (otherwise two matmuls).
inline bool low_rank_fused(int64_t M, int64_t r) {
  return M >= 1 && M <= kLowRankFusedMaxRows && r >= 1 && r <= kLowRankFusedMaxRank;
}

// The CUDA op's fused kernels, numbered as the designs in dev/low_rank/ (v1, v3, v4). Each runs every fused
// shape (low_rank_fused); they differ in speed only, and in the order they sum (see above).
enum class LowRankKernel { kRule = 0, kCooperative = 1, kRecompute = 3, kSplitK = 4 };

// Which kernel runs a fused shape (x [M, in], rank r, y [M, out]) unless one is forced: kRecompute for r <= 8 and
// kSplitK for r > 8 while in and out are both <= kLowRankNarrow, else kCooperative (ops/low_rank.cpp cites the
// numbers). Where the device cannot launch the chosen kernel as measured, the CUDA op adapts
// (ops/cuda/low_rank.cu). Never returns kRule.
constexpr int64_t kLowRankNarrow = 1024;
LowRankKernel low_rank_rule(int64_t M, int64_t in, int64_t r, int64_t out);

// The kernel the CUDA op runs for fused shapes: kRule (low_rank_rule) unless WICK_LOW_RANK_KERNEL is set to 1, 3
// or 4 (read once, on first use; anything else is an error) or a test set one here.
LowRankKernel low_rank_kernel();
void set_low_rank_kernel(LowRankKernel which);

}  // namespace wick
