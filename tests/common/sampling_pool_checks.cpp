#include "common/sampling_pool_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "infer/sampler.h"
#include "ops/sampling_pool.h"

namespace wick::test {

namespace {

std::vector<int32_t> host_i32(const Tensor& t) {
  const Tensor h = t.to(Device::cpu());
  return std::vector<int32_t>(h.data<int32_t>(), h.data<int32_t>() + h.numel());
}
std::vector<float> host_f32(const Tensor& t) {
  const Tensor h = t.to(Device::cpu());
  return std::vector<float>(h.data<float>(), h.data<float>() + h.numel());
}

SamplingParams random_settings(Rng& rng, int64_t r) {
  SamplingParams p;
  const int kind = static_cast<int>(r % 6);
  p.temperature = kind == 0 ? 0.0f : 0.4f + rng.uniform() * 1.2f;
  if (kind == 1 || kind == 4) p.top_k = 1 + static_cast<int>(rng.below(50));
  if (kind == 2 || kind == 4) p.top_p = 0.3f + 0.65f * rng.uniform();
  if (kind == 3) p.min_p = 0.01f + 0.3f * rng.uniform();
  if (kind != 5) p.repetition_penalty = 0.7f + rng.uniform();
  p.seed = rng.next_u64();
  return p;
}

}  // namespace

void check_sample_tokens_pooled(Device dev, int64_t R, int64_t S, int64_t V, int steps, uint64_t seed) {
  ASSERT_GE(S, R);
  Rng rng(seed);
  // The pool: a sparse random history in every row.
  std::vector<int32_t> pool(static_cast<size_t>(S * V), 0);
  for (auto& v : pool) v = rng.below(20) == 0;
  Tensor pool_d = Tensor::from_i32(pool, {S, V}).to(dev);
  std::vector<SampleRow> rows;
  for (int64_t r = 0; r < R; r++) rows.push_back(to_sample_row(random_settings(rng, r)));
  Tensor params_d = sample_rows_tensor(rows, dev), params_ref = sample_rows_tensor(rows, Device::cpu());

  for (int step = 0; step < steps; step++) {
    std::vector<float> logits(static_cast<size_t>(R * V));
    for (float& v : logits) v = 3.0f * rng.normal();
    if (step == 1) logits[static_cast<size_t>(V + V / 2)] = std::numeric_limits<float>::quiet_NaN();  // row 1: a code
    // Each logits row on its own pool row (a shuffle), every third with no history (-1).
    std::vector<int32_t> order(static_cast<size_t>(S));
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = S - 1; i > 0; i--) std::swap(order[static_cast<size_t>(i)], order[rng.below(static_cast<uint64_t>(i + 1))]);
    std::vector<int32_t> which(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; r++) which[static_cast<size_t>(r)] = (r + step) % 3 == 2 ? -1 : order[static_cast<size_t>(r)];

    // Expected: sample_tokens over the gathered rows (a -1 row: an empty history), marks scattered back.
    std::vector<int32_t> gathered(static_cast<size_t>(R * V), 0);
    for (int64_t r = 0; r < R; r++)
      if (which[static_cast<size_t>(r)] >= 0)
        std::copy_n(pool.begin() + which[static_cast<size_t>(r)] * V, V, gathered.begin() + r * V);
    Tensor seen_ref = Tensor::from_i32(gathered, {R, V}), ids_ref = Tensor::empty({R}, DType::I32, Device::cpu());
    Tensor logits_h = Tensor::from_f32(logits, {R, V});
    sample_tokens(logits_h, &seen_ref, params_ref, ids_ref);
    for (int64_t r = 0; r < R; r++)
      if (which[static_cast<size_t>(r)] >= 0)
        std::copy_n(seen_ref.data<int32_t>() + r * V, V, pool.begin() + which[static_cast<size_t>(r)] * V);

    Tensor logits_d = logits_h.to(dev), rows_d = Tensor::from_i32(which, {R}).to(dev);
    Tensor ids_d = Tensor::empty({R}, DType::I32, dev);
    sample_tokens_pooled(logits_d, &pool_d, rows_d, params_d, ids_d);
    EXPECT_EQ(host_i32(ids_d), host_i32(ids_ref)) << "step " << step;
    EXPECT_EQ(host_i32(pool_d), pool) << "step " << step << ": the history pool";
    EXPECT_EQ(host_i32(params_d), host_i32(params_ref)) << "step " << step << ": the draw counters";
    if (step == 1) {
      EXPECT_EQ(host_i32(ids_d)[1], -1 - static_cast<int32_t>(V / 2));
    }
  }

  // mark_tokens: (row, id) pairs, repeats allowed.
  std::vector<int32_t> at;
  for (int j = 0; j < 200; j++) at.insert(at.end(), {static_cast<int32_t>(rng.below(static_cast<uint64_t>(S))),
                                                     static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)))});
  for (size_t j = 0; j < at.size(); j += 2) pool[static_cast<size_t>(at[j] * V + at[j + 1])] = 1;
  mark_tokens(pool_d, Tensor::from_i32(at, {static_cast<int64_t>(at.size() / 2), 2}).to(dev));
  EXPECT_EQ(host_i32(pool_d), pool) << "mark_tokens";

  // subtract_at: distinct (row, id) pairs, one f32 subtraction each.
  std::vector<float> logits(static_cast<size_t>(R * V)), amounts;
  for (float& v : logits) v = 3.0f * rng.normal();
  std::vector<float> want = logits;
  std::vector<int32_t> pairs;
  std::vector<char> used(static_cast<size_t>(R * V), 0);
  for (int j = 0; j < 300; j++) {
    const int64_t r = static_cast<int64_t>(rng.below(static_cast<uint64_t>(R))), id = static_cast<int64_t>(rng.below(static_cast<uint64_t>(V)));
    if (used[static_cast<size_t>(r * V + id)]++) continue;
    const float a = rng.normal() * 2.0f;
    pairs.insert(pairs.end(), {static_cast<int32_t>(r), static_cast<int32_t>(id)});
    amounts.push_back(a);
    want[static_cast<size_t>(r * V + id)] = want[static_cast<size_t>(r * V + id)] - a;
  }
  const int64_t n = static_cast<int64_t>(amounts.size());
  Tensor logits_d = Tensor::from_f32(logits, {R, V}).to(dev);
  subtract_at(logits_d, Tensor::from_i32(pairs, {n, 2}).to(dev), Tensor::from_f32(amounts, {n}).to(dev));
  EXPECT_EQ(host_f32(logits_d), want) << "subtract_at";
}

}  // namespace wick::test
