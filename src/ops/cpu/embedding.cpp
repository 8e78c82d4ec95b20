// CPU embedding: row gather, and a scatter-add that sums each distinct id's rows before adding them to
// the table (so that two backward calls give exactly twice the gradient, and no two threads share a row).
#include <algorithm>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

// ids [N] i32 or i64 -> values, each checked to lie in [0, V).
static std::vector<int64_t> load_ids(const char* op, const Tensor& ids, int64_t V) {
  std::vector<int64_t> r(static_cast<size_t>(ids.numel()));
  for (int64_t i = 0; i < ids.numel(); i++) {
    r[i] = ids.dtype() == DType::I32 ? ids.data<int32_t>()[i] : ids.data<int64_t>()[i];
    if (r[i] < 0 || r[i] >= V)
      throw Error(std::string(op) + ": ids[" + std::to_string(i) + "] = " + std::to_string(r[i]) +
                      " is outside the table's rows [0, " + std::to_string(V) + ")",
                  "", "token ids must be smaller than the model's vocab_size");
  }
  return r;
}

// ids [N], table [V, C] -> out [N, C]
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  const int64_t V = table.dim(0), C = table.dim(1), N = ids.numel();
  const std::vector<int64_t> id = load_ids("embedding_forward", ids, V);
  const float* w = table.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; n++) std::copy(w + id[n] * C, w + id[n] * C + C, o + n * C);
}

// dout [N, C] -> dtable [V, C] += per-id row sums
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const int64_t V = dtable.dim(0), C = dtable.dim(1), N = ids.numel();
  const std::vector<int64_t> id = load_ids("embedding_backward", ids, V);
  // Positions grouped by id (stable, so each id's rows are summed in position order).
  std::vector<int64_t> order(static_cast<size_t>(N));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return id[x] < id[y]; });
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < N; i++)
    if (i == 0 || id[order[i]] != id[order[i - 1]]) starts.push_back(i);
  starts.push_back(N);
  const float* g = dout.data<float>();
  float* dw = dtable.data<float>();
  const int64_t groups = static_cast<int64_t>(starts.size()) - 1;
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t k = 0; k < groups; k++) {
    float* row = dw + id[order[starts[k]]] * C;
    for (int64_t c = 0; c < C; c++) {
      float s = 0.0f;
      for (int64_t i = starts[k]; i < starts[k + 1]; i++) s += g[order[i] * C + c];
      row[c] += s;
    }
  }
}

}  // namespace wick::cpu
