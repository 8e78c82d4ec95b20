// The Qwen2 model, LoRA and training on the CPU (f32) against transformers + PEFT fixtures; data-driven
// over tests/fixtures/qwen2-tiny-* and $WICK_EXTRA_FIXTURES.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/model_checks.h"
#include "common/testutil.h"

using namespace wick;
using namespace wick::test;

namespace {

class Qwen2Fixture : public ::testing::TestWithParam<std::string> {};

std::string fixture_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = std::filesystem::path(info.param).filename().string();
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n + "_" + std::to_string(info.index);
}

// CPU f32: logits, hidden states and gradients within 1e-4 of the reference (max abs, relative to the
// largest reference value); losses within 1e-5 relative. Trained adapters after 6 AdamW steps: each tensor
// within 5e-4 (L2-normalised) and every element within 0.1 * lr - see check_training_trace for why Adam
// amplifies the f32 rounding noise of near-zero gradient elements (measured: 1.2e-4 on tiny-c's up_proj B).
const Tol kCpu{1e-4, 1e-5, 1e-4, 5e-4, 0.1};

TEST(Qwen2Fixtures, FoundSome) { EXPECT_GE(qwen2_fixture_dirs().size(), 2u) << "tests/fixtures/qwen2-tiny-* missing"; }

TEST_P(Qwen2Fixture, Forward) { check_forward(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu); }
TEST_P(Qwen2Fixture, GreedyGenerationWithKVCache) {
  check_generation(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu, true);
}
TEST_P(Qwen2Fixture, LoraLogits) { check_lora_logits(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu); }
TEST_P(Qwen2Fixture, MergedLogits) { check_merged_logits(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu); }
TEST_P(Qwen2Fixture, LossAndGradients) { check_grads(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu); }
TEST_P(Qwen2Fixture, SixStepAdamWTrace) {
  check_training_trace(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen2Fixture, ::testing::ValuesIn(qwen2_fixture_dirs()), fixture_name);

}  // namespace
