// AdamW over several steps, with gradient-norm clipping, against an f64 reimplementation of the
// formula (torch.optim.AdamW semantics) written here; no torch needed.
#include <gtest/gtest.h>

#include <cmath>

#include "common/optim_checks.h"
#include "common/testutil.h"
#include "ops/optim.h"

using namespace wick;

TEST(AdamW, FiveClippedStepsMatchF64Formula) {
  Rng rng(21);
  const std::vector<Shape> shapes = {{7}, {33, 17}, {1}, {64, 9}};
  AdamWConfig cfg;
  cfg.lr = 3e-2f;
  cfg.beta1 = 0.85f;
  cfg.beta2 = 0.99f;
  cfg.eps = 1e-7f;
  cfg.weight_decay = 0.05f;
  std::vector<Tensor> p, m, v;
  std::vector<std::vector<double>> P, M, Vv;
  for (const Shape& s : shapes) {
    p.push_back(test::randn(s, rng));
    m.push_back(Tensor::zeros(s, DType::F32));
    v.push_back(Tensor::zeros(s, DType::F32));
    const auto f = p.back().to_f32_vector();
    P.emplace_back(f.begin(), f.end());
    M.emplace_back(f.size(), 0.0);
    Vv.emplace_back(f.size(), 0.0);
  }
  for (int step = 1; step <= 5; step++) {
    std::vector<Tensor> g;
    for (const Shape& s : shapes) g.push_back(test::randn(s, rng, step == 3 ? 1e-5f : 0.7f));
    float coef = 0;
    const double norm = grad_norm(g, 1.0, &coef);
    double ss = 0;
    for (const Tensor& t : g)
      for (float x : t.to_f32_vector()) ss += static_cast<double>(x) * x;
    const double want_coef = std::min(1.0, 1.0 / (std::sqrt(ss) + 1e-6));
    ASSERT_NEAR(norm, std::sqrt(ss), 1e-12 * std::sqrt(ss));
    ASSERT_NEAR(coef, want_coef, 1e-6 * want_coef);
    for (size_t i = 0; i < shapes.size(); i++) {
      adamw_step(p[i], g[i], m[i], v[i], cfg, step, coef);
      // p -= lr wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr/bc1 m / (sqrt(v)/sqrt(bc2) + eps)
      const auto gv = g[i].to_f32_vector();
      const double lr = cfg.lr, b1 = cfg.beta1, b2 = cfg.beta2;
      const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
      for (size_t k = 0; k < gv.size(); k++) {
        const double gk = static_cast<double>(gv[k]) * coef;
        P[i][k] *= 1 - lr * cfg.weight_decay;
        M[i][k] = b1 * M[i][k] + (1 - b1) * gk;
        Vv[i][k] = b2 * Vv[i][k] + (1 - b2) * gk * gk;
        P[i][k] -= lr / bc1 * M[i][k] / (std::sqrt(Vv[i][k]) / std::sqrt(bc2) + cfg.eps);
      }
    }
  }
  for (size_t i = 0; i < shapes.size(); i++) {
    const auto pf = p[i].to_f32_vector(), mf = m[i].to_f32_vector(), vf = v[i].to_f32_vector();
    for (size_t k = 0; k < pf.size(); k++) {
      // f32 state rounded every step: a few ulps of drift over 5 steps
      EXPECT_NEAR(pf[k], P[i][k], 2e-6 * std::fabs(P[i][k]) + 1e-7) << "param " << i << " element " << k;
      EXPECT_NEAR(mf[k], M[i][k], 1e-5 * std::fabs(M[i][k]) + 1e-9) << "m " << i << " element " << k;
      EXPECT_NEAR(vf[k], Vv[i][k], 1e-5 * std::fabs(Vv[i][k]) + 1e-12) << "v " << i << " element " << k;
    }
  }
}

TEST(AdamW, ManyTensorsInOneCallEqualOneCallEach) { test::check_adamw_many_matches_singles(Device::cpu()); }

TEST(AdamW, ClipStateOnTheDeviceEqualsTheHostsClipping) { test::check_clip_state(Device::cpu()); }
