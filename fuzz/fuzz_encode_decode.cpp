// The Qwen tokenizer on arbitrary bytes: encode fails on no input but with wick::Error, and for valid UTF-8
// NFC(decode(encode(s))) == NFC(s) (Qwen's normalizer is NFC, applied between added tokens, so the
// round trip equals s up to canonical equivalence); decoding arbitrary ids of the vocabulary never fails. The tokenizer: $WICK_FUZZ_TOKENIZER or the fetched Qwen tokenizer.json.
#include <utf8proc.h>

#include <cstring>
#include <memory>

#include "fuzz/fuzz_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_files.h"

static const wick::Tokenizer& tok() {
  static const wick::Tokenizer t = [] {
    const char* p = std::getenv("WICK_FUZZ_TOKENIZER");
    return wick::Tokenizer::from_file(p ? p : wick::default_tokenizer_dir() + "/tokenizer.json");
  }();
  return t;
}

static bool valid_utf8(const std::string& s) {
  utf8proc_int32_t cp;
  for (size_t i = 0; i < s.size();) {
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i), s.size() - i, &cp);
    if (n <= 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

static std::string nfc(const std::string& s) {
  utf8proc_uint8_t* out = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  if (!out) return s;
  std::string r(reinterpret_cast<char*>(out));
  std::free(out);
  return r;
}

// Loaded before the first input: the 7 MB tokenizer.json takes seconds under the sanitizers, which
// libFuzzer would count against the first input's timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tok();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  const wick::Tokenizer& t = tok();
  wick::fuzz::expect_clean([&] {
    const std::vector<int32_t> ids = t.encode(s);
    const std::string back = t.decode(ids);
    if (valid_utf8(s) && s.find('\0') == std::string::npos && nfc(back) != nfc(s)) {
      std::fprintf(stderr, "fuzz: NFC(decode(encode(s))) != NFC(s) for %zu bytes\n", s.size());
      std::abort();
    }
  });
  // The bytes as token ids (any id of the vocabulary, special ones included).
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 3 < size; i += 4) {
    uint32_t v;
    std::memcpy(&v, data + i, 4);
    ids.push_back(static_cast<int32_t>(v % static_cast<uint32_t>(t.vocab_size())));
  }
  wick::fuzz::expect_clean([&] {
    (void)t.decode(ids);
    (void)t.decode(ids, true);
  });
  return 0;
}
