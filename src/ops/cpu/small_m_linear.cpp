// CPU twin of small_m_linear and small_m_glu (ops/small_m_linear.h): plain loops, each dot product summed in
// f32 in index order, the bias and the adapter term (rounded to x's dtype) added in f32, one rounding to y's
// dtype. bf16 operands are widened. The GLU
// variant rounds g and u to the dtype, then runs the CPU glu_forward (f32) on them: in bf16 act(g) is not
// rounded before the product there (the CUDA twin rounds it, as ops/cuda/swiglu.cu does).
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

namespace {

Tensor f32_of(const Tensor& t) { return t.dtype() == DType::F32 ? t : t.to(DType::F32); }

float round_as(DType dt, float v) { return dt == DType::BF16 ? round_bf16(v) : v; }

// Member j's adapter term (SmallMLowRank), or none: round(scale sum_k u[m, col + k] B[o, k]) in x's dtype.
struct LowRankTerm {
  const float* u = nullptr;  // [M, ld]
  int64_t ld = 0, col = 0, r = 0;
  Tensor B32;                // [out, r] f32
  float scale = 0.0f;
  DType dt = DType::F32;
  float at(int64_t m, int64_t o) const {
    const float* b = B32.data<float>() + o * r;
    float acc = 0.0f;
    for (int64_t k = 0; k < r; k++) acc += u[m * ld + col + k] * b[k];
    return round_as(dt, scale * acc);
  }
};

LowRankTerm low_rank_term(const SmallMOptions& opt, size_t j, DType dt, const Tensor& u32) {
  LowRankTerm t;
  if (!opt.low_rank || !opt.low_rank->B[j]) return t;
  const SmallMLowRank& lr = *opt.low_rank;
  t.u = u32.data<float>();
  t.ld = u32.dim(1);
  t.col = lr.col[j];
  t.r = lr.B[j]->dim(1);
  t.B32 = f32_of(*lr.B[j]);
  t.scale = lr.scale[j];
  t.dt = dt;
  return t;
}

// y [M, out] f32 (=) x w^T + b (+ the adapter term), then rounded to `round_to` (BF16: through bf16; F32:
// unchanged).
void project(const Tensor& x32, const Tensor& w32, const Tensor* b32, DType round_to, Tensor& y,
             const LowRankTerm& lr = {}) {
  const int64_t M = x32.dim(0), in = x32.dim(1), out = w32.dim(0);
  const float* x = x32.data<float>();
  const float* w = w32.data<float>();
  const float* b = b32 ? b32->data<float>() : nullptr;
  float* o = y.data<float>();
#pragma omp parallel for if (out * in > 65536)
  for (int64_t r = 0; r < out; r++)
    for (int64_t m = 0; m < M; m++) {
      float acc = 0.0f;
      for (int64_t i = 0; i < in; i++) acc += x[m * in + i] * w[r * in + i];
      if (b) acc += b[r];
      if (lr.u) acc += lr.at(m, r);
      o[m * out + r] = round_as(round_to, acc);
    }
}

}  // namespace

// opt.residual (one member): y = round(round(x w^T + b) + residual), the residual read before y is written (it
// may be y itself).
void small_m_linear(const Tensor& x, const std::vector<const Tensor*>& w, const std::vector<const Tensor*>& bias,
                    const std::vector<Tensor*>& y, const SmallMOptions& opt) {
  const Tensor x32 = f32_of(x);
  const Tensor res32 = opt.residual ? opt.residual->to(DType::F32) : Tensor();  // a copy: y may be the residual
  const Tensor u32 = opt.low_rank ? *opt.low_rank->u : Tensor();
  for (size_t j = 0; j < w.size(); j++) {
    const Tensor w32 = f32_of(*w[j]);
    const Tensor* b = bias.empty() ? nullptr : bias[j];
    const Tensor b32 = b ? f32_of(*b) : Tensor();
    const DType ydt = y[j]->dtype();
    Tensor y32 = ydt == DType::F32 && !opt.residual ? *y[j] : Tensor::empty(y[j]->shape(), DType::F32);
    project(x32, w32, b ? &b32 : nullptr, opt.residual ? ydt : DType::F32, y32,  // with a residual: rounded here
            low_rank_term(opt, j, x.dtype(), u32));
    if (opt.residual) {
      float* v = y32.data<float>();
      const float* r = res32.data<float>();
      for (int64_t i = 0; i < y32.numel(); i++) v[i] += r[i];
    }
    if (y32.raw() != y[j]->raw()) cast_into(y32, *y[j]);  // the (last) rounding
  }
}

void small_m_glu(const Tensor& x, const Tensor& w_gate, const Tensor& w_up, const Tensor* b_gate, const Tensor* b_up,
                 GluAct act, Tensor& s, const SmallMOptions& opt) {
  const Tensor x32 = f32_of(x);
  const Tensor bg = b_gate ? f32_of(*b_gate) : Tensor(), bu = b_up ? f32_of(*b_up) : Tensor();
  const Tensor u32 = opt.low_rank ? *opt.low_rank->u : Tensor();
  Tensor g = Tensor::empty(s.shape(), DType::F32), u = Tensor::empty(s.shape(), DType::F32);
  // g, u rounded to the dtype
  project(x32, f32_of(w_gate), b_gate ? &bg : nullptr, x.dtype(), g, low_rank_term(opt, 0, x.dtype(), u32));
  project(x32, f32_of(w_up), b_up ? &bu : nullptr, x.dtype(), u, low_rank_term(opt, 1, x.dtype(), u32));
  if (s.dtype() == DType::F32) return cpu::glu_forward(g, u, act, s);
  Tensor s32 = Tensor::empty(s.shape(), DType::F32);
  cpu::glu_forward(g, u, act, s32);
  cast_into(s32, s);
}

}  // namespace wick::cpu
