#include "tokenizer/tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace wick {

Tokenizer Tokenizer::from_file(const std::string& tokenizer_json) { return Tokenizer(load_tokenizer_json(tokenizer_json)); }

Tokenizer Tokenizer::from_model_dir(const std::string& dir) {
  const std::filesystem::path p = std::filesystem::path(dir) / "tokenizer.json";
  if (!std::filesystem::exists(p))
    throw Error("no tokenizer.json in the model folder", dir,
                "wick reads the Hugging Face fast-tokenizer file tokenizer.json (vocab.json + merges.txt alone are not "
                "supported); pass --tokenizer FILE to use one from elsewhere");
  return from_file(p.string());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const Impl& m = *impl_;
  if (const size_t bad = tok::utf8_invalid_at(text); bad != std::string_view::npos)
    throw Error("text to encode is not valid UTF-8 (first bad byte at offset " + std::to_string(bad) + ")",
                "tokenizer input", "pass UTF-8 text");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  std::vector<std::string_view> pieces;
  std::string normalized, buf;
  auto on_text = [&](std::string_view seg) {
    const bool at_start = seg.data() == text.data();  // Metaspace's prepend_scheme "first"
    if (!m.normalizer.empty() && !(m.normalizer.nfc_only() && tok::is_ascii(seg))) {
      normalized = m.normalizer.apply(seg);
      seg = normalized;
    }
    pieces.clear();
    m.pre->run(seg, at_start, buf, pieces);
    for (std::string_view p : pieces) m.bpe->encode_word(p, ids);
  };
  m.added.split(text, on_text, [&](int32_t id) { ids.push_back(id); });
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& m = *impl_;
  auto keep = [&](int32_t id) {
    if (id < 0 || id >= static_cast<int64_t>(m.flags.size())) return false;
    const uint8_t f = m.flags[id];
    return (f & Impl::kExists) && !(skip_special && (f & Impl::kSpecial));
  };
  if (!m.decoder->byte_level_only()) {  // the decoder's steps over the token texts, as HF's decode_chain
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids)
      if (keep(id)) tokens.push_back(m.text[id]);
    return m.decoder->decode(std::move(tokens));
  }
  std::string bytes;
  for (int32_t id : ids)
    if (keep(id)) bytes += m.bytes[id];
  std::string out;
  out.reserve(bytes.size());
  tok::utf8_decode_lossy(bytes, out, /*final=*/true);
  return out;
}

bool Tokenizer::decode_strips_leading_space() const { return impl_->decoder->strips_leading_space(); }

std::string Tokenizer::first_token_bytes(int32_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(impl_->flags.size()) || !(impl_->flags[id] & Impl::kExists)) return "";
  return impl_->decoder->piece(impl_->text[id], /*first=*/true);
}

int32_t Tokenizer::token_id(std::string_view token) const {
  if (const tok::AddedToken* t = impl_->added.find_content(token)) return t->id;
  const auto& v = impl_->bpe->vocab();
  auto it = v.find(token);
  return it == v.end() ? -1 : it->second;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (id >= 0 && id < static_cast<int64_t>(impl_->flags.size()) && (impl_->flags[id] & Impl::kExists)) {
    if (impl_->flags[id] & Impl::kAdded) return impl_->added.find_id(id)->content;
    return impl_->bpe->token(id);
  }
  throw Error("token id " + std::to_string(id) + " has no token (vocabulary size " + std::to_string(vocab_size()) + ")",
              impl_->path);
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->flags.size()); }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < static_cast<int64_t>(impl_->flags.size()) && (impl_->flags[id] & Impl::kSpecial);
}

const std::vector<tok::AddedToken>& Tokenizer::added_tokens() const { return impl_->added.tokens(); }
const std::string& Tokenizer::path() const { return impl_->path; }

const std::string& Tokenizer::token_bytes(int32_t id) const {
  static const std::string none;
  if (id < 0 || id >= static_cast<int64_t>(impl_->flags.size())) return none;
  return impl_->bytes[id];
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special) : tok_(tok), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tok_.is_special(id)) return "";
  pending_ += first_ ? tok_.first_token_bytes(id) : tok_.token_bytes(id);
  first_ = false;
  std::string out;
  const size_t used = tok::utf8_decode_lossy(pending_, out, /*final=*/false);
  pending_.erase(0, used);
  return lead(std::move(out));
}

// The decoder drops one space at the start of the whole text (SentencePiece-style "▁Hello" -> "Hello").
std::string StreamDecoder::lead(std::string out) {
  if (started_ || out.empty()) return out;
  started_ = true;
  if (tok_.decode_strips_leading_space() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  tok::utf8_decode_lossy(pending_, out, /*final=*/true);
  pending_.clear();
  out = lead(std::move(out));
  started_ = false;
  first_ = true;
  return out;
}

}  // namespace wick
