#pragma once
#include "core/tensor.h"

namespace wick {

// ids [N] i32 or i64 (each in [0, V); out of range is a wick::Error on CPU, a device assert on CUDA),
// table [V, C] -> out [N, C] (=)
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out);
// dout [N, C] -> dtable [V, C] (+= scatter-add; repeated ids accumulate)
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);

}  // namespace wick
