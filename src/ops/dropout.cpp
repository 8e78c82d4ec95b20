#include "ops/dropout.h"

#include "core/error.h"

namespace wick {

#ifdef WICK_CUDA
namespace cuda_ops {
void dropout_forward(const Tensor& x, float p, uint64_t seed, Tensor& y);
}
#endif

void dropout_forward(const Tensor& x, float p, uint64_t seed, Tensor& y) {
  if (x.dtype() != DType::F32 || y.dtype() != DType::F32 || x.shape() != y.shape() || x.device() != y.device())
    throw Error("dropout_forward: x " + x.str() + " and y " + y.str() + " must be f32 of one shape and device");
  if (!(p >= 0.0f && p < 1.0f)) throw Error("dropout probability must be in [0, 1), got " + std::to_string(p));
  if (x.device().is_cuda()) {
#ifdef WICK_CUDA
    cuda_ops::dropout_forward(x, p, seed, y);
    return;
#else
    throw Error("this build of wick has no CUDA support");
#endif
  }
  const float* in = x.data<float>();
  float* out = y.data<float>();
  const float keep_scale = 1.0f / (1.0f - p);
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = dropout_uniform(seed, static_cast<uint64_t>(i)) >= p ? in[i] * keep_scale : 0.0f;
}

}  // namespace wick
