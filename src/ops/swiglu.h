// Gated MLP activations (GLU variants): out = act(gate) * up, with act SiLU (SwiGLU: Qwen, Llama, Mistral)
// or tanh-approximated GELU (GeGLU: Gemma's gelu_pytorch_tanh). f32 math; on CUDA in bf16, act(gate) is
// rounded to the activation dtype before the product, as torch's bf16 graph `act_fn(gate) * up` rounds.
#pragma once
#include "core/tensor.h"

namespace wick {

enum class GluAct {
  Silu,      // silu(g) = g / (1 + exp(-g))
  GeluTanh,  // 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))): torch's gelu(approximate="tanh")
};
const char* glu_act_name(GluAct act);  // "silu", "gelu_tanh"

// gate [N, I], up [N, I] -> out [N, I] (=): act(gate) * up
void glu_forward(const Tensor& gate, const Tensor& up, GluAct act, Tensor& out);
// dout [N, I] -> dgate [N, I] (=), dup [N, I] (=); and, when out is given, the forward's output act(gate) * up
// again (=), bit for bit what glu_forward writes, so a caller need not keep it (out may be dout itself: each
// element is read before it is written). Training recomputes it here instead of saving it per layer.
void glu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, GluAct act, Tensor& dgate, Tensor& dup,
                  Tensor* out = nullptr);

// SwiGLU: silu(gate) * up.
inline void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) { glu_forward(gate, up, GluAct::Silu, out); }
inline void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  glu_backward(dout, gate, up, GluAct::Silu, dgate, dup);
}

}  // namespace wick
