// Op cases (ops/opcheck.h) for causal GQA attention: training (with optional packing segments and sliding
// window) and decode (T queries at the end of kv_len keys in a cache of capacity S whose unused rows hold NaN;
// optionally with the query positions given on the device, as a replayed decode graph calls it).
#include <cmath>

#include "ops/attention.h"
#include "ops/opcheck.h"

namespace wick::opcheck {

namespace {

class AttentionCase : public Case {
 public:
  explicit AttentionCase(const AttentionShape& s) : Case("attention", tag(s)), s_(s) {
    if (!s_.kv_len) s_.kv_len = s_.T;
    if (!s_.S) s_.S = s_.kv_len;
    tol.dev = 2e-5;
    tol.dev_bwd = 1e-4;
    tol.why = "f32 dot products over D and softmax over <= kv_len keys: ~1e-6 vs f64; the device uses online "
              "softmax and sums dk, dv over queries and grouped heads in another order; bf16 rounds q, k, v, "
              "P and the outputs; the bf16 tensor-core path (_fa2bf16) also rounds P and dS to bf16 before their "
              "products";
  }
  static std::string tag(const AttentionShape& s) {
    std::string t = cat_str("B", s.B, "_T", s.T, "_H", s.H, "_Hkv", s.Hkv, "_D", s.D);
    if (s.kv_len) t += cat_str("_kv", s.kv_len);
    if (s.S) t += cat_str("_S", s.S);
    if (s.segments) t += "_packed";
    if (!s.lse) t += "_nolse";
    if (s.window) t += cat_str("_w", s.window);
    if (s.positions) return t + "_pos";  // always the CUDA-core kernels
    // bf16 runs of this shape take the tensor-core FlashAttention-2 kernels on CUDA (f32 runs never do); a
    // window that hides keys keeps the CUDA-core kernels (the op drops one of kv_len or more)
    const int64_t kv = s.kv_len ? s.kv_len : s.T;
    if (attention_cuda_flash(DType::BF16, s.T, s.D, s.window < kv ? s.window : 0)) t += "_fa2bf16";
    return t;
  }
  bool training() const { return s_.kv_len == s_.T && s_.S == s_.T && s_.lse; }
  std::vector<Spec> inputs() const override {
    std::vector<Spec> in{{"q", {s_.B, s_.T, s_.H, s_.D}}, {"k", {s_.B, s_.S, s_.Hkv, s_.D}}, {"v", {s_.B, s_.S, s_.Hkv, s_.D}}};
    if (s_.segments) in.push_back({"segments", {s_.B, s_.T}, Kind::I32});
    if (s_.positions) in.push_back({"positions", {s_.B, s_.T}, Kind::I32});
    return in;
  }
  std::vector<Spec> outputs() const override {
    std::vector<Spec> out{{"out", {s_.B, s_.T, s_.H, s_.D}}};
    if (s_.lse) out.push_back({"lse", {s_.B, s_.H, s_.T}, Kind::F32});
    return out;
  }
  void fill_inputs(std::vector<Tensor>& h, Rng& rng) const override {
    for (int i = 0; i < 3; i++) {
      float* p = h[i].data<float>();
      for (int64_t j = 0; j < h[i].numel(); j++) p[j] = gauss(rng);
    }
    // Cache rows past kv_len hold NaN: an op that reads them poisons its output.
    for (int i = 1; i < 3; i++)
      for (int64_t b = 0; b < s_.B; b++)
        for (int64_t j = s_.kv_len * s_.Hkv * s_.D; j < s_.S * s_.Hkv * s_.D; j++)
          h[i].data<float>()[b * s_.S * s_.Hkv * s_.D + j] = NAN;
    if (s_.positions)
      for (int64_t b = 0; b < s_.B; b++)
        for (int64_t t = 0; t < s_.T; t++) h[3].data<int32_t>()[b * s_.T + t] = static_cast<int32_t>(s_.kv_len - s_.T + t);
    if (s_.segments) {  // increasing segment ids, new segments at random points (at least two when T > 1):
      // short ones (length-1 segments too) in even rows, long ones (spanning kernel tiles) in odd rows
      int32_t* sg = h[3].data<int32_t>();
      for (int64_t b = 0; b < s_.B; b++) {
        int32_t id = 0;
        const uint64_t one_in = b % 2 == 0 ? 5 : 40;
        for (int64_t t = 0; t < s_.T; t++) {
          if (t > 0 && (rng.below(one_in) == 0 || t == s_.T / 2)) id++;
          sg[b * s_.T + t] = id;
        }
      }
    }
  }
  AttentionArgs args(const std::vector<Tensor>& in) const {
    AttentionArgs a;
    a.scale = 1.0f / std::sqrt(static_cast<float>(s_.D));
    a.kv_len = s_.positions ? s_.S : s_.kv_len;
    a.positions = s_.positions ? &in[3] : nullptr;
    a.segments = s_.segments ? &in[3] : nullptr;
    a.window = s_.window;
    return a;
  }
  void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    attention_forward(in[0], in[1], in[2], args(in), out[0], s_.lse ? &out[1] : nullptr);
  }
  std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const override {
    ref::Vec out, lse;
    const ref::AttnDims d{s_.B, s_.T, s_.H, s_.D, s_.S, s_.Hkv, s_.kv_len, s_.window};
    ref::attention(in[0], in[1], in[2], s_.segments ? &in[3] : nullptr, d, 1.0f / std::sqrt(static_cast<float>(s_.D)),
                   out, lse);
    if (s_.lse) return {out, lse};
    return {out};
  }
  double ref_cost() const override { return 2.0 * s_.B * s_.H * s_.T * s_.kv_len * s_.D; }
  std::vector<int> grad_inputs() const override { return training() ? std::vector<int>{0, 1, 2} : std::vector<int>{}; }
  std::vector<int> cot_outputs() const override { return {0}; }
  void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& cot,
                std::vector<Tensor>& g) const override {
    attention_backward(cot[0], in[0], in[1], in[2], out[0], out[1], args(in), g[0], g[1], g[2]);
  }

 private:
  AttentionShape s_;
};

}  // namespace

CasePtr make_attention(const AttentionShape& s) { return std::make_unique<AttentionCase>(s); }

}  // namespace wick::opcheck
