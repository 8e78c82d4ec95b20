// AdamW and gradient norms: validation and dispatch; grad_norm built on sum_squares (device-independent).
#include "ops/optim.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

// The f64 value of the decimal a float was written as (its shortest round-trip form): 0.9f -> 0.9.
// Without it 1 - beta2 alone would differ from torch's by 1e-5 relative.
static double decimal_of(float f) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf) - 1, f);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

AdamWScalars adamw_scalars(const AdamWConfig& cfg, int64_t step) {
  const double lr = decimal_of(cfg.lr), b1 = decimal_of(cfg.beta1), b2 = decimal_of(cfg.beta2);
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step));
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - lr * decimal_of(cfg.weight_decay));
  s.lerp_w = static_cast<float>(1.0 - b1);
  s.beta2 = static_cast<float>(b2);
  s.one_minus_beta2 = static_cast<float>(1.0 - b2);
  s.eps = cfg.eps;
  s.neg_step_size = static_cast<float>(-(lr / bc1));
  s.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  return s;
}

static Device check_adamw(const char* op, Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                          const AdamWConfig& cfg, int64_t step, float grad_scale) {
  const Arg P{"param", &param}, G{"grad", &grad}, M{"m", &m}, Vv{"v", &v};
  const Device dev = ops_detail::one_device(op, {P, G, M, Vv});
  for (const Arg& a : {P, G, M, Vv}) {
    ops_detail::need_dtype(op, a, DType::F32);
    if (a.t != &param) ops_detail::need_shape(op, {P, a}, a, param.shape(), "param's shape");
  }
  if (step < 1) fail(op, {P}, "step is 1-based (the step being taken), got " + std::to_string(step));
  if (!(cfg.beta1 >= 0.0f && cfg.beta1 < 1.0f) || !(cfg.beta2 >= 0.0f && cfg.beta2 < 1.0f))
    fail(op, {P}, "betas must be in [0, 1), got " + std::to_string(cfg.beta1) + ", " + std::to_string(cfg.beta2));
  if (!std::isfinite(cfg.lr) || !std::isfinite(cfg.eps) || !std::isfinite(cfg.weight_decay) ||
      !std::isfinite(grad_scale))
    fail(op, {P}, "lr, eps, weight_decay and grad_scale must be finite");
  return dev;
}

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& cfg, int64_t step,
                float grad_scale) {
  static const char* op = "adamw_step";
  const Device dev = check_adamw(op, param, grad, m, v, cfg, step, grad_scale);
  WICK_OP_DISPATCH(op, dev, adamw_step, param, grad, m, v, cfg, step, grad_scale);
}

// Validates every tensor of a many-tensor step; -> their device.
static Device check_adamw_many(const char* op, const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg,
                               int64_t step, float grad_scale) {
  std::optional<Device> dev;
  for (const AdamWTensors& t : tensors) {
    const Device d = check_adamw(op, *t.param, *t.grad, *t.m, *t.v, cfg, step, grad_scale);
    if (dev && d != *dev) fail(op, {Arg{"param", t.param}}, "every tensor must be on " + dev->str());
    dev = d;
  }
  return *dev;
}

void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step,
                     float grad_scale) {
  static const char* op = "adamw_step_many";
  if (tensors.empty()) return;
  const Device dev = check_adamw_many(op, tensors, cfg, step, grad_scale);
  if (dev.is_cpu()) {
    for (const AdamWTensors& t : tensors) cpu::adamw_step(*t.param, *t.grad, *t.m, *t.v, cfg, step, grad_scale);
    return;
  }
#if WICK_CUDA
  cuda_ops::adamw_step_many(tensors, cfg, step, grad_scale);
#else
  ops_detail::no_cuda(op);
#endif
}

static void check_clip_tensor(const char* op, const Tensor& state, const std::optional<Device>& dev) {
  const Arg S{"clip state", &state};
  ops_detail::need_dtype(op, S, DType::F32);
  if (state.numel() != kClipStateFloats)
    fail(op, {S}, "must be an f32 [" + std::to_string(kClipStateFloats) + "] (a ClipState), got " + state.str());
  if (dev && state.device() != *dev) fail(op, {S}, "must be on " + dev->str() + ", with the tensors");
}

void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step,
                     const Tensor& clip) {
  static const char* op = "adamw_step_many";
  if (tensors.empty()) return;
  const Device dev = check_adamw_many(op, tensors, cfg, step, 1.0f);
  check_clip_tensor(op, clip, dev);
  if (dev.is_cpu()) {
    ClipState cs;
    std::memcpy(&cs, clip.raw(), sizeof cs);
    if (cs.skip != 0.0f) return;
    for (const AdamWTensors& t : tensors) cpu::adamw_step(*t.param, *t.grad, *t.m, *t.v, cfg, step, cs.coef);
    return;
  }
#if WICK_CUDA
  cuda_ops::adamw_step_many(tensors, cfg, step, clip);
#else
  ops_detail::no_cuda(op);
#endif
}

double sum_squares(const std::vector<Tensor>& tensors) {
  static const char* op = "sum_squares";
  if (tensors.empty()) return 0.0;
  ops_detail::Args all;
  std::vector<std::string> names(tensors.size());
  for (size_t i = 0; i < tensors.size(); i++) {
    names[i] = "tensors[" + std::to_string(i) + "]";
    all.push_back({names[i].c_str(), &tensors[i]});
  }
  const Device dev = ops_detail::one_device(op, all);
  for (const Arg& a : all) ops_detail::need_dtype(op, a, DType::F32);
  if (dev.is_cpu()) return cpu::sum_squares(tensors);
#ifdef WICK_CUDA
  return cuda_ops::sum_squares(tensors);
#else
  ops_detail::no_cuda(op);
#endif
}

float clip_coefficient(double total, double max_norm) {
  // torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total + 1e-6) clamped to at most 1, all in f32
  // on an f32 norm; torch evaluates `scalar / tensor` as reciprocal(tensor) * scalar, and so do we (and the
  // CUDA clip_state, with the same correctly rounded f32 operations).
  if (!(max_norm > 0)) return 1.0f;
  const float denom = static_cast<float>(total) + 1e-6f;
  return std::min(1.0f, (1.0f / denom) * static_cast<float>(max_norm));
}

double grad_norm(const std::vector<Tensor>& grads, double max_norm, float* coef) {
  const double total = std::sqrt(sum_squares(grads));
  if (coef) *coef = clip_coefficient(total, max_norm);
  return total;
}

void clip_state(const std::vector<Tensor>& grads, double max_norm, Tensor& state) {
  static const char* op = "clip_state";
  std::optional<Device> dev;
  for (size_t i = 0; i < grads.size(); i++) {
    const std::string name = "grads[" + std::to_string(i) + "]";
    const Arg G{name.c_str(), &grads[i]};
    ops_detail::need_dtype(op, G, DType::F32);
    if (dev && grads[i].device() != *dev) fail(op, {G}, "every tensor must be on " + dev->str());
    dev = grads[i].device();
  }
  check_clip_tensor(op, state, dev);
  if (state.device().is_cpu() || grads.empty()) {
    ClipState cs{};
    cs.norm = grad_norm(grads, max_norm, &cs.coef);
    cs.skip = std::isfinite(cs.norm) ? 0.0f : 1.0f;
    device_copy(state.raw(), state.device(), &cs, Device::cpu(), sizeof cs);
    return;
  }
#if WICK_CUDA
  cuda_ops::clip_state(grads, max_norm, state);
#else
  ops_detail::no_cuda(op);
#endif
}

}  // namespace wick
