// CPU cross entropy over rows of logits (f32, or bf16 read as f32), statistics in f32. Rows are processed
// in chunks of kChunk logits through an f32 buffer when bf16 is involved; the row kernels are
// WICK_CPU_HOT (common.h) with vec_exp.h's exp.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/vec_exp.h"

namespace wick::cpu {

namespace {

constexpr int64_t kChunk = 512;

// Every target is kIgnoreIndex or in [0, V) (checked before any thread starts).
void check_targets(const char* op, const Tensor& targets, int64_t V) {
  const int32_t* t = targets.data<int32_t>();
  for (int64_t n = 0; n < targets.numel(); n++)
    if (t[n] != kIgnoreIndex && (t[n] < 0 || t[n] >= V))
      throw Error(std::string(op) + ": targets[" + std::to_string(n) + "] = " + std::to_string(t[n]) +
                      " is neither " + std::to_string(kIgnoreIndex) + " (ignored) nor in [0, " + std::to_string(V) + ")",
                  "", "labels must be token ids of the model's vocabulary, or -100 for positions that do not count");
}

// Logits [i, i + n) of a row as f32: the row itself when f32, else widened into buf.
const float* as_f32(const void* row, bool f32, int64_t i, int64_t n, float* buf) {
  if (f32) return static_cast<const float*>(row) + i;
  const uint16_t* h = static_cast<const uint16_t*>(row) + i;
  for (int64_t j = 0; j < n; j++) buf[j] = bf16_to_f32(h[j]);
  return buf;
}

// Logit i of a row as f32.
float at(const void* row, bool f32, int64_t i) {
  return f32 ? static_cast<const float*>(row)[i] : bf16_to_f32(static_cast<const uint16_t*>(row)[i]);
}

// One row of V logits -> log-sum-exp (max-subtracted; the sum of up to 152k terms in f64 so that it does
// not drift with V).
WICK_CPU_HOT float row_lse(const void* row, bool f32, int64_t V) {
  float in[kChunk], e[kChunk];
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < V; i += kChunk) {
    const int64_t n = std::min(kChunk, V - i);
    const float m = max(as_f32(row, f32, i, n, in), n);
    mx = m > mx ? m : mx;
  }
  double z = 0.0;
  for (int64_t i = 0; i < V; i += kChunk) {
    const int64_t n = std::min(kChunk, V - i);
    const float* x = as_f32(row, f32, i, n, in);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) e[j] = exp_f32(x[j] - mx);
    z += sum_f64(e, n);
  }
  return mx + static_cast<float>(std::log(z));
}

// One row: d = exp(x - lse) * grad_scale, minus grad_scale at the target; d may alias the row.
WICK_CPU_HOT void row_grad(const void* row, bool f32_in, float lse, int32_t target, float grad_scale, void* d,
                           bool f32_out, int64_t V) {
  float in[kChunk], g[kChunk];
  const float et = exp_f32(at(row, f32_in, target) - lse);  // read before d overwrites the row
  for (int64_t i = 0; i < V; i += kChunk) {
    const int64_t n = std::min(kChunk, V - i);
    const float* x = as_f32(row, f32_in, i, n, in);
    float* out = f32_out ? static_cast<float*>(d) + i : g;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) out[j] = exp_f32(x[j] - lse) * grad_scale;
    if (target >= i && target < i + n) out[target - i] = (et - 1.0f) * grad_scale;
    if (!f32_out)
      for (int64_t j = 0; j < n; j++) static_cast<uint16_t*>(d)[i + j] = f32_to_bf16(g[j]);
  }
}

}  // namespace

// logits [N, V], targets [N] -> losses [N] (lse - logit[target], 0 when ignored), lse [N]
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  check_targets("cross_entropy_forward", targets, V);
  const bool f32 = logits.dtype() == DType::F32;
  const char* px = static_cast<const char*>(logits.raw());
  const int64_t row_bytes = V * (f32 ? 4 : 2);
  const int32_t* pt = targets.data<int32_t>();
  float* pl = losses.data<float>();
  float* ps = lse.data<float>();
#pragma omp parallel for if (N * V > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    const void* row = px + n * row_bytes;
    const float l = row_lse(row, f32, V);
    ps[n] = l;
    pl[n] = pt[n] == kIgnoreIndex ? 0.0f : l - at(row, f32, pt[n]);
  }
}

// dlogits [N, V] = (softmax(logits) - onehot(target)) * grad_scale, 0 on ignored rows; may alias logits
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, float grad_scale,
                            Tensor& dlogits) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  check_targets("cross_entropy_backward", targets, V);
  const bool f32_in = logits.dtype() == DType::F32, f32_out = dlogits.dtype() == DType::F32;
  const char* px = static_cast<const char*>(logits.raw());
  char* pd = static_cast<char*>(dlogits.raw());
  const int64_t in_bytes = V * (f32_in ? 4 : 2), out_bytes = V * (f32_out ? 4 : 2);
  const int32_t* pt = targets.data<int32_t>();
  const float* ps = lse.data<float>();
#pragma omp parallel for if (N * V > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    void* d = pd + n * out_bytes;
    if (pt[n] == kIgnoreIndex) {
      if (f32_out) std::fill_n(static_cast<float*>(d), V, 0.0f);
      else std::fill_n(static_cast<uint16_t*>(d), V, f32_to_bf16(0.0f));
      continue;
    }
    row_grad(px + n * in_bytes, f32_in, ps[n], pt[n], grad_scale, d, f32_out, V);
  }
}

// Forward, then backward from the lse it wrote (ops/cross_entropy.h: the same values as the two calls).
void cross_entropy_forward_backward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse,
                                    float grad_scale, Tensor& dlogits) {
  cpu::cross_entropy_forward(logits, targets, losses, lse);
  cpu::cross_entropy_backward(logits, targets, lse, grad_scale, dlogits);
}

}  // namespace wick::cpu
