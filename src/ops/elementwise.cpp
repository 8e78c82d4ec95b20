// Elementwise ops and casts: validation and dispatch.
#include "ops/elementwise.h"

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

// a, b, out: same shape, same float dtype (f32 or bf16), one device.
static Device same_float(const char* op, Arg a, Arg b, Arg out) {
  const Device dev = ops_detail::one_device(op, {a, b, out});
  ops_detail::need_float(op, a);
  ops_detail::need_same_dtype(op, b, a);
  ops_detail::need_same_dtype(op, out, a);
  ops_detail::need_shape(op, {a, b}, b, a.t->shape(), "a's shape");
  ops_detail::need_shape(op, {a, out}, out, a.t->shape(), "a's shape");
  return dev;
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  const Device dev = same_float("add", {"a", &a}, {"b", &b}, {"out", &out});
  WICK_OP_DISPATCH("add", dev, add, a, b, out);
}

void add_inplace(Tensor& acc, const Tensor& b) {
  const Device dev = same_float("add_inplace", {"acc", &acc}, {"b", &b}, {"acc", &acc});
  WICK_OP_DISPATCH("add_inplace", dev, add_inplace, acc, b);
}

void scale(const Tensor& x, float s, Tensor& out) {
  const Device dev = same_float("scale", {"x", &x}, {"x", &x}, {"out", &out});
  WICK_OP_DISPATCH("scale", dev, scale, x, s, out);
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  const Device dev = same_float("axpy", {"x", &x}, {"y", &y}, {"y", &y});
  WICK_OP_DISPATCH("axpy", dev, axpy, alpha, x, y);
}

void cast(const Tensor& src, Tensor& dst) {
  static const char* op = "cast";
  const Arg S{"src", &src}, D{"dst", &dst};
  const Device dev = ops_detail::one_device(op, {S, D});
  if (!dtype_is_float(src.dtype())) fail(op, {S}, "src must be a float tensor (f32, bf16 or f16)");
  if (!dtype_is_float(dst.dtype())) fail(op, {D}, "dst must be a float tensor (f32, bf16 or f16)");
  ops_detail::need_shape(op, {S, D}, D, src.shape(), "src's shape");
  WICK_OP_DISPATCH(op, dev, cast, src, dst);
}

void copy_matrix(const MatrixView& src, const MatrixView& dst, float scale) {
  static const char* op = "copy_matrix";
  ops_detail::need_view_inside(op, "src", src);
  ops_detail::need_view_inside(op, "dst", dst);
  const Arg S{"src", src.tensor}, D{"dst", dst.tensor};
  const Device dev = ops_detail::one_device(op, {S, D});
  ops_detail::need_float(op, S);
  ops_detail::need_float(op, D);
  if (src.rows != dst.rows || src.cols != dst.cols)
    fail(op, {S, D}, ops_detail::view_str("dst", dst) + " must have the rows and cols of " + ops_detail::view_str("src", src));
  if (ops_detail::may_overlap(src, dst))
    fail(op, {S, D}, ops_detail::view_str("dst", dst) + " must not overlap " + ops_detail::view_str("src", src));
  WICK_OP_DISPATCH(op, dev, copy_matrix, src, dst, scale);
}

void copy_matrices(const std::vector<MatrixCopy>& copies) {
  static const char* op = "copy_matrices";
  if (copies.empty()) return;
  std::vector<Arg> all;
  for (const MatrixCopy& c : copies) {
    all.push_back({"src", c.src.tensor});
    all.push_back({"dst", c.dst.tensor});
  }
  const Device dev = ops_detail::one_device(op, all);
  for (size_t i = 0; i < copies.size(); i++) {
    const MatrixCopy& c = copies[i];
    const Arg S{"src", c.src.tensor}, D{"dst", c.dst.tensor};
    const std::string at = "copy " + std::to_string(i) + ": ";
    ops_detail::need_view_inside(op, "src", c.src);
    ops_detail::need_view_inside(op, "dst", c.dst);
    ops_detail::need_float(op, S);
    ops_detail::need_float(op, D);
    if (c.src.rows != c.dst.rows || c.src.cols != c.dst.cols)
      fail(op, {S, D},
           at + ops_detail::view_str("dst", c.dst) + " must have the rows and cols of " + ops_detail::view_str("src", c.src));
    for (size_t j = 0; j < copies.size(); j++) {
      if (ops_detail::may_overlap(c.dst, copies[j].src))
        fail(op, {S, D}, at + ops_detail::view_str("dst", c.dst) + " must not overlap copy " + std::to_string(j) + "'s src");
      if (j != i && ops_detail::may_overlap(c.dst, copies[j].dst))
        fail(op, {D}, at + ops_detail::view_str("dst", c.dst) + " must not overlap copy " + std::to_string(j) + "'s dst");
    }
  }
  WICK_OP_DISPATCH(op, dev, copy_matrices, copies);
}

void fill(Tensor& t, float value) {
  static const char* op = "fill";
  const Arg T{"t", &t};
  const Device dev = ops_detail::one_device(op, {T});
  if (t.dtype() != DType::F32 && t.dtype() != DType::BF16 && t.dtype() != DType::I32)
    fail(op, {T}, "t must be f32, bf16 or i32");
  WICK_OP_DISPATCH(op, dev, fill, t, value);
}

}  // namespace wick
