// CPU softmax over the last dim (max-subtracted), and its backward, f32, one row per iteration.
#include <algorithm>
#include <cmath>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

// x [N, C] -> y [N, C] = exp(x - max) / sum(exp(x - max))
void softmax_forward(const Tensor& x, Tensor& y) {
  const int64_t N = x.dim(0), C = x.dim(1);
  const float* px = x.data<float>();
  float* py = y.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* xr = px + n * C;
    float* yr = py + n * C;
    const float mx = C ? *std::max_element(xr, xr + C) : 0.0f;
    for (int64_t c = 0; c < C; c++) yr[c] = std::exp(xr[c] - mx);
    const float inv = 1.0f / sum(yr, C);
    for (int64_t c = 0; c < C; c++) yr[c] *= inv;
  }
}

// y, dy [N, C] -> dx = y * (dy - sum(dy * y))
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t N = y.dim(0), C = y.dim(1);
  const float* py = y.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* yr = py + n * C;
    const float* gr = pdy + n * C;
    const float s = dot(gr, yr, C);
    float* dr = pdx + n * C;
    for (int64_t c = 0; c < C; c++) dr[c] = yr[c] * (gr[c] - s);
  }
}

}  // namespace wick::cpu
