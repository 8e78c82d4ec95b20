// CPU RoPE, rotate-half layout: pair (x[i], x[i + D/2]) rotated by angle pos * inv_freq[i], with
// inv_freq[i] = 1 / theta^(2i/D) (rescaled for Llama 3), the angle, cos and sin all computed in f32 as Hugging Face does.
#include <cmath>
#include <vector>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

// x [B, T, H, D], positions [B, T] -> y; sign = +1 rotates forward, -1 applies the inverse rotation.
static void rotate(const Tensor& x, const Tensor& positions, const RopeFreqs& f, Tensor& y, float sign) {
  const int64_t B = x.dim(0), T = x.dim(1), H = x.dim(2), D = x.dim(3), half = D / 2;
  const std::vector<float> inv_freq = rope_inv_freq(f, D);
  const int32_t* pos = positions.data<int32_t>();
  const float* px = x.data<float>();
  float* py = y.data<float>();
#pragma omp parallel if (B * T * H * D > kParallelMin)
  {
    std::vector<float> cs(static_cast<size_t>(2 * half));  // cos, sin of this row's angles
#pragma omp for
    for (int64_t bt = 0; bt < B * T; bt++) {
      const float p = static_cast<float>(pos[bt]);
      for (int64_t i = 0; i < half; i++) {
        const float angle = p * inv_freq[i];
        cs[i] = std::cos(angle);
        cs[half + i] = sign * std::sin(angle);
      }
      for (int64_t h = 0; h < H; h++) {
        const float* xr = px + (bt * H + h) * D;
        float* yr = py + (bt * H + h) * D;  // may alias xr: both halves are read before either is written
        for (int64_t i = 0; i < half; i++) {
          const float x1 = xr[i], x2 = xr[half + i], c = cs[i], s = cs[half + i];
          yr[i] = x1 * c - x2 * s;
          yr[half + i] = x2 * c + x1 * s;
        }
      }
    }
  }
}

void rope_forward(const Tensor& x, const Tensor& positions, const RopeFreqs& f, Tensor& y) {
  rotate(x, positions, f, y, 1.0f);
}

// The rotation is orthogonal: its transpose (rotation by -angle) maps dy to dx.
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeFreqs& f, Tensor& dx) {
  rotate(dy, positions, f, dx, -1.0f);
}

void rope_forward_qk(Tensor& q, Tensor& k, const Tensor& positions, const RopeFreqs& f) {
  cpu::rope_forward(q, positions, f, q);
  cpu::rope_forward(k, positions, f, k);
}

void rope_backward_qk(Tensor& dq, Tensor& dk, const Tensor& positions, const RopeFreqs& f) {
  cpu::rope_backward(dq, positions, f, dq);
  cpu::rope_backward(dk, positions, f, dk);
}

// The two steps it fuses on CUDA, one after the other.
void rope_qk_cache_write(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                         Tensor& k_cache, Tensor& v_cache) {
  cpu::rope_forward_qk(q, k, positions, f);
  const int64_t B = k.dim(0), T = k.dim(1), X = k.dim(2) * k.dim(3);
  cpu::kv_cache_write(k.view({B, T, X}), v.view({B, T, X}), positions, k_cache, v_cache);
}

}  // namespace wick::cpu
