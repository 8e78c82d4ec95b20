// Many LoRA adapters over one batch of rows (S-LoRA / Punica's segmented "SGMV"): the rows of a serving step
// come in segments, each with its own adapter, and every segment's low-rank delta is added to the frozen
// projection's output in one op instead of a chain of small GEMMs per adapter.
//
//   y[row0 + i] += scale * (x[row0 + i] A^T) B^T     for each segment and i < rows
//
// x [M, in] and y [M, out] in the activation dtype (f32, or bf16 on CUDA), A [r, in] and B [out, r] f32 (the
// served adapter's masters, as PEFT keeps them). u = x A^T stays f32; y is rounded once (round(y + delta)), as
// BatchForward's per-adapter GEMMs on f32 copies did. Rows outside every segment are left as they are.
//
// What is fused and why (CUDA, ops/cuda/segmented_lora.cu): a serving step with 8 adapters ran five launches a
// segment a projection (two casts, two GEMMs, a cast back): 6,700 launches a step for Qwen2.5-0.5B, which made
// 64 streams over 8 adapters 4x slower than over one. Here one launch computes u for every segment (split over
// in in fixed 128-wide slices, partial sums to scratch) and one adds every segment's u B^T to y (summing the
// slices in order), whatever the number of segments. The slicing depends on in only, so a row's result is the
// same bit for bit alone or in any batch. Ranks above kSegmentedLoraMaxRank take the per-segment GEMMs (the CPU
// twin's way) on CUDA too.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace wick {

constexpr int64_t kSegmentedLoraMaxRank = 64;  // the CUDA kernels' bound (inclusive)

struct LoraSegment {
  int64_t row0 = 0, rows = 0;    // rows [row0, row0 + rows) of x and y
  const Tensor* A = nullptr;     // [r, in] f32
  const Tensor* B = nullptr;     // [out, r] f32
  float scale = 0.0f;
};

// Segments must lie inside [0, M) and not overlap; all tensors on one device. wick::Error names the segment
// and what is wrong.
void segmented_lora_add(const Tensor& x, const std::vector<LoraSegment>& segments, Tensor& y);

}  // namespace wick
