// Cross entropy: validation and dispatch; cross_entropy_mean built on the forward (device-independent).
// Dtypes: logits and dlogits f32 or bf16 (any device); targets i32; losses and lse f32.
#include "ops/cross_entropy.h"

#include <cmath>

#include "core/env.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;

namespace {
KernelSwitch g_single_read("WICK_CE_SINGLE_READ", /*default_on*/ false);
}  // namespace
bool cross_entropy_single_read() { return g_single_read.on(); }
void set_cross_entropy_single_read(bool on) { g_single_read.set(on); }

// logits [N, V] float, targets [N] index; every tensor of the op (logits, targets, then `rest`) on one device.
static Device check_ce(const char* op, Arg logits, Arg targets, const ops_detail::Args& rest) {
  ops_detail::Args all = {logits, targets};
  all.insert(all.end(), rest.begin(), rest.end());
  const Device dev = ops_detail::one_device(op, all);
  ops_detail::need_rank(op, logits, 2, "[N, V]");
  ops_detail::need_float(op, logits);
  ops_detail::need_index(op, targets, false);
  ops_detail::need_shape(op, {logits, targets}, targets, {logits.t->dim(0)}, "[N]");
  return dev;
}

// Per-row statistics (losses, lse): f32 [N].
static void check_row_stats(const char* op, Arg logits, const ops_detail::Args& stats) {
  for (const Arg& a : stats) {
    ops_detail::need_dtype(op, a, DType::F32);
    ops_detail::need_shape(op, {logits, a}, a, {logits.t->dim(0)}, "[N]");
  }
}

// dlogits: the logits' dtype and shape; a finite grad_scale.
static void check_dlogits(const char* op, Arg logits, Arg dlogits, float grad_scale) {
  ops_detail::need_same_dtype(op, dlogits, logits);
  ops_detail::need_shape(op, {logits, dlogits}, dlogits, logits.t->shape(), "logits' shape [N, V]");
  if (!std::isfinite(grad_scale)) ops_detail::fail(op, {logits}, "grad_scale must be finite");
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) {
  static const char* op = "cross_entropy_forward";
  const Arg L{"logits", &logits}, Tg{"targets", &targets}, Ls{"losses", &losses}, S{"lse", &lse};
  const Device dev = check_ce(op, L, Tg, {Ls, S});
  check_row_stats(op, L, {Ls, S});
  WICK_OP_DISPATCH(op, dev, cross_entropy_forward, logits, targets, losses, lse);
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, float grad_scale,
                            Tensor& dlogits) {
  static const char* op = "cross_entropy_backward";
  const Arg L{"logits", &logits}, Tg{"targets", &targets}, S{"lse", &lse}, D{"dlogits", &dlogits};
  const Device dev = check_ce(op, L, Tg, {S, D});
  check_row_stats(op, L, {S});
  check_dlogits(op, L, D, grad_scale);
  WICK_OP_DISPATCH(op, dev, cross_entropy_backward, logits, targets, lse, grad_scale, dlogits);
}

void cross_entropy_forward_backward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse,
                                    float grad_scale, Tensor& dlogits) {
  static const char* op = "cross_entropy_forward_backward";
  const Arg L{"logits", &logits}, Tg{"targets", &targets}, Ls{"losses", &losses}, S{"lse", &lse}, D{"dlogits", &dlogits};
  const Device dev = check_ce(op, L, Tg, {Ls, S, D});
  check_row_stats(op, L, {Ls, S});
  check_dlogits(op, L, D, grad_scale);
  WICK_OP_DISPATCH(op, dev, cross_entropy_forward_backward, logits, targets, losses, lse, grad_scale, dlogits);
}

float cross_entropy_mean(const Tensor& logits, const Tensor& targets) {
  if (!logits.defined()) ops_detail::fail("cross_entropy_mean", {{"logits", &logits}}, "logits must be defined");
  const int64_t N = logits.ndim() >= 1 ? logits.dim(0) : 0;
  Tensor losses = Tensor::empty({N}, DType::F32, logits.device());
  Tensor lse = Tensor::empty({N}, DType::F32, logits.device());
  cross_entropy_forward(logits, targets, losses, lse);
  const std::vector<float> l = losses.to_f32_vector();
  const std::vector<int64_t> t = targets.to_i64_vector();
  double sum = 0;
  int64_t counted = 0;
  for (int64_t i = 0; i < N; i++) {
    if (t[i] == kIgnoreIndex) continue;
    sum += l[i];
    counted++;
  }
  return counted ? static_cast<float>(sum / static_cast<double>(counted)) : NAN;
}

}  // namespace wick
