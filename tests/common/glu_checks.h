// glu_backward's recomputed forward output (ops/swiglu.h) on one device: bit for bit glu_forward's, written
// in place over dout or into its own tensor, with dgate and dup unchanged by asking for it.
#pragma once
#include "core/tensor.h"

namespace wick::test {

// Both activations, odd and vector-friendly sizes, the given dtype (f32; bf16 on CUDA); EXPECT_EQ per element.
void check_glu_backward_recomputes_forward(Device dev, DType dt);

}  // namespace wick::test
