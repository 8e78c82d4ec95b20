// wick's tokenizer: reads a Hugging Face tokenizer.json and reproduces HF tokenizers' encode
// (add_special_tokens=false) and decode exactly, for the BPE tokenizers of Qwen2/2.5/3 and Llama 3 (byte-level,
// a Split regex) and of Llama 2, Mistral and Gemma 3 (SentencePiece-style: "▁" for spaces, byte fallback).
// Pipeline (docs formats.md §3.1): added tokens matched on the raw text -> the normalizer (NFC, Prepend,
// Replace) on the remaining text -> the pre-tokenizer (Split, ByteLevel, Metaspace) -> BPE; decode runs the
// file's decoder steps (ByteLevel, or Replace / ByteFallback / Fuse / Strip / Metaspace). Anything else that
// would change the result (other models, normalizers, pre-tokenizers, decoders, dropout, ...) is refused
// with an error naming the file and field.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"

namespace wick {

class Tokenizer {
 public:
  static Tokenizer from_file(const std::string& tokenizer_json);
  static Tokenizer from_model_dir(const std::string& dir);  // dir/tokenizer.json

  // Text (valid UTF-8; anything else is a wick::Error) -> ids. No BOS/EOS are added; added tokens such as
  // "<|im_start|>" in the text become their ids. Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;
  // ids -> text. skip_special drops the added tokens marked special. Ids with no token are skipped, as HF does.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  int32_t token_id(std::string_view token) const;  // -1 if none; token in vocabulary form ("Ġhello")
  std::string id_to_token(int32_t id) const;       // wick::Error if the id has no token
  // Highest id + 1 (vocabulary plus added tokens): 151669 for Qwen3, 151665 for Qwen2.5. A model's
  // embedding may have more rows; those ids are never produced.
  int64_t vocab_size() const;
  bool is_special(int32_t id) const;  // an added token with "special": true
  const std::vector<tok::AddedToken>& added_tokens() const;
  const std::string& path() const;  // the tokenizer.json it came from

  // The raw bytes token id stands for ("" for unknown ids); what StreamDecoder concatenates.
  const std::string& token_bytes(int32_t id) const;
  // decode() drops one space at the start of the text (SentencePiece-style decoders).
  bool decode_strips_leading_space() const;
  // token_bytes of the first token decoded (a Metaspace decoder treats it apart).
  std::string first_token_bytes(int32_t id) const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // immutable after loading; copies share it
};

// Incremental detokenizer for generation: push ids one at a time and print what comes back. The
// concatenation of every push() and the final flush() equals Tokenizer::decode of all the ids, and each
// returned piece is valid UTF-8 (a character split across tokens is held back until it is complete).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false);
  std::string push(int32_t id);
  std::string flush();  // emits what is held back, an unfinished sequence as U+FFFD; then starts afresh

 private:
  std::string lead(std::string out);
  Tokenizer tok_;  // a handle sharing the loaded tokenizer
  bool skip_special_;
  std::string pending_;  // bytes of an unfinished UTF-8 sequence
  bool started_ = false;  // some text was emitted (the leading-space rule applies before that)
  bool first_ = true;     // the next pushed token is the first one decoded
};

}  // namespace wick
