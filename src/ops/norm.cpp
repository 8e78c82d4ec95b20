// RMSNorm and LayerNorm: validation and dispatch.
// Dtypes: x, w, b, y, dy, dx, dw, db share the activation dtype; mean and rstd are f32.
#include "ops/norm.h"

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::Args;

void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd, RmsWeight kind) {
  static const char* op = "rms_norm_forward";
  const Device dev = ops_detail::check_rows(op, {"x", &x}, {{"y", &y}}, {{"w", &w}}, {{"rstd", &rstd}});
  WICK_OP_DISPATCH(op, dev, rms_norm_forward, x, w, eps, MatrixView{&y, 0, x.dim(0), x.dim(1), x.dim(1)}, rstd, kind);
}

namespace {
// y's view: x's dtype and device, [N, C] as x, inside its tensor, sharing no element with any of `inputs`.
void check_norm_out(const char* op, const Arg& x, const MatrixView& y, const Args& inputs) {
  const Arg Y{"y", y.tensor};
  ops_detail::need_view_inside(op, "y", y);
  ops_detail::one_device(op, {x, Y});
  ops_detail::need_same_dtype(op, Y, x);
  if (y.rows != x.t->dim(0) || y.cols != x.t->dim(1))
    ops_detail::fail(op, {x, Y}, ops_detail::view_str("y", y) + " must be [N x C] = [" + std::to_string(x.t->dim(0)) +
                                     " x " + std::to_string(x.t->dim(1)) + "]");
  for (const Arg& in : inputs)
    if (ops_detail::may_overlap(y, MatrixView{in.t, 0, 1, in.t->numel(), in.t->numel()}))
      ops_detail::fail(op, {in, Y}, ops_detail::view_str("y", y) + " must not overlap " + in.name);
}
}  // namespace

void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, const MatrixView& y, Tensor& rstd, RmsWeight kind) {
  static const char* op = "rms_norm_forward";
  const Device dev = ops_detail::check_rows(op, {"x", &x}, {}, {{"w", &w}}, {{"rstd", &rstd}});
  check_norm_out(op, {"x", &x}, y, {{"x", &x}});
  WICK_OP_DISPATCH(op, dev, rms_norm_forward, x, w, eps, y, rstd, kind);
}

void add_rms_norm_forward(const Tensor& a, const Tensor& b, const Tensor& w, float eps, Tensor& h, Tensor& y,
                          Tensor& rstd, RmsWeight kind) {
  static const char* op = "add_rms_norm_forward";
  const Device dev =
      ops_detail::check_rows(op, {"a", &a}, {{"b", &b}, {"h", &h}, {"y", &y}}, {{"w", &w}}, {{"rstd", &rstd}});
  if (y.raw() == a.raw() || y.raw() == b.raw() || y.raw() == h.raw())
    ops_detail::fail(op, {{"y", &y}, {"h", &h}}, "y must not alias a, b or h");
  WICK_OP_DISPATCH(op, dev, add_rms_norm_forward, a, b, w, eps, h, MatrixView{&y, 0, a.dim(0), a.dim(1), a.dim(1)},
                   rstd, kind);
}

void add_rms_norm_forward(const Tensor& a, const Tensor& b, const Tensor& w, float eps, Tensor& h, const MatrixView& y,
                          Tensor& rstd, RmsWeight kind) {
  static const char* op = "add_rms_norm_forward";
  const Device dev = ops_detail::check_rows(op, {"a", &a}, {{"b", &b}, {"h", &h}}, {{"w", &w}}, {{"rstd", &rstd}});
  check_norm_out(op, {"a", &a}, y, {{"a", &a}, {"b", &b}, {"h", &h}});
  WICK_OP_DISPATCH(op, dev, add_rms_norm_forward, a, b, w, eps, h, y, rstd, kind);
}

void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx,
                       Tensor* dw, RmsWeight kind, bool accumulate) {
  static const char* op = "rms_norm_backward";
  Args vec{{"w", &w}};
  if (dw) vec.push_back({"dw", dw});
  const Device dev = ops_detail::check_rows(op, {"x", &x}, {{"dy", &dy}, {"dx", &dx}}, vec, {{"rstd", &rstd}});
  if (accumulate && (dx.raw() == dy.raw() || dx.raw() == x.raw()))
    ops_detail::fail(op, {{"dx", &dx}, {"dy", &dy}, {"x", &x}}, "dx must not alias dy or x when accumulating");
  WICK_OP_DISPATCH(op, dev, rms_norm_backward, dy, x, w, rstd, dx, dw, kind, accumulate);
}

void layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, Tensor& mean,
                        Tensor& rstd) {
  static const char* op = "layer_norm_forward";
  const Device dev = ops_detail::check_rows(op, {"x", &x}, {{"y", &y}}, {{"w", &w}, {"b", &b}},
                                            {{"mean", &mean}, {"rstd", &rstd}});
  WICK_OP_DISPATCH(op, dev, layer_norm_forward, x, w, b, eps, y, mean, rstd);
}

void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                         Tensor& dx, Tensor* dw, Tensor* db) {
  static const char* op = "layer_norm_backward";
  Args vec{{"w", &w}};
  if (dw) vec.push_back({"dw", dw});
  if (db) vec.push_back({"db", db});
  const Device dev = ops_detail::check_rows(op, {"x", &x}, {{"dy", &dy}, {"dx", &dx}}, vec,
                                            {{"mean", &mean}, {"rstd", &rstd}});
  WICK_OP_DISPATCH(op, dev, layer_norm_backward, dy, x, w, mean, rstd, dx, dw, db);
}

}  // namespace wick
