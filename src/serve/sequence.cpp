#include "serve/sequence.h"

namespace wick::serve {

SequenceDecoder::SequenceDecoder(const std::vector<int32_t>& prompt, const SequenceOptions& opt, const Tokenizer* tok)
    : opt_(opt), sampler_(opt.gen.sampling), history_(prompt), text_(tok, opt_.gen), n_prompt_(static_cast<int64_t>(prompt.size())) {
  if (opt_.gen.max_new_tokens <= 0) finish_reason_ = "length";
}

int32_t SequenceDecoder::sample(float* logits, int64_t V) {
  if (opt_.frequency_penalty != 0.0f || opt_.presence_penalty != 0.0f)
    for (const auto& [id, n] : counts_)
      logits[id] -= static_cast<float>(n) * opt_.frequency_penalty + opt_.presence_penalty;
  return sampler_.sample(logits, V, history_);
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
