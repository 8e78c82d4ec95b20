#include "common/fusion_checks.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"

namespace wick::test {

void check_glu_backward_recomputes_forward(Device dev, DType dt) {
  Rng rng(17);
  for (GluAct act : {GluAct::Silu, GluAct::GeluTanh})
    for (const auto& shape : std::vector<std::pair<int64_t, int64_t>>{{3, 7}, {16, 64}, {33, 250}}) {
      const int64_t N = shape.first, I = shape.second;  // not a structured binding: clang 14 cannot capture one
      SCOPED_TRACE(std::string(glu_act_name(act)) + " [" + std::to_string(N) + ", " + std::to_string(I) + "] " +
                   dtype_name(dt) + " on " + dev.str());
      auto on_dev = [&](const Tensor& h) { return h.to(dt).to(dev).clone(); };  // never the host tensor itself
      const Tensor gate = on_dev(randn({N, I}, rng, 3.0f)), up = on_dev(randn({N, I}, rng, 1.0f));
      const Tensor dout_h = randn({N, I}, rng, 1.0f);
      auto fresh = [&] { return Tensor::empty({N, I}, dt, dev); };
      Tensor out = fresh();
      glu_forward(gate, up, act, out);

      Tensor dout = on_dev(dout_h), dg = fresh(), du = fresh();
      glu_backward(dout, gate, up, act, dg, du);
      Tensor dg2 = fresh(), du2 = fresh(), again = fresh();
      glu_backward(dout, gate, up, act, dg2, du2, &again);
      Tensor in_place = on_dev(dout_h), dg3 = fresh(), du3 = fresh();
      glu_backward(in_place, gate, up, act, dg3, du3, &in_place);

      const std::vector<float> want = out.to_f32_vector();
      EXPECT_EQ(again.to_f32_vector(), want) << "recomputed output";
      EXPECT_EQ(in_place.to_f32_vector(), want) << "recomputed output over dout";
      for (const Tensor* t : {&dg2, &dg3}) EXPECT_EQ(t->to_f32_vector(), dg.to_f32_vector()) << "dgate";
      for (const Tensor* t : {&du2, &du3}) EXPECT_EQ(t->to_f32_vector(), du.to_f32_vector()) << "dup";
      double norm = 0;
      for (float x : want) norm += static_cast<double>(x) * x;
      EXPECT_GT(norm, 0.0);
    }
}

void check_rms_norm_backward_accumulates(Device dev, DType dt) {
  Rng rng(23);
  for (RmsWeight kind : {RmsWeight::Scale, RmsWeight::OneOffset})
    for (const auto& shape : std::vector<std::pair<int64_t, int64_t>>{{3, 7}, {16, 64}, {9, 896}}) {
      const int64_t N = shape.first, C = shape.second;
      SCOPED_TRACE(std::string(kind == RmsWeight::Scale ? "scale" : "offset") + " [" + std::to_string(N) + ", " +
                   std::to_string(C) + "] " + dtype_name(dt) + " on " + dev.str());
      auto on_dev = [&](const Tensor& h) { return h.to(dt).to(dev).clone(); };  // never the host tensor itself
      const Tensor x = on_dev(randn({N, C}, rng, 2.0f)), w = on_dev(randn({C}, rng, 0.5f)),
                   dy = on_dev(randn({N, C}, rng, 1.0f));
      Tensor y = Tensor::empty({N, C}, dt, dev), rstd = Tensor::empty({N}, DType::F32, dev);
      rms_norm_forward(x, w, 1e-6f, y, rstd, kind);
      const Tensor start = randn({N, C}, rng, 1.0f);
      Tensor separate = on_dev(start), part = Tensor::empty({N, C}, dt, dev);
      rms_norm_backward(dy, x, w, rstd, part, nullptr, kind);
      add(separate, part, separate);
      Tensor fused = on_dev(start);
      rms_norm_backward(dy, x, w, rstd, fused, nullptr, kind, /*accumulate*/ true);
      EXPECT_EQ(fused.to_f32_vector(), separate.to_f32_vector());
      EXPECT_NE(fused.to_f32_vector(), on_dev(start).to_f32_vector());
    }
}

void check_rope_qk_equals_two_ropes(Device dev, DType dt) {
  Rng rng(9);
  RopeFreqs llama3(500000.0f);
  llama3.factor = 32.0f;
  llama3.low_freq_factor = 1.0f;
  llama3.high_freq_factor = 4.0f;
  llama3.original_max_position = 8192.0f;
  for (const RopeFreqs& f : {RopeFreqs(1e6f), llama3}) {
    const int64_t B = 2, T = 5, H = 14, Hkv = 2, D = 64;
    std::vector<int32_t> pos;
    for (int64_t i = 0; i < B * T; i++) pos.push_back(static_cast<int32_t>(rng.below(40000)));
    Tensor positions = Tensor::from_i32(pos, {B, T}).to(dev);
    for (bool backward : {false, true}) {
      Tensor q = randn({B, T, H, D}, rng).to(dt).to(dev), k = randn({B, T, Hkv, D}, rng).to(dt).to(dev);
      Tensor q1 = q.clone(), k1 = k.clone();
      if (backward) {
        rope_backward(q1, positions, f, q1);
        rope_backward(k1, positions, f, k1);
        rope_backward_qk(q, k, positions, f);
      } else {
        rope_forward(q1, positions, f, q1);
        rope_forward(k1, positions, f, k1);
        rope_forward_qk(q, k, positions, f);
      }
      EXPECT_EQ(max_abs_diff(q.to(Device::cpu()).to(DType::F32), q1.to(Device::cpu()).to(DType::F32)), 0.0) << backward;
      EXPECT_EQ(max_abs_diff(k.to(Device::cpu()).to(DType::F32), k1.to(Device::cpu()).to(DType::F32)), 0.0) << backward;
    }
  }
}

void check_add_rms_norm_equals_add_then_norm(Device dev, DType dt) {
  Rng rng(10);
  for (RmsWeight kind : {RmsWeight::Scale, RmsWeight::OneOffset})
    for (int64_t C : {896, 37})
      for (bool in_place : {false, true}) {
        const int64_t N = 9;
        Tensor a = randn({N, C}, rng).to(dt).to(dev), b = randn({N, C}, rng).to(dt).to(dev);
        Tensor w = randn({C}, rng, 0.5f).to(dt).to(dev);
        Tensor h1 = Tensor::empty({N, C}, dt, dev), y1 = Tensor::empty({N, C}, dt, dev);
        Tensor r1 = Tensor::empty({N}, DType::F32, dev), y2 = Tensor::empty({N, C}, dt, dev);
        Tensor r2 = Tensor::empty({N}, DType::F32, dev);
        add(a, b, h1);
        rms_norm_forward(h1, w, 1e-6f, y1, r1, kind);
        Tensor h2 = in_place ? a.clone() : Tensor::empty({N, C}, dt, dev);
        add_rms_norm_forward(in_place ? h2 : a, b, w, 1e-6f, h2, y2, r2, kind);
        const auto host = [](const Tensor& t) { return t.to(Device::cpu()).to(DType::F32); };
        EXPECT_EQ(max_abs_diff(host(h2), host(h1)), 0.0) << "C " << C << " in place " << in_place;
        EXPECT_EQ(max_abs_diff(host(y2), host(y1)), 0.0) << "C " << C << " in place " << in_place;
        EXPECT_EQ(max_abs_diff(host(r2), host(r1)), 0.0) << "C " << C << " in place " << in_place;
      }
}

void check_cross_entropy_fused_equals_separate(Device dev, DType dt) {
  Rng rng(21);
  for (int64_t V : {151, 1000, 4096})
    for (bool in_place : {false, true}) {
      const int64_t N = 13;
      SCOPED_TRACE("V " + std::to_string(V) + (in_place ? " in place " : " ") + dtype_name(dt) + " on " + dev.str());
      std::vector<int32_t> tg;
      for (int64_t i = 0; i < N; i++) tg.push_back(i % 4 == 1 ? kIgnoreIndex : static_cast<int32_t>(rng.below(V)));
      const Tensor targets = Tensor::from_i32(tg, {N}).to(dev);
      const Tensor logits = randn({N, V}, rng, 4.0f).to(dt).to(dev);
      auto f32 = [&](int64_t n) { return Tensor::empty({n}, DType::F32, dev); };
      Tensor loss1 = f32(N), lse1 = f32(N), d1 = Tensor::empty({N, V}, dt, dev);
      cross_entropy_forward(logits, targets, loss1, lse1);
      cross_entropy_backward(logits, targets, lse1, 0.37f, d1);
      Tensor work = logits.clone();
      Tensor loss2 = f32(N), lse2 = f32(N), d2 = in_place ? work : Tensor::empty({N, V}, dt, dev);
      cross_entropy_forward_backward(work, targets, loss2, lse2, 0.37f, d2);
      EXPECT_EQ(loss2.to_f32_vector(), loss1.to_f32_vector());
      EXPECT_EQ(lse2.to_f32_vector(), lse1.to_f32_vector());
      EXPECT_EQ(d2.to_f32_vector(), d1.to_f32_vector());
      EXPECT_NE(d2.to_f32_vector(), logits.to_f32_vector());
    }
}

void check_rope_misaligned_equals_aligned(Device dev, DType dt) {
  Rng rng(23);
  for (int64_t D : {8, 64, 128})
    for (bool backward : {false, true}) {
      const int64_t B = 2, T = 9, H = 3, n = B * T * H * D;
      SCOPED_TRACE("D " + std::to_string(D) + (backward ? " backward " : " forward ") + dtype_name(dt));
      std::vector<int32_t> pos;
      for (int64_t i = 0; i < B * T; i++) pos.push_back(static_cast<int32_t>(rng.below(5000)));
      const Tensor positions = Tensor::from_i32(pos, {B, T}).to(dev);
      const Tensor x = randn({B, T, H, D}, rng).to(dt).to(dev);
      Tensor aligned = x.clone();
      Tensor buf = Tensor::empty({n + 1}, dt, dev);  // one element in: not 4-element aligned
      Tensor shifted = buf.narrow0(1, n).view({B, T, H, D});
      shifted.copy_from(x);
      const RopeFreqs f(1e6f);
      if (backward) {
        rope_backward(aligned, positions, f, aligned);
        rope_backward(shifted, positions, f, shifted);
      } else {
        rope_forward(aligned, positions, f, aligned);
        rope_forward(shifted, positions, f, shifted);
      }
      EXPECT_EQ(shifted.to_f32_vector(), aligned.to_f32_vector());
      EXPECT_NE(aligned.to_f32_vector(), x.to_f32_vector());
    }
}

}  // namespace wick::test
