// Activation checkpointing on the CPU: the same loss and gradients, bit for bit (tests/common/checkpointing_checks.h).
#include <gtest/gtest.h>

#include "common/checkpointing_checks.h"

namespace wick::test {
namespace {

TEST(GradCheckpointing, SameLossAndGradientsQwen2) { check_checkpointing_is_exact("qwen2", Device::cpu(), DType::F32); }
TEST(GradCheckpointing, SameLossAndGradientsQwen3) { check_checkpointing_is_exact("qwen3", Device::cpu(), DType::F32); }
TEST(GradCheckpointing, SameLossAndGradientsGemma3) {  // sandwich norms, GeGLU, a sliding-window layer
  check_checkpointing_is_exact("gemma3_text", Device::cpu(), DType::F32);
}

}  // namespace
}  // namespace wick::test
