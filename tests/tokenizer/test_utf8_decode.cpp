// Decoding invalid UTF-8: one U+FFFD per maximal invalid subpart. Expected strings are Python 3's
// bytes.decode("utf-8", errors="replace") (what HF's decoder matches: Rust's from_utf8_lossy).
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

#define R "\xEF\xBF\xBD"
const std::vector<std::pair<std::string, std::string>> kPythonReplace = {
    {"\xF0\x9F\x98", R},
    {"\xF0\x9F\x98" "A", R "A"},
    {"\xE4\xB8", R},
    {"\xE4\xB8\xE4\xB8\xAD", R "\xE4\xB8\xAD"},
    {"\x80\x80", R R},
    {"\xC0\xAF", R R},
    {"\xED\xA0\x80", R R R},
    {"\xF4\x90\x80\x80", R R R R},
    {"\xE0\x80\xAF", R R R},
    {"\xFF\xFE" "A", R R "A"},
    {"a\xC3", "a" R},
    {"\xF0\x9F\x98\x80\x9F", "\xF0\x9F\x98\x80" R},
    {"\xF1\x80\x80\xE1\x80\xC2" "a\x80", R R R "a" R},
};
#undef R

TEST(Utf8Decode, LossyMatchesPython) {
  for (const auto& [in, want] : kPythonReplace) {
    std::string out;
    EXPECT_EQ(tok::utf8_decode_lossy(in, out, true), in.size());
    EXPECT_EQ(out, want) << "input of " << in.size() << " bytes";
    EXPECT_NE(tok::utf8_invalid_at(in), std::string::npos);
  }
  EXPECT_EQ(tok::utf8_invalid_at("plain \xE4\xB8\xAD \xF0\x9F\x98\x80"), std::string::npos);
}

// Tokens for single bytes carry partial characters; decode and the stream decoder must agree with Python.
TEST(Utf8Decode, TokenizerAndStreamDecoderOnByteTokens) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const tok::ByteLevel& bl = tok::ByteLevel::get();
  for (const auto& [in, want] : kPythonReplace) {
    std::vector<int32_t> ids;
    for (unsigned char b : in) {
      ids.push_back(tok->token_id(bl.symbol(b)));
      ASSERT_GE(ids.back(), 0);
    }
    EXPECT_EQ(tok->decode(ids), want);
    StreamDecoder sd(*tok);
    std::string all;
    for (int32_t id : ids) {
      const std::string chunk = sd.push(id);
      EXPECT_EQ(tok::utf8_invalid_at(chunk), std::string::npos);
      all += chunk;
    }
    all += sd.flush();
    EXPECT_EQ(all, want);
  }
}

// A character held back across tokens comes out whole with the token that completes it.
TEST(Utf8Decode, StreamDecoderHoldsBackPartialCharacters) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const tok::ByteLevel& bl = tok::ByteLevel::get();
  StreamDecoder sd(*tok);
  EXPECT_EQ(sd.push(9707), "Hello");
  EXPECT_EQ(sd.push(tok->token_id(bl.symbol(0xF0))), "");
  EXPECT_EQ(sd.push(tok->token_id(bl.symbol(0x9F))), "");
  EXPECT_EQ(sd.push(tok->token_id(bl.symbol(0x98))), "");
  EXPECT_EQ(sd.push(tok->token_id(bl.symbol(0x80))), "\xF0\x9F\x98\x80");
  EXPECT_EQ(sd.push(tok->token_id(bl.symbol(0xE4))), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(sd.flush(), "");
  StreamDecoder skip(*tok, true);
  EXPECT_EQ(skip.push(151645), "");
  EXPECT_EQ(skip.push(9707), "Hello");
}

}  // namespace
}  // namespace wick::test
