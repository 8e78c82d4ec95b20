// Ops not covered by the case registry's generic drivers: the conveniences built on other ops
// (cross_entropy_mean, grad_norm), sum_squares in f64, aliasing of elementwise outputs, linear with
// null or f32 gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "common/fusion_checks.h"
#include "common/testutil.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/optim.h"

using namespace wick;

TEST(CrossEntropyMean, MeanOverCountedRowsInF64) {
  Rng rng(11);
  const int64_t N = 6, V = 9;
  Tensor logits = test::randn({N, V}, rng, 2.0f);
  const std::vector<int32_t> t = {3, kIgnoreIndex, 0, 8, kIgnoreIndex, 5};
  Tensor targets = Tensor::from_i32(t, {N});
  double sum = 0;
  int counted = 0;
  const float* x = logits.data<float>();
  for (int64_t n = 0; n < N; n++) {
    if (t[n] == kIgnoreIndex) continue;
    double z = 0;
    for (int64_t i = 0; i < V; i++) z += std::exp(static_cast<double>(x[n * V + i]));
    sum += std::log(z) - x[n * V + t[n]];
    counted++;
  }
  EXPECT_NEAR(cross_entropy_mean(logits, targets), sum / counted, 1e-5);
  Tensor none = Tensor::from_i32(std::vector<int32_t>(N, kIgnoreIndex), {N});
  EXPECT_TRUE(std::isnan(cross_entropy_mean(logits, none)));
}

TEST(GradNorm, NormAndClipCoefficientAsTorch) {
  Rng rng(5);
  std::vector<Tensor> g = {test::randn({7}, rng), test::randn({33, 17}, rng, 0.1f), test::randn({1}, rng, 3.0f)};
  double ss = 0;
  for (const Tensor& t : g)
    for (float v : t.to_f32_vector()) ss += static_cast<double>(v) * v;
  float coef = -1;
  const double norm = grad_norm(g, 1.0, &coef);
  EXPECT_NEAR(norm, std::sqrt(ss), 1e-12 * std::sqrt(ss));
  ASSERT_GT(norm, 1.0);
  // torch: clip_coef = max_norm / (total + 1e-6), clamped to 1
  EXPECT_NEAR(coef, 1.0 / (norm + 1e-6), 1e-7);
  EXPECT_EQ((grad_norm(g, 0.0, &coef), coef), 1.0f);        // no clipping requested
  EXPECT_EQ((grad_norm(g, 1e6, &coef), coef), 1.0f);        // below max_norm
  EXPECT_EQ(grad_norm({}, 1.0, &coef), 0.0);
}

TEST(SumSquares, AccumulatesInF64) {
  // 2^24 + 1 ones: an f32 accumulator would stall at 2^24; f64 counts every one.
  Tensor ones = Tensor::empty({(1 << 24) + 1}, DType::F32);
  std::fill_n(ones.data<float>(), ones.numel(), 1.0f);
  EXPECT_EQ(sum_squares({ones}), static_cast<double>((1 << 24) + 1));
}

TEST(Elementwise, OutputMayAliasAnInput) {
  Rng rng(2);
  Tensor a = test::randn({37}, rng), b = test::randn({37}, rng);
  const std::vector<float> va = a.to_f32_vector(), vb = b.to_f32_vector();
  add(a, b, a);  // out aliases a
  const std::vector<float> r = a.to_f32_vector();
  for (size_t i = 0; i < r.size(); i++) EXPECT_EQ(r[i], va[i] + vb[i]);
  scale(b, 0.5f, b);
  const std::vector<float> s = b.to_f32_vector();
  for (size_t i = 0; i < s.size(); i++) EXPECT_EQ(s[i], 0.5f * vb[i]);
}

TEST(Linear, BackwardSkipsNullGradsAndAccumulatesF32GradsOfBf16Inputs) {
  Rng rng(8);
  Tensor x = test::randn({5, 7}, rng), w = test::randn({3, 7}, rng), dy = test::randn({5, 3}, rng);
  Tensor dw = test::randn({3, 7}, rng);
  const std::vector<float> dw0 = dw.to_f32_vector();
  linear_backward(dy, x, w, nullptr, &dw, nullptr);  // only dw
  const std::vector<float> got = dw.to_f32_vector();
  const float* px = x.data<float>();
  const float* pg = dy.data<float>();
  for (int o = 0; o < 3; o++)
    for (int i = 0; i < 7; i++) {
      double s = 0;
      for (int n = 0; n < 5; n++) s += static_cast<double>(pg[n * 3 + o]) * px[n * 7 + i];
      EXPECT_NEAR(got[o * 7 + i], dw0[o * 7 + i] + s, 1e-5);
    }
  // bf16 activations with f32 parameter grads (the CPU widens bf16 GEMM inputs)
  Tensor xb = x.to(DType::BF16), wb = w.to(DType::BF16), dyb = dy.to(DType::BF16);
  Tensor dwf = Tensor::zeros({3, 7}, DType::F32), dbf = Tensor::zeros({3}, DType::F32);
  linear_backward(dyb, xb, wb, nullptr, &dwf, &dbf);
  const std::vector<float> vx = xb.to_f32_vector(), vg = dyb.to_f32_vector(), vdw = dwf.to_f32_vector(),
                           vdb = dbf.to_f32_vector();
  for (int o = 0; o < 3; o++) {
    double sb = 0;
    for (int n = 0; n < 5; n++) sb += vg[n * 3 + o];
    EXPECT_NEAR(vdb[o], sb, 1e-5);
    for (int i = 0; i < 7; i++) {
      double s = 0;
      for (int n = 0; n < 5; n++) s += static_cast<double>(vg[n * 3 + o]) * vx[n * 7 + i];
      EXPECT_NEAR(vdw[o * 7 + i], s, 1e-5);
    }
  }
}

TEST(GluBackward, RecomputesTheForwardOutputBitForBit) {
  wick::test::check_glu_backward_recomputes_forward(wick::Device::cpu(), wick::DType::F32);
}

TEST(RmsNormBackward, AccumulatingEqualsBackwardThenAdd) {
  wick::test::check_rms_norm_backward_accumulates(wick::Device::cpu(), wick::DType::F32);
}

TEST(AddRmsNorm, OneCallEqualsAddThenNorm) {
  wick::test::check_add_rms_norm_equals_add_then_norm(wick::Device::cpu(), wick::DType::F32);
}

TEST(RmsNorm, ViewFormEqualsTensorForm) {
  wick::test::check_norm_view_equals_tensor(wick::Device::cpu(), wick::DType::F32);
}

TEST(CopyMatrix, RoundsScaledBlocksAndWritesNothingElse) { wick::test::check_copy_matrix(wick::Device::cpu()); }
TEST(CopyMatrices, ManyCopiesEqualOneAtATime) { wick::test::check_copy_matrices(wick::Device::cpu()); }

TEST(CrossEntropy, ForwardBackwardEqualsForwardThenBackward) {
  wick::test::check_cross_entropy_fused_equals_separate(wick::Device::cpu(), wick::DType::F32);
  wick::test::check_cross_entropy_fused_equals_separate(wick::Device::cpu(), wick::DType::BF16);
}

TEST(Rope, MisalignedTensorsGiveTheSameValues) {
  wick::test::check_rope_misaligned_equals_aligned(wick::Device::cpu(), wick::DType::F32);
}

TEST(RopeQk, OneCallEqualsRopeOnQThenK) { wick::test::check_rope_qk_equals_two_ropes(wick::Device::cpu(), wick::DType::F32); }
