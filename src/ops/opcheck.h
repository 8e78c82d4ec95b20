// Op checking, shared by the op tests (tests/ops, tests/cuda) and `wick selfcheck`, in the spirit of
// ggml's test-backend-ops: a Case is one op on one set of shapes, with random inputs (never zeros), that
// can run on any device in f32 or bf16. The drivers below compare
//   - the CPU forward against the f64 reference (ops/reference.h),
//   - every CPU backward against central finite differences of that f64 reference,
//   - a device (CUDA) forward and backward against the CPU on the same inputs,
//   - the accumulation rule: two backward calls give twice the parameter gradient, the same input grads,
// with every output allocated between guard elements (checked untouched) and poisoned with NaN before
// the op runs (so an element the op forgot to write shows up as NaN).
#pragma once
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "ops/reference.h"

namespace wick::opcheck {

// The dtype a tensor of a case gets: Act follows the activation dtype under test (f32 or bf16); the
// others are fixed (statistics, optimizer state, indices, cast endpoints).
// Concatenates anything streamable ("N", 7, "_C", 896 -> "N7_C896"); builds case tags.
template <class... A> std::string cat_str(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}

// Test inputs: a sum of four uniforms, scaled to mean 0 and variance 1 (Irwin-Hall; tails cut at 3.5).
// A tenth of the cost of Box-Muller, which matters for the multi-million-element Qwen shapes.
inline float gauss(Rng& r) {
  return (r.uniform() + r.uniform() + r.uniform() + r.uniform() - 2.0f) * 1.7320508f;
}

enum class Kind { Act, F32, BF16, F16, I32, I64 };
DType dtype_for(Kind k, DType act);

struct Spec {
  std::string name;
  Shape shape;
  Kind kind = Kind::Act;
};

// Tolerances of one case, with the reason they are what they are. Errors are normalised (see Report).
struct Tol {
  double fwd = 1e-5;            // CPU f32 forward vs the f64 reference
  double bwd = 1e-4;            // CPU backward vs central finite differences of the f64 reference
  double cpu_bf16 = 1e-2;       // CPU bf16 forward vs the f64 reference on the same bf16 inputs
  double dev = 1e-5;            // device f32 forward vs CPU (TF32 must be off)
  double dev_bwd = 1e-5;        // device f32 backward vs CPU
  double dev_bf16 = 1e-2;       // device bf16 forward vs CPU f32 on the same bf16-rounded inputs
  double dev_bf16_bwd = 2e-2;   // device bf16 backward vs CPU f32
  std::string why;
};

class Case {
 public:
  Case(std::string family, std::string tag) : family_(std::move(family)), tag_(std::move(tag)) {}
  virtual ~Case() = default;
  const std::string& family() const { return family_; }  // "rms_norm"
  const std::string& tag() const { return tag_; }        // "N7_C896"
  // gtest-friendly name of one stage: "rms_norm_fwd_N7_C896"
  std::string name(const std::string& stage) const { return family_ + "_" + stage + "_" + tag_; }

  virtual std::vector<Spec> inputs() const = 0;
  virtual std::vector<Spec> outputs() const = 0;
  // Host values of the inputs (f32 for float kinds, i32/i64 for indices), already allocated per inputs().
  // Default: N(0, 1) for floats; cases with index inputs override it.
  virtual void fill_inputs(std::vector<Tensor>& host, Rng& rng) const;
  // Runs the public op. `out` are preallocated per outputs() on the inputs' device (poisoned).
  virtual void forward(const std::vector<Tensor>& in, std::vector<Tensor>& out) const = 0;
  // f64 reference of forward: one vector per output.
  virtual std::vector<ref::Vec> reference(const std::vector<ref::Vec>& in) const = 0;
  // Approximate work of one reference() call; sets how many finite differences a backward check affords.
  virtual double ref_cost() const;

  // Backward: grads[j] is the gradient of input grad_inputs()[j] (same shape and kind), cot[j] the
  // cotangent of output cot_outputs()[j]; `out` are the forward outputs. Inputs listed in accumulating()
  // are parameters: their grads are ACCUMULATED (+=), the others written (=).
  virtual std::vector<int> grad_inputs() const { return {}; }
  virtual std::vector<int> accumulating() const { return {}; }
  virtual std::vector<int> cot_outputs() const { return {}; }
  virtual void fill_cotangents(std::vector<Tensor>& cot, Rng& rng) const;  // default N(0, 1)
  virtual void backward(const std::vector<Tensor>& in, const std::vector<Tensor>& out, const std::vector<Tensor>& cot,
                        std::vector<Tensor>& grads) const {}
  bool has_backward() const { return !grad_inputs().empty(); }
  // CPU twin sums then adds parameter grads, so two calls give exactly 2x (false where sgemm accumulates
  // K blocks into c).
  virtual bool exact_accumulate() const { return true; }

  virtual bool device_bf16() const { return true; }  // the op takes bf16 activations on CUDA
  virtual bool cpu_bf16() const { return false; }    // ... and on the CPU too

  Tol tol;

 private:
  std::string family_, tag_;
};
using CasePtr = std::unique_ptr<Case>;

// One comparison. err is normalised: max(||a - b||_2 / ||b||_2, max|a - b| / (4 max|b|)), so that a
// single wrong element cannot hide in a large tensor; for finite differences, see check_backward_fd.
struct Check {
  std::string what;  // "y", "grad x", "guards", ...
  bool pass = false;
  double err = 0, tol = 0;
  std::string note;  // why it failed (or extra detail)
};

struct Report {
  std::vector<Check> checks;
  bool pass() const;
  double worst_err() const;   // err of the check with the largest err / tol
  double worst_tol() const;
  std::string str() const;    // one line per check
};

Report check_forward_cpu(const Case& c, DType act, uint64_t seed);
// samples_budget: reference work allowed per gradient (element samples = budget / (2 ref_cost), 2..64).
Report check_backward_fd(const Case& c, uint64_t seed, double samples_budget = 4e7);
Report check_accumulate(const Case& c, Device dev, DType act, uint64_t seed);
Report check_device(const Case& c, Device dev, DType act, uint64_t seed);

// ---- case makers (ops/opcheck_cases_*.cpp) ----
struct MatmulShape {
  int64_t batch = 0;  // 0: unbatched (b rank 2); > 0: a, b, c rank 3
  Shape lead{};       // unbatched only: leading dims of a (and c); empty means [M]
  int64_t M = 1, N = 1, K = 1;
  bool ta = false, tb = false;
  float alpha = 1.0f, beta = 0.0f;
  bool bias = false;
  bool c_f32 = false;  // c stays f32 in bf16 runs (bf16 inputs, f32 output)
};
CasePtr make_matmul(const MatmulShape& s);
// low_rank_product: x [M, in], A [r, in], B [out, r] -> y [M, out]
struct LowRankShape {
  int64_t M = 1, in = 1, r = 1, out = 1;
  bool accumulate = false;
  float scale = 1.0f;
};
CasePtr make_low_rank(const LowRankShape& s);
// weight_grad_products: one op over several products out_j (+)= scale_j a_j^T b_j, a_j [K, M_j], b_j [K, R_j]
// (activations), out_j f32 [M_j, R_j] or, transposed, [R_j, M_j]; scales 0.5, 1.25, 2, .. by product
struct WeightGradSpec {
  int64_t M = 1, R = 1;
  bool transposed = false;
  bool accumulate = true;
};
CasePtr make_weight_grads(int64_t K, const std::vector<WeightGradSpec>& products);
// segmented_lora_add: x [M, in], y0 [M, out] -> y [M, out]; one (row0, rows, r, scale) per segment, each with
// its own A [r, in], B [out, r] (f32); rows outside every segment keep y0
struct LoraSegmentSpec {
  int64_t row0 = 0, rows = 1, r = 1;
  float scale = 1.0f;
};
CasePtr make_segmented_lora(int64_t M, int64_t in, int64_t out, const std::vector<LoraSegmentSpec>& segs);
// small_m_linear: x [M, in], w_j [out_j, in] (+ bias_j) -> y_j [M, out_j]; y_f32: f32 outputs in bf16 runs
struct SmallMShape {
  int64_t M = 1, in = 1;
  std::vector<int64_t> outs{1};
  bool bias = false;
  bool y_f32 = false;
  bool residual = false;  // SmallMOptions::residual (one member): a "res" input [M, out] added to y
  bool settled = false;   // SmallMOptions::weights_settled and residual_settled (the CUDA kernel reads w, the bias
                          // and the residual before the previous kernel ends)
  // SmallMOptions::low_rank: one rank per member (0: no adapter; empty: none at all): inputs u [M, sum of the
  // ranks] f32 and B_j [out_j, r_j], scales 0.5, 0.75, 1.0 by member
  std::vector<int64_t> ranks;
  // SmallMOptions::input_norm: 0 none, 1 RmsWeight::Scale, 2 RmsWeight::OneOffset (an input "norm_w" [in], last)
  int norm = 0;
};
CasePtr make_small_m_linear(const SmallMShape& s);
// small_m_glu: x [M, in], w_gate, w_up [I, in] (+ biases) -> s [M, I]; silu or gelu_tanh; settled as SmallMShape;
// ranks: adapters on gate and up as SmallMShape::ranks ({} or two); norm as SmallMShape::norm
CasePtr make_small_m_glu(int64_t M, int64_t in, int64_t I, bool gelu, bool bias, bool settled = false,
                         const std::vector<int64_t>& ranks = {}, int norm = 0);
CasePtr make_linear(const Shape& lead, int64_t in, int64_t out, bool bias);
CasePtr make_embedding(int64_t N, int64_t V, int64_t C, DType ids);
// offset: Gemma's (1 + w) weight (RmsWeight::OneOffset)
CasePtr make_rms_norm(int64_t N, int64_t C, float eps = 1e-6f, bool offset = false);
CasePtr make_layer_norm(int64_t N, int64_t C, float eps = 1e-5f);
CasePtr make_softmax(int64_t N, int64_t C);
CasePtr make_swiglu(int64_t N, int64_t I);
CasePtr make_geglu(int64_t N, int64_t I);  // gelu_tanh(gate) * up (Gemma)
CasePtr make_rope(int64_t B, int64_t T, int64_t H, int64_t D, float theta, int32_t max_pos, bool packed, bool inplace);
struct AttentionShape {
  int64_t B = 1, T = 1, H = 1, Hkv = 1, D = 8;
  int64_t kv_len = 0;  // 0: = T (training; backward checked). > T: decode, T queries at the end.
  int64_t S = 0;       // cache capacity (0: = kv_len); keys beyond kv_len are NaN and must not be read
  bool segments = false;  // packing: several segments per row
  bool lse = true;        // pass lse (else null)
  int64_t window = 0;     // sliding window (AttentionArgs::window); 0: none
  // decode with the query positions on the device (AttentionArgs::positions = kv_len - T + t) and kv_len passed
  // as S, the capacity: a replayed decode graph's call
  bool positions = false;
};
CasePtr make_attention(const AttentionShape& s);
CasePtr make_cross_entropy(int64_t N, int64_t V, bool ignore, float grad_scale, bool inplace);
CasePtr make_adamw(const Shape& shape, int64_t step, float weight_decay, float grad_scale);
CasePtr make_sum_squares(const std::vector<Shape>& shapes);
// which: "add", "add_inplace", "scale", "axpy"
CasePtr make_elementwise(const std::string& which, const Shape& shape);
CasePtr make_dropout(const Shape& shape, float p, uint64_t mix, bool inplace, bool accumulate);  // ops/dropout.h
CasePtr make_cast(const Shape& shape, DType from, DType to);
CasePtr make_fill(const Shape& shape, DType dtype, float value);

}  // namespace wick::opcheck
