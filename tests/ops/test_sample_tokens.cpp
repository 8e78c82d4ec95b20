// sample_tokens (ops/sampling.h) on the CPU: the twin against infer's Sampler over random rows and settings
// (tests/common/sampling_checks.h; tests/cuda runs the same against the GPU), and the edges of each processor.
// The distributions themselves are pinned to transformers' processors in tests/infer/test_sampler.cpp.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "common/sampling_checks.h"
#include "common/testutil.h"
#include "core/rng.h"
#include "infer/sampler.h"
#include "ops/sampling.h"
#include "ops/sampling_rule.h"

namespace wick::test {
namespace {

// R copies of one row, each with its own seed: one call draws R tokens.
std::vector<int32_t> draw_rows(const std::vector<float>& row, int64_t R, SamplingParams sp, Tensor* seen = nullptr) {
  const int64_t V = static_cast<int64_t>(row.size());
  std::vector<float> all;
  std::vector<SampleRow> rows;
  for (int64_t r = 0; r < R; r++) {
    all.insert(all.end(), row.begin(), row.end());
    sp.seed = 1000 + static_cast<uint64_t>(r);
    rows.push_back(to_sample_row(sp));
  }
  Tensor logits = Tensor::from_f32(all, {R, V}), params = sample_rows_tensor(rows, Device::cpu());
  Tensor ids = Tensor::empty({R}, DType::I32, Device::cpu());
  sample_tokens(logits, seen, params, ids);
  return std::vector<int32_t>(ids.data<int32_t>(), ids.data<int32_t>() + R);
}

std::vector<float> random_row(int64_t V, uint64_t seed, float scale = 2.0f) {
  Rng rng(seed);
  std::vector<float> row(static_cast<size_t>(V));
  for (float& v : row) v = scale * rng.normal();
  return row;
}

// The shared arithmetic (ops/sampling_rule.h): exp within one f32 rounding of the true value (and exact at 0),
// the fixed-point normaliser rounded to nearest as a long double division would, and top-p's crossing mass the
// first one whose f32 value exceeds the cut.
TEST(SampleTokens, RuleArithmetic) {
  using namespace sampling_rule;
  Rng rng(31);
  int64_t not_nearest = 0;
  for (int i = 0; i < 200000; i++) {
    const float x = i % 3 ? -110.0f * rng.uniform() : -rng.uniform();
    const double ref = std::exp(static_cast<double>(x));
    const float e = rule_exp(x);
    ASSERT_LE(std::fabs(e - ref), std::max(std::ldexp(1.0, -149), std::fabs(ref) * 0x1p-23)) << "x " << x;
    not_nearest += e != static_cast<float>(ref);
  }
  EXPECT_LE(not_nearest, 2) << "exp is correctly rounded but for values a hair from a midpoint";
  EXPECT_EQ(rule_exp(0.0f), 1.0f);
  EXPECT_EQ(rule_exp(-std::numeric_limits<float>::infinity()), 0.0f);
  for (int i = 0; i < 100000; i++) {
    U128 z{rng.next_u64(), rng.next_u64() >> rng.below(64)};
    if (z.hi == 0 && z.lo < (uint64_t{1} << 40)) continue;
    const long double v = std::ldexp(static_cast<long double>(z.hi), 64 - 96) + std::ldexp(static_cast<long double>(z.lo), -96);
    ASSERT_EQ(fixed_to_float(z, 96), static_cast<float>(v)) << z.hi << " " << z.lo;
  }
  for (float f : {1.0f, 0.5f, 3e-5f, 151936.0f, 0x1.fffffep-1f})
    EXPECT_EQ(fixed_to_float(fixed96(f), 96), f) << "f32 values >= 2^-72 are exact in the fixed point";
  for (float cut : {0.1f, 0.25f, 0.05f, 1.0f, 0x1p-20f}) {
    const uint64_t b = crossing_mass(cut);
    EXPECT_TRUE(mass_crossed(b, cut)) << cut;
    EXPECT_FALSE(mass_crossed(b - 1, cut)) << cut;
  }
}

TEST(SampleTokens, MatchesTheHostSamplerOverRandomRows) {
  check_sample_tokens(Device::cpu(), 72, 1000, 3, 41);
  check_sample_tokens(Device::cpu(), 18, 151936, 1, 42);
}

TEST(SampleTokens, TopKAtOrAboveTheVocabularyIsOff) {
  const std::vector<float> row = random_row(300, 1);
  SamplingParams off, big;
  big.top_k = 300;
  EXPECT_EQ(draw_rows(row, 200, off), draw_rows(row, 200, big));
  big.top_k = 100000;
  EXPECT_EQ(draw_rows(row, 200, off), draw_rows(row, 200, big));
  big.top_k = 299;  // one token less: a different distribution, the same draws mostly, never the smallest
  const std::vector<int32_t> k299 = draw_rows(row, 200, big);
  const int32_t smallest = static_cast<int32_t>(std::min_element(row.begin(), row.end()) - row.begin());
  for (int32_t t : k299) EXPECT_NE(t, smallest);
}

TEST(SampleTokens, TopPZeroKeepsTheTopTokenAndItsLowestIdOnTies) {
  std::vector<float> row = random_row(500, 2);
  SamplingParams sp;
  sp.top_p = 0.0f;
  const int32_t top = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
  for (int32_t t : draw_rows(row, 100, sp)) EXPECT_EQ(t, top);
  row[17] = row[400] = 50.0f;  // a tie at the maximum: the lowest id is the top of HF's order
  for (int32_t t : draw_rows(row, 100, sp)) EXPECT_EQ(t, 17);
}

TEST(SampleTokens, MinPOneDrawsAmongTheTiedMaximaOnly) {
  std::vector<float> row = random_row(400, 3);
  row[5] = row[99] = row[350] = 20.0f;
  SamplingParams sp;
  sp.min_p = 1.0f;
  std::set<int32_t> drawn;
  for (int32_t t : draw_rows(row, 300, sp)) drawn.insert(t);
  EXPECT_EQ(drawn, (std::set<int32_t>{5, 99, 350}));
}

TEST(SampleTokens, MaskedTokensAreNeverDrawnAndTiesShareEvenly) {
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> row(64, ninf);
  for (int i : {3, 10, 40, 63}) row[i] = 1.5f;  // four equal logits: p = 1/4 each
  SamplingParams sp;
  std::vector<int> count(64, 0);
  const int64_t N = 8000;
  for (int32_t t : draw_rows(row, N, sp)) count[t]++;
  for (int i = 0; i < 64; i++) {
    if (row[i] == ninf) {
      EXPECT_EQ(count[i], 0) << "masked token " << i << " drawn";
    } else {
      EXPECT_NEAR(count[i], N / 4, 5 * std::sqrt(N * 0.25 * 0.75)) << "token " << i;
    }
  }
}

TEST(SampleTokens, RepetitionPenaltyAppliesToTheMaskedHistory) {
  // Two tokens far above the rest; penalising the first (in seen) makes the second the greedy and top-p-0 choice.
  std::vector<float> row = random_row(200, 4);
  row[10] = 30.0f, row[20] = 25.0f;
  for (float t : {0.0f, 1.0f}) {
    SamplingParams sp;
    sp.temperature = t;
    sp.top_p = t == 0.0f ? 1.0f : 0.0f;
    sp.repetition_penalty = 1.5f;  // 30 / 1.5 = 20 < 25
    Tensor seen = Tensor::zeros({8, 200}, DType::I32, Device::cpu());
    for (int r = 0; r < 8; r++) seen.data<int32_t>()[r * 200 + 10] = 1;
    for (int32_t id : draw_rows(row, 8, sp, &seen)) EXPECT_EQ(id, 20) << "temperature " << t;
    for (int r = 0; r < 8; r++) EXPECT_EQ(seen.data<int32_t>()[r * 200 + 20], 1) << "the choice is marked";
    for (int32_t id : draw_rows(row, 8, sp, nullptr)) EXPECT_EQ(id, 10) << "no history: nothing to penalise";
  }
}

TEST(SampleTokens, BadRowsGiveCodesAndGreedyRowsAreGreedyTokens) {
  const int64_t V = 50;
  Rng rng(5);
  Tensor logits = randn({4, V}, rng, 2.0f);
  float* L = logits.data<float>();
  L[0 * V + 30] = std::numeric_limits<float>::quiet_NaN();
  L[0 * V + 40] = std::numeric_limits<float>::infinity();
  L[1 * V + 7] = std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < V; i++) L[2 * V + i] = -std::numeric_limits<float>::infinity();
  SamplingParams sampled, greedy;
  greedy.temperature = 0.0f;
  std::vector<SampleRow> rows = {to_sample_row(sampled), to_sample_row(sampled), to_sample_row(sampled),
                                 to_sample_row(greedy)};
  Tensor params = sample_rows_tensor(rows, Device::cpu()), ids = Tensor::empty({4}, DType::I32, Device::cpu());
  sample_tokens(logits, nullptr, params, ids);
  EXPECT_EQ(ids.data<int32_t>()[0], -1 - 30);
  EXPECT_EQ(ids.data<int32_t>()[1], -1 - 7);
  EXPECT_EQ(ids.data<int32_t>()[2], INT32_MIN) << "every logit -inf: nothing to sample";
  Tensor g = Tensor::empty({1}, DType::I32, Device::cpu());
  greedy_tokens(logits.narrow0(3, 1), nullptr, 1.0f, g);
  EXPECT_EQ(ids.data<int32_t>()[3], g.data<int32_t>()[0]);
  for (int r = 0; r < 4; r++) EXPECT_EQ(sample_rows_of(params)[r].draws(), 0u) << "no draw was made";
  // greedy over an all -inf row is argmax's first index, as greedy_tokens
  rows = {to_sample_row(greedy)};
  Tensor p1 = sample_rows_tensor(rows, Device::cpu()), one = Tensor::empty({1}, DType::I32, Device::cpu());
  sample_tokens(logits.narrow0(2, 1), nullptr, p1, one);
  EXPECT_EQ(one.data<int32_t>()[0], 0);
}

TEST(SampleTokens, AReportKeepsTheCodesAndFeedsZero) {
  check_sample_tokens_report(Device::cpu(), 60, 300, 2, 81);
  check_sample_tokens_report(Device::cpu(), 45, 1000, 2, 82);
}

TEST(SampleTokens, TheCounterAdvancesAndReplays) {
  const std::vector<float> row = random_row(1000, 6, 1.0f);
  SamplingParams sp;
  sp.seed = 99;
  Tensor logits = Tensor::from_f32(row, {1, 1000}), ids = Tensor::empty({1}, DType::I32, Device::cpu());
  Tensor params = sample_rows_tensor({to_sample_row(sp)}, Device::cpu());
  std::vector<int32_t> first;
  for (int i = 0; i < 40; i++) {
    sample_tokens(logits, nullptr, params, ids);
    first.push_back(ids.data<int32_t>()[0]);
  }
  EXPECT_EQ(sample_rows_of(params)[0].draws(), 40u);
  EXPECT_GT(std::set<int32_t>(first.begin(), first.end()).size(), 20u) << "each draw is a new uniform";
  // the same seed and counter give the same token, also as one row of a batch
  Tensor batch = Tensor::from_f32([&] {
    std::vector<float> two = random_row(1000, 7);
    two.insert(two.end(), row.begin(), row.end());
    return two;
  }(), {2, 1000});
  SamplingParams other;
  other.seed = 5;
  for (uint64_t n : {0, 13, 39}) {
    Tensor p2 = sample_rows_tensor({to_sample_row(other), to_sample_row(sp, n)}, Device::cpu());
    Tensor ids2 = Tensor::empty({2}, DType::I32, Device::cpu());
    sample_tokens(batch, nullptr, p2, ids2);
    EXPECT_EQ(ids2.data<int32_t>()[1], first[n]) << "draw " << n;
  }
}

TEST(SampleTokens, BadArgumentsAreNamed) {
  Rng rng(8);
  Tensor logits = randn({2, 9}, rng), ids = Tensor::empty({2}, DType::I32, Device::cpu());
  Tensor params = sample_rows_tensor({to_sample_row({}), to_sample_row({})}, Device::cpu());
  Tensor short_params = sample_rows_tensor({to_sample_row({})}, Device::cpu());
  std::string msg = error_of([&] { sample_tokens(logits, nullptr, short_params, ids); });
  EXPECT_NE(msg.find("params must be"), std::string::npos) << msg;
  Tensor seen = Tensor::zeros({2, 8}, DType::I32, Device::cpu());
  msg = error_of([&] { sample_tokens(logits, &seen, params, ids); });
  EXPECT_NE(msg.find("seen must be"), std::string::npos) << msg;
  Tensor report = Tensor::empty({2, 3}, DType::I32, Device::cpu());
  msg = error_of([&] { sample_tokens(logits, nullptr, params, ids, &report); });
  EXPECT_NE(msg.find("report must be"), std::string::npos) << msg;
  Tensor f32_report = Tensor::empty({2, 2}, DType::F32, Device::cpu());
  msg = error_of([&] { sample_tokens(logits, nullptr, params, ids, &f32_report); });
  EXPECT_NE(msg.find("report"), std::string::npos) << msg;
  msg = error_of([] { sample_row(1.0f, 0, 1.5f, 0.0f, 1.0f, 0); });
  EXPECT_NE(msg.find("top_p"), std::string::npos) << msg;
  msg = error_of([] { sample_row(-1.0f, 0, 1.0f, 0.0f, 1.0f, 0); });
  EXPECT_NE(msg.find("temperature"), std::string::npos) << msg;
  // a row written by hand with a bad setting is refused by the CPU twin, naming the row
  SampleRow bad = to_sample_row({});
  bad.min_p = 2.0f;
  Tensor bad_params = sample_rows_tensor({to_sample_row({}), bad}, Device::cpu());
  msg = error_of([&] { sample_tokens(logits, nullptr, bad_params, ids); });
  EXPECT_NE(msg.find("params[1].min_p"), std::string::npos) << msg;
}

}  // namespace
}  // namespace wick::test
