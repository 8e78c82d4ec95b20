#include "common/optim_checks.h"

#include <gtest/gtest.h>

#include "common/testutil.h"
#include "ops/optim.h"

namespace wick::test {

void check_adamw_many_matches_singles(Device dev) {
  Rng rng(77);
  std::vector<Shape> shapes;
  for (int i = 0; i < 70; i++) {
    const int64_t kind = static_cast<int64_t>(rng.below(5));
    const int64_t n = kind == 0 ? 0 : kind == 1 ? 1 : kind == 2 ? 1 + static_cast<int64_t>(rng.below(300))
                                                                : 4000 + static_cast<int64_t>(rng.below(20000));
    shapes.push_back({n});
  }
  AdamWConfig cfg;
  cfg.lr = 2e-2;
  cfg.weight_decay = 0.03;
  std::vector<Tensor> p1, m1, v1, p2, m2, v2;
  for (const Shape& s : shapes) {
    Tensor p = randn(s, rng);
    p1.push_back(p.to(dev));
    p2.push_back(p.to(dev));
    for (auto* mv : {&m1, &v1, &m2, &v2}) mv->push_back(Tensor::zeros(s, DType::F32, dev));
  }
  for (int step = 1; step <= 3; step++) {
    std::vector<Tensor> g;
    for (const Shape& s : shapes) g.push_back(randn(s, rng, 0.5f).to(dev));
    const float coef = step == 2 ? 0.37f : 1.0f;  // clipping on one step
    std::vector<AdamWTensors> many;
    for (size_t i = 0; i < shapes.size(); i++) {
      adamw_step(p1[i], g[i], m1[i], v1[i], cfg, step, coef);
      many.push_back({&p2[i], &g[i], &m2[i], &v2[i]});
    }
    adamw_step_many(many, cfg, step, coef);
  }
  for (size_t i = 0; i < shapes.size(); i++) {
    const auto a = p1[i].to_f32_vector(), b = p2[i].to_f32_vector();
    const auto ma = m1[i].to_f32_vector(), mb = m2[i].to_f32_vector();
    const auto va = v1[i].to_f32_vector(), vb = v2[i].to_f32_vector();
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); k++) {
      ASSERT_EQ(a[k], b[k]) << "param of tensor " << i << " element " << k << " on " << dev.str();
      ASSERT_EQ(ma[k], mb[k]) << "m of tensor " << i << " element " << k;
      ASSERT_EQ(va[k], vb[k]) << "v of tensor " << i << " element " << k;
    }
  }
}

}  // namespace wick::test
