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

static Device check_rope_qk(const char* op, const Tensor& q, const Tensor& k, const Tensor& positions,
                            const RopeFreqs& f) {
  const Arg Q{"q", &q}, K{"k", &k};
  const Device dev = check_rope(op, Q, {"positions", &positions}, f, Q);
  check_rope(op, K, {"positions", &positions}, f, K);
  ops_detail::need_same_dtype(op, K, Q);
  if (k.dim(0) != q.dim(0) || k.dim(1) != q.dim(1) || k.dim(3) != q.dim(3))
    fail(op, {Q, K}, "k must be [B, T, Hkv, D] with q's B, T and D");
  return dev;
}

void rope_forward_qk(Tensor& q, Tensor& k, const Tensor& positions, const RopeFreqs& f) {
  static const char* op = "rope_forward_qk";
  const Device dev = check_rope_qk(op, q, k, positions, f);
  WICK_OP_DISPATCH(op, dev, rope_forward_qk, q, k, positions, f);
}

void rope_backward_qk(Tensor& dq, Tensor& dk, const Tensor& positions, const RopeFreqs& f) {
  static const char* op = "rope_backward_qk";
  const Device dev = check_rope_qk(op, dq, dk, positions, f);
  WICK_OP_DISPATCH(op, dev, rope_backward_qk, dq, dk, positions, f);
}

Device ops_detail::check_rope_qk_cache_write(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& positions, const RopeFreqs& f, const Tensor& k_cache,
                                             const Tensor& v_cache) {
  const Device dev = check_rope_qk(op, q, k, positions, f);
  if (v.ndim() != 4 || v.shape() != k.shape()) fail(op, {{"k", &k}, {"v", &v}}, "v must be k's shape [B, T, Hkv, D]");
  const int64_t B = k.dim(0), T = k.dim(1), X = k.dim(2) * k.dim(3);
  ops_detail::check_kv_cache_write(op, k.view({B, T, X}), v.view({B, T, X}), positions, k_cache, v_cache);
  return dev;
}

void rope_qk_cache_write(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                         Tensor& k_cache, Tensor& v_cache) {
  static const char* op = "rope_qk_cache_write";
  const Device dev = ops_detail::check_rope_qk_cache_write(op, q, k, v, positions, f, k_cache, v_cache);
  WICK_OP_DISPATCH(op, dev, rope_qk_cache_write, q, k, v, positions, f, k_cache, v_cache);
}

}  // namespace wick
