// The model of every family, LoRA and training on the CPU (f32) against transformers + PEFT fixtures;
// data-driven over tests/fixtures/<family>-tiny-* and $WICK_EXTRA_FIXTURES (the family from config.json).
#include <gtest/gtest.h>

#include <filesystem>

#include "common/model_checks.h"
#include "common/testutil.h"

using namespace wick;
using namespace wick::test;

namespace {

class ModelFixture : public ::testing::TestWithParam<std::string> {};

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

TEST(ModelFixtures, FoundSome) { EXPECT_GE(model_fixture_dirs().size(), 2u) << "tests/fixtures/*-tiny-* missing"; }

TEST_P(ModelFixture, Forward) { check_forward(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu); }
TEST_P(ModelFixture, GreedyGenerationWithKVCache) {
  check_generation(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu, true);
}
TEST_P(ModelFixture, LoraLogits) { check_lora_logits(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu); }
TEST_P(ModelFixture, MergedLogits) { check_merged_logits(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu); }
TEST_P(ModelFixture, LossAndGradients) { check_grads(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu); }
TEST_P(ModelFixture, SixStepAdamWTrace) {
  check_training_trace(load_fixture(GetParam()), Device::cpu(), DType::F32, kCpu);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelFixture, ::testing::ValuesIn(model_fixture_dirs()), fixture_name);

}  // namespace
