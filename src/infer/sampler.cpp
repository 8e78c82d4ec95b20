// Hugging Face's logits processors, as generate() chains them for do_sample=True (transformers 5):
//   RepetitionPenaltyLogitsProcessor: s = s < 0 ? s * penalty : s / penalty, once per id in the history
//   TemperatureLogitsWarper:          s = s / T
//   TopKLogitsWarper:                 remove s < (k-th largest s): every tie of the k-th value stays
//   TopPLogitsWarper:                 sort ascending, cum = cumsum(softmax(sorted)); remove cum <= 1 - top_p;
//                                     the largest always stays
//   MinPLogitsWarper:                 p = softmax(s); remove p < min_p * max(p)
// then softmax. The rule itself is ops/sampling.h's (sample_row_host, shared with the GPU's sample_tokens);
// this file turns a history into the ids to penalise and the rule's codes into errors.
//
// f32 details that decide boundary cases: HF's settings are Python floats (f64) applied to f32 tensors,
// which casts the scalar to f32 (so T, penalty and min_p act as f32 values, as here), except 1 - top_p,
// which is computed in f64 before the cast. torch's CPU cumsum of f32 accumulates in f64 and stores f32; the
// rule sums exactly (fixed point), which differs from that only where the f64 sum's own rounding would.
#include "infer/sampler.h"

#include <climits>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"

namespace wick {
namespace {

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

}  // namespace

void throw_bad_logit(int64_t i, float v) {
  throw Error(std::string("logit is ") + (std::isnan(v) ? "NaN" : "+inf") + " at token " + std::to_string(i),
              "sampler logits", "the model produced non-finite logits; check the weights and the dtype");
}

int32_t check_sampled(int32_t code, const float* logits) {
  if (code >= 0) return code;
  if (code == INT32_MIN)
    throw Error("every logit is -inf: no token can be sampled", "sampler logits",
                "check the logits mask; at least one token must stay allowed");
  const int64_t i = -1 - static_cast<int64_t>(code);
  throw_bad_logit(i, logits[i]);
}

SamplingParams with_overrides(SamplingParams p, const SamplingOverrides& o) {
  if (o.temperature) p.temperature = *o.temperature;
  if (o.top_k) p.top_k = *o.top_k;
  if (o.top_p) p.top_p = *o.top_p;
  if (o.min_p) p.min_p = *o.min_p;
  if (o.repetition_penalty) p.repetition_penalty = *o.repetition_penalty;
  return p;
}

void validate_sampling_params(const SamplingParams& p, const std::string& where_prefix) {
  sample_row(p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty, p.seed, 0, where_prefix);
}

SampleRow to_sample_row(const SamplingParams& p, uint64_t draws) {
  return sample_row(p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty, p.seed, draws);
}

int32_t greedy_token(const float* logits, int64_t V, const std::vector<int32_t>& history, float repetition_penalty,
                     SamplingWork& work) {
  check_inputs(logits, V, history);
  SamplingParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = repetition_penalty;
  return check_sampled(sample_row_host(logits, V, history.data(), history.size(), to_sample_row(p), work.row), logits);
}

std::vector<float> sampling_distribution(const float* logits, int64_t V, const std::vector<int32_t>& history,
                                         const SamplingParams& p) {
  const SampleRow row = to_sample_row(p);
  check_inputs(logits, V, history);
  SampleRowWork w;
  std::vector<float> out(static_cast<size_t>(V));
  check_sampled(sample_distribution_row(logits, V, history.data(), history.size(), row, w, out.data()), logits);
  return out;
}

Sampler::Sampler(SamplingParams p) : params_(p), row_(to_sample_row(p)) {}

int32_t Sampler::sample(const float* logits, int64_t V, const std::vector<int32_t>& history) {
  check_inputs(logits, V, history);
  row_.set_draws(draws_);
  const int32_t t = check_sampled(sample_row_host(logits, V, history.data(), history.size(), row_, work_.row), logits);
  if (params_.temperature != 0.0f) draws_++;
  return t;
}

}  // namespace wick
