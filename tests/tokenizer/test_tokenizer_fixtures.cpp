// Encodings and decodings by Hugging Face tokenizers (tests/fixtures/tokenizer*/tokenizer_cases.jsonl and
// any $WICK_EXTRA_FIXTURES folder holding that file) must be reproduced exactly.
#include <atomic>
#include <thread>

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

namespace wick::test {
namespace {

// encode is const and shares a word cache: threads encoding at once get the same ids as HF.
TEST(TokenizerFixtures, ConcurrentEncodeMatches) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const Tokenizer fresh = Tokenizer::from_file(tok->path());  // an empty cache, so threads race to fill it
  std::vector<std::pair<std::string, std::vector<int32_t>>> cases;
  for (const auto& dir : fixture_dirs("tokenizer", "tokenizer_cases.jsonl"))
    for (const auto& [line, c] : read_jsonl(dir + "/tokenizer_cases.jsonl"))
      cases.emplace_back(c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>());
  ASSERT_FALSE(cases.empty());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < cases.size(); i++) {
        const auto& [text, ids] = cases[(i * 7 + static_cast<size_t>(t) * 101) % cases.size()];
        if (fresh.encode(text) != ids) mismatches++;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace wick::test
