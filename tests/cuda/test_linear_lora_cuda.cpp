// The LoRA linear path on CUDA (model/linear.h): f32 groups bit for bit the one-linear path; bf16 groups
// (cuBLASLt bf16 GEMMs with f32 accumulation) against the CPU f32 path.
#include <gtest/gtest.h>

#include "common/linear_checks.h"
#include "common/testutil.h"

namespace wick::test {
namespace {

TEST(CudaLinearLora, GroupF32IsOneLinearBitForBit) {
  WICK_REQUIRE_CUDA();
  LinearGroupSpec s;
  check_linear_group_f32(s, Device::cuda());
  s.dropout = 0.25f;
  s.accumulate = true;
  check_linear_group_f32(s, Device::cuda());
}

TEST(CudaLinearLora, GroupBf16) {
  WICK_REQUIRE_CUDA();
  LinearGroupSpec s;
  s.N = 64, s.in = 64, s.r = 8, s.outs = {64, 16, 16};
  check_linear_group_bf16(s, Device::cuda());
  s.accumulate = true;
  s.lora = {true, false, true};
  check_linear_group_bf16(s, Device::cuda());
  s.lora = {true, true, true};
  s.dropout = 0.25f;
  check_linear_group_bf16(s, Device::cuda());
  LinearGroupSpec odd;  // odd sizes: unaligned views inside the packed block
  check_linear_group_bf16(odd, Device::cuda());
}

}  // namespace
}  // namespace wick::test
