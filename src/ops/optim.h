// AdamW identical to torch.optim.AdamW (foreach=False semantics): for each element
//   p -= lr * wd * p;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// and clip_grad_norm_ semantics: total = ||all grads||_2, coef = min(1, max_norm / (total + 1e-6)).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace wick {

// Doubles, as torch keeps hyperparameters in Python floats: 1 - beta2 must be formed from 0.999, not from
// 0.999f (they differ by 1.3e-5 relative, which shows in the second moment).
struct AdamWConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

// The f32 scalars of one step, formed in f64 from the decimals the config's floats were written as
// (0.9f -> 0.9) exactly as torch forms them from Python floats, then rounded once. Both backends take
// them from here and apply, per element in f32 (torch's order of operations):
//   g = grad * grad_scale;  p = p * decay;
//   m = lerp_w < 0.5 ? fma(lerp_w, g - m, m) : fma(lerp_w - 1, g - m, g);    (torch's lerp)
//   v = v * beta2 + (one_minus_beta2 * g) * g;
//   p = p + (neg_step_size * m) / (sqrt(v) / bc2_sqrt + eps)
struct AdamWScalars {
  float decay, lerp_w, beta2, one_minus_beta2, eps, neg_step_size, bc2_sqrt;
};
AdamWScalars adamw_scalars(const AdamWConfig& cfg, int64_t step);

// param, grad, m, v: f32, same shape, one device. step is 1-based (the step being taken).
// grad_scale multiplies the gradient first (clipping coefficient; 1 = none).
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& cfg, int64_t step,
                float grad_scale = 1.0f);

// The same step over many tensors (one device). Per element identical to adamw_step on each; on CUDA the
// tensors go 64 to a launch (a LoRA model has hundreds of small ones: one launch each was ~2% of a step).
struct AdamWTensors {
  Tensor* param;
  const Tensor* grad;
  Tensor* m;
  Tensor* v;
};
void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step,
                     float grad_scale = 1.0f);

// Sum of squares of every element of every tensor (f32 tensors), accumulated in f64 on the CPU and in
// f32-per-block/f64-final on CUDA.
double sum_squares(const std::vector<Tensor>& tensors);
// Global L2 norm of the grads; when max_norm > 0 and norm > max_norm, returns the clip coefficient via
// *coef (else 1). Does not modify the grads (pass *coef to adamw_step's grad_scale).
double grad_norm(const std::vector<Tensor>& grads, double max_norm, float* coef);
// grad_norm's coefficient for a norm (1 when max_norm <= 0; 1 for a NaN norm).
float clip_coefficient(double total, double max_norm);

// Clipping decided on the device: a training step queues its update right after its backward, with no host
// read in between (the trainer reads the norm once the whole step is queued: train/optimizer.h). The bytes of
// a ClipState live in an f32 [kClipStateFloats] tensor on the gradients' device.
struct ClipState {
  double norm;  // sqrt(sum_squares(grads)): grad_norm's value, bit for bit
  float coef;   // grad_norm's clip coefficient (1 when max_norm <= 0 or the norm is within it)
  float skip;   // 1 when the norm is not finite: adamw_step_many(..., clip) then updates nothing
};
constexpr int64_t kClipStateFloats = sizeof(ClipState) / sizeof(float);
// state (=) the ClipState of grads for max_norm. Queued on CUDA (nothing waits for it).
void clip_state(const std::vector<Tensor>& grads, double max_norm, Tensor& state);
// adamw_step_many with grad_scale = the coef of clip (a clip_state output on the tensors' device), read by the
// device; nothing changes when its skip is set.
void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step,
                     const Tensor& clip);

}  // namespace wick
