// The op-test registry: every op on many shapes (awkward ones: T = 1, 7, 127, C not a multiple of 32;
// and Qwen2.5-0.5B's: C 896, H 14, Hkv 2, D 64, I 4864, plus D 128 and GQA ratios 1, 2, 6, 7, 8), each
// a named opcheck::Case. Tests instantiate value-parameterized suites over it; a failure prints a name
// such as rms_norm_fwd_N7_C896 that reruns just that case: --gtest_filter='*rms_norm_fwd_N7_C896*'.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ops/opcheck.h"

namespace wick::test {

const std::vector<opcheck::CasePtr>& op_cases();

// Indices of the cases that have what a stage needs.
enum class Stage { Fwd, FwdBf16Cpu, Bwd, Accumulate, DeviceBf16 };
std::vector<size_t> op_case_ids(Stage s);
// Seed of a case: fixed per name, so one case's inputs do not depend on which others run.
uint64_t op_case_seed(size_t id);

// The shapes of the registry's low_rank_product cases, in order (the CUDA tests also run them per kernel).
const std::vector<opcheck::LowRankShape>& low_rank_shapes();

// gtest name generator: "<family>_<stage>_<tag>".
struct OpCaseName {
  const char* stage;
  std::string operator()(const ::testing::TestParamInfo<size_t>& info) const { return op_cases()[info.param]->name(stage); }
};

}  // namespace wick::test
