#include "ops/dropout.h"

#include "core/error.h"

namespace wick {

#ifdef WICK_CUDA
namespace cuda_ops {
void dropout_forward(const Tensor& x, float p, const Tensor& base, uint64_t mix, Tensor& y, bool accumulate);
}
#endif

void dropout_forward(const Tensor& x, float p, const Tensor& base, uint64_t mix, Tensor& y, bool accumulate) {
  const bool dt_ok = (x.dtype() == DType::F32 || x.dtype() == DType::BF16) && y.dtype() == x.dtype();
  if (!dt_ok || x.shape() != y.shape() || x.device() != y.device())
    throw Error("dropout_forward: x " + x.str() + " and y " + y.str() +
                " must be f32 or bf16 of one dtype, shape and device");
  if (!base.defined() || base.dtype() != DType::I64 || base.numel() != 1 || base.device() != x.device())
    throw Error("dropout_forward: the seed " + (base.defined() ? base.str() : std::string("(none)")) +
                " must be one i64 on x's device (" + x.str() + ")");
  if (!(p >= 0.0f && p < 1.0f)) throw Error("dropout probability must be in [0, 1), got " + std::to_string(p));
  if (x.device().is_cuda()) {
#ifdef WICK_CUDA
    cuda_ops::dropout_forward(x, p, base, mix, y, accumulate);
    return;
#else
    throw Error("this build of wick has no CUDA support");
#endif
  }
  const uint64_t seed = dropout_mask_seed(static_cast<uint64_t>(base.data<int64_t>()[0]), mix);
  const float keep_scale = 1.0f / (1.0f - p);
  const int64_t n = x.numel();
  if (x.dtype() == DType::BF16) {
    const uint16_t* in = x.data_u16();
    uint16_t* out = y.data_u16();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const float kept = dropout_uniform(seed, static_cast<uint64_t>(i)) >= p ? bf16_to_f32(in[i]) * keep_scale : 0.0f;
      const uint16_t d = f32_to_bf16(kept);
      out[i] = accumulate ? f32_to_bf16(bf16_to_f32(out[i]) + bf16_to_f32(d)) : d;
    }
    return;
  }
  const float* in = x.data<float>();
  float* out = y.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float d = dropout_uniform(seed, static_cast<uint64_t>(i)) >= p ? in[i] * keep_scale : 0.0f;
    out[i] = accumulate ? out[i] + d : d;
  }
}

}  // namespace wick
