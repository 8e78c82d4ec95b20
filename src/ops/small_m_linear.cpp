// small_m_linear, small_m_glu: validation and dispatch (ops/small_m_linear.h). CPU twin: ops/cpu/small_m_linear.cpp;
// CUDA twin: ops/cuda/small_m_linear.cu (kernel in small_m_linear.cuh).
#include "ops/small_m_linear.h"

#include <atomic>
#include <cmath>
#include <string>

#include "core/env.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

namespace {
std::atomic<bool>& small_m_switch() {
  static std::atomic<bool> on(env_default_on("WICK_SMALL_M"));
  return on;
}
// opt.low_rank against x [M, in] and the members' output widths.
void check_low_rank(const char* op, const Tensor& x, const SmallMLowRank& lr, const std::vector<int64_t>& outs) {
  const Arg X{"x", &x};
  const size_t n = outs.size();
  if (!lr.u || lr.B.size() != n || lr.col.size() != n || lr.scale.size() != n)
    fail(op, {X}, "low_rank needs u and one B, column and scale per member (" + std::to_string(n) + "); got " +
                      std::to_string(lr.B.size()) + ", " + std::to_string(lr.col.size()) + ", " +
                      std::to_string(lr.scale.size()));
  if (x.dim(1) == 0) fail(op, {X}, "low_rank needs in >= 1");
  const Arg U{"low_rank.u", lr.u};
  ops_detail::one_device(op, {X, U});
  if (lr.u->dtype() != DType::F32) fail(op, {X, U}, "low_rank.u must be f32");
  ops_detail::need_rank(op, U, 2, "[M, U]");
  if (lr.u->dim(0) != x.dim(0)) fail(op, {X, U}, "low_rank.u must have x's " + std::to_string(x.dim(0)) + " rows");
  for (size_t j = 0; j < n; j++) {
    if (!lr.B[j]) continue;
    const Arg B{"low_rank.B", lr.B[j]};
    ops_detail::one_device(op, {X, B});
    ops_detail::need_same_dtype(op, B, X);
    ops_detail::need_rank(op, B, 2, "[out, r]");
    const int64_t r = lr.B[j]->dim(1);
    if (lr.B[j]->dim(0) != outs[j] || r < 1)
      fail(op, {X, B}, "low_rank.B of member " + std::to_string(j) + " must be [" + std::to_string(outs[j]) + ", r >= 1]");
    if (lr.col[j] < 0 || lr.col[j] + r > lr.u->dim(1))
      fail(op, {X, U, B}, "member " + std::to_string(j) + "'s columns [" + std::to_string(lr.col[j]) + ", " +
                              std::to_string(lr.col[j] + r) + ") are not inside low_rank.u's " +
                              std::to_string(lr.u->dim(1)));
    if (!std::isfinite(lr.scale[j])) fail(op, {X, B}, "low_rank.scale must be finite");
  }
}

// opt.input_norm against x [M, in].
void check_input_norm(const char* op, const Tensor& x, const SmallMNorm& n) {
  const Arg X{"x", &x};
  if (!n.w) fail(op, {X}, "input_norm needs its weight");
  const Arg W{"input_norm.w", n.w};
  ops_detail::one_device(op, {X, W});
  ops_detail::need_same_dtype(op, W, X);
  ops_detail::need_shape(op, {X, W}, W, {x.dim(1)}, "[in]");
  if (!(n.eps >= 0.0f) || !std::isfinite(n.eps)) fail(op, {X, W}, "input_norm.eps must be finite and >= 0");
}

// The CPU twin of a projection with its input norm: rms_norm_forward (in f32: the CPU norm's dtype; its output
// rounded once to x's dtype), then the projection of its output.
Tensor normalised_input(const Tensor& x, const SmallMNorm& n) {
  const Tensor x32 = x.to(DType::F32), w32 = n.w->to(DType::F32);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  Tensor rstd = Tensor::empty({x.dim(0)}, DType::F32, x.device());
  rms_norm_forward(x32, w32, n.eps, y, rstd, n.kind);
  return y.to(x.dtype());
}

}  // namespace

bool small_m_enabled() { return small_m_switch().load(std::memory_order_relaxed); }
void set_small_m_enabled(bool on) { small_m_switch().store(on, std::memory_order_relaxed); }

namespace {
KernelSwitch g_early_epilogue("WICK_EARLY_EPILOGUE", /*default_on*/ true);
}  // namespace
bool small_m_early_epilogue() { return g_early_epilogue.on(); }
void set_small_m_early_epilogue(bool on) { g_early_epilogue.set(on); }

void small_m_linear(const Tensor& x, const std::vector<const Tensor*>& w, const std::vector<const Tensor*>& bias,
                    const std::vector<Tensor*>& y, const SmallMOptions& opt) {
  static const char* op = "small_m_linear";
  const Arg X{"x", &x};
  if (w.empty() || w.size() > kSmallMMaxMembers || y.size() != w.size() || (!bias.empty() && bias.size() != w.size()))
    fail(op, {X}, "takes 1 to " + std::to_string(kSmallMMaxMembers) + " weights, as many outputs and biases (or no "
                  "bias list); got " + std::to_string(w.size()) + ", " + std::to_string(y.size()) + ", " +
                  std::to_string(bias.size()));
  ops_detail::Args all{X};
  for (size_t j = 0; j < w.size(); j++) {
    if (!w[j] || !y[j]) fail(op, {X}, "weight and output " + std::to_string(j) + " must be given");
    all.push_back({"w", w[j]});
    all.push_back({"y", y[j]});
    if (!bias.empty() && bias[j]) all.push_back({"bias", bias[j]});
  }
  if (opt.residual) all.push_back({"residual", opt.residual});
  const Device dev = ops_detail::one_device(op, all);
  ops_detail::need_float(op, X);
  ops_detail::need_rank(op, X, 2, "[M, in]");
  const int64_t M = x.dim(0), in = x.dim(1);
  if (!small_m_rows(M)) fail(op, {X}, "x must have 1 to " + std::to_string(kSmallMMaxRows) + " rows");
  const DType ydt = y[0]->dtype();
  for (size_t j = 0; j < w.size(); j++) {
    const Arg W{"w", w[j]}, Y{"y", y[j]};
    ops_detail::need_same_dtype(op, W, X);
    ops_detail::need_rank(op, W, 2, "[out, in]");
    if (w[j]->dim(1) != in) fail(op, {X, W}, "w must be [out, in] with in = " + std::to_string(in));
    const int64_t out = w[j]->dim(0);
    ops_detail::need_shape(op, {X, W, Y}, Y, {M, out}, "[M, out]");
    if (y[j]->dtype() != ydt || (ydt != x.dtype() && !(x.dtype() == DType::BF16 && ydt == DType::F32)))
      fail(op, {X, Y}, "every y must have x's dtype (or f32 for a bf16 x), the same for all");
    if (!bias.empty() && bias[j]) {
      const Arg B{"bias", bias[j]};
      ops_detail::need_same_dtype(op, B, X);
      ops_detail::need_shape(op, {W, B}, B, {out}, "[out]");
    }
  }
  if (opt.residual) {
    const Arg R{"residual", opt.residual}, Y{"y", y[0]};
    if (w.size() != 1) fail(op, {X, R}, "a residual needs exactly one weight; got " + std::to_string(w.size()));
    ops_detail::need_same_dtype(op, R, Y);
    ops_detail::need_shape(op, {X, Y, R}, R, {M, y[0]->dim(1)}, "[M, out] (y's shape)");
  }
  if (opt.low_rank) {
    std::vector<int64_t> outs;
    for (const Tensor* t : w) outs.push_back(t->dim(0));
    check_low_rank(op, x, *opt.low_rank, outs);
  }
  if (opt.input_norm) {
    check_input_norm(op, x, *opt.input_norm);
    if (dev.is_cpu()) {
      SmallMOptions plain = opt;
      plain.input_norm = nullptr;
      return small_m_linear(normalised_input(x, *opt.input_norm), w, bias, y, plain);
    }
  }
  WICK_OP_DISPATCH(op, dev, small_m_linear, x, w, bias, y, opt);
}

void small_m_glu(const Tensor& x, const Tensor& w_gate, const Tensor& w_up, const Tensor* b_gate, const Tensor* b_up,
                 GluAct act, Tensor& s, const SmallMOptions& opt) {
  static const char* op = "small_m_glu";
  const Arg X{"x", &x}, G{"w_gate", &w_gate}, U{"w_up", &w_up}, S{"s", &s};
  if (opt.residual) fail(op, {X, S}, "takes no residual (SmallMOptions::residual is for small_m_linear)");
  ops_detail::Args all{X, G, U, S};
  if (b_gate) all.push_back({"b_gate", b_gate});
  if (b_up) all.push_back({"b_up", b_up});
  const Device dev = ops_detail::one_device(op, all);
  ops_detail::need_float(op, X);
  ops_detail::need_rank(op, X, 2, "[M, in]");
  const int64_t M = x.dim(0), in = x.dim(1);
  if (!small_m_rows(M)) fail(op, {X}, "x must have 1 to " + std::to_string(kSmallMMaxRows) + " rows");
  ops_detail::need_same_dtype(op, G, X);
  ops_detail::need_rank(op, G, 2, "[I, in]");
  if (w_gate.dim(1) != in) fail(op, {X, G}, "w_gate must be [I, in] with in = " + std::to_string(in));
  const int64_t I = w_gate.dim(0);
  ops_detail::need_same_dtype(op, U, X);
  ops_detail::need_shape(op, {X, G, U}, U, {I, in}, "[I, in]");
  ops_detail::need_same_dtype(op, S, X);
  ops_detail::need_shape(op, {X, G, S}, S, {M, I}, "[M, I]");
  for (const Tensor* b : {b_gate, b_up})
    if (b) {
      const Arg B{b == b_gate ? "b_gate" : "b_up", b};
      ops_detail::need_same_dtype(op, B, X);
      ops_detail::need_shape(op, {G, B}, B, {I}, "[I]");
    }
  if (opt.low_rank) check_low_rank(op, x, *opt.low_rank, {I, I});
  if (opt.input_norm) {
    check_input_norm(op, x, *opt.input_norm);
    if (dev.is_cpu()) {
      SmallMOptions plain = opt;
      plain.input_norm = nullptr;
      return small_m_glu(normalised_input(x, *opt.input_norm), w_gate, w_up, b_gate, b_up, act, s, plain);
    }
  }
  WICK_OP_DISPATCH(op, dev, small_m_glu, x, w_gate, w_up, b_gate, b_up, act, s, opt);
}

}  // namespace wick
