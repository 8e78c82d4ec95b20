// Sampler: turns one row of raw logits [V] (host f32) and the token history into the next token, the way
// Hugging Face's generate() does. The distribution is built by generate()'s processors in its order:
//   repetition penalty -> temperature -> top-k -> top-p -> min-p -> softmax
// with HF's exact comparisons (see sampler.cpp). Filtered tokens get probability 0.
// temperature == 0 means greedy: argmax (first index of the maximum, as torch.argmax) of the logits after
// the repetition penalty (generate() applies processors, but no warpers, when do_sample is off).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace wick {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy; otherwise > 0
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // in [0, 1]; 1 = off
  float min_p = 0.0f;               // in [0, 1]; 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off
  uint64_t seed = 0;                // seeds the Sampler's Rng
};

// Throws wick::Error naming the field when a setting is out of range (NaN included).
void validate_sampling_params(const SamplingParams& p);

// A token still in the running: its processed score, id, and probability (softmax over the candidates).
struct SamplingCandidate {
  float score;
  int32_t id;
  float prob;
};

// Scratch buffers reused across calls so that sampling allocates nothing once warm.
struct SamplingWork {
  std::vector<float> scores;              // [V] processed logits
  std::vector<SamplingCandidate> cand;    // the kept tokens
  std::vector<float> heap;                // top-k selection
  std::vector<int32_t> hist;              // sorted, unique history ids
};

// logits [V], history (prompt + generated so far) -> probabilities [V] (zeros where filtered).
// With temperature == 0 the result is one-hot at the greedy token.
std::vector<float> sampling_distribution(const float* logits, int64_t V, const std::vector<int32_t>& history,
                                         const SamplingParams& p);

// The same, leaving the kept tokens with their probabilities in work.cand (in no particular order).
// Returns the number of kept tokens. The allocation-free core of the two above.
size_t sampling_candidates(const float* logits, int64_t V, const std::vector<int32_t>& history,
                           const SamplingParams& p, SamplingWork& work);

// The greedy token: argmax of the logits after the repetition penalty, first index on ties.
int32_t greedy_token(const float* logits, int64_t V, const std::vector<int32_t>& history, float repetition_penalty,
                     SamplingWork& work);

// The error for a NaN or +inf logit at token i (the model's fault, not the sampler's).
[[noreturn]] void throw_bad_logit(int64_t i, float v);

struct SamplerState {
  uint64_t state = 0, inc = 0;  // the Rng's PCG32 state
};

class Sampler {
 public:
  explicit Sampler(SamplingParams p);
  // Next token. Greedy when temperature == 0; else one draw from sampling_distribution with the Rng
  // (reproducible for a given seed and call sequence).
  int32_t sample(const float* logits, int64_t V, const std::vector<int32_t>& history);

  const SamplingParams& params() const { return params_; }
  SamplerState state() const { return {rng_.state(), rng_.inc()}; }
  void restore(const SamplerState& s) { rng_.restore(s.state, s.inc); }

 private:
  SamplingParams params_;
  Rng rng_;
  SamplingWork work_;
};

}  // namespace wick
