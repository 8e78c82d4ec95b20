// Sampler against Hugging Face's processors (tests/fixtures/sampling: probabilities computed by
// transformers' own RepetitionPenalty/Temperature/TopK/TopP/MinP processors + torch.softmax), plus the
// properties of greedy and seeded sampling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "core/error.h"
#include "core/rng.h"
#include "infer/sampler.h"
#include "ops/sampling.h"

using namespace wick;
using json = nlohmann::json;

namespace {

struct Case {
  SamplingParams params;
  std::vector<int32_t> history;
  std::vector<float> logits;
  std::vector<double> probs;
  int64_t kept = 0;
  std::string name;
};

std::vector<Case> load_cases() {
  std::vector<Case> out;
  for (const std::string& dir : test::fixture_dirs("sampling", "sampling_cases.json")) {
    const std::string path = dir + "/sampling_cases.json";
    std::ifstream f(path);
    EXPECT_TRUE(f.good()) << path;
    const json j = json::parse(f);
    const int64_t V = j.at("vocab").get<int64_t>();
    int idx = 0;
    for (const json& c : j.at("cases")) {
      Case k;
      const json& st = c.at("settings");
      k.params.temperature = st.value("temperature", 1.0f);
      k.params.top_k = st.value("top_k", 0);
      k.params.top_p = st.value("top_p", 1.0f);
      k.params.min_p = st.value("min_p", 0.0f);
      k.params.repetition_penalty = st.value("repetition_penalty", 1.0f);
      k.history = c.at("history").get<std::vector<int32_t>>();
      k.logits = c.at("logits").get<std::vector<float>>();
      k.probs = c.at("probs").get<std::vector<double>>();
      k.kept = c.at("kept").get<int64_t>();
      k.name = path + " case " + std::to_string(idx++) + " " + st.dump();
      EXPECT_EQ(static_cast<int64_t>(k.logits.size()), V) << k.name;
      out.push_back(std::move(k));
    }
  }
  return out;
}

// Upper 1e-6 quantile of chi-square with df degrees of freedom (Wilson-Hilferty; z = 4.7534 is the
// standard normal's upper 1e-6 quantile). A correct sampler fails this about once in a million seeds.
double chi2_bound(int df) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + 4.7534 * std::sqrt(a), 3);
}

// Whether case c suits a frequency test of n draws: 2 to 60 tokens kept, each expected at least 5 times.
bool fits_frequency_test(const Case& c, int64_t n) {
  if (c.kept < 2 || c.kept > 60) return false;
  double pmin = 1;
  for (double q : c.probs)
    if (q > 0) pmin = std::min(pmin, q);
  return pmin * n >= 5;
}

// The counts of n draws against c's probabilities: no draw on a filtered token, chi-square under chi2_bound.
void expect_draws_follow(const Case& c, const std::vector<int64_t>& count, int64_t n) {
  double chi2 = 0;
  for (size_t i = 0; i < count.size(); i++) {
    if (c.probs[i] == 0) {
      EXPECT_EQ(count[i], 0) << c.name << " drew filtered token " << i;
      continue;
    }
    const double e = c.probs[i] * n;
    chi2 += (count[i] - e) * (count[i] - e) / e;
  }
  EXPECT_LT(chi2, chi2_bound(static_cast<int>(c.kept) - 1)) << c.name;
}

}  // namespace

// Tolerance: the fixture's probabilities are f32 torch.softmax outputs. Ours are f32 too, with the
// normaliser summed in another order (a few ulp: < 1e-7 absolute for p <= 1), and the fixture stores the
// logits rounded to 7 decimals, which moves a probability by about p * |dlogit| / T <= 1 * 5e-8 / 0.5 =
// 1e-7. 1e-6 absolute leaves ~5x headroom; the zero set (which tokens were filtered) must match exactly.
TEST(Sampler, MatchesHuggingFaceProcessors) {
  const std::vector<Case> cases = load_cases();
  ASSERT_FALSE(cases.empty()) << "no sampling fixture found under tests/fixtures/sampling*";
  for (const Case& c : cases) {
    const std::vector<float> p =
        sampling_distribution(c.logits.data(), static_cast<int64_t>(c.logits.size()), c.history, c.params);
    ASSERT_EQ(p.size(), c.probs.size()) << c.name;
    double max_diff = 0, sum = 0;
    int64_t nonzero = 0;
    for (size_t i = 0; i < p.size(); i++) {
      EXPECT_EQ(p[i] == 0.0f, c.probs[i] == 0.0) << c.name << " token " << i << ": ours " << p[i] << ", HF " << c.probs[i];
      max_diff = std::max(max_diff, std::fabs(p[i] - c.probs[i]));
      nonzero += p[i] > 0;
      sum += p[i];
    }
    EXPECT_LE(max_diff, 1e-6) << c.name;
    EXPECT_EQ(nonzero, c.kept) << c.name;
    EXPECT_NEAR(sum, 1.0, 1e-5) << c.name;
  }
}

// The top-p path sorts only the largest candidates when the rest provably falls below 1 - top_p. On a
// Qwen-sized vocabulary (where that shortcut engages) it must agree with a plain transcription of
// TopPLogitsWarper: full ascending sort, f64 cumsum stored as f32, remove cum <= 1 - top_p.
TEST(Sampler, TopPOnLargeVocabularyMatchesFullSort) {
  const int64_t V = 152064;
  Rng rng(11);
  for (double top_p : {0.5, 0.9, 0.99}) {
    for (float spread : {1.0f, 4.0f}) {
      std::vector<float> logits(V);
      for (float& v : logits) v = spread * rng.normal();
      SamplingParams sp;
      sp.top_p = static_cast<float>(top_p);
      const std::vector<float> p = sampling_distribution(logits.data(), V, {}, sp);

      std::vector<int32_t> order(V);
      for (int32_t i = 0; i < V; i++) order[i] = i;
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] < logits[b]; });
      const float m = logits[order.back()];
      double z = 0;
      for (float v : logits) z += std::exp(static_cast<double>(v) - m);
      const float thr = static_cast<float>(1.0 - top_p);  // Python: 1 - top_p in f64, then f32
      std::vector<bool> keep(V, false);
      double cum = 0;
      for (int64_t j = 0; j < V; j++) {
        cum += static_cast<float>(std::exp(static_cast<double>(logits[order[j]]) - m) / z);
        keep[order[j]] = static_cast<float>(cum) > thr || j == V - 1;
      }
      double zk = 0;
      for (int64_t i = 0; i < V; i++)
        if (keep[i]) zk += std::exp(static_cast<double>(logits[i]) - m);
      int64_t kept = 0;
      for (int64_t i = 0; i < V; i++) {
        ASSERT_EQ(p[i] > 0.0f, static_cast<bool>(keep[i])) << "top_p " << top_p << " token " << i;
        if (keep[i]) {
          kept++;
          EXPECT_NEAR(p[i], std::exp(static_cast<double>(logits[i]) - m) / zk, 1e-6);
        }
      }
      EXPECT_GT(kept, 1);
      EXPECT_LT(kept, V);
    }
  }
}

TEST(Sampler, TopKKeepsAllTiesOfTheKthValue) {
  // k = 2 over [3, 1, 2, 2, 0]: the 2nd largest value is 2, held by ids 2 and 3: HF keeps both.
  const std::vector<float> logits = {3.0f, 1.0f, 2.0f, 2.0f, 0.0f};
  SamplingParams sp;
  sp.top_k = 2;
  const std::vector<float> p = sampling_distribution(logits.data(), 5, {}, sp);
  const double z = std::exp(3.0) + 2 * std::exp(2.0);
  EXPECT_NEAR(p[0], std::exp(3.0) / z, 1e-7);
  EXPECT_NEAR(p[2], std::exp(2.0) / z, 1e-7);
  EXPECT_NEAR(p[3], std::exp(2.0) / z, 1e-7);
  EXPECT_EQ(p[1], 0.0f);
  EXPECT_EQ(p[4], 0.0f);
}

TEST(Sampler, GreedyIsFirstArgmaxAfterRepetitionPenalty) {
  Rng rng(3);
  std::vector<float> logits(1000);
  for (float& v : logits) v = rng.normal();
  SamplingParams sp;
  sp.temperature = 0.0f;
  Sampler s(sp);
  const int32_t expect = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  EXPECT_EQ(s.sample(logits.data(), 1000, {}), expect);

  // ties: torch.argmax returns the first index of the maximum
  logits[10] = 9.0f;
  logits[500] = 9.0f;
  EXPECT_EQ(s.sample(logits.data(), 1000, {}), 10);

  // penalty 1.3 turns 9.0 into 9/1.3 = 6.92 for both tied ids (in the history, one of them twice);
  // 7.0 at id 20 is then the maximum.
  logits[20] = 7.0f;
  sp.repetition_penalty = 1.3f;
  Sampler sp_s(sp);
  EXPECT_EQ(sp_s.sample(logits.data(), 1000, {10, 500, 10}), 20);
  // the distribution view of greedy is one-hot
  const std::vector<float> p = sampling_distribution(logits.data(), 1000, {10, 500}, sp);
  EXPECT_EQ(p[20], 1.0f);
  EXPECT_EQ(std::count(p.begin(), p.end(), 0.0f), 999);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  // [2, -1, 0.5] with penalty 2 on ids {0, 1} -> [1, -2, 0.5]
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f};
  SamplingParams sp;
  sp.repetition_penalty = 2.0f;
  const std::vector<float> p = sampling_distribution(logits.data(), 3, {0, 1, 1, 0}, sp);
  const double z = std::exp(1.0) + std::exp(-2.0) + std::exp(0.5);
  EXPECT_NEAR(p[0], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(p[1], std::exp(-2.0) / z, 1e-7);
  EXPECT_NEAR(p[2], std::exp(0.5) / z, 1e-7);
}

TEST(Sampler, SeededDrawsAreReproducibleAndResumable) {
  Rng rng(5);
  std::vector<float> logits(1000);
  for (float& v : logits) v = 2.0f * rng.normal();
  SamplingParams sp;
  sp.temperature = 0.9f;
  sp.top_p = 0.95f;
  sp.seed = 1234;
  Sampler a(sp), b(sp);
  std::vector<int32_t> da, db;
  for (int i = 0; i < 500; i++) {
    da.push_back(a.sample(logits.data(), 1000, da));
    db.push_back(b.sample(logits.data(), 1000, db));
  }
  EXPECT_EQ(da, db);
  EXPECT_GT(std::set<int32_t>(da.begin(), da.end()).size(), 10u);  // it is really sampling

  const SamplerState saved = a.state();
  std::vector<int32_t> first, second;
  for (int i = 0; i < 50; i++) first.push_back(a.sample(logits.data(), 1000, {}));
  a.restore(saved);
  for (int i = 0; i < 50; i++) second.push_back(a.sample(logits.data(), 1000, {}));
  EXPECT_EQ(first, second);

  sp.seed = 1235;
  Sampler c(sp);
  std::vector<int32_t> dc;
  for (int i = 0; i < 50; i++) dc.push_back(c.sample(logits.data(), 1000, {}));
  EXPECT_NE(dc, first);
}

// Empirical frequencies of many seeded draws against the fixture's distributions (chi-square, every
// expected count >= 5), and no draw ever lands on a filtered token.
TEST(Sampler, DrawFrequenciesMatchTheDistribution) {
  const std::vector<Case> cases = load_cases();
  ASSERT_FALSE(cases.empty());
  int tested = 0;
  for (const Case& c : cases) {
    if (tested == 4) break;
    const int N = 20000;
    if (!fits_frequency_test(c, N)) continue;
    SamplingParams sp = c.params;
    sp.seed = 77 + tested;
    Sampler s(sp);
    const int64_t V = static_cast<int64_t>(c.logits.size());
    std::vector<int64_t> count(V, 0);
    for (int i = 0; i < N; i++) count[s.sample(c.logits.data(), V, c.history)]++;
    expect_draws_follow(c, count, N);
    tested++;
  }
  EXPECT_EQ(tested, 4);
}

// The device op's rule (ops/sampling.h sample_tokens, here its CPU twin; tests/cuda checks the GPU against it)
// draws from the same distributions: many rows of one fixture case, one seed each, against transformers'
// probabilities (chi-square), never a filtered token; and row r's token is the host Sampler's with seed r.
TEST(Sampler, SampleTokensDrawsTheFixtureDistributions) {
  const std::vector<Case> cases = load_cases();
  ASSERT_FALSE(cases.empty());
  int tested = 0;
  for (const Case& c : cases) {
    if (tested == 4) break;
    const int64_t N = 12000, V = static_cast<int64_t>(c.logits.size());
    if (!fits_frequency_test(c, N)) continue;
    std::vector<float> all;
    std::vector<SampleRow> rows;
    Tensor seen = Tensor::zeros({N, V}, DType::I32, Device::cpu());
    for (int64_t r = 0; r < N; r++) {
      all.insert(all.end(), c.logits.begin(), c.logits.end());
      SamplingParams sp = c.params;
      sp.seed = 500 + static_cast<uint64_t>(r);
      rows.push_back(to_sample_row(sp));
      for (int32_t id : c.history) seen.data<int32_t>()[r * V + id] = 1;
    }
    Tensor logits = Tensor::from_f32(all, {N, V}), params = sample_rows_tensor(rows, Device::cpu());
    Tensor ids = Tensor::empty({N}, DType::I32, Device::cpu());
    sample_tokens(logits, &seen, params, ids);
    std::vector<int64_t> count(V, 0);
    for (int64_t r = 0; r < N; r++) count[ids.data<int32_t>()[r]]++;
    for (int64_t r = 0; r < 50; r++) {
      SamplingParams sp = c.params;
      sp.seed = 500 + static_cast<uint64_t>(r);
      Sampler s(sp);
      EXPECT_EQ(s.sample(c.logits.data(), V, c.history), ids.data<int32_t>()[r]) << c.name << " row " << r;
    }
    expect_draws_follow(c, count, N);
    tested++;
  }
  EXPECT_EQ(tested, 4);
}

TEST(Sampler, BadInputIsAClearError) {
  std::vector<float> logits = {0.1f, 0.2f, 0.3f};
  SamplingParams ok;
  EXPECT_THROW(sampling_distribution(logits.data(), 3, {3}, ok), Error);   // id outside vocab
  EXPECT_THROW(sampling_distribution(logits.data(), 3, {-1}, ok), Error);
  EXPECT_THROW(sampling_distribution(nullptr, 3, {}, ok), Error);
  EXPECT_THROW(sampling_distribution(logits.data(), 0, {}, ok), Error);
  auto bad = [&](auto set) {
    SamplingParams sp;
    set(sp);
    EXPECT_THROW(sampling_distribution(logits.data(), 3, {}, sp), Error);
    EXPECT_THROW(Sampler{sp}, Error);
  };
  bad([](SamplingParams& s) { s.temperature = -1.0f; });
  bad([](SamplingParams& s) { s.temperature = std::nanf(""); });
  bad([](SamplingParams& s) { s.top_k = -2; });
  bad([](SamplingParams& s) { s.top_p = 1.5f; });
  bad([](SamplingParams& s) { s.min_p = -0.1f; });
  bad([](SamplingParams& s) { s.repetition_penalty = 0.0f; });

  logits[1] = std::nanf("");
  try {
    sampling_distribution(logits.data(), 3, {}, ok);
    ADD_FAILURE() << "NaN logit accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN at token 1"), std::string::npos) << e.what();
  }
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> masked = {ninf, ninf, ninf};
  EXPECT_THROW(sampling_distribution(masked.data(), 3, {}, ok), Error);
  // a partly masked row is fine: masked tokens get probability 0
  masked[2] = 0.5f;
  const std::vector<float> p = sampling_distribution(masked.data(), 3, {}, ok);
  EXPECT_EQ(p[0], 0.0f);
  EXPECT_EQ(p[2], 1.0f);
}

// Exact boundaries, where HF's strict/non-strict comparisons decide. Four equal logits give probabilities
// of exactly 0.25 and ascending cumsums 0.25, 0.5, 0.75, 1 (all exact in binary).
TEST(Sampler, TopPRemovesCumulativeEqualToOneMinusTopP) {
  const std::vector<float> logits = {1.5f, 1.5f, 1.5f, 1.5f};
  SamplingParams sp;
  sp.top_p = 0.75f;  // 1 - 0.75 = 0.25: HF removes cum <= 0.25, i.e. exactly one of the four
  const std::vector<float> p = sampling_distribution(logits.data(), 4, {}, sp);
  EXPECT_EQ(std::count(p.begin(), p.end(), 0.0f), 1);
  for (float q : p)
    if (q > 0) EXPECT_NEAR(q, 1.0 / 3.0, 1e-7);
  sp.top_p = 0.0f;  // removes everything but min_tokens_to_keep = 1
  const std::vector<float> one = sampling_distribution(logits.data(), 4, {}, sp);
  EXPECT_EQ(std::count(one.begin(), one.end(), 1.0f), 1);
}

TEST(Sampler, MinPKeepsProbabilityEqualToThreshold) {
  // min_p = 1: threshold = max prob; HF removes p < threshold, so equal probabilities all stay
  const std::vector<float> logits = {0.5f, 0.5f, 0.5f, 0.5f, -3.0f};
  SamplingParams sp;
  sp.min_p = 1.0f;
  const std::vector<float> p = sampling_distribution(logits.data(), 5, {}, sp);
  for (int i = 0; i < 4; i++) EXPECT_EQ(p[i], 0.25f);
  EXPECT_EQ(p[4], 0.0f);
}
