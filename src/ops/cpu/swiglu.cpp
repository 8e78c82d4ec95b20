// CPU gated activations, f32: out = act(gate) * up. The span kernels are WICK_CPU_HOT (common.h) with
// vec_exp.h's exp; OpenMP hands out spans of kSpan elements.
//  - SiLU: silu(g) = g / (1 + exp(-g)) (torch's formula).
//  - GELU tanh: torch's 0.5 g (1 + tanh(z)), z = sqrt(2/pi) (g + 0.044715 g^3), computed as g * sigmoid(2z)
//    (1 + tanh z = 2 sigmoid(2z): the same value within a few f32 ulps, no cancellation as g -> -inf, and
//    vectorisable); its derivative s + 2 g s (1 - s) dz/dg with s = sigmoid(2z), 1 - tanh^2 z = 4 s (1 - s).
#include <algorithm>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/vec_exp.h"

namespace wick::cpu {

namespace {

constexpr int64_t kSpan = 4096;
constexpr float kGeluBeta = 0.7978845608028654f;  // sqrt(2 / pi), torch's M_SQRT2 * M_2_SQRTPI * 0.5
constexpr float kGeluKappa = 0.044715f;

// The forward outputs, one expression each, so the backward's recomputed output is the forward's bit for bit.
inline float swiglu_out(float g, float u) { return g / (1.0f + exp_f32(-g)) * u; }
inline float geglu_out(float x, float u) {
  const float z = kGeluBeta * (x + kGeluKappa * (x * x * x));
  return x / (1.0f + exp_f32(-2.0f * z)) * u;
}

WICK_CPU_HOT void swiglu_span(const float* g, const float* u, float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) o[i] = swiglu_out(g[i], u[i]);
}

// o (optional, may be d): the forward's output again.
WICK_CPU_HOT void swiglu_backward_span(const float* d, const float* g, const float* u, float* dg, float* du,
                                       float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float s = 1.0f / (1.0f + exp_f32(-g[i]));
    const float gi = g[i], ui = u[i], di = d[i];
    dg[i] = di * ui * s * (1.0f + gi * (1.0f - s));
    du[i] = di * gi * s;
    if (o) o[i] = swiglu_out(gi, ui);
  }
}

WICK_CPU_HOT void geglu_span(const float* g, const float* u, float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) o[i] = geglu_out(g[i], u[i]);
}

WICK_CPU_HOT void geglu_backward_span(const float* d, const float* g, const float* u, float* dg, float* du,
                                      float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float x = g[i], di = d[i], ui = u[i];
    const float z = kGeluBeta * (x + kGeluKappa * (x * x * x));
    const float s = 1.0f / (1.0f + exp_f32(-2.0f * z));
    const float dz = kGeluBeta * (1.0f + 3.0f * kGeluKappa * (x * x));
    dg[i] = di * ui * (s + 2.0f * x * s * (1.0f - s) * dz);
    du[i] = di * x * s;
    if (o) o[i] = geglu_out(x, ui);
  }
}

}  // namespace

// gate, up [N, I] -> out [N, I]
void glu_forward(const Tensor& gate, const Tensor& up, GluAct act, Tensor& out) {
  const int64_t n = gate.numel();
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* o = out.data<float>();
  const bool silu = act == GluAct::Silu;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += kSpan) {
    if (silu) swiglu_span(g + i, u + i, o + i, std::min(kSpan, n - i));
    else geglu_span(g + i, u + i, o + i, std::min(kSpan, n - i));
  }
}

// dout [N, I] -> dgate = dout * up * act'(g), dup = dout * act(g); out (optional) = act(g) * up
void glu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, GluAct act, Tensor& dgate, Tensor& dup,
                  Tensor* out) {
  const int64_t n = gate.numel();
  const float* d = dout.data<float>();
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* dg = dgate.data<float>();
  float* du = dup.data<float>();
  float* o = out ? out->data<float>() : nullptr;
  const bool silu = act == GluAct::Silu;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += kSpan) {
    float* oi = o ? o + i : nullptr;
    if (silu) swiglu_backward_span(d + i, g + i, u + i, dg + i, du + i, oi, std::min(kSpan, n - i));
    else geglu_backward_span(d + i, g + i, u + i, dg + i, du + i, oi, std::min(kSpan, n - i));
  }
}

}  // namespace wick::cpu
