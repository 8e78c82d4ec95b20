#include "common/sampling_checks.h"

#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/testutil.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "infer/sampler.h"
#include "ops/sampling.h"

namespace wick::test {
namespace {

// The settings the rows cycle through: each processor alone, at its edges, and together.
std::vector<SamplingParams> settings_table(int64_t V) {
  auto sp = [](float t, int k, float p, float mp, float pen) {
    SamplingParams s;
    s.temperature = t, s.top_k = k, s.top_p = p, s.min_p = mp, s.repetition_penalty = pen;
    return s;
  };
  const int big_k = static_cast<int>(std::min<int64_t>(V + 5, INT32_MAX));
  return {sp(0.0f, 0, 1.0f, 0.0f, 1.0f),       sp(0.0f, 0, 1.0f, 0.0f, 1.3f),   sp(1.0f, 0, 1.0f, 0.0f, 1.0f),
          sp(0.7f, 0, 1.0f, 0.0f, 1.0f),       sp(1.0f, 20, 1.0f, 0.0f, 1.0f),  sp(1.0f, big_k, 1.0f, 0.0f, 1.0f),
          sp(1.0f, 1, 1.0f, 0.0f, 1.0f),       sp(0.8f, 0, 0.9f, 0.0f, 1.0f),   sp(1.0f, 0, 0.0f, 0.0f, 1.0f),
          sp(0.5f, 0, 0.5f, 0.0f, 1.0f),       sp(1.0f, 0, 0.99f, 0.0f, 1.0f),  sp(1.0f, 0, 1.0f, 0.05f, 1.0f),
          sp(1.0f, 0, 1.0f, 1.0f, 1.0f),       sp(1.0f, 0, 1.0f, 0.0f, 1.3f),   sp(1.3f, 0, 1.0f, 0.0f, 0.8f),
          sp(0.7f, 20, 0.8f, 0.0f, 1.1f),      sp(1.3f, 50, 0.95f, 0.02f, 1.05f), sp(0.6f, 200, 0.7f, 0.1f, 1.2f),
          sp(0.9f, 1500, 0.9f, 0.0f, 1.0f), sp(1.0f, 1500, 1.0f, 0.05f, 1.1f)};
}

// Row kinds: 0 normal, 1 wide, 2 bf16-rounded (many ties), 3 mostly -inf, 4 a NaN, 5 a +inf, 6 all -inf,
// 7 a planted tie at the maximum.
void fill_row(float* row, int64_t V, int kind, Rng& rng) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const float scale = kind == 1 ? 8.0f : 3.0f;
  for (int64_t i = 0; i < V; i++) row[i] = scale * rng.normal();
  if (kind == 2)
    for (int64_t i = 0; i < V; i++) row[i] = bf16_to_f32(f32_to_bf16(row[i]));
  if (kind == 3)
    for (int64_t i = 0; i < V; i++)
      if (rng.below(10) != 0) row[i] = ninf;
  if (kind == 4) row[rng.below(V)] = std::numeric_limits<float>::quiet_NaN();
  if (kind == 5) row[rng.below(V)] = std::numeric_limits<float>::infinity();
  if (kind == 6)
    for (int64_t i = 0; i < V; i++) row[i] = ninf;
  if (kind == 7) {
    row[V / 3] = 40.0f;
    row[V / 5] = 40.0f;
    row[V - 1] = 40.0f;
  }
}

// R random rows of V logits (kinds of fill_row), histories, and settings cycling through the table.
struct RandomRows {
  Tensor logits, seen;  // [R, V] on the host
  std::vector<SampleRow> rows;
  std::vector<int> kinds;
};
RandomRows random_rows(int64_t R, int64_t V, uint64_t seed) {
  Rng rng(seed);
  const std::vector<SamplingParams> table = settings_table(V);
  RandomRows out;
  out.logits = Tensor::empty({R, V}, DType::F32, Device::cpu());
  out.seen = Tensor::zeros({R, V}, DType::I32, Device::cpu());
  for (int64_t r = 0; r < R; r++) {
    const int kind = static_cast<int>(rng.below(8));
    out.kinds.push_back(kind);
    fill_row(out.logits.data<float>() + r * V, V, kind, rng);
    const int n_hist = static_cast<int>(rng.below(40));
    for (int j = 0; j < n_hist; j++) out.seen.data<int32_t>()[r * V + rng.below(V)] = 1;
    SamplingParams sp = table[static_cast<size_t>(r) % table.size()];
    sp.seed = rng.next_u64();
    out.rows.push_back(to_sample_row(sp, rng.below(1000)));
  }
  return out;
}

}  // namespace

void check_sample_tokens(Device dev, int64_t R, int64_t V, int steps, uint64_t seed) {
  RandomRows made = random_rows(R, V, seed);
  const Tensor& logits = made.logits;
  const Tensor& seen = made.seen;
  const std::vector<SampleRow>& rows = made.rows;
  const std::vector<int>& kinds = made.kinds;
  // The device side: ids between guards, its own seen and params.
  constexpr int64_t G = 8;
  constexpr int32_t kGuard = 0x5eed5eed;
  Tensor ids_buf = Tensor::from_i32(std::vector<int32_t>(static_cast<size_t>(R + 2 * G), kGuard), {R + 2 * G}).to(dev);
  Tensor ids = ids_buf.narrow0(G, R);
  Tensor logits_d = logits.to(dev), seen_d = seen.to(dev), params_d = sample_rows_tensor(rows, dev);
  // The reference: the CPU twin on host copies.
  Tensor seen_h = seen.clone(), params_h = sample_rows_tensor(rows, Device::cpu());
  Tensor ids_h = Tensor::empty({R}, DType::I32, Device::cpu());

  int64_t sampled = 0, greedy = 0, errors = 0;
  for (int step = 0; step < steps; step++) {
    // The host Sampler's view before the step: history lists and draw counters.
    const std::vector<SampleRow> before = sample_rows_of(params_h);
    std::vector<std::vector<int32_t>> hist(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; r++)
      for (int64_t i = 0; i < V; i++)
        if (seen_h.data<int32_t>()[r * V + i]) hist[r].push_back(static_cast<int32_t>(i));

    sample_tokens(logits_d, &seen_d, params_d, ids);
    sample_tokens(logits, &seen_h, params_h, ids_h);

    const Tensor got = ids_buf.to(Device::cpu());
    for (int64_t g = 0; g < G; g++) {
      ASSERT_EQ(got.data<int32_t>()[g], kGuard) << "guard before ids[0] overwritten at " << g;
      ASSERT_EQ(got.data<int32_t>()[G + R + g], kGuard) << "guard after ids overwritten at " << g;
    }
    for (int64_t r = 0; r < R; r++) {
      const int32_t want = ids_h.data<int32_t>()[r], have = got.data<int32_t>()[G + r];
      const SampleRow& p = before[r];
      const std::string what = "step " + std::to_string(step) + " row " + std::to_string(r) + " kind " +
                               std::to_string(kinds[r]) + " T " + std::to_string(p.temperature) + " k " +
                               std::to_string(p.top_k) + " top_p " + std::to_string(p.top_p) + " min_p " +
                               std::to_string(p.min_p) + " penalty " + std::to_string(p.penalty);
      ASSERT_EQ(have, want) << what;
      const float* row = logits.data<float>() + r * V;
      // The twin's token against infer's Sampler and its distribution (the history as a list, not a mask).
      SamplingParams sp;
      sp.temperature = p.temperature, sp.top_k = p.top_k, sp.top_p = p.top_p, sp.min_p = p.min_p;
      sp.repetition_penalty = p.penalty, sp.seed = p.seed();
      Sampler s(sp);
      s.restore({p.draws()});
      const std::string err = error_of([&] { EXPECT_EQ(s.sample(row, V, hist[r]), want) << what; });
      if (want < 0) {
        errors++;
        EXPECT_FALSE(err.empty()) << what << ": the code " << want << " is the Sampler's error";
        if (want == INT32_MIN) EXPECT_NE(err.find("every logit is -inf"), std::string::npos) << err;
        else EXPECT_NE(err.find("at token " + std::to_string(-1 - static_cast<int64_t>(want))), std::string::npos) << err;
        continue;
      }
      EXPECT_TRUE(err.empty()) << what << ": " << err;
      const std::vector<float> dist = sampling_distribution(row, V, hist[r], sp);
      EXPECT_GT(dist[want], 0.0f) << what << ": drew a filtered token";
      (p.temperature == 0.0f ? greedy : sampled)++;
    }
    // The history masks (the chosen ids marked) and the draw counters (sampled rows + 1) agree.
    const Tensor seen_got = seen_d.to(Device::cpu());
    for (int64_t i = 0; i < R * V; i++)
      ASSERT_EQ(seen_got.data<int32_t>()[i], seen_h.data<int32_t>()[i]) << "seen[" << i / V << ", " << i % V << "]";
    const std::vector<SampleRow> after_d = sample_rows_of(params_d), after_h = sample_rows_of(params_h);
    for (int64_t r = 0; r < R; r++) {
      EXPECT_EQ(after_d[r].draws(), after_h[r].draws()) << "row " << r;
      const bool drew = before[r].temperature != 0.0f && ids_h.data<int32_t>()[r] >= 0;
      EXPECT_EQ(after_h[r].draws(), before[r].draws() + (drew ? 1 : 0)) << "row " << r;
    }
  }
  EXPECT_GT(sampled, 0);
  EXPECT_GT(greedy, 0);
  if (R >= 40) EXPECT_GT(errors, 0);
}

void check_sample_tokens_report(Device dev, int64_t R, int64_t V, int steps, uint64_t seed) {
  const RandomRows made = random_rows(R, V, seed);
  Tensor logits = made.logits.to(dev);
  // a: without a report; b: with one, between guards
  Tensor seen_a = made.seen.clone().to(dev), seen_b = made.seen.clone().to(dev);  // to() on the same device shares
  Tensor params_a = sample_rows_tensor(made.rows, dev), params_b = sample_rows_tensor(made.rows, dev);
  Tensor ids_a = Tensor::empty({R}, DType::I32, dev), ids_b = Tensor::empty({R}, DType::I32, dev);
  constexpr int64_t G = 8;
  constexpr int32_t kGuard = 0x5eed5eed;
  const std::vector<int32_t> guarded(static_cast<size_t>(2 * R + 2 * G), kGuard);
  Tensor report_buf = Tensor::from_i32(guarded, {2 * R + 2 * G}).to(dev);
  Tensor report = report_buf.narrow0(G, 2 * R).view({R, 2});
  int64_t codes = 0;
  for (int step = 0; step < steps; step++) {
    sample_tokens(logits, &seen_a, params_a, ids_a);
    sample_tokens(logits, &seen_b, params_b, ids_b, &report);
    const Tensor a = ids_a.to(Device::cpu()), b = ids_b.to(Device::cpu()), rep = report_buf.to(Device::cpu());
    for (int64_t g = 0; g < G; g++) {
      ASSERT_EQ(rep.data<int32_t>()[g], kGuard) << "guard before report overwritten at " << g;
      ASSERT_EQ(rep.data<int32_t>()[G + 2 * R + g], kGuard) << "guard after report overwritten at " << g;
    }
    for (int64_t r = 0; r < R; r++) {
      const std::string what = "step " + std::to_string(step) + " row " + std::to_string(r) + " kind " +
                               std::to_string(made.kinds[r]);
      const int32_t t = a.data<int32_t>()[r];
      const int32_t code = rep.data<int32_t>()[G + 2 * r], bits = rep.data<int32_t>()[G + 2 * r + 1];
      EXPECT_EQ(code, t) << what;
      EXPECT_EQ(b.data<int32_t>()[r], t >= 0 ? t : 0) << what << ": a code is fed on as token 0";
      int32_t want_bits = 0;
      if (t < 0 && t != INT32_MIN) {
        const float bad = made.logits.data<float>()[r * V + (-1 - static_cast<int64_t>(t))];
        std::memcpy(&want_bits, &bad, sizeof want_bits);
        EXPECT_TRUE(std::isnan(bad) || std::isinf(bad)) << what;
      }
      if (t < 0) codes++;
      EXPECT_EQ(bits, want_bits) << what;
    }
  }
  const Tensor sa = seen_a.to(Device::cpu()), sb = seen_b.to(Device::cpu());
  for (int64_t i = 0; i < R * V; i++) ASSERT_EQ(sa.data<int32_t>()[i], sb.data<int32_t>()[i]) << "seen[" << i << "]";
  const std::vector<SampleRow> pa = sample_rows_of(params_a), pb = sample_rows_of(params_b);
  for (int64_t r = 0; r < R; r++) EXPECT_EQ(pa[r].draws(), pb[r].draws()) << "row " << r;
  if (R >= 40) EXPECT_GT(codes, 0) << "the rows held NaN, +inf and all -inf rows";
}

}  // namespace wick::test
