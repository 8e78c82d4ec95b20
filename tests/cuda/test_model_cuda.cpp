// The same fixture checks as tests/model/test_model_fixtures.cpp, on CUDA: f32 (same tolerances as the CPU)
// and bf16 (frozen weights and activations in bf16; LoRA weights, gradients and moments in f32).
#include <gtest/gtest.h>

#include <filesystem>

#include "common/model_checks.h"
#include "common/testutil.h"

using namespace wick;
using namespace wick::test;

namespace {

class CudaModel : public ::testing::TestWithParam<std::string> {};

std::string fixture_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = std::filesystem::path(info.param).filename().string();
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n + "_" + std::to_string(info.index);
}

const Tol kF32{1e-4, 1e-5, 1e-4, 5e-4, 0.1};  // as the CPU (tests/model/test_model_fixtures.cpp)
// bf16 (frozen weights and activations rounded to 8 mantissa bits after every op, through 2-4 layers; the
// reference is f32). Measured on an H200 (2026-11-25, the test's [measured] lines): logits, final hidden,
// lora and greedy-step logits within 2.3e-2 of max|ref|; losses within 3.9e-3 relative; gradients within
// 3.4e-2 of max|ref| per tensor; after the 6-step trace at lr 1e-2 the trained adapters within
// ||diff||/||ref|| 0.083 and 4.4 lr per element. AdamW moves every element by about lr per step whatever
// its gradient's size, so the bf16 noise of near-zero gradient elements decides their direction; a wrong
// gradient moves whole tensors by ~12 lr (||diff||/||ref|| ~ 1). Bounds, with margin over the measurement:
const Tol kBf16Base{/*logits*/ 3e-2, /*loss*/ 1e-2, /*grad*/ 1e-1, /*weights*/ 0.15, /*weights_abs_lr*/ 6.0};
// Where the fixture holds transformers' own bf16 deviation (bf16_noise.json), each check's bounds are at least
// twice it.
Tol bf16_tol(const std::string& dir, const char* check) { return with_reference_bf16_noise(kBf16Base, dir, 2.0, check); }

TEST_P(CudaModel, ForwardF32) {
  WICK_REQUIRE_CUDA();
  check_forward(load_fixture(GetParam()), Device::cuda(), DType::F32, kF32);
}
TEST_P(CudaModel, ForwardBf16) {
  WICK_REQUIRE_CUDA();
  check_forward(load_fixture(GetParam()), Device::cuda(), DType::BF16, bf16_tol(GetParam(), "forward"));
}
TEST_P(CudaModel, GenerationF32) {
  WICK_REQUIRE_CUDA();
  check_generation(load_fixture(GetParam()), Device::cuda(), DType::F32, kF32, true);
}
TEST_P(CudaModel, GenerationBf16) {
  WICK_REQUIRE_CUDA();
  check_generation(load_fixture(GetParam()), Device::cuda(), DType::BF16, bf16_tol(GetParam(), "generation"), false);
}
TEST_P(CudaModel, LoraLogitsF32) {
  WICK_REQUIRE_CUDA();
  check_lora_logits(load_fixture(GetParam()), Device::cuda(), DType::F32, kF32);
}
TEST_P(CudaModel, LoraLogitsBf16) {
  WICK_REQUIRE_CUDA();
  check_lora_logits(load_fixture(GetParam()), Device::cuda(), DType::BF16, bf16_tol(GetParam(), "lora_logits"));
}
TEST_P(CudaModel, MergedLogitsF32) {
  WICK_REQUIRE_CUDA();
  check_merged_logits(load_fixture(GetParam()), Device::cuda(), DType::F32, kF32);
}
// Grads* and Trace* run the unfolded path (the fixtures' hidden sizes would fold by default); *Folded the fold.
TEST_P(CudaModel, GradsF32) {
  WICK_REQUIRE_CUDA();
  check_grads(load_fixture(GetParam()), Device::cuda(), DType::F32, kF32, /*adapter_fold*/ false);
}
TEST_P(CudaModel, GradsBf16) {
  WICK_REQUIRE_CUDA();
  check_grads(load_fixture(GetParam()), Device::cuda(), DType::BF16, bf16_tol(GetParam(), "grads"), false);
}
TEST_P(CudaModel, TraceF32) {
  WICK_REQUIRE_CUDA();
  check_training_trace(load_fixture(GetParam()), Device::cuda(), DType::F32, kF32, false);
}
TEST_P(CudaModel, TraceBf16) {
  WICK_REQUIRE_CUDA();
  check_training_trace(load_fixture(GetParam()), Device::cuda(), DType::BF16, bf16_tol(GetParam(), "trace"), false);
}

// The adapter fold (model/linear.h folded groups; on by default for small hidden sizes:
// LossAndGrads::adapter_fold_default) forced on, against the same references, in both dtypes.
TEST_P(CudaModel, GradsFolded) {
  WICK_REQUIRE_CUDA();
  check_grads(load_fixture(GetParam()), Device::cuda(), DType::F32, kF32, true);
  check_grads(load_fixture(GetParam()), Device::cuda(), DType::BF16, bf16_tol(GetParam(), "grads"), true);
}
TEST_P(CudaModel, TraceFolded) {
  WICK_REQUIRE_CUDA();
  check_training_trace(load_fixture(GetParam()), Device::cuda(), DType::F32, kF32, true);
  check_training_trace(load_fixture(GetParam()), Device::cuda(), DType::BF16, bf16_tol(GetParam(), "trace"), true);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaModel, ::testing::ValuesIn(model_fixture_dirs()), fixture_name);

}  // namespace
