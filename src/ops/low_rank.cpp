// low_rank_product: validation and dispatch (ops/low_rank.h). The CUDA twin picks the fused kernel or the
// two matmuls (ops/cuda/low_rank.cu); the CPU twin is ops/cpu/low_rank.cpp.
#include "ops/low_rank.h"

#include "ops/elementwise.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

void low_rank_product(const Tensor& x, const Tensor& A, const Tensor& B, float scale, Tensor& y, bool accumulate) {
  static const char* op = "low_rank_product";
  const Arg X{"x", &x}, AA{"A", &A}, BB{"B", &B}, Y{"y", &y};
  const Device dev = ops_detail::one_device(op, {X, AA, BB, Y});
  ops_detail::need_float(op, X);
  ops_detail::need_same_dtype(op, AA, X);
  ops_detail::need_same_dtype(op, BB, X);
  ops_detail::need_same_dtype(op, Y, X);
  ops_detail::need_rank(op, X, 2, "[M, in]");
  ops_detail::need_rank(op, AA, 2, "[r, in]");
  ops_detail::need_rank(op, BB, 2, "[out, r]");
  if (A.dim(1) != x.dim(1)) fail(op, {X, AA}, "A must be [r, in] with in = " + std::to_string(x.dim(1)));
  if (B.dim(1) != A.dim(0)) fail(op, {AA, BB}, "B must be [out, r] with r = " + std::to_string(A.dim(0)));
  ops_detail::need_shape(op, {X, BB, Y}, Y, {x.dim(0), B.dim(0)}, "[M, out]");
  const int64_t M = x.dim(0), r = A.dim(0), in = x.dim(1), out = B.dim(0);
  if (M == 0 || out == 0) return;
  if (r == 0 || in == 0) {  // an empty sum: the product is zero
    if (!accumulate) fill(y, 0.0f);
    return;
  }
  WICK_OP_DISPATCH(op, dev, low_rank_product, x, A, B, scale, y, accumulate);
}

}  // namespace wick
