// CPU twin of ops/sampling.h: the greedy rule of infer/sampler.cpp, over rows, with the history as a mask.
#include <cmath>
#include <limits>

#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

void greedy_tokens(const Tensor& logits, Tensor* seen, float penalty, Tensor& ids) {
  const int64_t R = logits.dim(0), V = logits.dim(1);
  const float* L = logits.data<float>();
  int32_t* mark = seen ? seen->data<int32_t>() : nullptr;
  int32_t* out = ids.data<int32_t>();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < R; r++) {
    const float* row = L + r * V;
    int32_t* m = mark ? mark + r * V : nullptr;
    int64_t best = 0, bad = -1;
    float best_s = 0.0f;
    for (int64_t i = 0; i < V; i++) {
      float s = row[i];
      if (std::isnan(s) || s == inf) {
        bad = i;
        break;
      }
      if (m && m[i] && penalty != 1.0f) s = s < 0 ? s * penalty : s / penalty;
      if (i == 0 || s > best_s) best = i, best_s = s;
    }
    out[r] = bad >= 0 ? static_cast<int32_t>(-1 - bad) : static_cast<int32_t>(best);
    if (m && bad < 0) m[best] = 1;
  }
}

}  // namespace wick::cpu
