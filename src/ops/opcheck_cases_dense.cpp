// Op cases (ops/opcheck.h) for matmul, linear, embedding, the elementwise ops, dropout, casts, fills, sum of
// squares and AdamW.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/low_rank.h"
#include "ops/weight_grads.h"
#include "ops/matmul.h"
#include "ops/opcheck.h"
#include "ops/optim.h"
#include "ops/segmented_lora.h"
#include "ops/small_m_linear.h"
#include "ops/swiglu.h"

namespace wick::opcheck {

namespace {

// 0.5 -> "0p5", -2 -> "m2": float parameters in gtest-friendly names.
std::string num(double v) {
  std::ostringstream os;
  os << v;
  std::string s = os.str();
  for (char& c : s) c = c == '.' ? 'p' : c == '-' ? 'm' : c == '+' ? 'P' : c;
  return s;
}

std::string dims(const Shape& s) {
  std::ostringstream os;
  for (size_t i = 0; i < s.size(); i++) os << (i ? "x" : "") << s[i];
  return os.str();
}

Shape cat(Shape a, int64_t last) {
  a.push_back(last);
  return a;
}

const char* kGemmWhy =
    "f32 GEMM sums K products in a blocked order: rel error ~sqrt(K) 2^-24 (< 1e-5 for K <= 4864); the device "
    "must run f32 GEMMs without TF32; bf16 outputs are rounded once (2^-9)";

class MatmulCase : public Case {
 public:
  explicit MatmulCase(const MatmulShape& s) : Case("matmul", tag(s)), s_(s) {
    tol.why = kGemmWhy;
    if (s_.c_f32) tol.dev_bf16 = tol.cpu_bf16 = 1e-4;  // same bf16 inputs, f32 output: only the summation order differs
  }
  static std::string tag(const MatmulShape& s) {
    std::string t = cat_str("M", s.M, "_N", s.N, "_K", s.K);
    if (s.batch) t += cat_str("_batch", s.batch);
    if (!s.lead.empty()) t += cat_str("_lead", dims(s.lead));
    if (s.ta) t += "_ta";
    if (s.tb) t += "_tb";
    if (s.alpha != 1.0f) t += cat_str("_alpha", num(s.alpha));
    if (s.beta != 0.0f) t += cat_str("_beta", num(s.beta));
    if (s.bias) t += "_bias";
    if (s.c_f32) t += "_cf32";
    return t;
  }
  Shape a_shape() const {
    if (s_.batch) return s_.ta ? Shape{s_.batch, s_.K, s_.M} : Shape{s_.batch, s_.M, s_.K};
    if (s_.ta) return {s_.K, s_.M};
    return cat(s_.lead.empty() ? Shape{s_.M} : s_.lead, s_.K);
  }
  Shape b_shape() const {
    Shape b = s_.tb ? Shape{s_.N, s_.K} : Shape{s_.K, s_.N};
    if (s_.batch) b.insert(b.begin(), s_.batch);
    return b;
  }
  Shape c_shape() const {
    if (s_.batch) return {s_.batch, s_.M, s_.N};
    if (s_.ta) return {s_.M, s_.N};
    return cat(s_.lead.empty() ? Shape{s_.M} : s_.lead, s_.N);
  }
  Kind c_kind() const { return s_.c_f32 ? Kind::F32 : Kind::Act; }
  std::vector<Spec> inputs() const override {
    std::vector<Spec> in{{"a", a_shape()}, {"b", b_shape()}};
    if (s_.beta != 0.0f) in.push_back({"c0", c_shape(), c_kind()});
    if (s_.bias) in.push_back({"bias", {s_.N}, c_kind()});
    return in;
  }
  std::vector<Spec> outputs() const override { return {{"c", c_shape(), c_kind()}}; }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (s_.beta != 0.0f) out[0].copy_from(in[2]);
    const Tensor* bias = s_.bias ? &in.back() : nullptr;
    matmul(in[0], in[1], out[0], s_.ta, s_.tb, s_.alpha, s_.beta, bias);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    const ref::Vec* c0 = s_.beta != 0.0f ? &in[2] : nullptr;
    const ref::Vec* bias = s_.bias ? &in.back() : nullptr;
    const int64_t rows = shape_numel(c_shape()) / s_.N / std::max<int64_t>(s_.batch, 1);
    return {ref::matmul(in[0], in[1], c0, bias, std::max<int64_t>(s_.batch, 1), rows, s_.N, s_.K, s_.ta, s_.tb,
                        s_.batch > 0, s_.alpha, s_.beta)};
  }
  double ref_cost() const override { return 2.0 * shape_numel(c_shape()) * s_.K; }
  bool cpu_bf16() const override { return true; }

 private:
  MatmulShape s_;
};

class LinearCase : public Case {
 public:
  LinearCase(Shape lead, int64_t in, int64_t out, bool bias)
      : Case("linear", cat_str("N", dims(lead), "_in", in, "_out", out, bias ? "_bias" : "")),
        lead_(std::move(lead)), in_(in), out_(out), bias_(bias) {
    tol.why = kGemmWhy;
  }
  std::vector<Spec> inputs() const override {
    std::vector<Spec> s{{"x", cat(lead_, in_)}, {"w", {out_, in_}}};
    if (bias_) s.push_back({"b", {out_}});
    return s;
  }
  std::vector<Spec> outputs() const override { return {{"y", cat(lead_, out_)}}; }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    linear_forward(in[0], in[1], bias_ ? &in[2] : nullptr, out[0]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    return {ref::matmul(in[0], in[1], nullptr, bias_ ? &in[2] : nullptr, 1, shape_numel(lead_), out_, in_, false, true,
                        false, 1.0, 0.0)};
  }
  double ref_cost() const override { return 2.0 * shape_numel(lead_) * in_ * out_; }
  std::vector<int> grad_inputs() const override { return bias_ ? std::vector<int>{0, 1, 2} : std::vector<int>{0, 1}; }
  std::vector<int> accumulating() const override { return bias_ ? std::vector<int>{1, 2} : std::vector<int>{1}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& cot,
                std::vector<Tensor>& g) const override {
    linear_backward(cot[0], in[0], in[1], &g[0], &g[1], bias_ ? &g[2] : nullptr);
  }
  bool exact_accumulate() const override { return false; }  // sgemm adds K blocks into dw one at a time

 private:
  Shape lead_;
  int64_t in_, out_;
  bool bias_;
};

class EmbeddingCase : public Case {
 public:
  EmbeddingCase(int64_t N, int64_t V, int64_t C, DType ids)
      : Case("embedding", cat_str("N", N, "_V", V, "_C", C, "_", dtype_name(ids))),
        N_(N), V_(V), C_(C), ids_(ids) {
    tol.fwd = tol.dev = tol.dev_bf16 = 0;
    tol.dev_bwd = 1e-6;
    tol.why = "forward copies rows (exact); backward sums the rows of repeated ids (f32 sums of a few terms; the "
              "device may add in another order)";
  }
  std::vector<Spec> inputs() const override {
    return {{"ids", {N_}, ids_ == DType::I64 ? Kind::I64 : Kind::I32}, {"table", {V_, C_}}};
  }
  std::vector<Spec> outputs() const override { return {{"out", {N_, C_}}}; }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int64_t n = 0; n < N_; n++) {
      // Repeats on purpose: the last id equals the first, and ids come from a small range half the time.
      int64_t id = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n % 2 ? V_ : std::min<int64_t>(V_, 3))));
      if (n == N_ - 1 && N_ > 1) id = ids_ == DType::I64 ? h[0].data<int64_t>()[0] : h[0].data<int32_t>()[0];
      if (ids_ == DType::I64) h[0].data<int64_t>()[n] = id;
      else h[0].data<int32_t>()[n] = static_cast<int32_t>(id);
    }
    float* t = h[1].data<float>();
    for (int64_t i = 0; i < h[1].numel(); i++) t[i] = gauss(rng);
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    embedding_forward(in[0], in[1], out[0]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    return {ref::embedding(in[0], in[1], C_)};
  }
  std::vector<int> grad_inputs() const override { return {1}; }
  std::vector<int> accumulating() const override { return {1}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& cot,
                std::vector<Tensor>& g) const override {
    embedding_backward(in[0], cot[0], g[0]);
  }

 private:
  int64_t N_, V_, C_;
  DType ids_;
};

class ElementwiseCase : public Case {
 public:
  ElementwiseCase(std::string which, Shape shape) : Case(which, dims(shape)), which_(std::move(which)), shape_(shape) {
    tol.fwd = tol.dev = 1e-6;
    tol.why = "one or two f32 roundings per element (the device may fuse a multiply-add); bf16 rounds once on store";
  }
  std::vector<Spec> inputs() const override {
    if (which_ == "scale") return {{"x", shape_}};
    if (which_ == "axpy") return {{"x", shape_}, {"y0", shape_}};
    if (which_ == "add_inplace") return {{"acc0", shape_}, {"b", shape_}};
    return {{"a", shape_}, {"b", shape_}};
  }
  std::vector<Spec> outputs() const override { return {{"out", shape_}}; }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (which_ == "add") add(in[0], in[1], out[0]);
    if (which_ == "scale") scale(in[0], kS, out[0]);
    if (which_ == "axpy") out[0].copy_from(in[1]), axpy(kS, in[0], out[0]);
    if (which_ == "add_inplace") out[0].copy_from(in[0]), add_inplace(out[0], in[1]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    ref::Vec r(in[0].size());
    for (size_t i = 0; i < r.size(); i++) {
      if (which_ == "scale") r[i] = static_cast<double>(kS) * in[0][i];
      else if (which_ == "axpy") r[i] = in[1][i] + static_cast<double>(kS) * in[0][i];
      else r[i] = in[0][i] + in[1][i];
    }
    return {r};
  }
  bool cpu_bf16() const override { return true; }

 private:
  static constexpr float kS = -1.375f;
  std::string which_;
  Shape shape_;
};

// dropout_forward with the micro-batch's seed as an i64 input (read on the device) and a mix; in place (y = x), or
// accumulating into y (y0 + dropout(x)), as the adapter's backward runs it. The reference draws the mask in f64
// from the same hash.
class DropoutCase : public Case {
 public:
  DropoutCase(Shape shape, float p, uint64_t mix, bool inplace, bool accumulate)
      : Case("dropout",
             cat_str(dims(shape), "_p", num(p), "_mix", mix, inplace ? "_inplace" : "", accumulate ? "_acc" : "")),
        shape_(shape), p_(p), mix_(mix), inplace_(inplace), accumulate_(accumulate) {
    WICK_CHECK(!(inplace && accumulate), "dropout case: in place or accumulating, not both");
    tol.fwd = tol.dev = 1e-6;
    tol.why = "the same mask on every device; a kept value is x * (1 / (1 - p)) in f32, one rounding (and the sum's)";
  }
  std::vector<Spec> inputs() const override {
    if (accumulate_) return {{"x", shape_}, {"seed", {1}, Kind::I64}, {"y0", shape_}};
    return {{"x", shape_}, {"seed", {1}, Kind::I64}};
  }
  std::vector<Spec> outputs() const override { return {{"y", shape_}}; }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (size_t t : {size_t(0), size_t(2)}) {
      if (t >= h.size()) continue;
      float* v = h[t].data<float>();
      for (int64_t i = 0; i < h[t].numel(); i++) v[i] = gauss(rng);
    }
    // Below 2^53, so that the f64 reference holds it exactly.
    h[1].data<int64_t>()[0] = static_cast<int64_t>((static_cast<uint64_t>(rng.next_u32()) << 21) ^ rng.next_u32());
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (accumulate_) {
      out[0].copy_from(in[2]);
      return dropout_forward(in[0], p_, in[1], mix_, out[0], /*accumulate*/ true);
    }
    if (!inplace_) return dropout_forward(in[0], p_, in[1], mix_, out[0]);
    out[0].copy_from(in[0]);
    dropout_forward(out[0], p_, in[1], mix_, out[0]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    const uint64_t seed = dropout_mask_seed(static_cast<uint64_t>(in[1][0]), mix_);
    const double keep = static_cast<double>(1.0f / (1.0f - p_));
    ref::Vec r(in[0].size());
    for (size_t i = 0; i < r.size(); i++)
      r[i] = (accumulate_ ? in[2][i] : 0.0) + (dropout_uniform(seed, i) >= p_ ? in[0][i] * keep : 0.0);
    return {r};
  }
  bool cpu_bf16() const override { return true; }

 private:
  Shape shape_;
  float p_;
  uint64_t mix_;
  bool inplace_, accumulate_;
};

Kind kind_of(DType t) {
  switch (t) {
    case DType::F32: return Kind::F32;
    case DType::BF16: return Kind::BF16;
    case DType::F16: return Kind::F16;
    case DType::I32: return Kind::I32;
    case DType::I64: return Kind::I64;
  }
  return Kind::F32;
}

int mant_bits(DType t) { return t == DType::F32 ? 23 : t == DType::F16 ? 10 : 7; }

class CastCase : public Case {
 public:
  CastCase(Shape shape, DType from, DType to)
      : Case("cast", cat_str(dtype_name(from), "_to_", dtype_name(to), "_", dims(shape))), shape_(shape),
        from_(from), to_(to) {
    tol.fwd = tol.dev = 0;
    tol.why = "round to nearest even is exact: results must be bit-identical";
  }
  std::vector<Spec> inputs() const override { return {{"src", shape_, kind_of(from_)}}; }
  std::vector<Spec> outputs() const override { return {{"dst", shape_, kind_of(to_)}}; }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    // Magnitudes in [e^-4, e^4] (normal in f16 and bf16), random signs; the first few are exact ties.
    const float ties[] = {1.00390625f, 1.01171875f, -1.00048828125f, 1.00146484375f};
    float* p = h[0].data<float>();
    for (int64_t i = 0; i < h[0].numel(); i++) {
      p[i] = std::exp(rng.uniform(-4.0f, 4.0f)) * (rng.next_u32() & 1 ? -1.0f : 1.0f);
      if (i < 4) p[i] = ties[i];
    }
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { cast(in[0], out[0]); }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    ref::Vec r(in[0].size());
    for (size_t i = 0; i < r.size(); i++) r[i] = ref::round_mantissa(in[0][i], mant_bits(to_));
    return {r};
  }
  bool device_bf16() const override { return false; }

 private:
  Shape shape_;
  DType from_, to_;
};

class FillCase : public Case {
 public:
  FillCase(Shape shape, DType dt, float v)
      : Case("fill", cat_str(dtype_name(dt), "_", num(v), "_", dims(shape))), shape_(shape), dt_(dt), v_(v) {
    tol.fwd = tol.dev = 0;
    tol.why = "every element is the value rounded once to the dtype: exact";
  }
  std::vector<Spec> inputs() const override { return {}; }
  std::vector<Spec> outputs() const override { return {{"t", shape_, kind_of(dt_)}}; }
  void forward(const std::vector<Tensor>&, std::vector<Tensor>& out) const override { fill(out[0], v_); }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>&) const override {
    const double v = dt_ == DType::I32 ? std::trunc(static_cast<double>(v_)) : ref::round_mantissa(v_, mant_bits(dt_));
    return {ref::Vec(static_cast<size_t>(shape_numel(shape_)), v)};
  }
  bool device_bf16() const override { return false; }

 private:
  Shape shape_;
  DType dt_;
  float v_;
};

class SumSquaresCase : public Case {
 public:
  explicit SumSquaresCase(std::vector<Shape> shapes) : Case("sum_squares", tag(shapes)), shapes_(std::move(shapes)) {
    tol.fwd = 1e-6;
    tol.dev = 1e-5;
    tol.why = "f64 accumulation on the CPU (then stored as f32 here: 2^-24); the device sums f32 blocks";
  }
  static std::string tag(const std::vector<Shape>& s) {
    std::ostringstream os;
    for (size_t i = 0; i < s.size(); i++) os << (i ? "_" : "") << dims(s[i]);
    return os.str();
  }
  std::vector<Spec> inputs() const override {
    std::vector<Spec> r;
    for (size_t i = 0; i < shapes_.size(); i++) r.push_back({cat_str("t", i), shapes_[i], Kind::F32});
    return r;
  }
  std::vector<Spec> outputs() const override { return {{"sum", {1}, Kind::F32}}; }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    const double s = sum_squares(in);
    out[0].copy_from(Tensor::from_f32({static_cast<float>(s)}, {1}).to(out[0].device()));
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    return {{ref::sum_squares(in)}};
  }
  bool device_bf16() const override { return false; }

 private:
  std::vector<Shape> shapes_;
};

class AdamWCase : public Case {
 public:
  AdamWCase(Shape shape, int64_t step, float wd, float gs)
      : Case("adamw", cat_str(dims(shape), "_step", step, "_wd", num(wd), "_gs", num(gs))),
        shape_(shape), step_(step), gs_(gs) {
    cfg_.lr = 1e-2f;
    cfg_.weight_decay = wd;
    tol.fwd = tol.dev = 1e-6;
    tol.why = "a few f32 roundings per element against the f64 textbook formula (torch's op order, FMA in lerp)";
  }
  std::vector<Spec> inputs() const override {
    return {{"p0", shape_, Kind::F32}, {"g", shape_, Kind::F32}, {"m0", shape_, Kind::F32}, {"v0", shape_, Kind::F32}};
  }
  std::vector<Spec> outputs() const override {
    return {{"p", shape_, Kind::F32}, {"m", shape_, Kind::F32}, {"v", shape_, Kind::F32}};
  }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int64_t i = 0; i < h[0].numel(); i++) {
      h[0].data<float>()[i] = gauss(rng);
      h[1].data<float>()[i] = gauss(rng) * (i % 5 == 0 ? 1e-4f : 0.1f);  // some grads far below sqrt(v)
      h[2].data<float>()[i] = 0.02f * gauss(rng);
      h[3].data<float>()[i] = rng.uniform(0.0f, 1e-3f);
    }
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    out[0].copy_from(in[0]);
    out[1].copy_from(in[2]);
    out[2].copy_from(in[3]);
    adamw_step(out[0], in[1], out[1], out[2], cfg_, step_, gs_);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    ref::Vec p = in[0], m = in[2], v = in[3];
    ref::adamw(p, in[1], m, v, cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, step_, gs_);
    return {p, m, v};
  }
  bool device_bf16() const override { return false; }

 private:
  Shape shape_;
  int64_t step_;
  float gs_;
  AdamWConfig cfg_;
};


// low_rank_product (ops/low_rank.h): y (=|+=) scale (x A^T) B^T. On CUDA, M <= 64 and r <= 64 run the fused
// kernel, the others (M 129, r 72 here) the two-matmul fallback.
class LowRankCase : public Case {
 public:
  LowRankCase(const LowRankShape& s)
      : Case("low_rank_product", cat_str("M", s.M, "_in", s.in, "_r", s.r, "_out", s.out, s.accumulate ? "_acc" : "",
                                         s.scale != 1.0f ? "_scale" + num(s.scale) : std::string())),
        s_(s) {
    tol.why = "two f32 products (K = in, then K = r) in blocked orders: rel error ~sqrt(in) 2^-24; u stays f32 on "
              "the fused path; bf16: y rounded once (2^-9), the CUDA fallback also rounds u to bf16";
  }
  std::vector<Spec> inputs() const override {
    std::vector<Spec> in{{"x", {s_.M, s_.in}}, {"A", {s_.r, s_.in}}, {"B", {s_.out, s_.r}}};
    if (s_.accumulate) in.push_back({"y0", {s_.M, s_.out}});
    return in;
  }
  std::vector<Spec> outputs() const override { return {{"y", {s_.M, s_.out}}}; }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (s_.accumulate) out[0].copy_from(in[3]);
    low_rank_product(in[0], in[1], in[2], s_.scale, out[0], s_.accumulate);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    const ref::Vec u = ref::matmul(in[0], in[1], nullptr, nullptr, 1, s_.M, s_.r, s_.in, false, true, false, 1.0, 0.0);
    return {ref::matmul(u, in[2], s_.accumulate ? &in[3] : nullptr, nullptr, 1, s_.M, s_.out, s_.r, false, true, false,
                        s_.scale, s_.accumulate ? 1.0 : 0.0)};
  }
  double ref_cost() const override { return 2.0 * s_.M * s_.r * (s_.in + s_.out); }
  bool cpu_bf16() const override { return true; }

 private:
  LowRankShape s_;
};

// weight_grad_products (ops/weight_grads.h): a set of products out_j (+)= scale_j a_j^T b_j in one op. On CUDA the
// bf16 products with M and R multiples of 8, R <= 64 run the tensor-core kernel (one launch a rank tile, K split
// over blocks), the others cuBLASLt; f32 runs are cuBLASLt throughout.
class WeightGradsCase : public Case {
 public:
  WeightGradsCase(int64_t K, std::vector<WeightGradSpec> ps) : Case("weight_grad_products", tag(K, ps)), K_(K), ps_(std::move(ps)) {
    tol.why = "f32 sums over K of products of the same (bf16-exact) inputs, in blocked orders: the output is f32, so "
              "only the summation order differs (rel ~sqrt(K) 2^-24)";
    tol.dev_bf16 = tol.cpu_bf16 = 1e-4;
  }
  static std::string tag(int64_t K, const std::vector<WeightGradSpec>& ps) {
    std::string t = cat_str("K", K);
    for (const WeightGradSpec& p : ps)
      t += cat_str("_", p.transposed ? "T" : "", "M", p.M, "R", p.R, p.accumulate ? "" : "set");
    return t;
  }
  static float scale(size_t j) { return 0.5f + 0.75f * static_cast<float>(j); }
  Shape out_shape(const WeightGradSpec& p) const { return p.transposed ? Shape{p.R, p.M} : Shape{p.M, p.R}; }
  // Inputs a_0, b_0, out0_0, a_1, ...; out0_j only with accumulate.
  std::vector<Spec> inputs() const override {
    std::vector<Spec> in;
    for (size_t j = 0; j < ps_.size(); j++) {
      in.push_back({cat_str("a", j), {K_, ps_[j].M}});
      in.push_back({cat_str("b", j), {K_, ps_[j].R}});
      if (ps_[j].accumulate) in.push_back({cat_str("out0_", j), out_shape(ps_[j]), Kind::F32});
    }
    return in;
  }
  std::vector<Spec> outputs() const override {
    std::vector<Spec> out;
    for (size_t j = 0; j < ps_.size(); j++) out.push_back({cat_str("out", j), out_shape(ps_[j]), Kind::F32});
    return out;
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    std::vector<WeightGradProduct> ps;
    size_t i = 0;
    for (size_t j = 0; j < ps_.size(); j++) {
      const Tensor& a = in[i++];
      const Tensor& b = in[i++];
      if (ps_[j].accumulate) out[j].copy_from(in[i++]);
      ps.push_back({MatrixView::whole(a), MatrixView::whole(b), MatrixView::whole(out[j]), ps_[j].transposed, scale(j),
                    ps_[j].accumulate});
    }
    weight_grad_products(ps);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    std::vector<ref::Vec> out;
    size_t i = 0;
    for (size_t j = 0; j < ps_.size(); j++) {
      const ref::Vec& a = in[i++];
      const ref::Vec& b = in[i++];
      const ref::Vec* c0 = ps_[j].accumulate ? &in[i++] : nullptr;
      const double beta = ps_[j].accumulate ? 1.0 : 0.0;
      const WeightGradSpec& p = ps_[j];
      out.push_back(p.transposed ? ref::matmul(b, a, c0, nullptr, 1, p.R, p.M, K_, true, false, false, scale(j), beta)
                                 : ref::matmul(a, b, c0, nullptr, 1, p.M, p.R, K_, true, false, false, scale(j), beta));
    }
    return out;
  }
  double ref_cost() const override {
    double c = 0;
    for (const WeightGradSpec& p : ps_) c += 2.0 * K_ * p.M * p.R;
    return c;
  }
  bool cpu_bf16() const override { return true; }

 private:
  int64_t K_;
  std::vector<WeightGradSpec> ps_;
};

// segmented_lora_add (ops/segmented_lora.h): several adapters over row segments of one batch, rows between the
// segments untouched. The tag counts the segments and lists their distinct ranks.
class SegmentedLoraCase : public Case {
 public:
  SegmentedLoraCase(int64_t M, int64_t in, int64_t out, std::vector<LoraSegmentSpec> segs)
      : Case("segmented_lora", tag(M, in, out, segs)), M_(M), in_(in), out_(out), segs_(std::move(segs)) {
    tol.fwd = tol.dev = 2e-5;
    tol.why = "per row two f32 products (K = in, then K = r) in different orders (sgemm's blocks; the kernel's "
              "128-wide slices summed in order): rel error ~sqrt(in) 2^-24; bf16: y rounded once (2^-9)";
  }
  static std::string tag(int64_t M, int64_t in, int64_t out, const std::vector<LoraSegmentSpec>& segs) {
    std::string t = cat_str("M", M, "_in", in, "_out", out, "_segs", segs.size(), "_r");
    std::vector<int64_t> seen;  // each rank once, in order of appearance
    for (const LoraSegmentSpec& s : segs) {
      if (std::find(seen.begin(), seen.end(), s.r) != seen.end()) continue;
      t += cat_str(seen.empty() ? "" : "x", s.r);
      seen.push_back(s.r);
    }
    return t;
  }
  std::vector<Spec> inputs() const override {
    std::vector<Spec> in{{"x", {M_, in_}}, {"y0", {M_, out_}}};
    for (size_t i = 0; i < segs_.size(); i++) {
      in.push_back({cat_str("A", i), {segs_[i].r, in_}, Kind::F32});
      in.push_back({cat_str("B", i), {out_, segs_[i].r}, Kind::F32});
    }
    return in;
  }
  std::vector<Spec> outputs() const override { return {{"y", {M_, out_}}}; }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    out[0].copy_from(in[1]);
    std::vector<LoraSegment> segs;
    for (size_t i = 0; i < segs_.size(); i++)
      segs.push_back({segs_[i].row0, segs_[i].rows, &in[2 + 2 * i], &in[3 + 2 * i], segs_[i].scale});
    segmented_lora_add(in[0], segs, out[0]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    ref::Vec y = in[1];
    for (size_t i = 0; i < segs_.size(); i++) {
      const LoraSegmentSpec& s = segs_[i];
      const ref::Vec& A = in[2 + 2 * i];
      const ref::Vec& B = in[3 + 2 * i];
      for (int64_t row = s.row0; row < s.row0 + s.rows; row++) {
        std::vector<double> u(static_cast<size_t>(s.r), 0.0);
        for (int64_t k = 0; k < s.r; k++)
          for (int64_t d = 0; d < in_; d++) u[static_cast<size_t>(k)] += in[0][static_cast<size_t>(row * in_ + d)] * A[static_cast<size_t>(k * in_ + d)];
        for (int64_t o = 0; o < out_; o++) {
          double acc = 0.0;
          for (int64_t k = 0; k < s.r; k++) acc += u[static_cast<size_t>(k)] * B[static_cast<size_t>(o * s.r + k)];
          y[static_cast<size_t>(row * out_ + o)] += s.scale * acc;
        }
      }
    }
    return {y};
  }
  double ref_cost() const override {
    double c = 0;
    for (const LoraSegmentSpec& s : segs_) c += 2.0 * s.rows * s.r * (in_ + out_);
    return c;
  }

 private:
  int64_t M_, in_, out_;
  std::vector<LoraSegmentSpec> segs_;
};

// The adapter terms of a small_m case (SmallMLowRank): member j with rank r_j > 0 reads u's columns
// [col_j, col_j + r_j) (u [M, sum r] f32, the case's input "u") and its input "B<j>" [out_j, r_j].
struct SmallMAdapters {
  int64_t M = 0;
  std::vector<int64_t> ranks, outs;
  bool any() const { return !ranks.empty(); }
  int64_t col(size_t j) const {
    int64_t c = 0;
    for (size_t t = 0; t < j; t++) c += ranks[t];
    return c;
  }
  static float scale(size_t j) { return 0.5f + 0.25f * static_cast<float>(j); }
  std::string tag() const {
    if (!any()) return "";
    std::string t = "_lora";
    for (size_t j = 0; j < ranks.size(); j++) t += cat_str(j ? "x" : "", ranks[j]);
    return t;
  }
  void specs(std::vector<Spec>& in) const {
    if (!any()) return;
    in.push_back({"u", {M, col(ranks.size())}, Kind::F32});
    for (size_t j = 0; j < ranks.size(); j++)
      if (ranks[j] > 0) in.push_back({cat_str("B", j), {outs[j], ranks[j]}});
  }
  // From the case's inputs, "u" at index first and the B's after it.
  SmallMLowRank terms(const std::vector<Tensor>& in, size_t first) const {
    SmallMLowRank t;
    t.u = &in[first];
    size_t k = first + 1;
    for (size_t j = 0; j < ranks.size(); j++) {
      t.B.push_back(ranks[j] > 0 ? &in[k++] : nullptr);
      t.col.push_back(col(j));
      t.scale.push_back(scale(j));
    }
    return t;
  }
  // y_j [M, out_j] += scale_j u_j B_j^T, in f64.
  void add(const std::vector<ref::Vec>& in, size_t first, std::vector<ref::Vec>& y) const {
    if (!any()) return;
    const ref::Vec& u = in[first];
    const int64_t U = col(ranks.size());
    size_t k = first + 1;
    for (size_t j = 0; j < ranks.size(); j++) {
      if (ranks[j] == 0) continue;
      const ref::Vec& B = in[k++];
      for (int64_t m = 0; m < M; m++)
        for (int64_t o = 0; o < outs[j]; o++) {
          double acc = 0.0;
          for (int64_t r = 0; r < ranks[j]; r++)
            acc += u[static_cast<size_t>(m * U + col(j) + r)] * B[static_cast<size_t>(o * ranks[j] + r)];
          y[j][static_cast<size_t>(m * outs[j] + o)] += scale(j) * acc;
        }
    }
  }
};

// SmallMOptions::input_norm in a small_m case: 0 none, 1 Qwen's weight, 2 Gemma's 1 + w; its weight is the case's
// last input.
struct SmallMInputNorm {
  int kind = 0;
  static constexpr float kEps = 1e-6f;
  std::string tag() const { return kind == 0 ? "" : kind == 1 ? "_norm" : "_norm_offset1"; }
  void specs(std::vector<Spec>& in, int64_t width) const {
    if (kind) in.push_back({"norm_w", {width}});
  }
  SmallMNorm norm(const std::vector<Tensor>& in) const {
    return {&in.back(), kEps, kind == 2 ? RmsWeight::OneOffset : RmsWeight::Scale};
  }
  // x as the projections read it: rms_norm(x) in f64, or x itself.
  ref::Vec input(const std::vector<ref::Vec>& in, int64_t width) const {
    if (!kind) return in[0];
    ref::Vec w = in.back(), y, rstd;
    if (kind == 2)
      for (double& v : w) v += 1.0;
    ref::rms_norm(in[0], w, width, kEps, y, rstd);
    return y;
  }
};

// small_m_linear (ops/small_m_linear.h): up to three projections of one x [M <= 8, in] in one launch on CUDA.
// Shapes off multiples of 8 take the kernel's one-element loads, the others its 16-byte loads; 1..3 members.
class SmallMLinearCase : public Case {
 public:
  explicit SmallMLinearCase(const SmallMShape& s) : Case("small_m_linear", tag(s)), s_(s), ad_{s.M, s.ranks, s.outs} {
    tol.fwd = tol.dev = 2e-5;
    tol.why = "f32 dot products of length in in a fixed order (the CPU twin in index order, the kernel per lane then "
              "a butterfly): rel error ~sqrt(in) 2^-24; bf16: y rounded once (2^-9) after the f32 bias add";
    // same bf16 inputs, f32 output: only the order differs (an input norm rounds x to bf16 after normalising it:
    // the default bf16 bounds)
    if (s_.y_f32 && !s_.norm) tol.dev_bf16 = tol.cpu_bf16 = 1e-4;
  }
  static std::string tag(const SmallMShape& s) {
    std::string t = cat_str("M", s.M, "_in", s.in, "_out");
    for (size_t j = 0; j < s.outs.size(); j++) t += cat_str(j ? "x" : "", s.outs[j]);
    if (s.bias) t += "_bias";
    if (s.y_f32) t += "_yf32";
    if (s.residual) t += "_res";
    if (s.settled) t += "_settled";
    return t + SmallMAdapters{s.M, s.ranks, s.outs}.tag() + SmallMInputNorm{s.norm}.tag();
  }
  std::vector<Spec> inputs() const override {
    std::vector<Spec> in{{"x", {s_.M, s_.in}}};
    for (size_t j = 0; j < s_.outs.size(); j++) in.push_back({cat_str("w", j), {s_.outs[j], s_.in}});
    if (s_.bias)
      for (size_t j = 0; j < s_.outs.size(); j++) in.push_back({cat_str("b", j), {s_.outs[j]}});
    if (s_.residual) in.push_back({"res", {s_.M, s_.outs[0]}, s_.y_f32 ? Kind::F32 : Kind::Act});
    ad_.specs(in);
    SmallMInputNorm{s_.norm}.specs(in, s_.in);
    return in;
  }
  // Index of the first adapter input ("u").
  size_t adapters_at() const { return 1 + s_.outs.size() * (s_.bias ? 2 : 1) + (s_.residual ? 1 : 0); }
  std::vector<Spec> outputs() const override {
    std::vector<Spec> out;
    for (size_t j = 0; j < s_.outs.size(); j++)
      out.push_back({cat_str("y", j), {s_.M, s_.outs[j]}, s_.y_f32 ? Kind::F32 : Kind::Act});
    return out;
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    const size_t n = s_.outs.size();
    std::vector<const Tensor*> w, b;
    std::vector<Tensor*> y;
    for (size_t j = 0; j < n; j++) {
      w.push_back(&in[1 + j]);
      if (s_.bias) b.push_back(&in[1 + n + j]);
      y.push_back(&out[j]);
    }
    SmallMOptions opt;
    opt.weights_settled = s_.settled;
    opt.residual = s_.residual ? &in[adapters_at() - 1] : nullptr;
    opt.residual_settled = s_.settled;  // uploaded before the launch, as the weights
    const SmallMLowRank terms = ad_.any() ? ad_.terms(in, adapters_at()) : SmallMLowRank{};
    opt.low_rank = ad_.any() ? &terms : nullptr;
    const SmallMNorm norm = SmallMInputNorm{s_.norm}.norm(in);
    opt.input_norm = s_.norm ? &norm : nullptr;
    small_m_linear(in[0], w, b, y, opt);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    const size_t n = s_.outs.size();
    const ref::Vec x = SmallMInputNorm{s_.norm}.input(in, s_.in);
    std::vector<ref::Vec> r;
    for (size_t j = 0; j < n; j++)
      r.push_back(ref::matmul(x, in[1 + j], nullptr, s_.bias ? &in[1 + n + j] : nullptr, 1, s_.M, s_.outs[j], s_.in,
                              false, true, false, 1.0, 0.0));
    ad_.add(in, adapters_at(), r);
    if (s_.residual)
      for (size_t i = 0; i < r[0].size(); i++) r[0][i] += in[adapters_at() - 1][i];
    return r;
  }
  double ref_cost() const override {
    double o = 0;
    for (int64_t v : s_.outs) o += v;
    return 2.0 * s_.M * s_.in * o;
  }
  bool cpu_bf16() const override { return true; }

 private:
  SmallMShape s_;
  SmallMAdapters ad_;
};

// small_m_glu (ops/small_m_linear.h): the MLP's gate/up projections and GLU in one launch on CUDA.
class SmallMGluCase : public Case {
 public:
  SmallMGluCase(int64_t M, int64_t in, int64_t I, bool gelu, bool bias, bool settled, const std::vector<int64_t>& ranks,
                int norm)
      : Case("small_m_glu", cat_str("M", M, "_in", in, "_I", I, gelu ? "_gelu" : "_silu", bias ? "_bias" : "",
                                    settled ? "_settled" : "", SmallMAdapters{M, ranks, {I, I}}.tag(),
                                    SmallMInputNorm{norm}.tag())),
        M_(M), in_(in), I_(I), gelu_(gelu), bias_(bias), settled_(settled), ad_{M, ranks, {I, I}}, norm_{norm} {
    tol.fwd = tol.dev = 2e-5;
    tol.why = "two f32 dot products of length in (rel error ~sqrt(in) 2^-24), then the GLU's exp/tanh in f32; "
              "bf16: g, u, act(g) and s rounded (the CUDA kernel as the unfused path; the CPU twin in f32 leaves "
              "act(g) unrounded): a few 2^-9";
  }
  std::vector<Spec> inputs() const override {
    std::vector<Spec> in{{"x", {M_, in_}}, {"w_gate", {I_, in_}}, {"w_up", {I_, in_}}};
    if (bias_) in.push_back({"b_gate", {I_}}), in.push_back({"b_up", {I_}});
    ad_.specs(in);
    norm_.specs(in, in_);
    return in;
  }
  std::vector<Spec> outputs() const override { return {{"s", {M_, I_}}}; }
  size_t adapters_at() const { return bias_ ? 5 : 3; }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    SmallMOptions opt;
    opt.weights_settled = settled_;
    const SmallMLowRank terms = ad_.any() ? ad_.terms(in, adapters_at()) : SmallMLowRank{};
    opt.low_rank = ad_.any() ? &terms : nullptr;
    const SmallMNorm norm = norm_.norm(in);
    opt.input_norm = norm_.kind ? &norm : nullptr;
    small_m_glu(in[0], in[1], in[2], bias_ ? &in[3] : nullptr, bias_ ? &in[4] : nullptr,
                gelu_ ? GluAct::GeluTanh : GluAct::Silu, out[0], opt);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    const ref::Vec x = norm_.input(in, in_);
    std::vector<ref::Vec> gu{
        ref::matmul(x, in[1], nullptr, bias_ ? &in[3] : nullptr, 1, M_, I_, in_, false, true, false, 1.0, 0.0),
        ref::matmul(x, in[2], nullptr, bias_ ? &in[4] : nullptr, 1, M_, I_, in_, false, true, false, 1.0, 0.0)};
    ad_.add(in, adapters_at(), gu);
    return {gelu_ ? ref::geglu(gu[0], gu[1]) : ref::swiglu(gu[0], gu[1])};
  }
  double ref_cost() const override { return 4.0 * M_ * in_ * I_; }
  bool cpu_bf16() const override { return true; }

 private:
  int64_t M_, in_, I_;
  bool gelu_, bias_, settled_;
  SmallMAdapters ad_;
  SmallMInputNorm norm_;
};

}  // namespace

CasePtr make_small_m_linear(const SmallMShape& s) { return std::make_unique<SmallMLinearCase>(s); }
CasePtr make_small_m_glu(int64_t M, int64_t in, int64_t I, bool gelu, bool bias, bool settled,
                         const std::vector<int64_t>& ranks, int norm) {
  return std::make_unique<SmallMGluCase>(M, in, I, gelu, bias, settled, ranks, norm);
}
CasePtr make_matmul(const MatmulShape& s) { return std::make_unique<MatmulCase>(s); }
CasePtr make_low_rank(const LowRankShape& s) { return std::make_unique<LowRankCase>(s); }
CasePtr make_weight_grads(int64_t K, const std::vector<WeightGradSpec>& products) {
  return std::make_unique<WeightGradsCase>(K, products);
}
CasePtr make_segmented_lora(int64_t M, int64_t in, int64_t out, const std::vector<LoraSegmentSpec>& segs) {
  return std::make_unique<SegmentedLoraCase>(M, in, out, segs);
}
CasePtr make_linear(const Shape& lead, int64_t in, int64_t out, bool bias) {
  return std::make_unique<LinearCase>(lead, in, out, bias);
}
CasePtr make_embedding(int64_t N, int64_t V, int64_t C, DType ids) { return std::make_unique<EmbeddingCase>(N, V, C, ids); }
CasePtr make_elementwise(const std::string& which, const Shape& shape) {
  WICK_CHECK(which == "add" || which == "add_inplace" || which == "scale" || which == "axpy", "unknown op " << which);
  return std::make_unique<ElementwiseCase>(which, shape);
}
CasePtr make_dropout(const Shape& shape, float p, uint64_t mix, bool inplace, bool accumulate) {
  return std::make_unique<DropoutCase>(shape, p, mix, inplace, accumulate);
}
CasePtr make_cast(const Shape& shape, DType from, DType to) { return std::make_unique<CastCase>(shape, from, to); }
CasePtr make_fill(const Shape& shape, DType dtype, float value) { return std::make_unique<FillCase>(shape, dtype, value); }
CasePtr make_sum_squares(const std::vector<Shape>& shapes) { return std::make_unique<SumSquaresCase>(shapes); }
CasePtr make_adamw(const Shape& shape, int64_t step, float wd, float gs) {
  return std::make_unique<AdamWCase>(shape, step, wd, gs);
}

}  // namespace wick::opcheck
