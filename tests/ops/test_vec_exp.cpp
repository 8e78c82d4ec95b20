// The CPU twins' vectorised exp (src/ops/cpu/vec_exp.h) against the f64 exp: <= 1.02 ulp of the result
// where it is a normal float, 0 below ln(FLT_MIN), and the edges (+-inf, NaN, the overflow and underflow
// thresholds, 0), on random inputs over the range plus the softmax range [-30, 0]. Both builds are
// checked: exp_span, compiled as the ops are (the AVX2 + FMA clone on a machine that has it), and the
// inline exp_f32 compiled here (baseline x86-64, no FMA).
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

// Both builds of exp over x.
std::vector<float> inline_exp(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); i++) y[i] = exp_f32(x[i]);
  return y;
}

// |y - exp(x)| in ulps of the exact result (a normal float).
double err_ulps(float x, float y) {
  const double ref = std::exp(static_cast<double>(x));
  int e = 0;
  std::frexp(ref, &e);  // ref in [2^(e-1), 2^e): one f32 ulp is 2^(e-24)
  return std::fabs(y - ref) / std::ldexp(1.0, e - 24);
}

constexpr float kFlush = -87.3365f;  // below: 0 (vec_exp.h)

}  // namespace

TEST(VecExp, WithinTheStatedUlpsOnRandomInputs) {
  wick::Rng rng(11);
  std::vector<float> x;
  for (int i = 0; i < 1 << 20; i++) x.push_back(-104.0f + 192.7f * rng.uniform());  // [-104, 88.7]
  for (int i = 0; i < 1 << 20; i++) x.push_back(-30.0f * rng.uniform());           // softmax: x - max <= 0
  for (int i = 0; i < 1 << 16; i++) x.push_back((rng.uniform() - 0.5f) * 1e-3f);   // around 0
  x.push_back(0x1.2e3aa8p+5f);  // the worst input of the FMA build (1.014 ulp)
  for (const auto& [build, y] : {std::pair{"ops build", vexp(x)}, std::pair{"baseline inline", inline_exp(x)}}) {
    double worst = 0;
    float worst_x = 0;
    for (size_t i = 0; i < x.size(); i++) {
      if (x[i] < kFlush) {
        ASSERT_EQ(y[i], 0.0f) << build << ": x = " << x[i];
      } else if (const double e = err_ulps(x[i], y[i]); e > worst) {
        worst = e, worst_x = x[i];
      }
    }
    std::printf("[measured] exp_f32 (%s): max %.3f ulp at x = %a\n", build, worst, static_cast<double>(worst_x));
    EXPECT_LE(worst, 1.02) << build << ": at x = " << worst_x;
  }
}

TEST(VecExp, EdgeValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {-inf, -1e30f, -200.0f, -103.2f, -87.34f, -87.33f, -1e-30f, -0.0f, 0.0f, 1e-30f,
                                1.0f, 88.72f, 88.7228f, 88.7229f, 88.75f, 100.0f, 1e30f, inf, nan};
  for (const std::vector<float>& y : {vexp(x), inline_exp(x)}) {
    for (size_t i = 0; i < x.size(); i++) {
      const float xi = x[i];
      if (std::isnan(xi)) EXPECT_TRUE(std::isnan(y[i]));
      else if (xi < -87.3365f) EXPECT_EQ(y[i], 0.0f) << "x = " << xi;
      else if (xi > 88.72284f) EXPECT_EQ(y[i], inf) << "x = " << xi;  // above ln(FLT_MAX)
      else if (std::fabs(xi) < 1e-20f) EXPECT_EQ(y[i], 1.0f) << "x = " << xi;
      else EXPECT_LE(err_ulps(xi, y[i]), 1.02) << "x = " << xi;
    }
    EXPECT_GT(y[5], 1.17e-38f);  // -87.33: still a normal result
    EXPECT_LT(y[12], inf);       // 88.7228: finite
  }
}
