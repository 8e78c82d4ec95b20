// Gated MLP activations (SwiGLU, GeGLU): validation and dispatch. gate, up, out, dout, dgate, dup share the
// activation dtype.
#include "ops/swiglu.h"

#include "ops/validate.h"

namespace wick {

const char* glu_act_name(GluAct act) { return act == GluAct::Silu ? "silu" : "gelu_tanh"; }

void glu_forward(const Tensor& gate, const Tensor& up, GluAct act, Tensor& out) {
  static const char* op = "glu_forward";
  const Device dev = ops_detail::check_rows(op, {"gate", &gate}, {{"up", &up}, {"out", &out}}, {}, {});
  WICK_OP_DISPATCH(op, dev, glu_forward, gate, up, act, out);
}

void glu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, GluAct act, Tensor& dgate, Tensor& dup,
                  Tensor* out) {
  static const char* op = "glu_backward";
  ops_detail::Args same = {{"up", &up}, {"dout", &dout}, {"dgate", &dgate}, {"dup", &dup}};
  if (out) same.push_back({"out", out});
  const Device dev = ops_detail::check_rows(op, {"gate", &gate}, same, {}, {});
  WICK_OP_DISPATCH(op, dev, glu_backward, dout, gate, up, act, dgate, dup, out);
}

}  // namespace wick
