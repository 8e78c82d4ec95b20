// tokenizer.json loading (model, merges, vocab, added tokens, normalizer / pre-tokenizer / decoder checks);
// when it loads, a short encode and decode with it.
#include "fuzz/fuzz_util.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wick::fuzz::write_input("tokenizer.json", data, size);
  wick::fuzz::expect_clean([&] {
    const wick::Tokenizer t = wick::Tokenizer::from_file(path);
    const std::vector<int32_t> ids = t.encode("Hello, wick! 123 <|im_end|> héllo");
    (void)t.decode(ids);
  });
  return 0;
}
