// The GLU activations of the CUDA path (ops/swiglu.h), one definition shared by the GLU kernels
// (ops/cuda/swiglu.cu) and the fused small-M gate/up + GLU kernel (ops/cuda/small_m_linear.cuh), so that both
// compute act(g) with the same f32 expression. CUDA runtime only (the dev/ harnesses include it standalone).
//   silu:      a = g / (1 + exp(-g))
//   gelu_tanh: a = 0.5 g (1 + tanh(beta (g + kappa g^3))), beta = sqrt(2 / pi), kappa = 0.044715 (torch's
//              gelu approximate="tanh")
#pragma once
#include <cuda_runtime.h>

namespace wick::glu_act {

constexpr float kGeluBeta = 0.7978845608028654f;
constexpr float kGeluKappa = 0.044715f;

// kSilu: silu, else gelu_tanh.
template <bool kSilu> __device__ __forceinline__ float act(float g) {
  if constexpr (kSilu) {
    return g / (1.0f + expf(-g));
  } else {
    const float inner = kGeluBeta * (g + kGeluKappa * (g * g * g));
    return 0.5f * g * (1.0f + tanhf(inner));
  }
}

}  // namespace wick::glu_act
