// The tokenizer as llama.cpp's GGUF converter writes it for a GPT-2-style byte-level BPE (the Qwen
// tokenizers), read from a Hugging Face model folder: tokenizer.json (vocab, merges, added tokens),
// tokenizer_config.json (special tokens, add_*_token, chat_template; chat_template.jinja as a fallback)
// and config.json (*_token_id for the special tokens tokenizer_config.json does not name).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_writer.h"

namespace wick::io {

// llama.cpp's token types (gguf-py TokenType).
enum class GgufTokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct GgufVocab {
  std::vector<std::string> tokens;  // vocab_size entries: the tokenizer.json strings, "[PAD<i>]" for holes
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;  // "left right"
  // Special token ids in the converter's order (tokenizer_config.json first, then config.json), as
  // (kind, id) with kind one of bos, eos, unk, sep, pad, cls, mask.
  std::vector<std::pair<std::string, int64_t>> special_ids;
  std::vector<std::pair<std::string, bool>> add_special;  // add_bos_token, ... as written in tokenizer_config.json
  std::string chat_template;                              // "" when none
};

// vocab_size: the model's embedding rows (config.json), which may exceed the tokenizer's ids.
GgufVocab read_gguf_vocab(const std::string& model_dir, int64_t vocab_size);

// Adds the tokenizer.* keys in the converter's order: model ("gpt2"), pre ("qwen2"), tokens, token_type,
// merges, the special token ids, add_*_token and chat_template.
void add_gguf_vocab(GgufWriter& w, const GgufVocab& v);

}  // namespace wick::io
