// CPU AdamW in torch.optim.AdamW's order of f32 operations (foreach=False, _single_tensor_adamw; the
// scalars come from adamw_scalars, shared with CUDA), and the sum of squares behind gradient-norm
// clipping (f64 accumulation).
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

// param, grad, m, v [any shape] f32; the scalars and the per-element order are adamw_scalars' (optim.h).
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& cfg, int64_t step,
                float grad_scale) {
  const AdamWScalars k = adamw_scalars(cfg, step);
  const int64_t n = param.numel();
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* pm = m.data<float>();
  float* pv = v.data<float>();
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float gi = grad_scale == 1.0f ? g[i] : g[i] * grad_scale;
    p[i] = p[i] * k.decay;
    pm[i] = k.lerp_w < 0.5f ? std::fma(k.lerp_w, gi - pm[i], pm[i]) : std::fma(k.lerp_w - 1.0f, gi - pm[i], gi);
    pv[i] = pv[i] * k.beta2 + k.one_minus_beta2 * gi * gi;
    const float denom = std::sqrt(pv[i]) / k.bc2_sqrt + k.eps;
    p[i] = p[i] + k.neg_step_size * pm[i] / denom;
  }
}

// Fixed chunks of kParallelMin elements, each summed in order, then the chunk sums in order: the same bits
// for any thread count (an OpenMP reduction combines the threads' partial sums in arrival order, so the
// grad norm - and through clipping every update - could differ between two runs with > 2 threads, and a
// resumed run would not repeat the uninterrupted one).
double sum_squares(const std::vector<Tensor>& tensors) {
  double total = 0.0;
  std::vector<double> part;
  for (const Tensor& t : tensors) {
    const float* p = t.data<float>();
    const int64_t n = t.numel();
    const int64_t chunks = (n + kParallelMin - 1) / kParallelMin;
    part.assign(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
      double s = 0.0;
      for (int64_t i = c * kParallelMin, e = std::min(n, (c + 1) * kParallelMin); i < e; i++) s += static_cast<double>(p[i]) * p[i];
      part[static_cast<size_t>(c)] = s;
    }
    double s = 0.0;
    for (double v : part) s += v;
    total += s;
  }
  return total;
}

}  // namespace wick::cpu
