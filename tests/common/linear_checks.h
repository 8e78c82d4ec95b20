// Checks of the LoRA linear path (model/linear.h) on one device: a group of linears reading one input, run
// through linear_group_forward/backward and through the one-linear entry points, packed or stand-alone, in f32
// (must be bit for bit the one-linear f32 path) and bf16 (against the CPU f32 path on the same values).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace wick::test {

struct LinearGroupSpec {
  int64_t N = 37, in = 48, r = 4;
  std::vector<int64_t> outs{40, 8, 8};
  std::vector<bool> lora{true, true, true};
  bool bias = true;
  float dropout = 0.0f;
  bool accumulate = false;  // dx starts non-zero and is accumulated into
};

// f32 on dev: the group entry points, packed, equal the one-linear entry points on stand-alone adapters.
void check_linear_group_f32(const LinearGroupSpec& s, Device dev);
// bf16 on dev: the group entry points (packed) and the one-linear entry points (stand-alone) against the CPU
// f32 path on the same (bf16-representable) values, and against each other.
void check_linear_group_bf16(const LinearGroupSpec& s, Device dev);

// A folded group (model/linear.h folded_group_*: [x | u] against [W | scale B]) in dt on dev against the unfolded
// group path on the same values.
void check_linear_group_folded(const LinearGroupSpec& s, Device dev, DType dt);

// The inference form (saved undefined, no dropout, forward only; the fused low_rank_product path on CUDA
// for N <= 64) in dt on dev against the CPU f32 one-linear path.
void check_linear_group_inference(const LinearGroupSpec& s, Device dev, DType dt);

}  // namespace wick::test
