// CPU twin of ops/sampling.h: the greedy rule of infer/sampler.cpp, and sample_tokens' rule, over rows, with the
// history as a mask. sample_row_host is the rule itself (infer's Sampler calls it for every host draw); the
// arithmetic both sides must share is ops/sampling_rule.h's. This file compiles with -ffp-contract=off
// (CMakeLists.txt): the rule's f32/f64 operations must stay single IEEE operations, as on the device.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include "core/error.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/sampling_pool.h"
#include "ops/sampling_rule.h"

namespace wick {
namespace {

using namespace sampling_rule;
constexpr float kInf = std::numeric_limits<float>::infinity();

// w.s = logits with the repetition penalty (each listed id once); 0, or -(1 + i) for the first NaN / +inf at i.
int32_t penalised_scores(const float* logits, int64_t V, const int32_t* pen, size_t n, float penalty, SampleRowWork& w) {
  for (int64_t i = 0; i < V; i++)
    if (std::isnan(logits[i]) || logits[i] == kInf) return static_cast<int32_t>(-1 - i);
  w.s.assign(logits, logits + V);
  if (penalty == 1.0f || n == 0) return 0;
  w.ids.assign(pen, pen + n);
  std::sort(w.ids.begin(), w.ids.end());
  w.ids.erase(std::unique(w.ids.begin(), w.ids.end()), w.ids.end());
  for (int32_t id : w.ids) {
    const float s = w.s[id];
    w.s[id] = s < 0 ? fmul(s, penalty) : fdiv(s, penalty);
  }
  return 0;
}

U128 weight_sum(const std::vector<float>& e) {
  U128 z{};
  for (float v : e)
    if (v > 0.0f) z = add(z, fixed96(v));
  return z;
}

// Top-p over the tokens with e > 0: the smallest candidate key (ascending score, then higher id first) at which
// the exact cumulative mass of p = e / norm reaches `cross` (sampling_rule::crossing_mass), or the top token's
// key if none does. The removed tokens are a prefix of that order, so only the crossing point is needed, not a
// full sort: a quickselect weighted by mass narrows the range holding it, keeping the mass below the range (the
// sums are exact integers, so any order gives the sequential sum); the last few candidates are sorted.
uint64_t top_p_cut_key(const std::vector<float>& s, const std::vector<float>& e, float norm, uint64_t cross,
                       std::vector<std::pair<uint64_t, uint64_t>>& cand) {
  cand.clear();
  uint64_t top = 0;
  for (size_t i = 0; i < e.size(); i++) {
    if (!(e[i] > 0.0f)) continue;
    const uint64_t key = cand_key(s[i], static_cast<uint32_t>(i));
    cand.push_back({key, fixed62(fdiv(e[i], norm))});
    top = std::max(top, key);
  }
  size_t lo = 0, hi = cand.size();
  uint64_t below = 0;  // mass of everything before lo
  while (hi - lo > 16) {
    const size_t mid = lo + (hi - lo) / 2;  // median-of-three pivot, moved to hi - 1
    if (cand[mid].first < cand[lo].first) std::swap(cand[mid], cand[lo]);
    if (cand[hi - 1].first < cand[lo].first) std::swap(cand[hi - 1], cand[lo]);
    if (cand[hi - 1].first < cand[mid].first) std::swap(cand[mid], cand[hi - 1]);
    const auto pivot = cand[hi - 1];
    const auto split = std::partition(cand.begin() + lo, cand.begin() + (hi - 1),
                                      [&](const auto& c) { return c.first < pivot.first; });
    const size_t m = static_cast<size_t>(split - cand.begin());
    std::swap(cand[m], cand[hi - 1]);  // pivot at its sorted position m
    uint64_t low_mass = 0;
    for (size_t j = lo; j < m; j++) low_mass += cand[j].second;
    if (below + low_mass >= cross) {
      hi = m;  // the crossing is below the pivot
    } else if (below + low_mass + pivot.second >= cross) {
      return pivot.first;
    } else {
      below += low_mass + pivot.second;
      lo = m + 1;
    }
  }
  std::sort(cand.begin() + lo, cand.begin() + hi);
  for (size_t j = lo; j < hi; j++) {
    below += cand[j].second;
    if (below >= cross) return cand[j].first;
  }
  return top;  // no cumulative mass reaches it (top_p ~ 0): min_tokens_to_keep = 1 keeps the top token
}

// The k-th largest value (ties counted), 0 < k < size: a min-heap of the k largest seen for a small k (one
// compare per value once full), nth_element otherwise.
float kth_largest(const std::vector<float>& s, int64_t k, std::vector<float>& heap) {
  if (k > static_cast<int64_t>(s.size()) / 16) {
    heap.assign(s.begin(), s.end());
    std::nth_element(heap.begin(), heap.begin() + (k - 1), heap.end(), std::greater<float>());
    return heap[k - 1];
  }
  heap.clear();
  for (float v : s) {
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push_back(v);
      std::push_heap(heap.begin(), heap.end(), std::greater<float>());
    } else if (v > heap.front()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
      heap.back() = v;
      std::push_heap(heap.begin(), heap.end(), std::greater<float>());
    }
  }
  return heap.front();
}

// The rule up to the kept weights: w.e[i] = exp(s_i - max) for kept tokens, 0 elsewhere. Returns 0, a negative
// code, or (greedy) 1 + the token.
int32_t kept_weights(const float* logits, int64_t V, const int32_t* pen, size_t n, const SampleRow& p, SampleRowWork& w) {
  const int32_t bad = penalised_scores(logits, V, pen, n, p.penalty, w);
  if (bad < 0) return bad;
  std::vector<float>& s = w.s;
  if (p.temperature == 0.0f) {  // argmax, first index of the maximum
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
      if (s[i] > s[best]) best = i;
    return static_cast<int32_t>(1 + best);
  }
  if (p.temperature != 1.0f)
    for (float& v : s) v = fdiv(v, p.temperature);
  const float m = *std::max_element(s.begin(), s.end());
  if (m == -kInf) return INT32_MIN;
  float kth = -kInf;  // top-k: keep s >= the k-th largest score (every tie of it)
  if (p.top_k > 0 && p.top_k < V) kth = kth_largest(s, p.top_k, w.sel);
  w.e.resize(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; i++) w.e[i] = s[i] != -kInf && s[i] >= kth ? rule_exp(fsub(s[i], m)) : 0.0f;
  if (p.top_p < 1.0f) {
    const float norm = fixed_to_float(weight_sum(w.e), 96);
    const uint64_t cut = top_p_cut_key(s, w.e, norm, crossing_mass(p.top_p_cut), w.cand);
    for (int64_t i = 0; i < V; i++)
      if (w.e[i] > 0.0f && cand_key(s[i], static_cast<uint32_t>(i)) < cut) w.e[i] = 0.0f;
  }
  if (p.min_p > 0.0f) {  // the top token's weight is 1: max p = 1 / norm
    const float norm = fixed_to_float(weight_sum(w.e), 96);
    const float thr = fmul(p.min_p, fdiv(1.0f, norm));
    for (float& v : w.e)
      if (v > 0.0f && fdiv(v, norm) < thr) v = 0.0f;
  }
  return 0;
}

}  // namespace

int32_t sample_row_host(const float* logits, int64_t V, const int32_t* pen, size_t n, const SampleRow& p,
                        SampleRowWork& w) {
  const int32_t k = kept_weights(logits, V, pen, n, p, w);
  if (k != 0) return k > 0 ? k - 1 : k;
  const U128 total = weight_sum(w.e);
  const U128 target = draw_target(draw_bits(p.seed(), p.draws()), total);
  U128 cum{};
  int32_t last = 0;
  for (int64_t i = 0; i < V; i++) {
    if (!(w.e[i] > 0.0f)) continue;
    cum = add(cum, fixed96(w.e[i]));
    last = static_cast<int32_t>(i);
    if (greater(cum, target)) return last;
  }
  return last;  // unreachable: target < total
}

int32_t sample_distribution_row(const float* logits, int64_t V, const int32_t* pen, size_t n, const SampleRow& p,
                                SampleRowWork& w, float* probs) {
  const int32_t k = kept_weights(logits, V, pen, n, p, w);
  std::fill(probs, probs + V, 0.0f);
  if (k > 0) probs[k - 1] = 1.0f;
  if (k != 0) return k > 0 ? k - 1 : k;
  const float norm = fixed_to_float(weight_sum(w.e), 96);
  for (int64_t i = 0; i < V; i++) probs[i] = fdiv(w.e[i], norm);
  return 0;
}

namespace cpu {

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

namespace {

// sample_tokens over the rows, row r's history mask at mask_of(r) (null: none); report as ops/sampling.h says.
template <class MaskOf>
void sample_rows(const Tensor& logits, Tensor& params, Tensor& ids, Tensor* report, const char* op, MaskOf mask_of) {
  const int64_t R = logits.dim(0), V = logits.dim(1);
  SampleRowWork w;
  std::vector<int32_t> pen;
  for (int64_t r = 0; r < R; r++) {
    SampleRow p;
    std::memcpy(static_cast<void*>(&p), params.data<int32_t>() + r * kSampleRowWords, sizeof p);
    check_sample_row(p, std::string(op) + ": params[" + std::to_string(r) + "].");
    int32_t* m = mask_of(r);
    pen.clear();
    if (m && p.penalty != 1.0f)
      for (int64_t i = 0; i < V; i++)
        if (m[i]) pen.push_back(static_cast<int32_t>(i));
    const float* row = logits.data<float>() + r * V;
    const int32_t t = sample_row_host(row, V, pen.data(), pen.size(), p, w);
    ids.data<int32_t>()[r] = t;
    if (report) {
      int32_t* rep = report->data<int32_t>() + 2 * r;
      rep[0] = t;
      rep[1] = 0;
      if (t < 0 && t != INT32_MIN) std::memcpy(&rep[1], &row[-1 - static_cast<int64_t>(t)], sizeof(float));
      if (t < 0) ids.data<int32_t>()[r] = 0;
    }
    if (t < 0) continue;
    if (m) m[t] = 1;
    if (p.temperature != 0.0f) {
      p.set_draws(p.draws() + 1);
      std::memcpy(params.data<int32_t>() + r * kSampleRowWords, &p, sizeof p);
    }
  }
}

// at [n, 2] (row, id) -> the pair's flat index in a [rows, V] tensor; a wick::Error when out of range.
int64_t pair_index(const char* op, const Tensor& at, int64_t j, int64_t rows, int64_t V) {
  const int32_t row = at.data<int32_t>()[2 * j], id = at.data<int32_t>()[2 * j + 1];
  if (row < 0 || row >= rows || id < 0 || id >= V)
    throw Error(std::string(op) + ": at[" + std::to_string(j) + "] = (" + std::to_string(row) + ", " +
                std::to_string(id) + ") is outside [" + std::to_string(rows) + ", " + std::to_string(V) + "]");
  return static_cast<int64_t>(row) * V + id;
}

}  // namespace

void sample_tokens(const Tensor& logits, Tensor* seen, Tensor& params, Tensor& ids, Tensor* report) {
  const int64_t V = logits.dim(1);
  sample_rows(logits, params, ids, report, "sample_tokens",
              [&](int64_t r) { return seen ? seen->data<int32_t>() + r * V : nullptr; });
}

void sample_tokens_pooled(const Tensor& logits, Tensor* seen_pool, const Tensor& seen_rows, Tensor& params, Tensor& ids) {
  const int64_t V = logits.dim(1), S = seen_pool ? seen_pool->dim(0) : 0;
  const int32_t* rows = seen_rows.data<int32_t>();
  for (int64_t r = 0; r < logits.dim(0); r++) {
    if (rows[r] < -1 || rows[r] >= S)
      throw Error("sample_tokens_pooled: seen_rows[" + std::to_string(r) + "] = " + std::to_string(rows[r]) +
                  " is not a row of seen_pool [" + std::to_string(S) + ", V] or -1");
    for (int64_t q = 0; q < r; q++)
      if (rows[r] >= 0 && rows[q] == rows[r])
        throw Error("sample_tokens_pooled: seen_rows[" + std::to_string(q) + "] and [" + std::to_string(r) +
                    "] are both pool row " + std::to_string(rows[r]) + "; each logits row needs its own history");
  }
  sample_rows(logits, params, ids, nullptr, "sample_tokens_pooled",
              [&](int64_t r) { return rows[r] >= 0 ? seen_pool->data<int32_t>() + rows[r] * V : nullptr; });
}

void mark_tokens(Tensor& seen_pool, const Tensor& at) {
  int32_t* m = seen_pool.data<int32_t>();
  for (int64_t j = 0; j < at.dim(0); j++) m[pair_index("mark_tokens", at, j, seen_pool.dim(0), seen_pool.dim(1))] = 1;
}

void subtract_at(Tensor& logits, const Tensor& at, const Tensor& amount) {
  float* l = logits.data<float>();
  for (int64_t j = 0; j < at.dim(0); j++) {
    float& x = l[pair_index("subtract_at", at, j, logits.dim(0), logits.dim(1))];
    x = x - amount.data<float>()[j];
  }
}

}  // namespace cpu
}  // namespace wick
