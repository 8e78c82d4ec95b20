// RoPE: validation and dispatch. x, y (dy, dx) share the activation dtype; positions are i32 [B, T].
#include "ops/rope.h"

#include <cmath>

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

std::vector<float> rope_inv_freq(float theta, int64_t D) {
  std::vector<float> f(static_cast<size_t>(D / 2));
  for (int64_t i = 0; i < D / 2; i++) f[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(D));
  return f;
}

void rope_rescale(std::vector<float>& inv_freq, const RopeFreqs& f) {
  if (!f.scaled()) return;
  if (f.linear) {  // inv_freq /= factor
    for (float& x : inv_freq) x = x / f.factor;
    return;
  }
  // Python scalars meet f32 tensors as f32; "a / t" is t.reciprocal() * a.
  const float two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
  const float low_wavelen = static_cast<float>(static_cast<double>(f.original_max_position) / f.low_freq_factor);
  const float high_wavelen = static_cast<float>(static_cast<double>(f.original_max_position) / f.high_freq_factor);
  const float band = static_cast<float>(static_cast<double>(f.high_freq_factor) - f.low_freq_factor);
  for (float& x : inv_freq) {
    const float wavelen = (1.0f / x) * two_pi;
    const float scaled = wavelen > low_wavelen ? x / f.factor : x;
    const float smooth = ((1.0f / wavelen) * f.original_max_position - f.low_freq_factor) / band;
    const float smoothed = (1.0f - smooth) * scaled / f.factor + smooth * scaled;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    x = medium ? smoothed : scaled;
  }
}

std::vector<float> rope_inv_freq(const RopeFreqs& f, int64_t D) {
  std::vector<float> v = rope_inv_freq(f.theta, D);
  rope_rescale(v, f);
  return v;
}

static Device check_rope(const char* op, Arg x, Arg pos, const RopeFreqs& f, Arg y) {
  const float theta = f.theta;
  const Device dev = ops_detail::one_device(op, {x, pos, y});
  ops_detail::need_rank(op, x, 4, "[B, T, H, D]");
  ops_detail::need_act(op, x);
  ops_detail::need_same_dtype(op, y, x);
  ops_detail::need_shape(op, {x, y}, y, x.t->shape(), "[B, T, H, D]");
  ops_detail::need_index(op, pos, false);
  ops_detail::need_shape(op, {x, pos}, pos, {x.t->dim(0), x.t->dim(1)}, "[B, T]");
  if (x.t->dim(3) % 2 != 0) fail(op, {x}, "the head dim D must be even (rotate-half pairs i and i + D/2)");
  if (!(theta > 0.0f) || !std::isfinite(theta))
    fail(op, {x}, "theta must be a positive finite number, got " + std::to_string(theta));
  if (f.scaled() && f.linear && !(f.factor > 0.0f && std::isfinite(f.factor)))
    fail(op, {x}, "linear RoPE scaling needs a positive factor, got " + std::to_string(f.factor));
  if (f.scaled() && !f.linear &&
      !(f.factor > 0.0f && f.high_freq_factor != f.low_freq_factor && f.original_max_position > 0.0f))
    fail(op, {x}, "RoPE rescaling needs factor > 0, high_freq_factor != low_freq_factor and original_max_position > 0");
  return dev;
}

void rope_forward(const Tensor& x, const Tensor& positions, const RopeFreqs& theta, Tensor& y) {
  static const char* op = "rope_forward";
  const Device dev = check_rope(op, {"x", &x}, {"positions", &positions}, theta, {"y", &y});
  WICK_OP_DISPATCH(op, dev, rope_forward, x, positions, theta, y);
}

void rope_backward(const Tensor& dy, const Tensor& positions, const RopeFreqs& theta, Tensor& dx) {
  static const char* op = "rope_backward";
  const Device dev = check_rope(op, {"dy", &dy}, {"positions", &positions}, theta, {"dx", &dx});
  WICK_OP_DISPATCH(op, dev, rope_backward, dy, positions, theta, dx);
}

}  // namespace wick
