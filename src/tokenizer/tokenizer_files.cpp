#include "tokenizer/tokenizer_files.h"

#include <cstdlib>

#ifndef WICK_SOURCE_DIR_LIB
#define WICK_SOURCE_DIR_LIB "."
#endif

namespace wick {

std::string default_tokenizer_dir() {
  if (const char* d = std::getenv("WICK_TOKENIZER_DIR"); d && *d) return d;
  return std::string(WICK_SOURCE_DIR_LIB) + "/third_party/npm/qwen3-tokenizer";
}

}  // namespace wick
