// SwiGLU: validation and dispatch. gate, up, out, dout, dgate, dup share the activation dtype.
#include "ops/swiglu.h"

#include "ops/validate.h"

namespace wick {

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  static const char* op = "swiglu_forward";
  const Device dev = ops_detail::check_rows(op, {"gate", &gate}, {{"up", &up}, {"out", &out}}, {}, {});
  WICK_OP_DISPATCH(op, dev, swiglu_forward, gate, up, out);
}

void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  static const char* op = "swiglu_backward";
  const Device dev = ops_detail::check_rows(op, {"gate", &gate},
                                            {{"up", &up}, {"dout", &dout}, {"dgate", &dgate}, {"dup", &dup}}, {}, {});
  WICK_OP_DISPATCH(op, dev, swiglu_backward, dout, gate, up, dgate, dup);
}

}  // namespace wick
