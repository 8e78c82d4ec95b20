// CPU RMSNorm (Qwen2RMSNorm) and LayerNorm (torch.nn.LayerNorm), f32, one row per iteration.
// Parameter gradients are summed over rows per column, then added once (+=).
#include <cmath>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

// x [N, C], w [C] -> y [N, C] = w * (x * rstd), rstd [N] = 1 / sqrt(mean(x^2) + eps)
void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd) {
  const int64_t N = x.dim(0), C = x.dim(1);
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  float* py = y.data<float>();
  float* pr = rstd.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* xr = px + n * C;
    float* yr = py + n * C;
    const float r = 1.0f / std::sqrt(dot(xr, xr, C) / static_cast<float>(C) + eps);
    for (int64_t c = 0; c < C; c++) yr[c] = pw[c] * (xr[c] * r);
    pr[n] = r;
  }
}

// With xhat = x * rstd and g = dy * w: dx = rstd * (g - xhat * mean(g * xhat)); dw += sum_n dy * xhat.
void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx,
                       Tensor* dw) {
  const int64_t N = x.dim(0), C = x.dim(1);
  const float* pdy = dy.data<float>();
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* xr = px + n * C;
    const float* gr = pdy + n * C;
    const float r = pr[n];
    float s = 0.0f;  // sum_c g * xhat
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; c++) s += gr[c] * pw[c] * xr[c] * r;
    const float mean_gx = s / static_cast<float>(C);
    float* dr = pdx + n * C;
    for (int64_t c = 0; c < C; c++) dr[c] = r * (gr[c] * pw[c] - xr[c] * r * mean_gx);
  }
  if (dw) {
    float* pdw = dw->data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
    for (int64_t c = 0; c < C; c++) {
      float s = 0.0f;
      for (int64_t n = 0; n < N; n++) s += pdy[n * C + c] * (px[n * C + c] * pr[n]);
      pdw[c] += s;
    }
  }
}

// x [N, C], w, b [C] -> y = (x - mean) * rstd * w + b, mean [N], rstd [N] (biased variance, as torch)
void layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, Tensor& mean,
                        Tensor& rstd) {
  const int64_t N = x.dim(0), C = x.dim(1);
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pb = b.data<float>();
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pr = rstd.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* xr = px + n * C;
    const float mu = sum(xr, C) / static_cast<float>(C);
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int64_t c = 0; c < C; c++) var += (xr[c] - mu) * (xr[c] - mu);
    const float r = 1.0f / std::sqrt(var / static_cast<float>(C) + eps);
    float* yr = py + n * C;
    for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - mu) * r * pw[c] + pb[c];
    pm[n] = mu;
    pr[n] = r;
  }
}

// With xhat = (x - mean) * rstd, g = dy * w: dx = rstd * (g - mean(g) - xhat * mean(g * xhat));
// dw += sum_n dy * xhat; db += sum_n dy.
void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                         Tensor& dx, Tensor* dw, Tensor* db) {
  const int64_t N = x.dim(0), C = x.dim(1);
  const float* pdy = dy.data<float>();
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const float* xr = px + n * C;
    const float* gr = pdy + n * C;
    const float mu = pm[n], r = pr[n];
    float sg = 0.0f, sgx = 0.0f;
#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t c = 0; c < C; c++) {
      const float g = gr[c] * pw[c];
      sg += g;
      sgx += g * (xr[c] - mu) * r;
    }
    const float mg = sg / static_cast<float>(C), mgx = sgx / static_cast<float>(C);
    float* dr = pdx + n * C;
    for (int64_t c = 0; c < C; c++) dr[c] = r * (gr[c] * pw[c] - mg - (xr[c] - mu) * r * mgx);
  }
  if (dw || db) {
    float* pdw = dw ? dw->data<float>() : nullptr;
    float* pdb = db ? db->data<float>() : nullptr;
#pragma omp parallel for if (N * C > kParallelMin)
    for (int64_t c = 0; c < C; c++) {
      float sw = 0.0f, sb = 0.0f;
      for (int64_t n = 0; n < N; n++) {
        sw += pdy[n * C + c] * ((px[n * C + c] - pm[n]) * pr[n]);
        sb += pdy[n * C + c];
      }
      if (pdw) pdw[c] += sw;
      if (pdb) pdb[c] += sb;
    }
  }
}

}  // namespace wick::cpu
