// Encodings and decodings by Hugging Face tokenizers (tests/fixtures/tokenizer*/tokenizer_cases.jsonl and
// any $WICK_EXTRA_FIXTURES folder holding that file) must be reproduced exactly.
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

TEST(TokenizerFixtures, EncodeAndDecodeMatchHF) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const auto dirs = fixture_dirs("tokenizer", "tokenizer_cases.jsonl");
  ASSERT_FALSE(dirs.empty()) << "no tokenizer fixture folder found";
  size_t cases = 0;
  for (const auto& dir : dirs) {
    const std::string file = dir + "/tokenizer_cases.jsonl";
    for (const auto& [line, c] : read_jsonl(file)) {
      cases++;
      const std::string text = c.at("text").get<std::string>();
      const std::vector<int32_t> want = ids_of(c.at("ids"));
      EXPECT_EQ(tok->encode(text), want) << file << ":" << line << " text " << nlohmann::json(text).dump();
      EXPECT_EQ(tok->decode(want), c.at("decoded").get<std::string>()) << file << ":" << line;
    }
  }
  EXPECT_GE(cases, 444u);
}

// Feeding ids one at a time reproduces decode(all), and no chunk is ever invalid UTF-8.
TEST(TokenizerFixtures, StreamDecoderMatchesDecode) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  size_t multi_token_chars = 0;
  for (const auto& dir : fixture_dirs("tokenizer", "tokenizer_cases.jsonl")) {
    for (const auto& [line, c] : read_jsonl(dir + "/tokenizer_cases.jsonl")) {
      const std::vector<int32_t> ids = ids_of(c.at("ids"));
      for (bool skip : {false, true}) {
        StreamDecoder sd(*tok, skip);
        std::string all;
        for (int32_t id : ids) {
          const std::string chunk = sd.push(id);
          EXPECT_TRUE(tok::utf8_invalid_at(chunk) == std::string::npos) << dir << ":" << line << " chunk is not valid UTF-8";
          if (chunk.empty() && !tok->token_bytes(id).empty()) multi_token_chars++;
          all += chunk;
        }
        all += sd.flush();
        EXPECT_EQ(all, tok->decode(ids, skip)) << dir << ":" << line << " skip_special " << skip;
      }
    }
  }
  EXPECT_GT(multi_token_chars, 0u) << "no case split a character across tokens: the hold-back path went untested";
}

}  // namespace
}  // namespace wick::test
