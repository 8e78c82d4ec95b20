// Hugging Face's logits processors, as generate() chains them for do_sample=True (transformers 5):
//   RepetitionPenaltyLogitsProcessor: s = s < 0 ? s * penalty : s / penalty, once per id in the history
//   TemperatureLogitsWarper:          s = s / T
//   TopKLogitsWarper:                 remove s < (k-th largest s): every tie of the k-th value stays
//   TopPLogitsWarper:                 sort ascending, cum = cumsum(softmax(sorted)); remove cum <= 1 - top_p;
//                                     the largest always stays
//   MinPLogitsWarper:                 p = softmax(s); remove p < min_p * max(p)
// then softmax. A removed token's score is -inf, so it drops out of every later softmax: we carry the
// surviving ids as a candidate list instead of rescanning all V scores at each stage, which makes top-k
// (k << V) cost one pass over V plus work on k ids.
//
// f32 details that decide boundary cases: HF's settings are Python floats (f64) applied to f32 tensors,
// which casts the scalar to f32 (so T, penalty and min_p act as f32 values, as here), except 1 - top_p,
// which is computed in f64 before the cast; torch's CPU cumsum of f32 accumulates in f64 and stores f32.
#include "infer/sampler.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "core/error.h"

namespace wick {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// 1 - x as Python computes it for the decimal the user wrote: the shortest decimal that round-trips x
// (0.9f -> "0.9") read as f64, so 1 - 0.9 = 0.09999999999999998 -> 0.1f, as in HF; 1.0 - double(0.9f)
// would give 0.100000024f instead.
float one_minus_decimal(float x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  double d = x;
  std::from_chars(buf, r.ptr, d);
  return static_cast<float>(1.0 - d);
}

void check_inputs(const float* logits, int64_t V, const std::vector<int32_t>& history) {
  if (V <= 0 || V > std::numeric_limits<int32_t>::max())
    throw Error("vocabulary size " + std::to_string(V) + " is out of range", "sampler",
                "the logits row must hold between 1 and 2^31-1 values");
  if (!logits) throw Error("logits pointer is null", "sampler");
  for (size_t i = 0; i < history.size(); i++) {
    if (history[i] < 0 || history[i] >= V)
      throw Error("token id " + std::to_string(history[i]) + " is outside the vocabulary [0, " + std::to_string(V) + ")",
                  "sampler history[" + std::to_string(i) + "]", "the history must hold ids of this model's vocabulary");
  }
}


// work.scores = logits with the repetition penalty applied; rejects NaN and +inf.
void penalised_scores(const float* logits, int64_t V, const std::vector<int32_t>& history, float penalty,
                      SamplingWork& w) {
  w.scores.assign(logits, logits + V);
  for (int64_t i = 0; i < V; i++) {
    const float v = w.scores[i];
    if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) throw_bad_logit(i, v);
  }
  if (penalty == 1.0f) return;
  // gather-then-scatter in HF: each id is penalised once, however often it occurs
  w.hist.assign(history.begin(), history.end());
  std::sort(w.hist.begin(), w.hist.end());
  w.hist.erase(std::unique(w.hist.begin(), w.hist.end()), w.hist.end());
  for (int32_t id : w.hist) {
    const float s = w.scores[id];
    w.scores[id] = s < 0 ? s * penalty : s / penalty;
  }
}

int32_t argmax_first(const float* s, int64_t V) {
  int64_t best = 0;
  for (int64_t i = 0; i < V; i++) {
    if (std::isnan(s[i]) || s[i] == std::numeric_limits<float>::infinity()) throw_bad_logit(i, s[i]);
    if (s[i] > s[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

// Candidate order: ascending by score; among equal scores the higher id counts as smaller (so the lowest
// id of a tie is the "largest", as argmax would pick it). A strict total order: ids are distinct.
inline bool cand_less(const SamplingCandidate& a, const SamplingCandidate& b) {
  return a.score < b.score || (a.score == b.score && a.id > b.id);
}

// prob = softmax over the candidates' scores (f32 values, f64 normaliser).
void softmax_candidates(std::vector<SamplingCandidate>& cand) {
  float m = kNegInf;
  for (const SamplingCandidate& c : cand) m = std::max(m, c.score);
  double sum = 0;
  for (SamplingCandidate& c : cand) {
    c.prob = std::exp(c.score - m);
    sum += c.prob;
  }
  const float norm = static_cast<float>(sum);
  for (SamplingCandidate& c : cand) c.prob /= norm;
}

// cand <- tokens whose score is >= the k-th largest score (all ties of it), -inf scores excluded.
void top_k_candidates(const std::vector<float>& s, int64_t k, std::vector<SamplingCandidate>& cand,
                      std::vector<float>& heap) {
  // k-th largest via a min-heap of the k largest seen: one compare per score once the heap is full
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
  const float kth = heap.front();
  cand.clear();
  for (int32_t i = 0; i < static_cast<int32_t>(s.size()); i++)
    if (s[i] >= kth && s[i] != kNegInf) cand.push_back({s[i], i, 0.0f});
}

// TopP: in ascending order, cum_j = sum of probs up to j (f64, stored f32); remove cum_j <= thr, keep the
// largest always. The removed tokens are a prefix of the ascending order, so only the crossing point is
// needed, not a full sort (milliseconds on 152k tokens): a quickselect weighted by probability narrows the
// range holding the first j with f32(cum_j) > thr, keeping the mass below the range; the last few
// candidates are sorted and scanned in order. Sums of the same values in another order differ from the
// sequential f64 sum by ~1e-16, far below the f32 rounding that the comparison sees.
void top_p_filter(std::vector<SamplingCandidate>& cand, float thr) {
  softmax_candidates(cand);
  const auto crossed = [thr](double cum) { return static_cast<float>(cum) > thr; };
  size_t lo = 0, hi = cand.size();
  double below = 0;  // mass of everything before lo
  size_t first_kept = cand.size();
  while (hi - lo > 16) {
    // median-of-three pivot, moved to hi - 1
    const size_t mid = lo + (hi - lo) / 2;
    if (cand_less(cand[mid], cand[lo])) std::swap(cand[mid], cand[lo]);
    if (cand_less(cand[hi - 1], cand[lo])) std::swap(cand[hi - 1], cand[lo]);
    if (cand_less(cand[hi - 1], cand[mid])) std::swap(cand[mid], cand[hi - 1]);
    const SamplingCandidate pivot = cand[hi - 1];
    const auto split = std::partition(cand.begin() + lo, cand.begin() + (hi - 1),
                                      [&](const SamplingCandidate& c) { return cand_less(c, pivot); });
    const size_t m = static_cast<size_t>(split - cand.begin());
    std::swap(cand[m], cand[hi - 1]);  // pivot at its sorted position m
    double low_mass = 0;
    for (size_t j = lo; j < m; j++) low_mass += cand[j].prob;
    if (crossed(below + low_mass)) {
      hi = m;  // the crossing is below the pivot
    } else if (crossed(below + low_mass + pivot.prob)) {
      first_kept = m;
      break;
    } else {
      below += low_mass + pivot.prob;
      lo = m + 1;
    }
  }
  if (first_kept == cand.size()) {
    std::sort(cand.begin() + lo, cand.begin() + hi, cand_less);
    double cum = below;
    for (size_t j = lo; j < hi; j++) {
      cum += cand[j].prob;
      if (crossed(cum)) {
        first_kept = j;
        break;
      }
    }
  }
  if (first_kept == cand.size()) {
    // no cumsum exceeds thr (top_p ~ 0): min_tokens_to_keep = 1 keeps the largest alone
    const auto top = std::max_element(cand.begin(), cand.end(), cand_less);
    cand.assign(1, *top);
    return;
  }
  cand.erase(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(first_kept));
}

void min_p_filter(std::vector<SamplingCandidate>& cand, float min_p) {
  softmax_candidates(cand);
  float pmax = 0;
  for (const SamplingCandidate& c : cand) pmax = std::max(pmax, c.prob);
  const float thr = min_p * pmax;
  std::erase_if(cand, [thr](const SamplingCandidate& c) { return c.prob < thr; });
  // the top token's prob equals pmax >= thr for min_p <= 1, so cand never empties
}

}  // namespace

void throw_bad_logit(int64_t i, float v) {
  throw Error(std::string("logit is ") + (std::isnan(v) ? "NaN" : "+inf") + " at token " + std::to_string(i),
              "sampler logits", "the model produced non-finite logits; check the weights and the dtype");
}

void validate_sampling_params(const SamplingParams& p) {
  auto bad = [](const char* field, double v, const char* expected) {
    throw Error("sampling setting is " + std::to_string(v), std::string("SamplingParams.") + field, expected);
  };
  if (!(p.temperature >= 0) || std::isinf(p.temperature)) bad("temperature", p.temperature, "expected 0 (greedy) or a finite value > 0");
  if (p.top_k < 0) bad("top_k", p.top_k, "expected 0 (off) or a positive count");
  if (!(p.top_p >= 0 && p.top_p <= 1)) bad("top_p", p.top_p, "expected a value in [0, 1]; 1 = off");
  if (!(p.min_p >= 0 && p.min_p <= 1)) bad("min_p", p.min_p, "expected a value in [0, 1]; 0 = off");
  if (!(p.repetition_penalty > 0) || std::isinf(p.repetition_penalty))
    bad("repetition_penalty", p.repetition_penalty, "expected a finite value > 0; 1 = off");
}

int32_t greedy_token(const float* logits, int64_t V, const std::vector<int32_t>& history, float repetition_penalty,
                     SamplingWork& work) {
  check_inputs(logits, V, history);
  if (repetition_penalty == 1.0f) return argmax_first(logits, V);
  penalised_scores(logits, V, history, repetition_penalty, work);
  return argmax_first(work.scores.data(), V);
}

size_t sampling_candidates(const float* logits, int64_t V, const std::vector<int32_t>& history,
                           const SamplingParams& p, SamplingWork& w) {
  validate_sampling_params(p);
  check_inputs(logits, V, history);
  if (p.temperature == 0.0f) {
    const int32_t g = greedy_token(logits, V, history, p.repetition_penalty, w);
    w.cand.assign(1, {logits[g], g, 1.0f});
    return 1;
  }
  penalised_scores(logits, V, history, p.repetition_penalty, w);
  if (p.temperature != 1.0f)
    for (float& v : w.scores) v = v / p.temperature;

  if (p.top_k > 0 && p.top_k < V) {
    top_k_candidates(w.scores, p.top_k, w.cand, w.heap);
  } else {
    w.cand.clear();
    for (int32_t i = 0; i < static_cast<int32_t>(V); i++)
      if (w.scores[i] != kNegInf) w.cand.push_back({w.scores[i], i, 0.0f});
  }
  if (w.cand.empty())
    throw Error("every logit is -inf: no token can be sampled", "sampler logits",
                "check the logits mask; at least one token must stay allowed");

  if (p.top_p < 1.0f) top_p_filter(w.cand, one_minus_decimal(p.top_p));
  if (p.min_p > 0.0f) min_p_filter(w.cand, p.min_p);
  softmax_candidates(w.cand);
  return w.cand.size();
}

std::vector<float> sampling_distribution(const float* logits, int64_t V, const std::vector<int32_t>& history,
                                         const SamplingParams& p) {
  SamplingWork w;
  sampling_candidates(logits, V, history, p, w);
  std::vector<float> out(static_cast<size_t>(V), 0.0f);
  for (const SamplingCandidate& c : w.cand) out[c.id] = c.prob;
  return out;
}

Sampler::Sampler(SamplingParams p) : params_(p), rng_(p.seed) { validate_sampling_params(params_); }

int32_t Sampler::sample(const float* logits, int64_t V, const std::vector<int32_t>& history) {
  if (params_.temperature == 0.0f) return greedy_token(logits, V, history, params_.repetition_penalty, work_);
  sampling_candidates(logits, V, history, params_, work_);
  double total = 0;
  for (const SamplingCandidate& c : work_.cand) total += c.prob;
  // inverse CDF with a 53-bit uniform: resolves probabilities far below 1/V
  const double u = static_cast<double>(rng_.next_u64() >> 11) * 0x1p-53;
  const double target = u * total;
  double cum = 0;
  int32_t last = work_.cand[0].id;
  for (const SamplingCandidate& c : work_.cand) {
    if (c.prob <= 0) continue;  // underflowed: never drawn
    cum += c.prob;
    last = c.id;
    if (cum > target) return last;
  }
  return last;  // rounding left target at the very top
}

}  // namespace wick
