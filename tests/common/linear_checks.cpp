#include "common/linear_checks.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "common/testutil.h"
#include "core/rng.h"
#include "model/linear.h"
#include "ops/elementwise.h"

namespace wick::test {

namespace {

// Host f32 values of one case, rounded through the compute dtype where the model stores them in it.
struct Data {
  Tensor x, dx0;
  std::vector<Tensor> w, b, A, B, dy;
};

Tensor through(const Tensor& t, DType dt) { return dt == DType::F32 ? t : t.to(dt).to(DType::F32); }

Data make_data(const LinearGroupSpec& s, DType dt, uint64_t seed) {
  Rng rng(seed);
  Data d;
  d.x = through(randn({s.N, s.in}, rng), dt);
  d.dx0 = through(randn({s.N, s.in}, rng, 0.1f), dt);
  for (size_t j = 0; j < s.outs.size(); j++) {
    const int64_t out = s.outs[j];
    d.w.push_back(through(randn({out, s.in}, rng, 0.15f), dt));
    d.b.push_back(through(randn({out}, rng, 0.1f), dt));
    d.A.push_back(randn({s.r, s.in}, rng, 0.15f));
    d.B.push_back(randn({out, s.r}, rng, 0.2f));  // not PEFT's zero init: every gradient counts
    d.dy.push_back(through(randn({s.N, out}, rng), dt));
  }
  return d;
}

struct Result {
  std::vector<Tensor> y, dA, dB;
  Tensor dx;
};

// grouped: linear_group_* over packed adapters; else linear_forward/backward one at a time on stand-alone
// adapters, with u in the [N, r] f32 buffers the callers have always passed.
// infer (grouped only): the inference form, nothing saved (saved undefined) and no backward: on CUDA with
// N <= 64 the adapters run as one fused low_rank_product each.
// folded (grouped only): folded_group_forward / backward over an [N, in + R] buffer whose first columns hold x
// (the rest random before the forward: u must be written there), and x's columns checked unchanged after.
Result run(const LinearGroupSpec& s, const Data& d, Device dev, DType dt, bool grouped, bool infer = false,
           bool folded = false) {
  const size_t n = s.outs.size();
  std::vector<Linear> ls(n);
  std::vector<Linear*> ptr;
  for (size_t j = 0; j < n; j++) {
    Linear& l = ls[j];
    l.name = "linear" + std::to_string(j);
    l.w = d.w[j].to(dt).to(dev);
    if (s.bias) l.b = d.b[j].to(dt).to(dev);
    if (s.lora[j]) {
      l.lora.A = d.A[j].to(dev);
      l.lora.B = d.B[j].to(dev);
      l.lora.scale = 2.0f;
      l.lora.dropout = s.dropout;
    }
    ptr.push_back(&l);
  }
  if (grouped) {
    pack_lora_group(ptr);
    pack_lora_grads(ptr);
  } else {
    for (Linear& l : ls)
      if (l.lora.active()) {
        l.lora.dA = Tensor::zeros(l.lora.A.shape(), DType::F32, dev);
        l.lora.dB = Tensor::zeros(l.lora.B.shape(), DType::F32, dev);
      }
  }
  // Dropout: the micro-batch's seed on the device, a mix per member (ops/dropout.h).
  std::vector<uint64_t> mixes(n, 0);
  LinearScratch scratch;
  if (s.dropout > 0.0f) {
    for (size_t j = 0; j < n; j++) mixes[j] = 1000 + 7 * j;
    Tensor seed = Tensor::empty({1}, DType::I64, Device::cpu());
    seed.data<int64_t>()[0] = 0x5eed0000 + static_cast<int64_t>(s.N);
    scratch.dropout_seed = seed.to(dev);
  }
  const Tensor x = d.x.to(dt).to(dev);
  std::vector<Tensor> y(n), dy(n);
  std::vector<Tensor*> yp;
  std::vector<const Tensor*> dyp;
  for (size_t j = 0; j < n; j++) {
    y[j] = Tensor::empty({s.N, s.outs[j]}, dt, dev);
    dy[j] = d.dy[j].to(dt).to(dev);
    yp.push_back(&y[j]);
    dyp.push_back(&dy[j]);
  }
  // (clone: to() returns the tensor itself when nothing changes, and dx is written in place)
  Tensor dx = s.accumulate ? d.dx0.clone().to(dt).to(dev) : Tensor::empty({s.N, s.in}, dt, dev);
  if (folded) {
    const int64_t R = lora_group_rank(ptr);
    Rng rng(77);
    Tensor xu = randn({s.N, s.in + R}, rng).to(dt).to(dev);
    copy_matrix(MatrixView::whole(x), MatrixView::columns(xu, 0, s.in));
    folded_group_forward(ptr, xu, yp, scratch, mixes.data());
    folded_group_backward(ptr, dyp, xu, dx, s.accumulate, scratch, mixes.data());
    const Tensor x_after = Tensor::empty({s.N, s.in}, dt, dev);
    copy_matrix(MatrixView::columns(xu, 0, s.in), MatrixView::whole(x_after));
    EXPECT_EQ(max_abs_diff(x_after.to(Device::cpu()).to(DType::F32), x.to(Device::cpu()).to(DType::F32)), 0.0)
        << "folded: x's columns of xu changed";
  } else if (grouped) {
    const int64_t R = lora_group_rank(ptr);
    Tensor saved = R && !infer ? Tensor::empty({s.N, R}, dt, dev) : Tensor();
    linear_group_forward(ptr, x, yp, saved, scratch, infer ? nullptr : mixes.data(), infer);
    if (!infer) linear_group_backward(ptr, dyp, x, saved, dx, s.accumulate, scratch, mixes.data());
  } else {
    // As the decoder layer has always called them: x32 an f32 copy of x, u [N, r] f32.
    const Tensor x32 = x.to(DType::F32).clone();
    std::vector<Tensor> u(n);
    for (size_t j = 0; j < n; j++) {
      if (ls[j].lora.active()) u[j] = Tensor::empty({s.N, s.r}, DType::F32, dev);
      linear_forward(ls[j], x, x32, y[j], u[j].defined() ? &u[j] : nullptr, scratch, mixes[j]);
    }
    for (size_t j = 0; j < n; j++)
      linear_backward(ls[j], dy[j], x32, u[j], dx, j == 0 ? s.accumulate : true, scratch, mixes[j]);
  }
  Result r;
  for (size_t j = 0; j < n; j++) {
    r.y.push_back(y[j].to(Device::cpu()).to(DType::F32));
    if (ls[j].lora.active()) {
      r.dA.push_back(ls[j].lora.dA.to(Device::cpu()));
      r.dB.push_back(ls[j].lora.dB.to(Device::cpu()));
    }
  }
  r.dx = dx.to(Device::cpu()).to(DType::F32).clone();
  return r;
}

// Calls f(name, got, want) for every output of two results.
template <class F> void each(const Result& a, const Result& b, F f) {
  for (size_t j = 0; j < a.y.size(); j++) f("y" + std::to_string(j), a.y[j], b.y[j]);
  for (size_t j = 0; j < a.dA.size(); j++) {
    f("dA" + std::to_string(j), a.dA[j], b.dA[j]);
    f("dB" + std::to_string(j), a.dB[j], b.dB[j]);
  }
  f("dx", a.dx, b.dx);
}

}  // namespace

void check_linear_group_f32(const LinearGroupSpec& s, Device dev) {
  const Data d = make_data(s, DType::F32, 11);
  const Result g = run(s, d, dev, DType::F32, true), one = run(s, d, dev, DType::F32, false);
  each(g, one, [&](const std::string& what, const Tensor& a, const Tensor& b) {
    EXPECT_EQ(max_abs_diff(a, b), 0.0) << what << ": the f32 group path must be the one-linear path bit for bit";
  });
}

void check_linear_group_bf16(const LinearGroupSpec& s, Device dev) {
  const Data d = make_data(s, DType::BF16, 12);
  const Result ref = run(s, d, Device::cpu(), DType::F32, false);
  const Result g = run(s, d, dev, DType::BF16, true), one = run(s, d, dev, DType::BF16, false);
  // bf16 inputs of the adapter GEMMs (A, B, u, du rounded to 8 bits: 2^-9 relative each) with f32
  // accumulation, and bf16 outputs y, dx rounded once or twice: a few 1e-3 of max|ref|. A wrong transpose,
  // offset or missing term is O(1).
  const double tol = 2e-2;
  each(g, ref, [&](const std::string& what, const Tensor& a, const Tensor& b) {
    const double e = max_abs_rel(a, b);
    std::printf("[measured] bf16 group %s vs f32: max|diff|/max|ref| %.3g\n", what.c_str(), e);
    EXPECT_LE(e, tol) << what << " (group)";
  });
  each(one, ref, [&](const std::string& what, const Tensor& a, const Tensor& b) {
    EXPECT_LE(max_abs_rel(a, b), tol) << what << " (one linear at a time)";
  });
  // The same products in other GEMM shapes: only summation order and an occasional 1-ulp flip differ.
  each(g, one, [&](const std::string& what, const Tensor& a, const Tensor& b) {
    EXPECT_LE(max_abs_rel(a, b), 1e-2) << what << " (group vs one at a time)";
  });
}

void check_linear_group_folded(const LinearGroupSpec& s, Device dev, DType dt) {
  const Data d = make_data(s, dt, 14);
  const Result ref = run(s, d, dev, dt, true), got = run(s, d, dev, dt, true, false, true);
  // The same products, y summed in one GEMM (x W^T + scale u B^T + b, one rounding) where the unfolded path sums
  // two (f32: ~1e-6 of max|ref|; bf16: the adapter term is rounded once fewer and scale B is rounded as a product,
  // 2^-9 here and there). A wrong column offset, a stale scale B or a missing member is O(1).
  const double tol = dt == DType::F32 ? 1e-5 : 1e-2;
  each(got, ref, [&](const std::string& what, const Tensor& a, const Tensor& b) {
    const double e = max_abs_rel(a, b);
    std::printf("[measured] folded %s %s vs unfolded: max|diff|/max|ref| %.3g\n", dtype_name(dt), what.c_str(), e);
    EXPECT_LE(e, tol) << what << " (folded, " << dtype_name(dt) << ")";
  });
}

void check_linear_group_inference(const LinearGroupSpec& s, Device dev, DType dt) {
  const Data d = make_data(s, dt, 13);
  const Result ref = run(s, d, Device::cpu(), DType::F32, false);
  const Result got = run(s, d, dev, dt, true, true);
  // f32: two f32 products in another summation order (~1e-6 of max|ref|). bf16: A, B, x in bf16 with f32
  // accumulation, the adapter term and y rounded to bf16 (2^-9 each): a few 1e-3.
  const double tol = dt == DType::F32 ? 1e-5 : 2e-2;
  for (size_t j = 0; j < got.y.size(); j++) {
    const double e = max_abs_rel(got.y[j], ref.y[j]);
    std::printf("[measured] inference %s y%zu vs CPU f32: max|diff|/max|ref| %.3g\n", dtype_name(dt), j, e);
    EXPECT_LE(e, tol) << "y" << j << " (inference, " << dtype_name(dt) << ", N " << s.N << ")";
  }
}

}  // namespace wick::test
