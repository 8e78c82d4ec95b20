// Every case of the op registry (tests/common/op_cases.cpp) on CUDA against the CPU on the same inputs:
// f32 (TF32 must be off: tolerances ~1e-5), and bf16 where the op takes bf16 activations (inputs rounded
// to bf16 on both sides; the CPU computes in f32: tolerances ~1e-2). Outputs sit between guard elements
// and start as NaN, as on the CPU. Per-op tolerances and their reasons are in the cases (ops/opcheck_*).
// Reruns one case: --gtest_filter='*attention_cuda_f32_B1_T7_H14_Hkv2_D64*'.
#include <gtest/gtest.h>

#include "common/op_cases.h"
#include "common/fusion_checks.h"
#include "common/optim_checks.h"
#include "common/testutil.h"
#include "ops/attention.h"
#include "ops/cross_entropy.h"

using namespace wick;
using wick::test::op_cases;
using wick::test::op_case_seed;
using wick::test::Stage;

class OpCudaF32 : public ::testing::TestWithParam<size_t> {};
class OpCudaBf16 : public ::testing::TestWithParam<size_t> {};
class OpCudaAccumulate : public ::testing::TestWithParam<size_t> {};

TEST_P(OpCudaF32, MatchesCpu) {
  WICK_REQUIRE_CUDA();
  const auto& c = *op_cases()[GetParam()];
  const opcheck::Report r = opcheck::check_device(c, Device::cuda(0), DType::F32, op_case_seed(GetParam()));
  EXPECT_TRUE(r.pass()) << c.name("cuda_f32") << " (tolerances: " << c.tol.why << ")\n" << r.str();
}

TEST_P(OpCudaBf16, MatchesCpuOnBf16Inputs) {
  WICK_REQUIRE_CUDA();
  const auto& c = *op_cases()[GetParam()];
  const opcheck::Report r = opcheck::check_device(c, Device::cuda(0), DType::BF16, op_case_seed(GetParam()));
  EXPECT_TRUE(r.pass()) << c.name("cuda_bf16") << " (tolerances: " << c.tol.why << ")\n" << r.str();
}

// Parameter grads accumulate (two calls: twice one call) and input grads are overwritten, in f32.
TEST_P(OpCudaAccumulate, ParamGradsAccumulateInputGradsOverwrite) {
  WICK_REQUIRE_CUDA();
  const auto& c = *op_cases()[GetParam()];
  const opcheck::Report r = opcheck::check_accumulate(c, Device::cuda(0), DType::F32, op_case_seed(GetParam()));
  EXPECT_TRUE(r.pass()) << c.name("cuda_acc") << "\n" << r.str();
}

// bf16 attention has two CUDA implementations (ops/attention.h: cuDNN's fused attention where it applies and
// loads, wick's FlashAttention-2 kernels otherwise). The suites above run the default (auto); these run each
// one forced, over the attention cases.
class OpCudaAttention : public ::testing::TestWithParam<size_t> {
 protected:
  void TearDown() override {
    set_cuda_attention(CudaAttention::kAuto);
    set_cuda_attention_deterministic_cap(cap_);
  }
  const int64_t cap_ = cuda_attention_deterministic_cap();
  void check(CudaAttention which, const char* stage) {
    WICK_REQUIRE_CUDA();
    set_cuda_attention(which);
    const auto& c = *op_cases()[GetParam()];
    const opcheck::Report r = opcheck::check_device(c, Device::cuda(0), DType::BF16, op_case_seed(GetParam()));
    EXPECT_TRUE(r.pass()) << c.name(stage) << " (tolerances: " << c.tol.why << ")\n" << r.str();
  }
};
TEST_P(OpCudaAttention, FlashKernelsMatchCpu) { check(CudaAttention::kFlash, "cuda_bf16_flash"); }
TEST_P(OpCudaAttention, CudnnMatchesCpu) {
  WICK_REQUIRE_CUDA();
  const std::string why = cuda_attention_unavailable();
  if (!why.empty()) GTEST_SKIP() << "cuDNN attention cannot run here: " << why;
  check(CudaAttention::kCudnn, "cuda_bf16_cudnn");
}
// cuDNN's non-deterministic backward (an atomically accumulated f32 dQ), which long sequences get: forced here
// by a cap of 0 bytes on the deterministic form's workspace.
TEST_P(OpCudaAttention, CudnnNonDeterministicFormMatchesCpu) {
  WICK_REQUIRE_CUDA();
  const std::string why = cuda_attention_unavailable();
  if (!why.empty()) GTEST_SKIP() << "cuDNN attention cannot run here: " << why;
  set_cuda_attention_deterministic_cap(0);
  check(CudaAttention::kCudnn, "cuda_bf16_cudnn_nondet");
}
static std::vector<size_t> attention_case_ids() {
  std::vector<size_t> ids;
  for (size_t i : test::op_case_ids(Stage::DeviceBf16))
    if (op_cases()[i]->name("").rfind("attention", 0) == 0) ids.push_back(i);
  return ids;
}
INSTANTIATE_TEST_SUITE_P(Cuda, OpCudaAttention, ::testing::ValuesIn(attention_case_ids()), test::OpCaseName{"bf16"});

// The cross-entropy cases with the one-read-a-row kernel (ops/cross_entropy.h) against the CPU.
class OpCudaCrossEntropySingleRead : public ::testing::TestWithParam<size_t> {
 protected:
  void TearDown() override { set_cross_entropy_single_read(false); }
};
TEST_P(OpCudaCrossEntropySingleRead, MatchesCpu) {
  WICK_REQUIRE_CUDA();
  set_cross_entropy_single_read(true);
  const auto& c = *op_cases()[GetParam()];
  const opcheck::Report r = opcheck::check_device(c, Device::cuda(0), DType::BF16, op_case_seed(GetParam()));
  EXPECT_TRUE(r.pass()) << c.name("cuda_bf16_single_read") << " (tolerances: " << c.tol.why << ")\n" << r.str();
}
static std::vector<size_t> cross_entropy_case_ids() {
  std::vector<size_t> ids;
  for (size_t i : test::op_case_ids(Stage::DeviceBf16))
    if (op_cases()[i]->name("").rfind("cross_entropy", 0) == 0) ids.push_back(i);
  return ids;
}
INSTANTIATE_TEST_SUITE_P(Cuda, OpCudaCrossEntropySingleRead, ::testing::ValuesIn(cross_entropy_case_ids()),
                         test::OpCaseName{"bf16"});

INSTANTIATE_TEST_SUITE_P(Cuda, OpCudaF32, ::testing::ValuesIn(test::op_case_ids(Stage::Fwd)),
                         test::OpCaseName{"cuda_f32"});
INSTANTIATE_TEST_SUITE_P(Cuda, OpCudaBf16, ::testing::ValuesIn(test::op_case_ids(Stage::DeviceBf16)),
                         test::OpCaseName{"cuda_bf16"});
INSTANTIATE_TEST_SUITE_P(Cuda, OpCudaAccumulate, ::testing::ValuesIn(test::op_case_ids(Stage::Accumulate)),
                         test::OpCaseName{"cuda_acc"});

TEST(AdamWCuda, ManyTensorsInOneCallEqualOneCallEach) {
  WICK_REQUIRE_CUDA();
  test::check_adamw_many_matches_singles(Device::cuda(0));
}

TEST(AdamWCuda, ClipStateOnTheDeviceEqualsTheHostsClipping) {
  WICK_REQUIRE_CUDA();
  test::check_clip_state(Device::cuda(0));
}

TEST(CudaGluBackward, RecomputesTheForwardOutputBitForBit) {
  WICK_REQUIRE_CUDA();
  for (wick::DType dt : {wick::DType::F32, wick::DType::BF16})
    wick::test::check_glu_backward_recomputes_forward(wick::Device::cuda(), dt);
}

TEST(CudaAddRmsNorm, OnePassEqualsAddThenNorm) {
  WICK_REQUIRE_CUDA();
  for (wick::DType dt : {wick::DType::F32, wick::DType::BF16})
    wick::test::check_add_rms_norm_equals_add_then_norm(wick::Device::cuda(), dt);
}

TEST(CudaRmsNorm, ViewFormEqualsTensorForm) {
  WICK_REQUIRE_CUDA();
  for (wick::DType dt : {wick::DType::F32, wick::DType::BF16})
    wick::test::check_norm_view_equals_tensor(wick::Device::cuda(), dt);
}

TEST(CudaCopyMatrix, RoundsScaledBlocksAndWritesNothingElse) {
  WICK_REQUIRE_CUDA();
  wick::test::check_copy_matrix(wick::Device::cuda());
}
TEST(CudaCopyMatrices, ManyCopiesEqualOneAtATime) {
  WICK_REQUIRE_CUDA();
  wick::test::check_copy_matrices(wick::Device::cuda());
}

TEST(CudaRopeQk, OneLaunchEqualsRopeOnQThenK) {
  WICK_REQUIRE_CUDA();
  for (wick::DType dt : {wick::DType::F32, wick::DType::BF16})
    wick::test::check_rope_qk_equals_two_ropes(wick::Device::cuda(), dt);
}

TEST(CudaCrossEntropy, ForwardBackwardInOneKernelEqualsTheTwo) {
  WICK_REQUIRE_CUDA();
  for (wick::DType dt : {wick::DType::F32, wick::DType::BF16})
    wick::test::check_cross_entropy_fused_equals_separate(wick::Device::cuda(), dt);
}

// The one-read-a-row kernel (WICK_CE_SINGLE_READ): one block a row (1,000 and 4,096 ids), a cluster of 2
// (Qwen's 151,936) and of 4 (Gemma 3's 262,144); f32 and odd vocabularies take the default kernels.
TEST(CudaCrossEntropy, SingleReadForwardBackwardEqualsTheTwo) {
  WICK_REQUIRE_CUDA();
  set_cross_entropy_single_read(true);
  for (wick::DType dt : {wick::DType::F32, wick::DType::BF16})
    wick::test::check_cross_entropy_fused_equals_separate(wick::Device::cuda(), dt, {151, 1000, 4096, 151936, 262144});
  set_cross_entropy_single_read(false);
}

TEST(CudaRope, FourPairKernelEqualsOnePairKernel) {
  WICK_REQUIRE_CUDA();
  for (wick::DType dt : {wick::DType::F32, wick::DType::BF16})
    wick::test::check_rope_misaligned_equals_aligned(wick::Device::cuda(), dt);
}

TEST(CudaRmsNormBackward, AccumulatingEqualsBackwardThenAdd) {
  WICK_REQUIRE_CUDA();
  for (wick::DType dt : {wick::DType::F32, wick::DType::BF16})
    wick::test::check_rms_norm_backward_accumulates(wick::Device::cuda(), dt);
}
