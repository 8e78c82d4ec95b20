#include "serve/sequence.h"

#include <algorithm>

namespace wick::serve {

SequenceDecoder::SequenceDecoder(const std::vector<int32_t>& prompt, const SequenceOptions& opt, const Tokenizer* tok)
    : opt_(opt), sampler_(opt.gen.sampling), history_(prompt), n_prompt_(static_cast<int64_t>(prompt.size())) {
  if (tok) dec_ = std::make_unique<StreamDecoder>(*tok, true);
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
  const GenerateOptions& g = opt_.gen;
  const bool is_eos = !g.ignore_eos && std::find(g.eos_ids.begin(), g.eos_ids.end(), id) != g.eos_ids.end();
  std::string piece;
  if (dec_) {
    text_ += dec_->push(id);
    size_t cut = std::string::npos;
    for (const std::string& s : g.stop_strings) {
      const size_t from = emitted_ > s.size() ? emitted_ - s.size() : 0;
      const size_t at = text_.find(s, from);
      if (at != std::string::npos) cut = std::min(cut, at);
    }
    if (cut != std::string::npos) {
      text_.resize(cut);
      stop_hit_ = true;
    }
    const size_t upto = (stop_hit_ || is_eos) ? text_.size() : safe_emit_length(text_, g.stop_strings);
    if (upto > emitted_) {
      piece = text_.substr(emitted_, upto - emitted_);
      emitted_ = upto;
    }
  }
  if (is_eos || stop_hit_) finish_reason_ = "stop";
  else if (static_cast<int64_t>(generated_.size()) >= g.max_new_tokens) finish_reason_ = "length";
  return piece;
}

std::string SequenceDecoder::flush() {
  if (!dec_ || stop_hit_) return "";
  text_ += dec_->flush();
  std::string rest = text_.size() > emitted_ ? text_.substr(emitted_) : "";
  emitted_ = text_.size();
  return rest;
}

}  // namespace wick::serve
