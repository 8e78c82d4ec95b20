// Op cases (ops/opcheck.h) for the row-wise ops: RMSNorm, LayerNorm, softmax, SwiGLU / GeGLU, RoPE, cross entropy.
#include <cmath>

#include "ops/cross_entropy.h"
#include "ops/norm.h"
#include "ops/opcheck.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "ops/swiglu.h"

namespace wick::opcheck {

namespace {

std::string nc(int64_t N, int64_t C, const char* c = "C") { return cat_str("N", N, "_", c, C); }

const char* kRowWhy =
    "f32 row reductions over C (<= 4864) against f64: ~1e-6; the device reduces in another order; in bf16 the "
    "output is rounded (2^-9), RMSNorm rounds x*rstd before the weight as HF does";

// RMSNorm with a weight (Qwen2RMSNorm) or an offset weight, 1 + w (Gemma3RMSNorm: tags end in _offset1).
class RmsNormCase : public Case {
 public:
  RmsNormCase(int64_t N, int64_t C, float eps, RmsWeight kind)
      : Case("rms_norm", nc(N, C) + (kind == RmsWeight::OneOffset ? "_offset1" : "")), N_(N), C_(C), eps_(eps),
        kind_(kind) {
    tol.why = kRowWhy;
  }
  std::vector<Spec> inputs() const override { return {{"x", {N_, C_}}, {"w", {C_}}}; }
  std::vector<Spec> outputs() const override { return {{"y", {N_, C_}}, {"rstd", {N_}, Kind::F32}}; }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int64_t i = 0; i < h[0].numel(); i++) h[0].data<float>()[i] = gauss(rng);
    const float mean = kind_ == RmsWeight::OneOffset ? 0.0f : 1.0f;  // the effective scale near 1 either way
    for (int64_t i = 0; i < C_; i++) h[1].data<float>()[i] = mean + 0.5f * gauss(rng);
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    rms_norm_forward(in[0], in[1], eps_, out[0], out[1], kind_);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    ref::Vec y, r, w = in[1];
    if (kind_ == RmsWeight::OneOffset)
      for (double& v : w) v += 1.0;
    ref::rms_norm(in[0], w, C_, eps_, y, r);
    return {y, r};
  }
  std::vector<int> grad_inputs() const override { return {0, 1}; }
  std::vector<int> accumulating() const override { return {1}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& cot,
                std::vector<Tensor>& g) const override {
    rms_norm_backward(cot[0], in[0], in[1], out[1], g[0], &g[1], kind_);
  }

 private:
  int64_t N_, C_;
  float eps_;
  RmsWeight kind_;
};

class LayerNormCase : public Case {
 public:
  LayerNormCase(int64_t N, int64_t C, float eps) : Case("layer_norm", nc(N, C)), N_(N), C_(C), eps_(eps) { tol.why = kRowWhy; }
  std::vector<Spec> inputs() const override { return {{"x", {N_, C_}}, {"w", {C_}}, {"b", {C_}}}; }
  std::vector<Spec> outputs() const override {
    return {{"y", {N_, C_}}, {"mean", {N_}, Kind::F32}, {"rstd", {N_}, Kind::F32}};
  }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int64_t i = 0; i < h[0].numel(); i++) h[0].data<float>()[i] = 0.5f + gauss(rng);  // non-zero mean
    for (int64_t i = 0; i < C_; i++) h[1].data<float>()[i] = 1.0f + 0.5f * gauss(rng), h[2].data<float>()[i] = gauss(rng);
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    layer_norm_forward(in[0], in[1], in[2], eps_, out[0], out[1], out[2]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    ref::Vec y, m, r;
    ref::layer_norm(in[0], in[1], in[2], C_, eps_, y, m, r);
    return {y, m, r};
  }
  std::vector<int> grad_inputs() const override { return {0, 1, 2}; }
  std::vector<int> accumulating() const override { return {1, 2}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& cot,
                std::vector<Tensor>& g) const override {
    layer_norm_backward(cot[0], in[0], in[1], out[1], out[2], g[0], &g[1], &g[2]);
  }

 private:
  int64_t N_, C_;
  float eps_;
};

class SoftmaxCase : public Case {
 public:
  SoftmaxCase(int64_t N, int64_t C) : Case("softmax", nc(N, C)), N_(N), C_(C) { tol.why = kRowWhy; }
  std::vector<Spec> inputs() const override { return {{"x", {N_, C_}}}; }
  std::vector<Spec> outputs() const override { return {{"y", {N_, C_}}}; }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int64_t i = 0; i < h[0].numel(); i++) h[0].data<float>()[i] = 3.0f * gauss(rng);
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { softmax_forward(in[0], out[0]); }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override { return {ref::softmax(in[0], C_)}; }
  std::vector<int> grad_inputs() const override { return {0}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>&, const std::vector<Tensor>& out, const std::vector<Tensor>& cot,
                std::vector<Tensor>& g) const override {
    softmax_backward(out[0], cot[0], g[0]);
  }

 private:
  int64_t N_, C_;
};

// The gated MLP activation (ops/swiglu.h): SiLU ("swiglu" cases) or GELU tanh ("geglu").
class GluCase : public Case {
 public:
  GluCase(int64_t N, int64_t I, GluAct act)
      : Case(act == GluAct::Silu ? "swiglu" : "geglu", nc(N, I, "I")), N_(N), I_(I), act_(act) {
    tol.fwd = 1e-6;
    tol.why = "elementwise: a few f32 roundings and one exp (tanh) per element; bf16 rounds act(gate) and the output";
  }
  std::vector<Spec> inputs() const override { return {{"gate", {N_, I_}}, {"up", {N_, I_}}}; }
  std::vector<Spec> outputs() const override { return {{"out", {N_, I_}}}; }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int64_t i = 0; i < h[0].numel(); i++) h[0].data<float>()[i] = 3.0f * gauss(rng), h[1].data<float>()[i] = gauss(rng);
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    glu_forward(in[0], in[1], act_, out[0]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    return {act_ == GluAct::Silu ? ref::swiglu(in[0], in[1]) : ref::geglu(in[0], in[1])};
  }
  std::vector<int> grad_inputs() const override { return {0, 1}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& cot,
                std::vector<Tensor>& g) const override {
    glu_backward(cot[0], in[0], in[1], act_, g[0], g[1]);
  }

 private:
  int64_t N_, I_;
  GluAct act_;
};

class RopeCase : public Case {
 public:
  RopeCase(int64_t B, int64_t T, int64_t H, int64_t D, float theta, int32_t max_pos, bool packed, bool inplace)
      : Case("rope", cat_str("B", B, "_T", T, "_H", H, "_D", D, "_theta", static_cast<long long>(theta), "_pos", max_pos,
                             packed ? "_packed" : "", inplace ? "_inplace" : "")),
        B_(B), T_(T), H_(H), D_(D), theta_(theta), max_pos_(max_pos), packed_(packed), inplace_(inplace) {
    tol.why = "the angle is the same f32 product everywhere (shared rope_inv_freq); cos/sin in f32 are within an "
              "ulp of f64; bf16 rounds cos, sin and the output as HF does";
  }
  std::vector<Spec> inputs() const override { return {{"x", {B_, T_, H_, D_}}, {"positions", {B_, T_}, Kind::I32}}; }
  std::vector<Spec> outputs() const override { return {{"y", {B_, T_, H_, D_}}}; }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int64_t i = 0; i < h[0].numel(); i++) h[0].data<float>()[i] = gauss(rng);
    int32_t* p = h[1].data<int32_t>();
    for (int64_t b = 0; b < B_; b++) {
      // Consecutive positions from a random start (up to max_pos); packed rows restart at 0 at random points.
      int32_t next = static_cast<int32_t>(rng.below(static_cast<uint64_t>(std::max<int64_t>(1, max_pos_ - T_ + 1))));
      for (int64_t t = 0; t < T_; t++) {
        if (packed_ && t > 0 && rng.below(4) == 0) next = 0;
        p[b * T_ + t] = next++;
      }
    }
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (!inplace_) return rope_forward(in[0], in[1], theta_, out[0]);
    out[0].copy_from(in[0]);
    rope_forward(out[0], in[1], theta_, out[0]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    return {ref::rope(in[0], in[1], B_, T_, H_, D_, theta_)};
  }
  std::vector<int> grad_inputs() const override { return {0}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& cot,
                std::vector<Tensor>& g) const override {
    if (!inplace_) return rope_backward(cot[0], in[1], theta_, g[0]);
    g[0].copy_from(cot[0]);
    rope_backward(g[0], in[1], theta_, g[0]);
  }

 private:
  int64_t B_, T_, H_, D_;
  float theta_;
  int32_t max_pos_;
  bool packed_, inplace_;
};

class CrossEntropyCase : public Case {
 public:
  CrossEntropyCase(int64_t N, int64_t V, bool ignore, float gs, bool inplace)
      : Case("cross_entropy", cat_str("N", N, "_V", V, ignore ? "_ignore" : "", inplace ? "_inplace" : "")),
        N_(N), V_(V), ignore_(ignore), gs_(gs), inplace_(inplace) {
    tol.why = "f32 exp per logit, f64 sum over V in the CPU twin; losses are differences of O(10) numbers; bf16 "
              "logits are exact inputs (only dlogits are rounded)";
    tol.dev_bf16 = 1e-4;  // same bf16 logits on both sides, f32 statistics
  }
  std::vector<Spec> inputs() const override { return {{"logits", {N_, V_}}, {"targets", {N_}, Kind::I32}}; }
  std::vector<Spec> outputs() const override { return {{"losses", {N_}, Kind::F32}, {"lse", {N_}, Kind::F32}}; }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int64_t i = 0; i < h[0].numel(); i++) h[0].data<float>()[i] = 2.0f * gauss(rng);
    int32_t* t = h[1].data<int32_t>();
    for (int64_t n = 0; n < N_; n++) {
      t[n] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V_)));
      if (ignore_ && n % 3 == 1) t[n] = kIgnoreIndex;  // row 0 always counts
    }
  }
  // The backward computes d(grad_scale * sum(losses)): the cotangent of losses is grad_scale everywhere.
  void fill_cotangents(std::vector<Tensor>& cot, Rng&) const override {
    for (int64_t i = 0; i < cot[0].numel(); i++) cot[0].data<float>()[i] = gs_;
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cross_entropy_forward(in[0], in[1], out[0], out[1]);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    ref::Vec l, s;
    ref::cross_entropy(in[0], in[1], V_, l, s);
    return {l, s};
  }
  std::vector<int> grad_inputs() const override { return {0}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>&,
                std::vector<Tensor>& g) const override {
    if (!inplace_) return cross_entropy_backward(in[0], in[1], out[1], gs_, g[0]);
    g[0].copy_from(in[0]);
    cross_entropy_backward(g[0], in[1], out[1], gs_, g[0]);
  }
  bool cpu_bf16() const override { return true; }

 private:
  int64_t N_, V_;
  bool ignore_;
  float gs_;
  bool inplace_;
};

}  // namespace

CasePtr make_rms_norm(int64_t N, int64_t C, float eps, bool offset) {
  return std::make_unique<RmsNormCase>(N, C, eps, offset ? RmsWeight::OneOffset : RmsWeight::Scale);
}
CasePtr make_layer_norm(int64_t N, int64_t C, float eps) { return std::make_unique<LayerNormCase>(N, C, eps); }
CasePtr make_softmax(int64_t N, int64_t C) { return std::make_unique<SoftmaxCase>(N, C); }
CasePtr make_swiglu(int64_t N, int64_t I) { return std::make_unique<GluCase>(N, I, GluAct::Silu); }
CasePtr make_geglu(int64_t N, int64_t I) { return std::make_unique<GluCase>(N, I, GluAct::GeluTanh); }
CasePtr make_rope(int64_t B, int64_t T, int64_t H, int64_t D, float theta, int32_t max_pos, bool packed, bool inplace) {
  return std::make_unique<RopeCase>(B, T, H, D, theta, max_pos, packed, inplace);
}
CasePtr make_cross_entropy(int64_t N, int64_t V, bool ignore, float gs, bool inplace) {
  return std::make_unique<CrossEntropyCase>(N, V, ignore, gs, inplace);
}

}  // namespace wick::opcheck
