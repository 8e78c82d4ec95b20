// CPU AdamW in torch.optim.AdamW's order of f32 operations (foreach=False, _single_tensor_adamw), and
// the sum of squares behind gradient-norm clipping (f64 accumulation).
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

// The f64 value of the decimal a float was written as (its shortest round-trip form): 0.9f -> 0.9.
// torch forms its scalars from Python floats (1 - 0.9, not 1 - 0.899999976...); 1 - beta2 alone would
// otherwise differ by 1e-5 relative.
static double decimal_of(float f) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf) - 1, f);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

// param, grad, m, v [any shape] f32. Scalars are formed in f64 from the config's decimals and rounded to
// f32 once, as torch does; m uses torch's lerp (an FMA, as in its vectorised CPU kernel).
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& cfg, int64_t step,
                float grad_scale) {
  const double lr = decimal_of(cfg.lr), b1 = decimal_of(cfg.beta1), b2 = decimal_of(cfg.beta2);
  const float decay = static_cast<float>(1.0 - lr * decimal_of(cfg.weight_decay));
  const float w = static_cast<float>(1.0 - b1);  // lerp weight
  const float beta2 = static_cast<float>(b2), one_minus_b2 = static_cast<float>(1.0 - b2), eps = cfg.eps;
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step));
  const float neg_step_size = static_cast<float>(-(lr / bc1));
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const int64_t n = param.numel();
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* pm = m.data<float>();
  float* pv = v.data<float>();
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float gi = grad_scale == 1.0f ? g[i] : g[i] * grad_scale;
    p[i] = p[i] * decay;
    pm[i] = w < 0.5f ? std::fma(w, gi - pm[i], pm[i]) : std::fma(w - 1.0f, gi - pm[i], gi);
    pv[i] = pv[i] * beta2 + one_minus_b2 * gi * gi;
    const float denom = std::sqrt(pv[i]) / bc2_sqrt + eps;
    p[i] = p[i] + neg_step_size * pm[i] / denom;
  }
}

double sum_squares(const std::vector<Tensor>& tensors) {
  double total = 0.0;
  for (const Tensor& t : tensors) {
    const float* p = t.data<float>();
    const int64_t n = t.numel();
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) s += static_cast<double>(p[i]) * p[i];
    total += s;
  }
  return total;
}

}  // namespace wick::cpu
