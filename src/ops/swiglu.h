#pragma once
#include "core/tensor.h"

namespace wick {

// gate [N, I], up [N, I] -> out [N, I] (=): silu(gate) * up, silu(g) = g * sigmoid(g); f32 math.
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out);
// dout [N, I] -> dgate [N, I] (=), dup [N, I] (=)
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);

}  // namespace wick
