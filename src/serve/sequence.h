// One request's generation state, outside any forward: sampling (infer/sampler.h, plus OpenAI's frequency and
// presence penalties), the token history, the streamed text and why it stopped. The text and stop rules are
// infer/text_stream.h's, as in Generator's loop; here per sequence, so the scheduler can advance many
// sequences one token per step.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "infer/generator.h"
#include "infer/sampler.h"
#include "infer/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace wick::serve {

struct SequenceOptions {
  GenerateOptions gen;             // max_new_tokens, sampling, eos ids, stop strings
  float frequency_penalty = 0.0f;  // OpenAI: logit -= count * f + (count > 0) * p over generated tokens
  float presence_penalty = 0.0f;
};

class SequenceDecoder {
 public:
  // max_new_tokens must already fit the context (the scheduler sizes the KV cache from it).
  SequenceDecoder(const std::vector<int32_t>& prompt, const SequenceOptions& opt, const Tokenizer* tok);
  // The host path: logits [V] of the last position -> the next token (logits are modified by the penalties).
  int32_t sample(float* logits, int64_t V);

  // The device path (the scheduler samples its whole batch in one sample_tokens launch), the same rule:
  //  - row(): this sequence's sample_tokens row: its settings and the draws made so far;
  //  - openai_penalties(): the OpenAI penalties to subtract from its logits first, as (id, amount) pairs
  //    appended to `out` (none when both are 0), the amounts sample() subtracts;
  //  - the repetition penalty's history is prompt + generated (sample()'s), kept by the caller as a mask;
  //  - sampled(code): the op's token-or-code for this row -> the token, counting the draw as sample() does;
  //    a code (NaN / +inf at token i: bad_logit is logits[i]; every logit -inf) throws sample()'s wick::Error.
  SampleRow row() const;
  void openai_penalties(std::vector<std::pair<int32_t, float>>& out) const;
  int32_t sampled(int32_t code, float bad_logit);
  float repetition_penalty() const { return opt_.gen.sampling.repetition_penalty; }
  // Records the sampled token; returns the text it releases (maybe "") and sets finished().
  std::string push(int32_t id);
  bool finished() const { return !finish_reason_.empty(); }
  // OpenAI finish_reason: "stop" (eos or stop string) or "length" (max tokens or the context).
  const std::string& finish_reason() const { return finish_reason_; }
  // Text held back at the end (an unfinished UTF-8 sequence, a partial stop string that never completed).
  std::string flush();
  const std::vector<int32_t>& generated() const { return generated_; }
  int64_t prompt_tokens() const { return n_prompt_; }

 private:
  float openai_penalty(int count) const;  // count * frequency + presence

  SequenceOptions opt_;
  Sampler sampler_;
  std::vector<int32_t> history_, generated_;
  std::unordered_map<int32_t, int> counts_;
  TextStream text_;
  int64_t n_prompt_;
  std::string finish_reason_;
};

}  // namespace wick::serve
