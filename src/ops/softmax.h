#pragma once
#include "core/tensor.h"

namespace wick {

// Numerically stable softmax over the last dim. x [N, C] -> y [N, C] (=); f32 math.
void softmax_forward(const Tensor& x, Tensor& y);
// y [N, C] (the forward output), dy [N, C] -> dx [N, C] (=): dx = y * (dy - sum(dy * y))
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx);

}  // namespace wick
