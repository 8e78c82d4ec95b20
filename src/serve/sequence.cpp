#include "serve/sequence.h"

#include <climits>

namespace wick::serve {

SequenceDecoder::SequenceDecoder(const std::vector<int32_t>& prompt, const SequenceOptions& opt, const Tokenizer* tok)
    : opt_(opt), sampler_(opt.gen.sampling), history_(prompt), text_(tok, opt_.gen), n_prompt_(static_cast<int64_t>(prompt.size())) {
  if (opt_.gen.max_new_tokens <= 0) finish_reason_ = "length";
}

// One function for both paths, so the host and the device subtract the very same f32 amount.
float SequenceDecoder::openai_penalty(int count) const {
  return static_cast<float>(count) * opt_.frequency_penalty + opt_.presence_penalty;
}

int32_t SequenceDecoder::sample(float* logits, int64_t V) {
  if (opt_.frequency_penalty != 0.0f || opt_.presence_penalty != 0.0f)
    for (const auto& [id, n] : counts_) logits[id] = logits[id] - openai_penalty(n);
  return sampler_.sample(logits, V, history_);
}

SampleRow SequenceDecoder::row() const { return to_sample_row(sampler_.params(), sampler_.state().draws); }

void SequenceDecoder::openai_penalties(std::vector<std::pair<int32_t, float>>& out) const {
  if (opt_.frequency_penalty == 0.0f && opt_.presence_penalty == 0.0f) return;
  for (const auto& [id, n] : counts_) out.emplace_back(id, openai_penalty(n));
}

int32_t SequenceDecoder::sampled(int32_t code, float bad_logit) {
  if (code < 0) {
    if (code == INT32_MIN) check_sampled(code, nullptr);  // throws: every logit is -inf
    throw_bad_logit(-1 - static_cast<int64_t>(code), bad_logit);
  }
  if (sampler_.params().temperature != 0.0f) sampler_.restore({sampler_.state().draws + 1});
  return code;
}

std::string SequenceDecoder::push(int32_t id) {
  history_.push_back(id);
  generated_.push_back(id);
  counts_[id]++;
  const TextStream::Step st = text_.push(id);
  if (st.eos || st.stop_string) finish_reason_ = "stop";
  else if (static_cast<int64_t>(generated_.size()) >= opt_.gen.max_new_tokens) finish_reason_ = "length";
  return st.piece;
}

std::string SequenceDecoder::flush() { return text_.flush(); }

}  // namespace wick::serve
