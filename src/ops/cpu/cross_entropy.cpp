// CPU cross entropy over rows of logits (f32, or bf16 read as f32), statistics in f32.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

static inline float load(const Tensor& t, const void* base, int64_t i) {
  return t.dtype() == DType::F32 ? static_cast<const float*>(base)[i] : bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
}

// Every target is kIgnoreIndex or in [0, V) (checked before any thread starts).
static void check_targets(const char* op, const Tensor& targets, int64_t V) {
  const int32_t* t = targets.data<int32_t>();
  for (int64_t n = 0; n < targets.numel(); n++)
    if (t[n] != kIgnoreIndex && (t[n] < 0 || t[n] >= V))
      throw Error(std::string(op) + ": targets[" + std::to_string(n) + "] = " + std::to_string(t[n]) +
                      " is neither " + std::to_string(kIgnoreIndex) + " (ignored) nor in [0, " + std::to_string(V) + ")",
                  "", "labels must be token ids of the model's vocabulary, or -100 for positions that do not count");
}

// logits [N, V], targets [N] -> losses [N] (lse - logit[target], 0 when ignored), lse [N]
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  check_targets("cross_entropy_forward", targets, V);
  const void* px = logits.raw();
  const int32_t* pt = targets.data<int32_t>();
  float* pl = losses.data<float>();
  float* ps = lse.data<float>();
#pragma omp parallel for if (N * V > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < V; i++) mx = std::max(mx, load(logits, px, n * V + i));
    double z = 0.0;  // up to 152k terms: summed in f64 so that lse does not drift with V
    for (int64_t i = 0; i < V; i++) z += std::exp(load(logits, px, n * V + i) - mx);
    const float l = mx + static_cast<float>(std::log(z));
    ps[n] = l;
    pl[n] = pt[n] == kIgnoreIndex ? 0.0f : l - load(logits, px, n * V + pt[n]);
  }
}

// dlogits [N, V] = (softmax(logits) - onehot(target)) * grad_scale, 0 on ignored rows; may alias logits
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, float grad_scale,
                            Tensor& dlogits) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  check_targets("cross_entropy_backward", targets, V);
  const void* px = logits.raw();
  const int32_t* pt = targets.data<int32_t>();
  const float* ps = lse.data<float>();
  const bool f32 = dlogits.dtype() == DType::F32;
  void* pd = dlogits.raw();
#pragma omp parallel for if (N * V > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    for (int64_t i = 0; i < V; i++) {
      float g = 0.0f;
      if (pt[n] != kIgnoreIndex) g = (std::exp(load(logits, px, n * V + i) - ps[n]) - (i == pt[n] ? 1.0f : 0.0f)) * grad_scale;
      if (f32) static_cast<float*>(pd)[n * V + i] = g;
      else static_cast<uint16_t*>(pd)[n * V + i] = f32_to_bf16(g);
    }
  }
}

}  // namespace wick::cpu
