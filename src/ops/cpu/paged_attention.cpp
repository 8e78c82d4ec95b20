// CPU paged attention, f32 (ops/paged_attention.h). Per (sequence, head, query) the loop of the CPU
// attention_forward (ops/cpu/attention.cpp) with each key row looked up in the block table: the scores of
// the visible keys, exp(p - max) with the same vectorised exp, their sum, then acc += p * v in key order and
// out = acc / z. The sums run in the same order over the same values, so the result equals attention_forward
// over a contiguous cache holding the same keys, bit for bit.
#include <algorithm>
#include <limits>
#include <vector>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/vec_exp.h"

namespace wick::cpu {

namespace {

// p [n] = exp(p - mx), as attention.cpp's (vec_exp.h: exp(-inf) is exactly 0).
WICK_CPU_HOT void exp_shifted_paged(float* p, float mx, int64_t n) {
#pragma omp simd
  for (int64_t s = 0; s < n; s++) p[s] = exp_f32(p[s] - mx);
}

}  // namespace

// q [N, H, D], k_pool, v_pool [NB, BS, Hkv, D] -> out [N, H, D] (validated by the op)
void paged_attention_forward(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const PagedKvBatch& batch,
                             float scale, int64_t window, Tensor& out) {
  const int64_t H = q.dim(1), D = q.dim(2), BS = k_pool.dim(1), Hkv = k_pool.dim(2), group = H / Hkv;
  const int64_t S = batch.kv_len.dim(0), MB = batch.block_table.dim(1);
  const int32_t* start = batch.query_start.data<int32_t>();
  const int32_t* kv_len = batch.kv_len.data<int32_t>();
  const int32_t* table = batch.block_table.data<int32_t>();
  const float* pq = q.data<float>();
  const float* pk = k_pool.data<float>();
  const float* pv = v_pool.data<float>();
  float* po = out.data<float>();
  const float ninf = -std::numeric_limits<float>::infinity();
  int64_t max_kv = 0, work = 0;
  for (int64_t s = 0; s < S; s++) {
    max_kv = std::max<int64_t>(max_kv, kv_len[s]);
    work += static_cast<int64_t>(start[s + 1] - start[s]) * kv_len[s];
  }
  // key position j of sequence s -> its row [Hkv, D] in the pool
  const auto key_row = [&](int64_t s, int64_t j) { return (static_cast<int64_t>(table[s * MB + j / BS]) * BS + j % BS) * Hkv; };
#pragma omp parallel if (work * H * D > kParallelMin)
  {
    std::vector<float> p(static_cast<size_t>(max_kv)), acc(static_cast<size_t>(D));
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t s = 0; s < S; s++)
      for (int64_t h = 0; h < H; h++) {
        const int64_t T = start[s + 1] - start[s], kh = h / group;
        for (int64_t t = 0; t < T; t++) {
          const int64_t last = kv_len[s] - T + t;  // this query's position: its last visible key
          const int64_t first = window > 0 ? std::max<int64_t>(0, last - window + 1) : 0, n = last - first + 1;
          const float* qr = pq + ((start[s] + t) * H + h) * D;
          float mx = ninf;
          for (int64_t j = first; j <= last; j++) {
            p[j - first] = scale * dot(qr, pk + (key_row(s, j) + kh) * D, D);
            mx = std::max(mx, p[j - first]);
          }
          exp_shifted_paged(p.data(), mx, n);
          const float z = sum(p.data(), n);
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t j = first; j <= last; j++) {
            if (p[j - first] == 0.0f) continue;
            const float* vr = pv + (key_row(s, j) + kh) * D;
            for (int64_t i = 0; i < D; i++) acc[i] += p[j - first] * vr[i];
          }
          float* orow = po + ((start[s] + t) * H + h) * D;
          for (int64_t i = 0; i < D; i++) orow[i] = acc[i] / z;
        }
      }
  }
}

}  // namespace wick::cpu
