#include "common/optim_checks.h"

#include <gtest/gtest.h>

#include "common/testutil.h"
#include "ops/optim.h"

#include <cmath>
#include <cstring>
#include <limits>

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

namespace {

ClipState read_clip(const Tensor& state) {
  const Tensor h = state.to(Device::cpu());
  ClipState cs;
  std::memcpy(&cs, h.raw(), sizeof cs);
  return cs;
}

std::vector<Tensor> random_grads(Rng& rng, Device dev, float scale) {
  std::vector<Tensor> g;
  for (int64_t n : {37, 0, 5000, 1, 12289, 64})  // several partial blocks, empty and single-element tensors
    g.push_back(randn({n}, rng, scale).to(dev));
  return g;
}

}  // namespace

void check_clip_state(Device dev) {
  Rng rng(91);
  Tensor state = Tensor::empty({kClipStateFloats}, DType::F32, dev);
  const std::vector<Tensor> g = random_grads(rng, dev, 0.3f);
  for (double max_norm : {0.0, 1.0, 1e6}) {
    float coef = -1;
    const double norm = grad_norm(g, max_norm, &coef);
    clip_state(g, max_norm, state);
    const ClipState cs = read_clip(state);
    EXPECT_EQ(cs.norm, norm) << "max_norm " << max_norm << " on " << dev.str();
    EXPECT_EQ(cs.coef, coef) << "max_norm " << max_norm << " on " << dev.str();
    EXPECT_EQ(cs.skip, 0.0f);
    if (max_norm == 1.0) EXPECT_LT(cs.coef, 1.0f) << "the test wants a clipping case (norm " << norm << ")";
    // An extra term of zeros (the trainer's loss check with every loss finite) changes no bit.
    std::vector<Tensor> with_zeros = g;
    with_zeros.push_back(Tensor::zeros({3000}, DType::F32, dev));
    clip_state(with_zeros, max_norm, state);
    const ClipState cz = read_clip(state);
    EXPECT_EQ(cz.norm, norm);
    EXPECT_EQ(cz.coef, coef);
  }
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    for (bool in_extra : {false, true}) {
      std::vector<Tensor> gb = random_grads(rng, dev, 0.3f);
      Tensor extra = Tensor::zeros({100}, DType::F32, Device::cpu());
      Tensor& target = in_extra ? extra : gb[2];
      Tensor h = target.to(Device::cpu());
      h.data<float>()[h.numel() / 2] = in_extra ? 0.0f * bad : bad;  // the loss check holds 0 * loss
      target = h.to(dev);
      gb.push_back(extra.to(dev));
      clip_state(gb, 1.0, state);
      const ClipState cs = read_clip(state);
      EXPECT_EQ(cs.skip, 1.0f) << bad << (in_extra ? " in the extra term" : " in a gradient");
      EXPECT_FALSE(std::isfinite(cs.norm));
    }
  }
  // The update with the device's coefficient equals the update with the host's; a skipped one changes nothing.
  AdamWConfig cfg;
  cfg.lr = 1e-2;
  cfg.weight_decay = 0.02;
  std::vector<Tensor> p1, m1, v1, p2, m2, v2;
  for (const Tensor& t : g) {
    const Tensor p = randn(t.shape(), rng).to(dev);
    p1.push_back(p.clone());
    p2.push_back(p.clone());
    for (auto* mv : {&m1, &v1, &m2, &v2}) mv->push_back(Tensor::zeros(t.shape(), DType::F32, dev));
  }
  std::vector<AdamWTensors> a, b;
  for (size_t i = 0; i < g.size(); i++) {
    a.push_back({&p1[i], &g[i], &m1[i], &v1[i]});
    b.push_back({&p2[i], &g[i], &m2[i], &v2[i]});
  }
  for (int step = 1; step <= 2; step++) {
    float coef = 1;
    grad_norm(g, 1.0, &coef);
    ASSERT_LT(coef, 1.0f);
    adamw_step_many(a, cfg, step, coef);
    clip_state(g, 1.0, state);
    adamw_step_many(b, cfg, step, state);
  }
  std::vector<Tensor> gnan = g;
  Tensor h = g[0].to(Device::cpu());
  h.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  gnan[0] = h.to(dev);
  clip_state(gnan, 1.0, state);
  for (size_t i = 0; i < g.size(); i++) b[i].grad = &gnan[i];
  adamw_step_many(b, cfg, 3, state);  // skipped
  for (size_t i = 0; i < g.size(); i++) {
    const auto pa = p1[i].to_f32_vector(), pb = p2[i].to_f32_vector();
    const auto ma = m1[i].to_f32_vector(), mb = m2[i].to_f32_vector();
    const auto va = v1[i].to_f32_vector(), vb = v2[i].to_f32_vector();
    for (size_t k = 0; k < pa.size(); k++) {
      ASSERT_EQ(pa[k], pb[k]) << "param of tensor " << i << " element " << k << " on " << dev.str();
      ASSERT_EQ(ma[k], mb[k]) << "m of tensor " << i << " element " << k;
      ASSERT_EQ(va[k], vb[k]) << "v of tensor " << i << " element " << k;
    }
  }
}

}  // namespace wick::test
