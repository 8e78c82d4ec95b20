// Where wick finds the real Qwen tokenizer files fetched at setup time (scripts/fetch_tokenizer.sh):
// $WICK_TOKENIZER_DIR, else <source>/third_party/npm/qwen3-tokenizer.
#pragma once
#include <string>

namespace wick {

std::string default_tokenizer_dir();

}  // namespace wick
