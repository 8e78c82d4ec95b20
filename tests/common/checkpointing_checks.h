// Activation checkpointing (LossAndGrads::set_checkpointing) against the plain step on one device: the
// recomputed forward gives the same numbers, so the loss and every adapter gradient must be identical.
#pragma once
#include "core/tensor.h"

namespace wick::test {

// A tiny random model of model_type ("qwen2": q/k/v biases; "qwen3": per-head q/k norms), LoRA on every
// projection with dropout, a packed batch of two rows with segments and restarting positions; one step with
// and one without checkpointing (twice each way, to cover buffer reuse). Bitwise equal (EXPECT_EQ).
void check_checkpointing_is_exact(const char* model_type, Device dev, DType dt);

}  // namespace wick::test
