// CUDA twin of small_m_linear and small_m_glu (ops/small_m_linear.h): one launch of the kernel in
// small_m_linear.cuh per call (which says how the work is spread and how it rounds).
#include <climits>

#include "core/env.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/small_m_linear.cuh"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace wick::cuda_ops {

static_assert(kSmallMMaxRows == small_m::kMaxM && kSmallMMaxMembers == small_m::kMaxMembers,
              "ops/small_m_linear.h's bounds are the kernel's");

namespace {

void check_int(const char* op, int64_t M, int64_t in, int64_t rows) {
  WICK_CHECK(in <= INT_MAX / 2 && rows <= INT_MAX / 2 && M * in <= INT_MAX / 2,
             "" << op << ": in " << in << ", " << rows << " output rows: too large for the kernel's int indices");
}

// opt.low_rank into the kernel's adapter fields (none: lu stays null).
template <typename T, typename TY> void set_low_rank(small_m::Args<T, TY>& a, const SmallMOptions& opt) {
  if (!opt.low_rank) return;
  const SmallMLowRank& lr = *opt.low_rank;
  a.lu = cuda::cptr<float>(*lr.u);
  a.lu_ld = static_cast<int>(lr.u->dim(1));
  for (size_t j = 0; j < lr.B.size(); j++) {
    if (!lr.B[j]) continue;
    a.lb[j] = cuda::cptr<T>(*lr.B[j]);
    a.lr[j] = static_cast<int>(lr.B[j]->dim(1));
    a.lcol[j] = static_cast<int>(lr.col[j]);
    a.lscale[j] = lr.scale[j];
  }
}

// opt.input_norm into the kernel's norm fields (none: nw stays null).
template <typename T, typename TY> void set_input_norm(small_m::Args<T, TY>& a, const SmallMOptions& opt) {
  if (!opt.input_norm) return;
  const SmallMNorm& n = *opt.input_norm;
  a.nw = cuda::cptr<T>(*n.w);
  a.neps = n.eps;
  a.noffset = n.kind == RmsWeight::OneOffset ? 1 : 0;
}

}  // namespace

void small_m_linear(const Tensor& x, const std::vector<const Tensor*>& w, const std::vector<const Tensor*>& bias,
                    const std::vector<Tensor*>& y, const SmallMOptions& opt) {
  const int64_t M = x.dim(0), in = x.dim(1);
  int64_t rows = 0;
  for (const Tensor* t : w) rows += t->dim(0);
  if (rows == 0) return;
  if (in == 0) {  // an empty sum: y = bias (or 0)
    for (size_t j = 0; j < w.size(); j++) {
      const Tensor* b = bias.empty() ? nullptr : bias[j];
      Tensor zero = Tensor::zeros({M, in}, x.dtype(), x.device());
      if (opt.residual) {  // round(round(b) + residual): the bias (or 0) rounded first, as below
        Tensor t = Tensor::empty(y[j]->shape(), y[j]->dtype(), y[j]->device());
        wick::matmul(zero, *w[j], t, false, true, 1.0f, 0.0f, b);
        wick::add(t, *opt.residual, *y[j]);
      } else {
        wick::matmul(zero, *w[j], *y[j], false, true, 1.0f, 0.0f, b);
      }
    }
    return;
  }
  check_int("small_m_linear", M, in, rows);
  cudaStream_t s = cuda::stream_of(x);
  const bool y32 = y[0]->dtype() == DType::F32;
  cuda::dispatch_float(x.dtype(), "small_m_linear", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto go = [&](auto ytag) {
      using TY = typename decltype(ytag)::type;
      small_m::Args<T, TY> a{};
      a.x = cuda::cptr<T>(x);
      a.members = static_cast<int>(w.size());
      a.M = static_cast<int>(M);
      a.in = static_cast<int>(in);
      a.res = opt.residual ? cuda::cptr<TY>(*opt.residual) : nullptr;
      a.prefetch = opt.weights_settled ? 1 : 0;
      const bool early = small_m_early_epilogue();
      a.bias_early = early && opt.weights_settled ? 1 : 0;
      a.res_early = early && opt.residual && opt.residual_settled ? 1 : 0;
      set_low_rank(a, opt);
      set_input_norm(a, opt);
      for (size_t j = 0; j < w.size(); j++) {
        const Tensor* b = bias.empty() ? nullptr : bias[j];
        a.w[j] = cuda::cptr<T>(*w[j]);
        a.b[j] = b ? cuda::cptr<T>(*b) : nullptr;
        a.y[j] = cuda::ptr<TY>(*y[j]);
        a.out[j] = static_cast<int>(w[j]->dim(0));
      }
      small_m::Tuning tune;
      tune.sms = cuda::sm_count(x.device().index);
      WICK_CUDA_CHECK((small_m::launch<T, TY>(a, small_m::kPlain, s, tune)));
    };
    if (y32) go(cuda::Tag<float>{});
    else go(tag);
  });
}

void small_m_glu(const Tensor& x, const Tensor& w_gate, const Tensor& w_up, const Tensor* b_gate, const Tensor* b_up,
                 GluAct act, Tensor& s, const SmallMOptions& opt) {
  const int64_t M = x.dim(0), in = x.dim(1), I = w_gate.dim(0);
  if (I == 0) return;
  if (in == 0) {  // g = b_gate (or 0), u = b_up (or 0): the GLU of those
    Tensor g = Tensor::zeros({M, I}, x.dtype(), x.device()), u = Tensor::zeros({M, I}, x.dtype(), x.device());
    Tensor zero = Tensor::zeros({M, in}, x.dtype(), x.device());
    wick::matmul(zero, w_gate, g, false, true, 1.0f, 0.0f, b_gate);
    wick::matmul(zero, w_up, u, false, true, 1.0f, 0.0f, b_up);
    wick::glu_forward(g, u, act, s);
    return;
  }
  check_int("small_m_glu", M, in, I);
  cudaStream_t st = cuda::stream_of(x);
  cuda::dispatch_float(x.dtype(), "small_m_glu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    small_m::Args<T, T> a{};
    a.x = cuda::cptr<T>(x);
    a.members = 2;
    a.M = static_cast<int>(M);
    a.in = static_cast<int>(in);
    a.w[0] = cuda::cptr<T>(w_gate);
    a.w[1] = cuda::cptr<T>(w_up);
    a.b[0] = b_gate ? cuda::cptr<T>(*b_gate) : nullptr;
    a.b[1] = b_up ? cuda::cptr<T>(*b_up) : nullptr;
    a.y[0] = cuda::ptr<T>(s);
    a.out[0] = a.out[1] = static_cast<int>(I);
    a.prefetch = opt.weights_settled ? 1 : 0;
    set_low_rank(a, opt);
    set_input_norm(a, opt);
    // From 4,096 rows gate/up + GLU take two warps a row (the default rule's choice; H200: +1-2% decode, H100:
    // level to -1.5%, docs/benchmarks.md section 10, session 27); WICK_GLU_K2=0 keeps one warp a row there.
    small_m::Tuning tune;
    tune.sms = cuda::sm_count(x.device().index);
    static const bool k2 = env_default_on("WICK_GLU_K2");
    if (!k2 && a.out[0] >= 4096) tune.k = 1;
    WICK_CUDA_CHECK((small_m::launch<T, T>(a, act == GluAct::Silu ? small_m::kGluSilu : small_m::kGluGelu, st, tune)));
  });
}

}  // namespace wick::cuda_ops
