// Every case of the registry (tests/common/op_cases.cpp) on the CPU: forward against the f64 reference
// (f32, and bf16 where the CPU accepts it), backward against central finite differences, and the
// accumulation rule (two backward calls: parameter grads double, input grads repeat).
#include <gtest/gtest.h>

#include "common/op_cases.h"
#include "common/testutil.h"

using namespace wick;
using wick::test::op_cases;
using wick::test::op_case_seed;
using wick::test::Stage;

class OpFwd : public ::testing::TestWithParam<size_t> {};
class OpFwdBf16 : public ::testing::TestWithParam<size_t> {};
class OpBwd : public ::testing::TestWithParam<size_t> {};
class OpAccumulate : public ::testing::TestWithParam<size_t> {};

TEST_P(OpFwd, MatchesF64Reference) {
  const auto& c = *op_cases()[GetParam()];
  const opcheck::Report r = opcheck::check_forward_cpu(c, DType::F32, op_case_seed(GetParam()));
  EXPECT_TRUE(r.pass()) << c.name("fwd") << " (tolerances: " << c.tol.why << ")\n" << r.str();
}

TEST_P(OpFwdBf16, MatchesF64ReferenceOnBf16Inputs) {
  const auto& c = *op_cases()[GetParam()];
  const opcheck::Report r = opcheck::check_forward_cpu(c, DType::BF16, op_case_seed(GetParam()));
  EXPECT_TRUE(r.pass()) << c.name("fwdbf16") << " (tolerances: " << c.tol.why << ")\n" << r.str();
}

TEST_P(OpBwd, MatchesFiniteDifferences) {
  const auto& c = *op_cases()[GetParam()];
  const opcheck::Report r = opcheck::check_backward_fd(c, op_case_seed(GetParam()));
  EXPECT_TRUE(r.pass()) << c.name("bwd") << " (tolerances: " << c.tol.why << ")\n" << r.str();
}

TEST_P(OpAccumulate, ParamGradsAccumulateInputGradsOverwrite) {
  const auto& c = *op_cases()[GetParam()];
  const opcheck::Report r = opcheck::check_accumulate(c, Device::cpu(), DType::F32, op_case_seed(GetParam()));
  EXPECT_TRUE(r.pass()) << c.name("acc") << "\n" << r.str();
}

INSTANTIATE_TEST_SUITE_P(Cpu, OpFwd, ::testing::ValuesIn(test::op_case_ids(Stage::Fwd)), test::OpCaseName{"fwd"});
INSTANTIATE_TEST_SUITE_P(Cpu, OpFwdBf16, ::testing::ValuesIn(test::op_case_ids(Stage::FwdBf16Cpu)),
                         test::OpCaseName{"fwdbf16"});
INSTANTIATE_TEST_SUITE_P(Cpu, OpBwd, ::testing::ValuesIn(test::op_case_ids(Stage::Bwd)), test::OpCaseName{"bwd"});
INSTANTIATE_TEST_SUITE_P(Cpu, OpAccumulate, ::testing::ValuesIn(test::op_case_ids(Stage::Accumulate)),
                         test::OpCaseName{"acc"});
