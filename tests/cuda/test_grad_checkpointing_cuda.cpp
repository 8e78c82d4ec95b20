// Activation checkpointing on CUDA (bf16 and f32): the recomputed forward is deterministic, so the loss and
// gradients equal the plain step's bit for bit (tests/common/checkpointing_checks.h).
#include <gtest/gtest.h>

#include "common/checkpointing_checks.h"
#include "common/testutil.h"

namespace wick::test {
namespace {

TEST(CudaGradCheckpointing, SameLossAndGradients) {
  WICK_REQUIRE_CUDA();
  for (const char* family : {"qwen2", "qwen3", "gemma3_text"}) {
    check_checkpointing_is_exact(family, Device::cuda(), DType::BF16);
    check_checkpointing_is_exact(family, Device::cuda(), DType::F32);
  }
}

}  // namespace
}  // namespace wick::test
