// CPU RMSNorm (Qwen2RMSNorm) and LayerNorm (torch.nn.LayerNorm), f32, one row per iteration; the row
// kernels are WICK_CPU_HOT (common.h). Parameter gradients are summed over rows per column, then added
// once (+=), a block of columns per task so that the row loop reads memory in order.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

namespace {

constexpr int64_t kColBlock = 256;  // columns per parameter-gradient task (its sums fit on the stack)

// x, y [C]: y = (w + offset) * (x * r), returns r = 1 / sqrt(mean(x^2) + eps). offset 1: Gemma's (1 + w).
WICK_CPU_HOT float rms_norm_row(const float* x, const float* w, float offset, float eps, float* y, int64_t C) {
  const float r = 1.0f / std::sqrt(dot(x, x, C) / static_cast<float>(C) + eps);
#pragma omp simd
  for (int64_t c = 0; c < C; c++) y[c] = (x[c] * r) * (w[c] + offset);
  return r;
}

// g = dy * (w + offset) (kept in d), then d = r * (g - x * r * mean(g * x * r))
WICK_CPU_HOT void rms_norm_backward_row(const float* dy, const float* x, const float* w, float offset, float r,
                                        float* d, int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; c++) d[c] = dy[c] * (w[c] + offset);
  const float mean_gx = dot(d, x, C) * r / static_cast<float>(C);
#pragma omp simd
  for (int64_t c = 0; c < C; c++) d[c] = r * (d[c] - x[c] * r * mean_gx);
}

// x, y [C]: y = (x - mu) * r * w + b; three passes (mean, centred variance, output)
WICK_CPU_HOT void layer_norm_row(const float* x, const float* w, const float* b, float eps, float* y, float* mu_out,
                                 float* r_out, int64_t C) {
  const float mu = sum(x, C) / static_cast<float>(C);
  const float r = 1.0f / std::sqrt(sum_sq_dev(x, mu, C) / static_cast<float>(C) + eps);
#pragma omp simd
  for (int64_t c = 0; c < C; c++) y[c] = (x[c] - mu) * r * w[c] + b[c];
  *mu_out = mu;
  *r_out = r;
}

// With xhat = (x - mu) * r, g = dy * w: d = r * (g - mean(g) - xhat * mean(g * xhat)); d holds g in between.
WICK_CPU_HOT void layer_norm_backward_row(const float* dy, const float* x, const float* w, float mu, float r, float* d,
                                          int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; c++) d[c] = dy[c] * w[c];
  f32x8 sg0 = {}, sgx0 = {}, g0, x0;  // sums of g and g * (x - mu), 8 lanes then the tail
  int64_t i = 0;
  for (; i + 8 <= C; i += 8) {
    load8(g0, d + i), load8(x0, x + i);
    sg0 += g0;
    sgx0 += g0 * (x0 - mu);
  }
  float sg = hsum(sg0), sgx = hsum(sgx0);
  for (; i < C; i++) sg += d[i], sgx += d[i] * (x[i] - mu);
  const float mg = sg / static_cast<float>(C), mgx = sgx * r / static_cast<float>(C);
#pragma omp simd
  for (int64_t c = 0; c < C; c++) d[c] = r * (d[c] - mg - (x[c] - mu) * r * mgx);
}

// Columns [c0, c0 + nc) of the parameter gradients over N rows:
//   dw[c] += sum_n dy[n, c] * (x[n, c] - mu[n]) * r[n]   (mu = nullptr: RMSNorm, no centring)
//   db[c] += sum_n dy[n, c]                              (db = nullptr: none)
WICK_CPU_HOT void norm_param_grads(const float* dy, const float* x, const float* mu, const float* r, int64_t N,
                                   int64_t C, int64_t c0, int64_t nc, float* dw, float* db) {
  float sw[kColBlock] = {}, sb[kColBlock] = {};
  for (int64_t n = 0; n < N; n++) {
    const float* g = dy + n * C + c0;
    const float* xr = x + n * C + c0;
    const float m = mu ? mu[n] : 0.0f, rn = r[n];
#pragma omp simd
    for (int64_t c = 0; c < nc; c++) {
      sw[c] += g[c] * ((xr[c] - m) * rn);
      sb[c] += g[c];
    }
  }
  if (dw)
    for (int64_t c = 0; c < nc; c++) dw[c0 + c] += sw[c];
  if (db)
    for (int64_t c = 0; c < nc; c++) db[c0 + c] += sb[c];
}

void param_grads(const float* dy, const float* x, const float* mu, const float* r, int64_t N, int64_t C, float* dw,
                 float* db) {
  const int64_t blocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t k = 0; k < blocks; k++)
    norm_param_grads(dy, x, mu, r, N, C, k * kColBlock, std::min(kColBlock, C - k * kColBlock), dw, db);
}

}  // namespace

static float weight_offset(RmsWeight kind) { return kind == RmsWeight::OneOffset ? 1.0f : 0.0f; }

// x [N, C], w [C] -> y [N, C] = (w or 1 + w) * (x * rstd) (row n at y's offset + n * ld), rstd [N] = 1 / sqrt(mean(x^2) + eps)
void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, const MatrixView& y, Tensor& rstd, RmsWeight kind) {
  const float offset = weight_offset(kind);
  const int64_t N = x.dim(0), C = x.dim(1), ld = y.ld;
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  float* py = y.tensor->data<float>() + y.offset;
  float* pr = rstd.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) pr[n] = rms_norm_row(px + n * C, pw, offset, eps, py + n * ld, C);
}

void add_rms_norm_forward(const Tensor& a, const Tensor& b, const Tensor& w, float eps, Tensor& h, const MatrixView& y,
                          Tensor& rstd, RmsWeight kind) {
  cpu::add(a, b, h);
  cpu::rms_norm_forward(h, w, eps, y, rstd, kind);
}

// With xhat = x * rstd and g = dy * (w or 1 + w): dx = rstd * (g - xhat * mean(g * xhat)); dw += sum_n dy * xhat.
void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx,
                       Tensor* dw, RmsWeight kind, bool accumulate) {
  const float offset = weight_offset(kind);
  const int64_t N = x.dim(0), C = x.dim(1);
  const float* pdy = dy.data<float>();
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pr = rstd.data<float>();
  float* pdx = dx.data<float>();
  // The parameter gradient reads dy, so it goes first: dx may alias dy.
  if (dw) param_grads(pdy, px, nullptr, pr, N, C, dw->data<float>(), nullptr);
  if (!accumulate) {
#pragma omp parallel for if (N * C > kParallelMin)
    for (int64_t n = 0; n < N; n++) rms_norm_backward_row(pdy + n * C, px + n * C, pw, offset, pr[n], pdx + n * C, C);
    return;
  }
#pragma omp parallel if (N * C > kParallelMin)
  {
    std::vector<float> row(static_cast<size_t>(C));
#pragma omp for
    for (int64_t n = 0; n < N; n++) {
      rms_norm_backward_row(pdy + n * C, px + n * C, pw, offset, pr[n], row.data(), C);
      float* d = pdx + n * C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) d[c] += row[c];
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
  for (int64_t n = 0; n < N; n++) layer_norm_row(px + n * C, pw, pb, eps, py + n * C, pm + n, pr + n, C);
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
  if (dw || db) param_grads(pdy, px, pm, pr, N, C, dw ? dw->data<float>() : nullptr, db ? db->data<float>() : nullptr);
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) layer_norm_backward_row(pdy + n * C, px + n * C, pw, pm[n], pr[n], pdx + n * C, C);
}

}  // namespace wick::cpu
