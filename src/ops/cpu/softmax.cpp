// CPU softmax over the last dim (max-subtracted), and its backward, f32, one row per iteration.
// The row kernels are WICK_CPU_HOT (common.h); the vectorised exp is vec_exp.h's.
#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/vec_exp.h"

namespace wick::cpu {

namespace {

// x, y [C] -> y = exp(x - max) / sum(exp(x - max)); y may alias x
WICK_CPU_HOT void softmax_row(const float* x, float* y, int64_t C) {
  const float mx = max(x, C);
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < C; c++) {
    y[c] = exp_f32(x[c] - mx);
    s += y[c];
  }
  const float inv = 1.0f / s;
#pragma omp simd
  for (int64_t c = 0; c < C; c++) y[c] *= inv;
}

// y, g [C] -> d = y * (g - sum(g * y))
WICK_CPU_HOT void softmax_backward_row(const float* y, const float* g, float* d, int64_t C) {
  const float s = dot(g, y, C);
#pragma omp simd
  for (int64_t c = 0; c < C; c++) d[c] = y[c] * (g[c] - s);
}

}  // namespace

// x [N, C] -> y [N, C] = exp(x - max) / sum(exp(x - max))
void softmax_forward(const Tensor& x, Tensor& y) {
  const int64_t N = x.dim(0), C = x.dim(1);
  if (C == 0) return;
  const float* px = x.data<float>();
  float* py = y.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) softmax_row(px + n * C, py + n * C, C);
}

// y, dy [N, C] -> dx = y * (dy - sum(dy * y))
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t N = y.dim(0), C = y.dim(1);
  const float* py = y.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) softmax_backward_row(py + n * C, pdy + n * C, pdx + n * C, C);
}

}  // namespace wick::cpu
