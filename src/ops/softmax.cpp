// Softmax over the last dim: validation and dispatch. x, y, dy, dx share the activation dtype.
#include "ops/softmax.h"

#include "ops/validate.h"

namespace wick {

void softmax_forward(const Tensor& x, Tensor& y) {
  static const char* op = "softmax_forward";
  const Device dev = ops_detail::check_rows(op, {"x", &x}, {{"y", &y}}, {}, {});
  WICK_OP_DISPATCH(op, dev, softmax_forward, x, y);
}

void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  static const char* op = "softmax_backward";
  const Device dev = ops_detail::check_rows(op, {"y", &y}, {{"dy", &dy}, {"dx", &dx}}, {}, {});
  WICK_OP_DISPATCH(op, dev, softmax_backward, y, dy, dx);
}

}  // namespace wick
