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

// Folded groups (training's default on CUDA: one GEMM a member over [x | u]) against the unfolded path.
TEST(CudaLinearLora, FoldedGroup) {
  WICK_REQUIRE_CUDA();
  for (DType dt : {DType::BF16, DType::F32}) {
    LinearGroupSpec s;
    s.N = 64, s.in = 64, s.r = 8, s.outs = {64, 16, 16};
    check_linear_group_folded(s, Device::cuda(), dt);
    s.accumulate = true;
    s.lora = {true, false, true};
    check_linear_group_folded(s, Device::cuda(), dt);
    s.lora = {true, true, true};
    s.dropout = 0.25f;
    check_linear_group_folded(s, Device::cuda(), dt);
    check_linear_group_folded(LinearGroupSpec{}, Device::cuda(), dt);  // odd sizes: unaligned column blocks
  }
}

// Inference (nothing saved): bf16 over N <= 8 rows runs the group and its adapter terms in the small-row kernels
// (model/linear.h small_m_group with adapters); N <= 64 rows run each adapter as one fused low_rank_product; N 65 the GEMMs.
TEST(CudaLinearLora, InferenceFusedAdapter) {
  WICK_REQUIRE_CUDA();
  for (DType dt : {DType::F32, DType::BF16}) {
    LinearGroupSpec s;  // N 37, in 48, r 4, outs 40/8/8
    check_linear_group_inference(s, Device::cuda(), dt);
    s.N = 1, s.in = 896, s.r = 16, s.outs = {896, 128, 128};  // decode, one sequence
    check_linear_group_inference(s, Device::cuda(), dt);
    s.N = 3, s.lora = {true, false, true};
    check_linear_group_inference(s, Device::cuda(), dt);
    s.N = 64, s.in = 200, s.r = 64, s.outs = {70, 33, 9}, s.lora = {true, true, true};
    check_linear_group_inference(s, Device::cuda(), dt);
    s.N = 65;  // past the fused bound: the GEMM path
    check_linear_group_inference(s, Device::cuda(), dt);
  }
}

}  // namespace
}  // namespace wick::test
