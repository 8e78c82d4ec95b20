// Internal: what a loaded tokenizer holds (shared by tokenizer_load.cpp and tokenizer.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace wick {

struct Tokenizer::Impl {
  std::string path;
  tok::AddedTokens added;
  std::unique_ptr<tok::Bpe> bpe;
  tok::Normalizer normalizer;
  std::unique_ptr<tok::PreTokenizer> pre;
  std::unique_ptr<tok::Decoder> decoder;
  // Per id (size vocab_size): the raw bytes the token decodes to alone (streaming; the whole decode for a
  // ByteLevel decoder), the token's text as the decoder sees it, and flags.
  std::vector<std::string> bytes, text;
  enum : uint8_t { kExists = 1, kAdded = 2, kSpecial = 4 };
  std::vector<uint8_t> flags;
};

std::shared_ptr<const Tokenizer::Impl> load_tokenizer_json(const std::string& path);

}  // namespace wick
