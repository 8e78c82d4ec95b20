// low_rank_product's three fused CUDA kernels (ops/low_rank.h: kCooperative, kRecompute, kSplitK), each forced as
// WICK_LOW_RANK_KERNEL=1, 3 or 4 would (set_low_rank_kernel), over every low_rank shape of the op registry
// (tests/common/op_cases.cpp: odd shapes, accumulate on and off, M 1..64, r 1..64, and the unfused fallback's):
//   - against the CPU on the same inputs, f32 and bf16, as test_ops_cuda.cpp's suites (the cases' tolerances;
//     outputs between guard elements);
//   - run twice on the same inputs: the same bits (each kernel sums in a fixed order).
// The rule's own choice (nothing forced) runs in test_ops_cuda.cpp's OpCudaF32 / OpCudaBf16 over the same
// shapes, which reach every kernel (tests/ops/test_low_rank_rule.cpp).
// Reruns one: --gtest_filter='*LowRankKernelCuda*M64_in1024_r4_out1024*'.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/op_cases.h"
#include "common/testutil.h"
#include "core/rng.h"
#include "ops/low_rank.h"

namespace wick::test {
namespace {

const char* low_rank_kernel_name(LowRankKernel k) {
  switch (k) {
    case LowRankKernel::kCooperative: return "cooperative";
    case LowRankKernel::kRecompute: return "recompute";
    case LowRankKernel::kSplitK: return "split_k";
    default: return "rule";
  }
}

// Forces a kernel for the test's lifetime; the previous choice (normally the rule) comes back after.
struct ForceLowRankKernel {
  explicit ForceLowRankKernel(LowRankKernel k) : was(low_rank_kernel()) { set_low_rank_kernel(k); }
  ~ForceLowRankKernel() { set_low_rank_kernel(was); }
  LowRankKernel was;
};

class LowRankKernelCuda : public ::testing::TestWithParam<size_t> {
 protected:
  const opcheck::LowRankShape& shape() const { return low_rank_shapes()[GetParam()]; }
  uint64_t seed() const { return 7001 + GetParam(); }

  // The case on kernel k against the CPU, f32 and bf16.
  void matches_cpu(LowRankKernel k) {
    WICK_REQUIRE_CUDA();
    ForceLowRankKernel force(k);
    const opcheck::CasePtr c = opcheck::make_low_rank(shape());
    for (DType dt : {DType::F32, DType::BF16}) {
      const opcheck::Report r = opcheck::check_device(*c, Device::cuda(0), dt, seed());
      const std::string stage = std::string("cuda_") + low_rank_kernel_name(k) + (dt == DType::F32 ? "_f32" : "_bf16");
      EXPECT_TRUE(r.pass()) << c->name(stage) << " (tolerances: " << c->tol.why << ")\n" << r.str();
    }
  }

  // Kernel k twice on the same inputs (accumulate: onto the same y0 each time): the same bytes, f32 and bf16.
  void same_bits_twice(LowRankKernel k) {
    WICK_REQUIRE_CUDA();
    ForceLowRankKernel force(k);
    const opcheck::LowRankShape& s = shape();
    Rng rng(seed());
    const Tensor x = randn({s.M, s.in}, rng), A = randn({s.r, s.in}, rng, 0.1f), B = randn({s.out, s.r}, rng, 0.1f);
    const Tensor y0 = randn({s.M, s.out}, rng);
    for (DType dt : {DType::F32, DType::BF16}) {
      const Device dev = Device::cuda(0);
      const Tensor dx = x.to(dt).to(dev), dA = A.to(dt).to(dev), dB = B.to(dt).to(dev), dy0 = y0.to(dt).to(dev);
      std::vector<Tensor> runs;
      for (int run = 0; run < 2; run++) {
        Tensor y = Tensor::empty({s.M, s.out}, dt, dev);
        if (s.accumulate) y.copy_from(dy0);
        low_rank_product(dx, dA, dB, s.scale, y, s.accumulate);
        runs.push_back(y.to(Device::cpu()));
      }
      ASSERT_EQ(runs[0].nbytes(), runs[1].nbytes());
      EXPECT_EQ(std::memcmp(runs[0].raw(), runs[1].raw(), runs[0].nbytes()), 0)
          << low_rank_kernel_name(k) << (dt == DType::F32 ? " f32" : " bf16") << ": two runs on the same inputs differ";
    }
  }
};

TEST_P(LowRankKernelCuda, CooperativeMatchesCpu) { matches_cpu(LowRankKernel::kCooperative); }
TEST_P(LowRankKernelCuda, RecomputeMatchesCpu) { matches_cpu(LowRankKernel::kRecompute); }
TEST_P(LowRankKernelCuda, SplitKMatchesCpu) { matches_cpu(LowRankKernel::kSplitK); }
TEST_P(LowRankKernelCuda, CooperativeSameBitsTwice) { same_bits_twice(LowRankKernel::kCooperative); }
TEST_P(LowRankKernelCuda, RecomputeSameBitsTwice) { same_bits_twice(LowRankKernel::kRecompute); }
TEST_P(LowRankKernelCuda, SplitKSameBitsTwice) { same_bits_twice(LowRankKernel::kSplitK); }
TEST_P(LowRankKernelCuda, RuleSameBitsTwice) { same_bits_twice(LowRankKernel::kRule); }

std::vector<size_t> low_rank_shape_ids() {
  std::vector<size_t> ids;
  for (size_t i = 0; i < low_rank_shapes().size(); i++) ids.push_back(i);
  return ids;
}
std::string low_rank_shape_name(const ::testing::TestParamInfo<size_t>& info) {
  const opcheck::LowRankShape& s = low_rank_shapes()[info.param];
  std::string n = "M" + std::to_string(s.M) + "_in" + std::to_string(s.in) + "_r" + std::to_string(s.r) + "_out" +
                  std::to_string(s.out);
  if (s.accumulate) n += "_acc";
  if (s.scale != 1.0f) n += "_scaled";
  return n;
}
INSTANTIATE_TEST_SUITE_P(Cuda, LowRankKernelCuda, ::testing::ValuesIn(low_rank_shape_ids()), low_rank_shape_name);

}  // namespace
}  // namespace wick::test
