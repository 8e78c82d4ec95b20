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

void check_cross_entropy_fused_equals_separate(Device dev, DType dt, const std::vector<int64_t>& vocabs) {
  Rng rng(21);
  for (int64_t V : vocabs)
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

namespace {
const auto host = [](const Tensor& t) { return t.to(Device::cpu()).to(DType::F32); };
// Bits of a tensor on the host (any float dtype), to compare guards exactly.
std::vector<uint8_t> bits(const Tensor& t) {
  const Tensor h = t.to(Device::cpu());
  const uint8_t* p = static_cast<const uint8_t*>(h.raw());
  return std::vector<uint8_t>(p, p + h.nbytes());
}
}  // namespace

void check_norm_view_equals_tensor(Device dev, DType dt) {
  Rng rng(31);
  struct Place {
    int64_t first, extra;  // the view's first column and the buffer's columns beyond C
  };
  for (RmsWeight kind : {RmsWeight::Scale, RmsWeight::OneOffset})
    for (int64_t C : {896, 37})
      for (Place pl : {Place{0, 48}, Place{3, 5}, Place{8, 24}}) {
        SCOPED_TRACE("C " + std::to_string(C) + " at column " + std::to_string(pl.first) + " of " +
                     std::to_string(C + pl.extra) + " " + dtype_name(dt) + " on " + dev.str());
        const int64_t N = 11;
        const Tensor x = randn({N, C}, rng).to(dt).to(dev), b = randn({N, C}, rng).to(dt).to(dev);
        const Tensor w = randn({C}, rng, 0.5f).to(dt).to(dev);
        Tensor y = Tensor::empty({N, C}, dt, dev), r = Tensor::empty({N}, DType::F32, dev);
        Tensor buf = randn({N, C + pl.extra}, rng).to(dt).to(dev), rv = Tensor::empty({N}, DType::F32, dev);
        const MatrixView v = MatrixView::columns(buf, pl.first, C);
        // Values: the tensor form's, bit for bit where the view is as aligned as a tensor (CUDA's 4-wide kernel
        // runs for both; otherwise the view takes the one-wide kernel, whose sums differ in the last bit).
        const bool aligned = dev.is_cpu() || (pl.first % 4 == 0 && (C + pl.extra) % 4 == 0 && C % 4 == 0);
        const double tol = aligned ? 0.0 : (dt == DType::F32 ? 1e-6 : 1e-2);
        // Guards: every element of buf outside the view keeps its bits.
        const auto check = [&](const char* op, const Tensor& before, const Tensor& y_want, const Tensor& r_want) {
          Tensor got = Tensor::empty({N, C}, dt, dev), expect = before.clone();
          copy_matrix(v, MatrixView::whole(got));
          copy_matrix(MatrixView::whole(got), MatrixView::columns(expect, pl.first, C));
          EXPECT_EQ(bits(buf), bits(expect)) << op << ": an element outside the view changed";
          EXPECT_LE(max_abs_rel(host(got), host(y_want)), tol) << op << ": y";
          EXPECT_LE(max_abs_rel(host(rv), host(r_want)), aligned ? 0.0 : 1e-6) << op << ": rstd";
        };
        rms_norm_forward(x, w, 1e-6f, y, r, kind);
        Tensor before = buf.clone();
        rms_norm_forward(x, w, 1e-6f, v, rv, kind);
        check("rms_norm_forward", before, y, r);
        // add_rms_norm_forward likewise (h into its own tensor).
        Tensor h = Tensor::empty({N, C}, dt, dev), h2 = Tensor::empty({N, C}, dt, dev);
        add_rms_norm_forward(x, b, w, 1e-6f, h, y, r, kind);
        before = buf.clone();
        add_rms_norm_forward(x, b, w, 1e-6f, h2, v, rv, kind);
        check("add_rms_norm_forward", before, y, r);
        EXPECT_EQ(max_abs_diff(host(h2), host(h)), 0.0);
      }
}

void check_copy_matrix(Device dev) {
  Rng rng(32);
  for (DType sd : {DType::F32, DType::BF16})
    for (DType dd : {DType::F32, DType::BF16})
      for (float scale : {1.0f, 0.37f}) {
        SCOPED_TRACE(std::string(dtype_name(sd)) + " -> " + dtype_name(dd) + " scale " + std::to_string(scale) + " on " +
                     dev.str());
        const int64_t rows = 13, cols = 29;
        const Tensor src_buf = randn({rows + 2, cols + 7}, rng).to(sd).to(dev);
        Tensor dst_buf = randn({rows, cols + 40}, rng).to(dd).to(dev);
        const MatrixView src{&src_buf, 2 * (cols + 7) + 5, rows, cols, cols + 7};  // below two rows, from column 5
        const MatrixView dst = MatrixView::columns(dst_buf, 11, cols);
        // Expected on the host: dst_buf with the block replaced by round_dd(scale * src), element by element.
        const Tensor s_host = host(src_buf);
        Tensor want = dst_buf.to(Device::cpu()).clone();
        for (int64_t r = 0; r < rows; r++)
          for (int64_t c = 0; c < cols; c++) {
            const float v = scale * s_host.data<float>()[src.offset + r * src.ld + c];
            const int64_t i = dst.offset + r * dst.ld + c;
            if (dd == DType::F32) want.data<float>()[i] = v;
            else want.data_u16()[i] = f32_to_bf16(v);
          }
        copy_matrix(src, dst, scale);
        EXPECT_EQ(bits(dst_buf), bits(want));
      }
  // Refused: different shapes, overlapping views.
  Tensor t = Tensor::zeros({4, 8}, DType::F32, dev);
  EXPECT_THROW(copy_matrix(MatrixView::columns(t, 0, 3), MatrixView::columns(t, 4, 4)), Error);
  EXPECT_THROW(copy_matrix(MatrixView::columns(t, 0, 4), MatrixView::columns(t, 2, 4)), Error);
}

void check_copy_matrices(Device dev) {
  Rng rng(33);
  // 41 copies (more than one CUDA launch takes), every dtype pair, empty and 100,000-element ones, into column
  // blocks of shared destination buffers: the same bits as copy_matrix one copy at a time, nothing else written.
  const DType dts[] = {DType::F32, DType::BF16};
  std::vector<Tensor> srcs, dsts_a, dsts_b;
  std::vector<MatrixCopy> copies;
  for (int i = 0; i < 41; i++) {
    const DType sd = dts[i % 2], dd = dts[(i / 2) % 2];
    const int64_t rows = i == 7 ? 400 : 1 + i % 5, cols = i == 7 ? 250 : (i == 11 ? 0 : 3 + i % 9);
    srcs.push_back(randn({rows, cols + 3}, rng).to(sd).to(dev));
    dsts_a.push_back(randn({rows, 2 * cols + 5}, rng).to(dd).to(dev));
  }
  for (const Tensor& d : dsts_a) dsts_b.push_back(d.clone());
  for (int i = 0; i < 41; i++) {
    const int64_t cols = srcs[i].dim(1) - 3;
    copies.push_back({MatrixView::columns(srcs[i], 2, cols), MatrixView::columns(dsts_a[i], 4, cols), 0.25f * (i % 7) - 0.5f});
  }
  copy_matrices(copies);
  for (int i = 0; i < 41; i++) {
    const MatrixCopy& c = copies[i];
    copy_matrix(c.src, MatrixView{&dsts_b[i], c.dst.offset, c.dst.rows, c.dst.cols, c.dst.ld}, c.scale);
    EXPECT_EQ(bits(dsts_a[i]), bits(dsts_b[i])) << "copy " << i << " on " << dev.str();
  }
  // Refused: one copy's dst over another's dst or src.
  Tensor t = Tensor::zeros({4, 8}, DType::F32, dev), u = Tensor::zeros({4, 8}, DType::F32, dev);
  const auto cols = [](const Tensor& x, int64_t f) { return MatrixView::columns(x, f, 2); };
  EXPECT_NE(error_of([&] { copy_matrices({{cols(t, 0), cols(u, 0)}, {cols(t, 2), cols(u, 1)}}); }).find("must not overlap copy 1's dst"),
            std::string::npos);
  EXPECT_NE(error_of([&] { copy_matrices({{cols(t, 0), cols(u, 0)}, {cols(u, 0), cols(t, 4)}}); }).find("must not overlap copy 1's src"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { copy_matrices({{cols(t, 0), cols(u, 0)}, {cols(t, 2), cols(u, 2)}}); }), "");
}

}  // namespace wick::test
