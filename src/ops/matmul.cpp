// matmul: validation and dispatch; linear_forward / linear_backward built on matmul (device-independent).
// Dtypes (any device): a and b share one of f32, bf16; c is f32 or bf16; bias has c's dtype. So linear's
// dw, db may be f32 while x, w, dy are bf16 (f32 gradients of bf16 activations).
#include "ops/matmul.h"

#include <map>
#include <mutex>
#include <tuple>

#include "ops/elementwise.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;
using ops_detail::may_overlap;
using ops_detail::need_view_inside;
using ops_detail::view_str;

namespace {
thread_local bool tuning_allowed = false;
}  // namespace

MatmulTuningScope::MatmulTuningScope() : before_(tuning_allowed) { tuning_allowed = true; }
MatmulTuningScope::~MatmulTuningScope() { tuning_allowed = before_; }
bool matmul_tuning_allowed() { return tuning_allowed; }

int64_t matmul_tuned_shapes() {
#ifdef WICK_CUDA
  return cuda_ops::gemm_tuned_shapes();
#else
  return 0;
#endif
}

int64_t matmul_tuning_progress() {
#ifdef WICK_CUDA
  return cuda_ops::gemm_tuning_progress();
#else
  return 0;
#endif
}

void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b, float alpha, float beta,
            const Tensor* bias) {
  static const char* op = "matmul";
  const Arg A{"a", &a}, B{"b", &b}, Cc{"c", &c}, Bias{"bias", bias};
  const Device dev = bias ? ops_detail::one_device(op, {A, B, Cc, Bias}) : ops_detail::one_device(op, {A, B, Cc});
  ops_detail::need_float(op, A);
  ops_detail::need_same_dtype(op, B, A);
  ops_detail::need_float(op, Cc);
  if (bias) ops_detail::need_same_dtype(op, Bias, Cc);
  if (a.ndim() < 2) fail(op, {A}, "a must have rank >= 2");
  if (b.ndim() != 2 && b.ndim() != 3) fail(op, {B}, "b must be rank 2 [K, N] or rank 3 [batch, K, N]");

  // op(b) is [K, N]; op(a) is [M, K] (rank 2/3) or [..., M, K] with leading dims folded into M.
  const int64_t K = trans_b ? b.dim(-1) : b.dim(-2);
  const int64_t N = trans_b ? b.dim(-2) : b.dim(-1);
  const int64_t Ka = trans_a ? a.dim(-2) : a.dim(-1);
  if (Ka != K)
    fail(op, {A, B}, "inner dimensions differ: op(a) gives K = " + std::to_string(Ka) + ", op(b) gives K = " +
                         std::to_string(K));
  Shape want;
  if (b.ndim() == 3) {
    if (a.ndim() != 3 || a.dim(0) != b.dim(0))
      fail(op, {A, B}, "a batched (rank 3) b needs a rank 3 a with the same batch size");
    want = {a.dim(0), trans_a ? a.dim(2) : a.dim(1), N};
  } else {
    if (trans_a && a.ndim() != 2) fail(op, {A, B}, "trans_a needs a rank 2 a when b is rank 2");
    want = a.shape();
    if (trans_a) want = {a.dim(1), N};
    else want.back() = N;
  }
  ops_detail::need_shape(op, {A, B, Cc}, Cc, want, "op(a) @ op(b)");
  if (bias) {
    ops_detail::need_shape(op, {B, Bias}, Bias, {N}, "[N]");
    if (beta != 0.0f && beta != 1.0f) fail(op, {Bias}, "a bias needs beta == 0 or beta == 1");
  }
  if (b.ndim() == 2) {
    // Unbatched: a's leading dims fold into M, so a, b and c are whole matrices (packed row strides) and this
    // is the view matmul on them: the same sgemm / cuBLASLt problem as ever. (Views are not re-validated:
    // the checks above cover whole tensors, and the tensor matmul never refused an aliased c.)
    const auto as_matrix = [](const Tensor& t) {  // [..., R, C] -> [prod(...) R, C], empty dims kept
      int64_t rows = 1;
      for (int i = 0; i + 1 < t.ndim(); i++) rows *= t.dim(i);
      return t.ndim() == 2 ? t : t.view({rows, t.dim(-1)});
    };
    const Tensor a2 = as_matrix(a), c2 = as_matrix(c);
    WICK_OP_DISPATCH(op, dev, matmul, MatrixView::whole(a2), MatrixView::whole(b), MatrixView::whole(c2), trans_a,
                     trans_b, alpha, beta, bias);
    return;
  }
  WICK_OP_DISPATCH(op, dev, matmul, a, b, c, trans_a, trans_b, alpha, beta, bias);
}

namespace {

// The view products' common checks: a and b float of one dtype, every view inside its tensor, op(a)'s K equal
// to op(b)'s, and each output view [M, N] of the right shape, sharing no element with a or b.
void check_view_product(const char* op, const Arg& A, const MatrixView& a, const Arg& B, const MatrixView& b,
                        bool trans_a, bool trans_b, const std::vector<std::pair<Arg, const MatrixView*>>& outs) {
  ops_detail::need_float(op, A);
  ops_detail::need_same_dtype(op, B, A);
  need_view_inside(op, "a", a);
  need_view_inside(op, "b", b);
  for (const auto& [arg, v] : outs) need_view_inside(op, arg.name, *v);
  // op(a) [M, K], op(b) [K, N], outputs [M, N].
  const int64_t M = trans_a ? a.cols : a.rows, Ka = trans_a ? a.rows : a.cols;
  const int64_t K = trans_b ? b.cols : b.rows, N = trans_b ? b.rows : b.cols;
  if (Ka != K)
    fail(op, {A, B}, "inner dimensions differ: op(" + view_str("a", a) + ") gives K = " + std::to_string(Ka) +
                         ", op(" + view_str("b", b) + ") gives K = " + std::to_string(K));
  for (const auto& [arg, v] : outs) {
    if (v->rows != M || v->cols != N)
      fail(op, {A, B, arg}, view_str(arg.name, *v) + " must be op(a) @ op(b) = [" + std::to_string(M) + " x " +
                                std::to_string(N) + "]");
    if (may_overlap(*v, a)) fail(op, {A, arg}, view_str(arg.name, *v) + " must not overlap " + view_str("a", a));
    if (may_overlap(*v, b)) fail(op, {B, arg}, view_str(arg.name, *v) + " must not overlap " + view_str("b", b));
  }
}

}  // namespace

void matmul(const MatrixView& a, const MatrixView& b, const MatrixView& c, bool trans_a, bool trans_b, float alpha,
            float beta, const Tensor* bias) {
  static const char* op = "matmul";
  const Arg A{"a", a.tensor}, B{"b", b.tensor}, Cc{"c", c.tensor}, Bias{"bias", bias};
  const Device dev = bias ? ops_detail::one_device(op, {A, B, Cc, Bias}) : ops_detail::one_device(op, {A, B, Cc});
  ops_detail::need_float(op, Cc);
  if (bias) ops_detail::need_same_dtype(op, Bias, Cc);
  check_view_product(op, A, a, B, b, trans_a, trans_b, {{Cc, &c}});
  if (bias) {
    ops_detail::need_shape(op, {B, Bias}, Bias, {c.cols}, "[N]");
    if (beta != 0.0f && beta != 1.0f) fail(op, {Bias}, "a bias needs beta == 0 or beta == 1");
  }
  WICK_OP_DISPATCH(op, dev, matmul, a, b, c, trans_a, trans_b, alpha, beta, bias);
}

void matmul_into(const MatrixView& a, const MatrixView& b, const MatrixView& c, const MatrixView& d, bool trans_a,
                 bool trans_b, float alpha, float beta) {
  static const char* op = "matmul_into";
  const Arg A{"a", a.tensor}, B{"b", b.tensor}, Cc{"c", c.tensor}, D{"d", d.tensor};
  const Device dev = ops_detail::one_device(op, {A, B, Cc, D});
  ops_detail::need_float(op, D);
  ops_detail::need_same_dtype(op, Cc, D);
  check_view_product(op, A, a, B, b, trans_a, trans_b, {{D, &d}});
  // c is only read, so it may overlap a or b; its shape is d's.
  need_view_inside(op, "c", c);
  if (c.rows != d.rows || c.cols != d.cols)
    fail(op, {Cc, D}, view_str("c", c) + " must be op(a) @ op(b) = [" + std::to_string(d.rows) + " x " +
                          std::to_string(d.cols) + "]");
  if (may_overlap(d, c))
    fail(op, {Cc, D}, view_str("d", d) + " must not overlap " + view_str("c", c) + " (in place: the view matmul)");
  WICK_OP_DISPATCH(op, dev, matmul_into, a, b, c, d, trans_a, trans_b, alpha, beta);
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  static const char* op = "linear_forward";
  const Arg X{"x", &x}, W{"w", &w}, Bb{"b", b}, Y{"y", &y};
  if (b) ops_detail::one_device(op, {X, W, Bb, Y});
  else ops_detail::one_device(op, {X, W, Y});
  if (x.ndim() < 2) fail(op, {X}, "x must have rank >= 2 [N, in]");
  ops_detail::need_rank(op, W, 2, "[out, in]");
  if (w.dim(1) != x.dim(-1)) fail(op, {X, W}, "w must be [out, in] with in = " + std::to_string(x.dim(-1)));
  Shape want = x.shape();
  want.back() = w.dim(0);
  ops_detail::need_shape(op, {X, W, Y}, Y, want, "[N, out]");
  if (b) ops_detail::need_shape(op, {W, Bb}, Bb, {w.dim(0)}, "[out]");
  matmul(x, w, y, false, true, 1.0f, 0.0f, b);
}

// A row of ones [1, n] on (device, dtype), for db = ones @ dy. Grown on demand and kept for the life of
// the process (deliberately never freed: device memory must not be released after the CUDA runtime
// has shut down at exit).
static Tensor ones_row(Device dev, DType dtype, int64_t n) {
  static std::mutex mu;
  static auto* cache = new std::map<std::tuple<int, int, int>, Tensor>();
  std::lock_guard<std::mutex> lock(mu);
  Tensor& t = (*cache)[{static_cast<int>(dev.kind), dev.index, static_cast<int>(dtype)}];
  if (!t.defined() || t.numel() < n) {
    t = Tensor::empty({std::max<int64_t>(n, 256)}, dtype, dev);
    fill(t, 1.0f);
  }
  return t.narrow0(0, n).view({1, n});
}

void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor* dx, Tensor* dw, Tensor* db) {
  static const char* op = "linear_backward";
  const Arg DY{"dy", &dy}, X{"x", &x}, W{"w", &w};
  ops_detail::one_device(op, {DY, X, W});
  if (x.ndim() < 2) fail(op, {X}, "x must have rank >= 2 [N, in]");
  ops_detail::need_rank(op, W, 2, "[out, in]");
  if (w.dim(1) != x.dim(-1)) fail(op, {X, W}, "w must be [out, in] with in = " + std::to_string(x.dim(-1)));
  Shape ys = x.shape();
  ys.back() = w.dim(0);
  ops_detail::need_shape(op, {X, W, DY}, DY, ys, "[N, out]");
  const Tensor dy2 = dy.flatten_to_2d(), x2 = x.flatten_to_2d();
  if (dx) {
    const Arg DX{"dx", dx};
    ops_detail::one_device(op, {DY, DX});
    ops_detail::need_shape(op, {X, DX}, DX, x.shape(), "x's shape [N, in]");
    matmul(dy, w, *dx, false, false, 1.0f, 0.0f, nullptr);  // [N, out] @ [out, in]
  }
  if (dw) {
    const Arg DW{"dw", dw};
    ops_detail::one_device(op, {DY, DW});
    ops_detail::need_shape(op, {W, DW}, DW, w.shape(), "w's shape [out, in]");
    matmul(dy2, x2, *dw, true, false, 1.0f, 1.0f, nullptr);  // dy^T [out, N] @ x [N, in], accumulated
  }
  if (db) {
    const Arg DB{"db", db};
    ops_detail::one_device(op, {DY, DB});
    ops_detail::need_shape(op, {W, DB}, DB, {w.dim(0)}, "[out]");
    Tensor db2 = db->view({1, w.dim(0)});
    matmul(ones_row(dy.device(), dy.dtype(), dy2.dim(0)), dy2, db2, false, false, 1.0f, 1.0f, nullptr);
  }
}

}  // namespace wick
