// Inference through the small-M kernels (ops/small_m_linear.h: decode's projections, gate/up + GLU and lm_head
// over at most 8 rows) against the same forward with them switched off (every projection a cuBLASLt GEMM), on
// random models in f32 and bf16. The op itself is checked against the CPU twin by the op cases (test_ops_cuda).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "model/causal_lm.h"
#include "model/layer.h"
#include "ops/norm.h"
#include "ops/small_m_linear.h"

namespace wick::test {
namespace {

struct SmallMSwitch {
  explicit SmallMSwitch(bool on) : was(small_m_enabled()) { set_small_m_enabled(on); }
  ~SmallMSwitch() { set_small_m_enabled(was); }
  bool was;
};

// Logits (host, f32) of: a prefill of `prompt` tokens per row over B rows (N = B * prompt rows), then `steps`
// decode steps of one token per row (N = B rows), each [B, V] flattened.
std::vector<std::vector<float>> run(CausalLM& m, int64_t B, int64_t prompt, int64_t steps, bool small_m) {
  SmallMSwitch sw(small_m);
  const int64_t V = m.config().vocab_size;
  Rng rng(77);
  KVCache cache(m, B, prompt + steps);
  std::vector<std::vector<float>> out;
  auto logits = [&](int64_t T) {
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < B * T; i++) ids.push_back(static_cast<int32_t>(rng.below(V)));
    const Tensor l = m.forward(Tensor::from_i32(ids, {B, T}), &cache, true).to(Device::cpu());
    out.emplace_back(l.data<float>(), l.data<float>() + B * V);
  };
  logits(prompt);
  for (int64_t s = 0; s < steps; s++) logits(1);
  return out;
}

// max |a - b| / max |b| over each step's logits.
void expect_close(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b, double tol,
                  const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t s = 0; s < a.size(); s++) {
    double max_ref = 0, max_diff = 0;
    for (size_t i = 0; i < a[s].size(); i++) {
      max_ref = std::max(max_ref, std::fabs(double(b[s][i])));
      max_diff = std::max(max_diff, std::fabs(double(a[s][i]) - double(b[s][i])));
    }
    EXPECT_LE(max_diff, tol * max_ref) << what << ", call " << s << " (0: prefill)";
  }
}

ModelConfig config(bool gelu_biases, int64_t hidden) {
  ModelConfig c;
  c.hidden_size = hidden;
  c.intermediate_size = 2 * hidden + 40;
  c.num_layers = 3;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.vocab_size = 1000;
  c.max_position_embeddings = 512;
  c.attention_bias = true;  // q, k, v biases (Qwen2)
  if (gelu_biases) c.o_bias = c.mlp_bias = c.gelu_mlp = true;
  return c;
}

// Bounds: f32, the two paths differ only in the summation order of each dot product (TF32 off): ~1e-6 relative,
// 1e-4 on the logits after 3 layers. bf16: each projection output may round to the neighbouring bf16 value
// (2^-8 relative) on one path and not the other; through 3 layers, the norms and the attention that stays
// bounded by the 3e-2 the decode tests use for another change of summation order (test_decode_cuda).
TEST(SmallMCuda, DecodeThroughSmallMKernelsMatchesTheGemmPath) {
  WICK_REQUIRE_CUDA();
  for (DType dt : {DType::F32, DType::BF16}) {
    const double tol = dt == DType::F32 ? 1e-4 : 3e-2;
    for (int variant = 0; variant < 2; variant++) {
      // variant 0: Qwen2's silu MLP, hidden 136 (16-byte loads); 1: gelu_tanh, o and MLP biases, hidden 100
      // (in = 100: the one-element loads for q/k/v, gate/up and lm_head)
      const ModelConfig c = config(variant == 1, variant == 0 ? 136 : 100);
      auto m = CausalLM::random(c, Device::cuda(), dt, 41 + variant);
      for (auto [B, prompt] : {std::pair<int64_t, int64_t>{1, 12}, {3, 9}, {8, 2}, {1, 5}}) {
        // prompt 5 over one row and 2 over 8: the prefill itself takes the small-M path (N <= 8)
        const std::string what = std::string(dtype_name(dt)) + " variant " + std::to_string(variant) + " B " +
                                 std::to_string(B) + " prompt " + std::to_string(prompt);
        const auto on = run(*m, B, prompt, 6, true);
        const auto off = run(*m, B, prompt, 6, false);
        expect_close(on, off, tol, what);
      }
    }
  }
}

// The input norm inside the projection's launch (SmallMOptions::input_norm) against rms_norm_forward then the
// projection. The fused launch scales each row's results by rstd instead of normalising x, so the bounds: f32,
// another order of the sums (1e-5 relative); bf16, the separate norm rounds the normalised x to bf16 and the
// outputs round to bf16 (2^-8 relative) on each path (2e-2, and 3e-2 after the GLU's product). Widths on and off
// multiples of 8 (the vector and the one-element loads); both weight kinds; 1..8 rows; q|k|v-like and gate/up +
// GLU; rows of x with very different scales (the rstd is a row's own).
TEST(SmallMCuda, InputNormInTheLaunchMatchesTheNormOpThenTheProjection) {
  WICK_REQUIRE_CUDA();
  Rng rng(5);
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t in : {896, 1536, 3584, 33, 102})
      for (int64_t M : {1, 3, 8})
        for (RmsWeight kind : {RmsWeight::Scale, RmsWeight::OneOffset}) {
          const std::string what = std::string(dtype_name(dt)) + " in " + std::to_string(in) + " M " +
                                   std::to_string(M) + (kind == RmsWeight::OneOffset ? " offset" : "");
          auto dev = [&](const Tensor& t) { return t.to(dt).to(Device::cuda()); };
          Tensor xh = randn({M, in}, rng, 3.0f);
          for (int64_t r = 0; r < M; r++)
            for (int64_t i = 0; i < in; i++) xh.data<float>()[r * in + i] *= std::pow(10.0f, float(r % 3) - 1.0f);
          const Tensor x = dev(xh), nw = dev(randn({in}, rng));
          const Tensor w0 = dev(randn({200, in}, rng, 0.05f)), w1 = dev(randn({40, in}, rng, 0.05f));
          const Tensor b0 = dev(randn({200}, rng));
          const SmallMNorm norm{&nw, 1e-6f, kind};
          // separate: the norm op, then the projections of its output
          Tensor xn = Tensor::empty({M, in}, dt, Device::cuda()), rstd = Tensor::empty({M}, DType::F32, Device::cuda());
          rms_norm_forward(x, nw, 1e-6f, xn, rstd, kind);
          Tensor y0 = Tensor::empty({M, 200}, dt, Device::cuda()), y1 = Tensor::empty({M, 40}, dt, Device::cuda());
          Tensor s = Tensor::empty({M, 40}, dt, Device::cuda());
          small_m_linear(xn, {&w0, &w1}, {&b0, nullptr}, {&y0, &y1});
          small_m_glu(xn, w1, w1, nullptr, nullptr, GluAct::Silu, s);
          // fused
          SmallMOptions opt;
          opt.input_norm = &norm;
          Tensor f0 = Tensor::empty({M, 200}, dt, Device::cuda()), f1 = Tensor::empty({M, 40}, dt, Device::cuda());
          Tensor fs = Tensor::empty({M, 40}, dt, Device::cuda());
          small_m_linear(x, {&w0, &w1}, {&b0, nullptr}, {&f0, &f1}, opt);
          small_m_glu(x, w1, w1, nullptr, nullptr, GluAct::Silu, fs, opt);
          const double tol = dt == DType::F32 ? 1e-5 : 2e-2;
          EXPECT_LE(max_abs_rel(f0, y0), tol) << what << " y0";
          EXPECT_LE(max_abs_rel(f1, y1), tol) << what << " y1";
          EXPECT_LE(max_abs_rel(fs, s), dt == DType::F32 ? 1e-5 : 3e-2) << what << " glu";
        }
}

// A decode step's layer with its norms inside the projection launches and the attention residual inside o_proj's
// (decode_norm_fusion, model/layer.h) against the separate norm and add launches: prefill and decode (prefills of
// <= 8 rows take the small_m path too), f32 and bf16, widths on and off multiples of 8; the bounds of
// DecodeThroughSmallMKernelsMatchesTheGemmPath (another summation order; bf16 values that round differently).
TEST(SmallMCuda, DecodeWithTheNormsInTheProjectionsMatchesTheSeparateNorms) {
  WICK_REQUIRE_CUDA();
  const bool was = decode_norm_fusion();
  for (DType dt : {DType::F32, DType::BF16})
    for (int variant = 0; variant < 3; variant++) {
      const ModelConfig c = config(variant == 1, variant == 0 ? 136 : variant == 1 ? 100 : 102);
      auto m = CausalLM::random(c, Device::cuda(), dt, 61 + variant);
      for (auto [B, prompt] : {std::pair<int64_t, int64_t>{1, 12}, {3, 2}}) {
        set_decode_norm_fusion(true);
        const auto fused = run(*m, B, prompt, 6, true);
        set_decode_norm_fusion(false);
        const auto separate = run(*m, B, prompt, 6, true);
        expect_close(fused, separate, dt == DType::F32 ? 1e-4 : 3e-2,
                     std::string(dtype_name(dt)) + " variant " + std::to_string(variant) + " B " + std::to_string(B) +
                         " prompt " + std::to_string(prompt));
      }
    }
  set_decode_norm_fusion(was);
}

}  // namespace
}  // namespace wick::test
