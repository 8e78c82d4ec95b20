// Sampler: turns one row of raw logits [V] (host f32) and the token history into the next token, the way
// Hugging Face's generate() does. The distribution is built by generate()'s processors in its order:
//   repetition penalty -> temperature -> top-k -> top-p -> min-p -> softmax
// with HF's exact comparisons (ops/sampling.h, sample_tokens). Filtered tokens get probability 0.
// temperature == 0 means greedy: argmax (first index of the maximum, as torch.argmax) of the logits after
// the repetition penalty (generate() applies processors, but no warpers, when do_sample is off).
// The rule is ops' sample_row_host, the CPU twin of the GPU's sample_tokens: the Sampler's n-th draw with a seed
// is the token sample_tokens draws on a GPU from the same logits with the same seed and draw counter n.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "ops/sampling.h"

namespace wick {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy; otherwise > 0
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // in [0, 1]; 1 = off
  float min_p = 0.0f;               // in [0, 1]; 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off
  uint64_t seed = 0;                // seeds the draws (a counter-based stream: draw n is a function of (seed, n))
};

// What a caller sets over the model's defaults (generation_config.json): each given value replaces the default's,
// an unset one keeps it. The CLI's flags, the library's GenerateSettings and `wick serve`'s request fields.
struct SamplingOverrides {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k;
};
// defaults with every given override applied (not validated: validate_sampling_params names the caller's field).
SamplingParams with_overrides(SamplingParams defaults, const SamplingOverrides& o);

// Throws wick::Error naming the field when a setting is out of range (NaN included): "SamplingParams.top_k", or
// with where_prefix "--" the CLI's flag ("--top-k").
void validate_sampling_params(const SamplingParams& p, const std::string& where_prefix = "SamplingParams.");
// The settings as sample_tokens' row, with `draws` draws already made (validated).
SampleRow to_sample_row(const SamplingParams& p, uint64_t draws = 0);

// Scratch buffers reused across calls so that sampling allocates nothing once warm.
struct SamplingWork {
  SampleRowWork row;
};

// logits [V], history (prompt + generated so far) -> probabilities [V] (zeros where filtered).
// With temperature == 0 the result is one-hot at the greedy token.
std::vector<float> sampling_distribution(const float* logits, int64_t V, const std::vector<int32_t>& history,
                                         const SamplingParams& p);

// The greedy token: argmax of the logits after the repetition penalty, first index on ties.
int32_t greedy_token(const float* logits, int64_t V, const std::vector<int32_t>& history, float repetition_penalty,
                     SamplingWork& work);

// The error for a NaN or +inf logit at token i (the model's fault, not the sampler's).
[[noreturn]] void throw_bad_logit(int64_t i, float v);
// The error for a token-or-code of sample_tokens / sample_row_host below 0 (logits: the row's values, to name
// NaN or +inf). Returns code unchanged when it is a token.
int32_t check_sampled(int32_t code, const float* logits);

struct SamplerState {
  uint64_t draws = 0;  // draws made so far
};

class Sampler {
 public:
  explicit Sampler(SamplingParams p);
  // Next token. Greedy when temperature == 0; else draw number state().draws from sampling_distribution
  // (reproducible for a given seed and call sequence; the same as sample_tokens' draw on a GPU).
  int32_t sample(const float* logits, int64_t V, const std::vector<int32_t>& history);

  const SamplingParams& params() const { return params_; }
  SamplerState state() const { return {draws_}; }
  void restore(const SamplerState& s) { draws_ = s.draws; }

 private:
  SamplingParams params_;
  SampleRow row_;
  uint64_t draws_ = 0;
  SamplingWork work_;
};

}  // namespace wick
