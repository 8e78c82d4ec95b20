#include "infer/text_stream.h"

#include <algorithm>

namespace wick {

namespace {

// How much of `text` may be emitted now: all of it, minus a tail that is a proper prefix of a stop string.
size_t safe_emit_length(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops)
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; k--)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  return text.size() - hold;
}

}  // namespace

TextStream::TextStream(const Tokenizer* tok, const GenerateOptions& opt)
    : eos_ids_(opt.eos_ids), stop_strings_(opt.stop_strings), ignore_eos_(opt.ignore_eos) {
  if (tok) dec_ = std::make_unique<StreamDecoder>(*tok, true);
}

TextStream::Step TextStream::push(int32_t id) {
  Step st;
  st.eos = !ignore_eos_ && std::find(eos_ids_.begin(), eos_ids_.end(), id) != eos_ids_.end();
  if (!dec_ || stop_hit_) return st;
  text_ += dec_->push(id);
  // A stop string can only end in the new text, so the search starts where it could begin.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_strings_) {
    const size_t from = emitted_ > s.size() ? emitted_ - s.size() : 0;
    const size_t at = text_.find(s, from);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    text_.resize(cut);
    stop_hit_ = st.stop_string = true;
  }
  const size_t upto = (st.stop_string || st.eos) ? text_.size() : safe_emit_length(text_, stop_strings_);
  if (upto > emitted_) {
    st.piece = text_.substr(emitted_, upto - emitted_);
    emitted_ = upto;
  }
  return st;
}

std::string TextStream::flush() {
  if (!dec_ || stop_hit_) return "";
  text_ += dec_->flush();
  std::string rest = text_.size() > emitted_ ? text_.substr(emitted_) : "";
  emitted_ = text_.size();
  return rest;
}

}  // namespace wick
