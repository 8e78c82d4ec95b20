// CPU SwiGLU: out = silu(gate) * up with silu(g) = g / (1 + exp(-g)) (torch's formula), f32. The span
// kernels are WICK_CPU_HOT (common.h) with vec_exp.h's exp; OpenMP hands out spans of kSpan elements.
#include <algorithm>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/vec_exp.h"

namespace wick::cpu {

namespace {

constexpr int64_t kSpan = 4096;

WICK_CPU_HOT void swiglu_span(const float* g, const float* u, float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) o[i] = g[i] / (1.0f + exp_f32(-g[i])) * u[i];
}

WICK_CPU_HOT void swiglu_backward_span(const float* d, const float* g, const float* u, float* dg, float* du,
                                       int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float s = 1.0f / (1.0f + exp_f32(-g[i]));
    const float gi = g[i], ui = u[i], di = d[i];
    dg[i] = di * ui * s * (1.0f + gi * (1.0f - s));
    du[i] = di * gi * s;
  }
}

}  // namespace

// gate, up [N, I] -> out [N, I]
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  const int64_t n = gate.numel();
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += kSpan) swiglu_span(g + i, u + i, o + i, std::min(kSpan, n - i));
}

// dout [N, I] -> dgate = dout * up * s * (1 + g * (1 - s)), dup = dout * silu(g), s = sigmoid(g)
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  const int64_t n = gate.numel();
  const float* d = dout.data<float>();
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* dg = dgate.data<float>();
  float* du = dup.data<float>();
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += kSpan)
    swiglu_backward_span(d + i, g + i, u + i, dg + i, du + i, std::min(kSpan, n - i));
}

}  // namespace wick::cpu
