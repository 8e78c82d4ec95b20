// The GEMM algorithm choice (ops/cuda/cublaslt.h): a shape is tuned on its third call, among the algorithms whose
// output is bit for bit the heuristic's first; so every call of a shape gives the same bits before, during and
// after tuning, and the call that tunes leaves c as one call would (beta = 1 accumulates once, c restored
// between the timed runs). Shapes of >= 2^30 multiply-adds (the tuning bound) in bf16 and f32, with and without
// accumulation and the bias epilogue, a batched one; five calls each on fresh copies of the same c, inside a
// MatmulTuningScope (training's); outside one nothing is tuned (generation and serving).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/testutil.h"
#include "ops/matmul.h"

using namespace wick;

namespace {

struct TuneCase {
  const char* name;
  int64_t batch, m, n, k;
  DType dt;
  bool trans_b, bias;
  float beta;
};

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(Device::cpu()), y = b.to(Device::cpu());
  return x.nbytes() == y.nbytes() && std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0;
}

class GemmTuneCuda : public ::testing::TestWithParam<TuneCase> {};

TEST_P(GemmTuneCuda, EveryCallGivesTheFirstCallsBits) {
  WICK_REQUIRE_CUDA();
  const TuneCase& t = GetParam();
  Rng rng(4242);
  const Device dev = Device::cuda(0);
  const Shape a_shape = t.batch > 1 ? Shape{t.batch, t.m, t.k} : Shape{t.m, t.k};
  const Shape b_shape = t.trans_b ? (t.batch > 1 ? Shape{t.batch, t.n, t.k} : Shape{t.n, t.k})
                                  : (t.batch > 1 ? Shape{t.batch, t.k, t.n} : Shape{t.k, t.n});
  const Shape c_shape = t.batch > 1 ? Shape{t.batch, t.m, t.n} : Shape{t.m, t.n};
  const Tensor a = wick::test::randn(a_shape, rng).to(t.dt).to(dev);
  const Tensor b = wick::test::randn(b_shape, rng, 0.05f).to(t.dt).to(dev);
  const Tensor c0 = wick::test::randn(c_shape, rng).to(t.dt).to(dev);
  const Tensor bias = wick::test::randn({t.n}, rng).to(t.dt).to(dev);
  Tensor first;
  const MatmulTuningScope tuning;
  for (int call = 0; call < 5; call++) {
    Tensor c = c0.clone();
    matmul(a, b, c, false, t.trans_b, 1.0f, t.beta, t.bias ? &bias : nullptr);
    if (call == 0) {
      first = c;
      EXPECT_FALSE(same_bits(c, c0)) << t.name << ": the product wrote nothing";
    } else {
      EXPECT_TRUE(same_bits(c, first)) << t.name << ": call " << call + 1 << " differs from the first";
    }
  }
}

// A shape of its own (>= 2^30 multiply-adds, used nowhere else): five calls outside a scope tune nothing; inside
// one, the third call tunes it (cuBLASLt offers several algorithms for it on sm_90; WICK_GEMM_TUNE=0: never).
TEST(GemmTuneScopeCuda, OnlyCallsInsideATuningScopeTune) {
  WICK_REQUIRE_CUDA();
  Rng rng(77);
  const Device dev = Device::cuda(0);
  const int64_t M = 1040, N = 1048, K = 1064;  // 1.16e9 multiply-adds
  const Tensor a = wick::test::randn({M, K}, rng).to(DType::BF16).to(dev);
  const Tensor b = wick::test::randn({N, K}, rng, 0.05f).to(DType::BF16).to(dev);
  Tensor c = Tensor::empty({M, N}, DType::BF16, dev);
  EXPECT_FALSE(matmul_tuning_allowed());
  const int64_t before = matmul_tuned_shapes();
  for (int call = 0; call < 5; call++) matmul(a, b, c, false, true);
  EXPECT_EQ(matmul_tuned_shapes(), before) << "a product outside a tuning scope was tuned";
  {
    const MatmulTuningScope tuning;
    EXPECT_TRUE(matmul_tuning_allowed());
    for (int call = 0; call < 2; call++) matmul(a, b, c, false, true);
    EXPECT_EQ(matmul_tuned_shapes(), before) << "tuned before its third call in a scope";
    for (int call = 0; call < 3; call++) matmul(a, b, c, false, true);
  }
  EXPECT_FALSE(matmul_tuning_allowed());
  const char* env = std::getenv("WICK_GEMM_TUNE");
  if (env && std::string(env) == "0") EXPECT_EQ(matmul_tuned_shapes(), before);
  else EXPECT_EQ(matmul_tuned_shapes(), before + 1) << "the third call in a scope did not tune the shape";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GemmTuneCuda,
    ::testing::Values(TuneCase{"bf16_fwd_beta1", 1, 2048, 1536, 512, DType::BF16, true, false, 1.0f},
                      TuneCase{"bf16_bias_beta1", 1, 1024, 1040, 1032, DType::BF16, true, true, 1.0f},
                      TuneCase{"bf16_dx", 1, 1024, 1024, 1024, DType::BF16, false, false, 0.0f},
                      TuneCase{"f32", 1, 1024, 1024, 1024, DType::F32, true, false, 0.5f},
                      TuneCase{"bf16_batched", 4, 512, 512, 1024, DType::BF16, false, false, 1.0f}),
    [](const ::testing::TestParamInfo<TuneCase>& i) { return std::string(i.param.name); });

}  // namespace
