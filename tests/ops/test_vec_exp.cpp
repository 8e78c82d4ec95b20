// The CPU twins' vectorised exp (src/ops/cpu/vec_exp.h) against the f64 exp: < 1 ulp of the result
// where it is a normal float, within one subnormal step below, and the edges (+-inf, NaN, the overflow and
// underflow thresholds, 0), on random inputs over the whole range plus the softmax range [-30, 0]. Values
// go through exp_span, compiled as the ops are (the AVX2 clone on a machine that has it); the inline
// exp_f32 compiled here (baseline x86-64) must give the same bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "ops/cpu/vec_exp.h"

using wick::cpu::exp_f32;
using wick::cpu::exp_span;

namespace {

std::vector<float> vexp(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  exp_span(x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

// |y - exp(x)| in ulps of the exact result (normal range) or in subnormal steps (2^-149) below it.
double err_units(float x, float y) {
  const double ref = std::exp(static_cast<double>(x));
  if (ref < 0x1p-126) return std::fabs(y - ref) / 0x1p-149;
  int e = 0;
  std::frexp(ref, &e);  // ref in [2^(e-1), 2^e): one f32 ulp is 2^(e-24)
  return std::fabs(y - ref) / std::ldexp(1.0, e - 24);
}

}  // namespace

TEST(VecExp, WithinOneUlpOnRandomInputs) {
  wick::Rng rng(11);
  std::vector<float> x;
  for (int i = 0; i < 1 << 20; i++) x.push_back(-104.0f + 192.7f * rng.uniform());  // [-104, 88.7]
  for (int i = 0; i < 1 << 20; i++) x.push_back(-30.0f * rng.uniform());           // softmax: x - max <= 0
  for (int i = 0; i < 1 << 16; i++) x.push_back((rng.uniform() - 0.5f) * 1e-3f);   // around 0
  const std::vector<float> y = vexp(x);
  double worst = 0, worst_sub = 0;
  float worst_x = 0;
  for (size_t i = 0; i < x.size(); i++) {
    const double e = err_units(x[i], y[i]);
    if (std::exp(static_cast<double>(x[i])) < 0x1p-126) {
      worst_sub = std::max(worst_sub, e);
    } else if (e > worst) {
      worst = e, worst_x = x[i];
    }
  }
  std::printf("[measured] exp_f32: max %.3f ulp (normal results, at x = %a), %.3f subnormal steps below\n", worst,
              static_cast<double>(worst_x), worst_sub);
  EXPECT_LT(worst, 1.0) << "at x = " << worst_x;
  EXPECT_LE(worst_sub, 1.0);
}

TEST(VecExp, EdgeValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {-inf, -1e30f, -200.0f, -104.0f, -103.2f, -87.34f, -87.33f, -1e-30f, -0.0f, 0.0f,
                                1e-30f, 1.0f, 88.72f, 88.7229f, 88.75f, 100.0f, 1e30f, inf, nan};
  const std::vector<float> y = vexp(x);
  auto at = [&](float v) { return y[static_cast<size_t>(std::find(x.begin(), x.end(), v) - x.begin())]; };
  EXPECT_EQ(y[0], 0.0f);  // -inf
  EXPECT_EQ(at(-1e30f), 0.0f);
  EXPECT_EQ(at(-200.0f), 0.0f);
  EXPECT_EQ(at(-104.0f), 0.0f);
  EXPECT_EQ(y[8], 1.0f);  // -0
  EXPECT_EQ(y[9], 1.0f);  // +0
  EXPECT_EQ(at(1e-30f), 1.0f);
  EXPECT_EQ(at(-1e-30f), 1.0f);
  EXPECT_EQ(at(88.7229f), inf);  // just above log(FLT_MAX)
  EXPECT_EQ(at(88.75f), inf);
  EXPECT_EQ(at(100.0f), inf);
  EXPECT_EQ(at(1e30f), inf);
  EXPECT_EQ(y[17], inf);  // +inf
  EXPECT_TRUE(std::isnan(y[18]));
  for (float v : {-103.2f, -87.34f, -87.33f, 1.0f, 88.72f}) EXPECT_LE(err_units(v, at(v)), 1.0) << "x = " << v;
  EXPECT_GT(at(-103.2f), 0.0f);  // rounds to the smallest subnormal, not 0
  EXPECT_LT(at(88.72f), inf);
}

TEST(VecExp, InlineBaselineMatchesTheOpsBuild) {
  wick::Rng rng(12);
  std::vector<float> x;
  for (int i = 0; i < 4099; i++) x.push_back(-110.0f + 200.0f * rng.uniform());
  const std::vector<float> y = vexp(x);
  for (size_t i = 0; i < x.size(); i++) ASSERT_EQ(exp_f32(x[i]), y[i]) << "x = " << x[i];
}
