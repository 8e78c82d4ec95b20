// adamw_step_many against adamw_step on each tensor, on one device: the same per-element arithmetic, so the
// results must be identical bit for bit (one device's kernels against themselves; CPU vs CUDA is the op tests').
#pragma once
#include "core/tensor.h"

namespace wick::test {

// 70 tensors of random sizes (empty ones, a single element, several launch chunks, more than one launch's
// worth of tensors), 3 steps with clipping, random params and grads; EXPECT_EQ on every element.
void check_adamw_many_matches_singles(Device dev);

// clip_state against grad_norm on the same device (norm and coefficient bit for bit, for max_norm 0, a
// clipping one and a loose one; empty tensors among them), skip set by a NaN or an inf in a gradient or in an
// extra term, an all-zero extra term changing nothing; adamw_step_many(clip) equal to adamw_step_many(coef)
// bit for bit, and a skipped step leaving params and moments as they were.
void check_clip_state(Device dev);

}  // namespace wick::test
