// CPU AdamW in torch.optim.AdamW's order of f32 operations (foreach=False, _single_tensor_adamw; the
// scalars come from adamw_scalars, shared with CUDA), and the sum of squares behind gradient-norm
// clipping (f64 accumulation). The AdamW span kernel is WICK_CPU_HOT (common.h): its std::fma is one
// instruction in the x86-64-v3 clone and a libm call in the baseline, the same bits either way.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

namespace {

constexpr int64_t kSpan = 4096;

// n elements of param, grad, m, v; the per-element order is adamw_scalars' (optim.h). torch's lerp has two
// formulas, chosen by the weight: a template argument, so that the loop has no branch and vectorises.
// g * grad_scale is g itself when grad_scale is 1.
template <bool kSmallW>
inline void adamw_loop(float* p, const float* g, float* pm, float* pv, int64_t n, const AdamWScalars& k,
                       float grad_scale) {
  const float decay = k.decay, w = kSmallW ? k.lerp_w : k.lerp_w - 1.0f, beta2 = k.beta2, omb2 = k.one_minus_beta2,
              bc2_sqrt = k.bc2_sqrt, eps = k.eps, neg_step = k.neg_step_size;
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] * grad_scale;
    const float pi = p[i] * decay;
    const float mi = std::fma(w, gi - pm[i], kSmallW ? pm[i] : gi);
    const float vi = pv[i] * beta2 + omb2 * gi * gi;
    const float denom = std::sqrt(vi) / bc2_sqrt + eps;
    pm[i] = mi;
    pv[i] = vi;
    p[i] = pi + neg_step * mi / denom;
  }
}

WICK_CPU_HOT void adamw_span(float* p, const float* g, float* pm, float* pv, int64_t n, const AdamWScalars& k,
                             float grad_scale) {
  if (k.lerp_w < 0.5f) adamw_loop<true>(p, g, pm, pv, n, k, grad_scale);
  else adamw_loop<false>(p, g, pm, pv, n, k, grad_scale);
}

}  // namespace

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
  for (int64_t i = 0; i < n; i += kSpan)
    adamw_span(p + i, g + i, pm + i, pv + i, std::min(kSpan, n - i), k, grad_scale);
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
