// adamw_step_many against adamw_step on each tensor, on one device: the same per-element arithmetic, so the
// results must be identical bit for bit (one device's kernels against themselves; CPU vs CUDA is the op tests').
#pragma once
#include "core/tensor.h"

namespace wick::test {

// 70 tensors of random sizes (empty ones, a single element, several launch chunks, more than one launch's
// worth of tensors), 3 steps with clipping, random params and grads; EXPECT_EQ on every element.
void check_adamw_many_matches_singles(Device dev);

}  // namespace wick::test
