// Projections of a few rows (decode: one row per sequence) as bandwidth-bound matrix-vector products.
//
// At decode a linear layer multiplies M <= 8 rows by a weight matrix it reads once: one FMA per weight per
// row, so its cost is the weight read (and the launch), not arithmetic. cuBLASLt's GEMMs, tiled for large M,
// stay far from the memory bandwidth there (e.g. [1, 896] x [896, 4864]^T in bf16). small_m_linear reads each
// weight row with wide loads spread over the whole GPU, and does the projections of one input (q, k, v) in
// one launch; small_m_glu fuses the MLP's gate and up projections with the GLU. ops/cuda/small_m_linear.cuh
// says how the work is spread. Inference takes them on CUDA for M <= kSmallMMaxRows rows (model/linear.h,
// model/layer.cpp, model/causal_lm_forward.cpp); training never does.
//
// Rounding: f32 accumulation; the bias is added in f32 to the f32 sum and the result rounded once to y's
// dtype, as matmul's cuBLASLt bias epilogue does (ops/matmul.h); only the summation order differs. The GLU
// variant rounds g = x Wg^T + bg and u = x Wu^T + bu to the dtype first (what the unfused path writes into
// its g and u buffers), then computes glu_forward's expression on them (ops/swiglu.h: on CUDA act(g) is
// rounded before the product). The CPU twin is plain loops (f32 sums in index order; bf16 widened, results
// rounded the same way; its bf16 GLU does not round act(g), as the CPU glu_forward computes in f32).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/norm.h"
#include "ops/swiglu.h"

namespace wick {

constexpr int64_t kSmallMMaxRows = 8;     // rows of x (inclusive)
constexpr size_t kSmallMMaxMembers = 3;   // weights per call

// A LoRA adapter's term in a small_m projection (decode with an adapter attached), for the members that have one:
//   y_j = round(x w_j^T + b_j + round(scale_j (u_j B_j^T)))      u_j = u[:, col_j : col_j + r_j]
// with u = x A^T precomputed in f32 for the whole group (small_m_linear of the members' stacked A's with an f32
// y: one launch for every adapter of the group), B_j [out_j, r_j] in x's dtype. The rounding is the unfused
// path's (model/linear.cpp: the adapter term written into y in x's dtype, then the base GEMM adding x W^T + b
// with beta = 1 and rounding once); only the summation order differs. With a residual the residual add follows
// (round(round(...) + residual)); in small_m_glu it applies to g (member 0) and u (member 1) before the GLU.
struct SmallMLowRank {
  const Tensor* u = nullptr;        // [M, U] f32
  std::vector<const Tensor*> B;     // one per member (null: that member has no adapter)
  std::vector<int64_t> col;         // one per member: the member's first column of u
  std::vector<float> scale;         // one per member
};

// The RMSNorm in front of a small_m projection (decode: the layer's input norm before q|k|v, the post-attention
// norm before gate/up), done inside the projection's launch instead of a launch of its own: the projections of
// rms_norm_forward(x, *w, eps, kind)'s output (rstd and y are not stored). On CUDA, RMSNorm(x) W^T = rstd (x * w)
// W^T: each lane multiplies the x it reads by w and sums its squares beside the dot products, and the row's results
// are scaled by rstd = rsqrt(mean(x^2) + eps) before the bias; the CPU twin runs the norm (its output rounded to
// x's dtype) and then the projection. So the two differ by that rounding and the order of the sums, not more.
// w [in], x's dtype.
struct SmallMNorm {
  const Tensor* w = nullptr;
  float eps = 1e-6f;
  RmsWeight kind = RmsWeight::Scale;
};

// What a caller may ask of small_m_linear / small_m_glu beyond the projections.
struct SmallMOptions {
  // The weights and biases are settled: the kernel launched just before this op on its stream does not write
  // them (a model's weights during inference). On CUDA the op then starts reading them before that kernel has
  // finished (ops/cuda/pdl.cuh), so that the read overlaps its tail; a broken promise reads stale weights.
  // No effect on the CPU.
  bool weights_settled = false;
  // small_m_linear with one member: y_0 = round(round(x w_0^T + b_0) + residual), residual [M, out_0] with y_0's
  // dtype (it may be y_0 itself): a decoder layer's residual add in the same launch, rounded as the separate
  // add (ops/elementwise.h) rounds it.
  const Tensor* residual = nullptr;
  // The residual is settled: the kernel launched just before this op on its stream does not write it (a decoder
  // layer's residual stream, written two or more launches back). On CUDA the op then reads it, and a settled
  // bias, before that kernel has finished, so that the epilogue's round trips overlap its tail; the same bits.
  // A broken promise reads a stale residual. No effect on the CPU.
  bool residual_settled = false;
  // Adapter terms (SmallMLowRank), or none.
  const SmallMLowRank* low_rank = nullptr;
  // x's RMSNorm (SmallMNorm), or none: x is then the norm's input.
  const SmallMNorm* input_norm = nullptr;
};

// x [M, in], w_j [out_j, in], bias_j [out_j] (or null; `bias` may also be empty) -> y_j [M, out_j] (=):
//   y_j = x w_j^T + bias_j   (+ opt.residual: SmallMOptions)
// 1 to 3 members. x, every w_j and bias_j share one dtype, f32 or bf16 (the CPU widens bf16); every y_j has
// x's dtype, or f32 for a bf16 x (lm_head's f32 logits). M in [1, kSmallMMaxRows].
void small_m_linear(const Tensor& x, const std::vector<const Tensor*>& w, const std::vector<const Tensor*>& bias,
                    const std::vector<Tensor*>& y, const SmallMOptions& opt = {});

// x [M, in], w_gate, w_up [I, in], b_gate, b_up [I] (or null) -> s [M, I] (=):
//   s = glu(round(x w_gate^T + b_gate), round(x w_up^T + b_up)) with act as glu_forward
// One dtype for all, f32 or bf16. M in [1, kSmallMMaxRows]. opt.residual must be null; opt.low_rank's members are
// gate (0) and up (1).
void small_m_glu(const Tensor& x, const Tensor& w_gate, const Tensor& w_up, const Tensor* b_gate, const Tensor* b_up,
                 GluAct act, Tensor& s, const SmallMOptions& opt = {});

inline bool small_m_rows(int64_t M) { return M >= 1 && M <= kSmallMMaxRows; }

// Whether inference takes these ops where it may (model/linear.cpp, model/layer.cpp, model/causal_lm_forward.cpp
// ask it): on by default, off when the environment has WICK_SMALL_M=0 at the first call. Tests and benchmarks
// switch it to compare with the GEMM path. The ops themselves always run when called.
bool small_m_enabled();
void set_small_m_enabled(bool on);

// Whether the CUDA kernel reads a settled bias and residual before the previous kernel ends
// (SmallMOptions::residual_settled): on unless WICK_EARLY_EPILOGUE=0; the tests' switch applies to launches and
// graph captures after it.
bool small_m_early_epilogue();
void set_small_m_early_epilogue(bool on);

}  // namespace wick
