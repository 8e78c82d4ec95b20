// The golden vectors of docs formats.md §3.5 (verified there against two independent implementations), and
// vocabulary queries on the real Qwen tokenizer.
#include "core/error.h"
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

TEST(TokenizerGolden, FormatsMdVectors) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const std::vector<std::pair<std::string, std::vector<int32_t>>> cases = {
      {"Hello world", {9707, 1879}},
      {" Hello world", {21927, 1879}},
      {"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n",
       {151644, 8948, 198, 2610, 525, 1207, 16948, 11, 3465, 553, 54364, 14817, 13, 1446, 525, 264, 10950, 17847, 13,
        151645, 198}},
      {"<|im_start|>user\n", {151644, 872, 198}},
      {"<|im_start|>assistant\n", {151644, 77091, 198}},
      {"12345 don't   x\n\n  y", {16, 17, 18, 19, 20, 1513, 944, 256, 856, 271, 220, 379}},
      {"\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81", {108386, 3837, 99489, 6313}},  // 你好，世界！
      {"cafe\xCC\x81", {924, 58858}},  // NFC -> café
      {"na\xC3\xAFve caf\xC3\xA9", {3376, 37572, 586, 51950}},
      {"a\r\nb", {64, 319, 65}},
      {"\xF0\x9F\x98\x80 ok", {141334, 5394}},  // 😀 ok
      {"HELLO'S We'LL", {50712, 1593, 13272, 1205, 6, 4086}},
      {"3.14159", {18, 13, 16, 19, 16, 20, 24}},
      {"trailing  ", {376, 14277, 256}},
      {"  leading", {220, 6388}},
      {"x<|endoftext|>y", {87, 151643, 88}},
      {"<think>\nhi\n</think>", {151667, 198, 6023, 198, 151668}},
  };
  for (const auto& [text, ids] : cases) {
    EXPECT_EQ(tok->encode(text), ids) << nlohmann::json(text).dump();
    if (text != "cafe\xCC\x81") EXPECT_EQ(tok->decode(ids), text) << nlohmann::json(text).dump();
  }
  EXPECT_EQ(tok->decode({924, 58858}), "caf\xC3\xA9");
  EXPECT_TRUE(tok->encode("").empty());
}

TEST(TokenizerGolden, VocabularyQueries) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  // formats.md §3.1/3.2: 151,643 vocabulary entries then added tokens up to </think> 151668.
  EXPECT_EQ(tok->vocab_size(), 151669);
  EXPECT_EQ(tok->id_to_token(9707), "Hello");
  EXPECT_EQ(tok->id_to_token(1879), "\xC4\xA0world");  // Ġworld
  EXPECT_EQ(tok->token_id("\xC4\xA0world"), 1879);
  EXPECT_EQ(tok->token_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok->token_id("<think>"), 151667);
  EXPECT_EQ(tok->token_id("no such token"), -1);
  EXPECT_EQ(tok->id_to_token(151643), "<|endoftext|>");
  EXPECT_THROW(tok->id_to_token(151669), Error);
  EXPECT_THROW(tok->id_to_token(-1), Error);
  // special: the 14 ids 151643-151656; <tool_call> and <think> are added but not special.
  for (int32_t id = 151643; id <= 151656; id++) EXPECT_TRUE(tok->is_special(id)) << id;
  for (int32_t id : {151657, 151665, 151667, 151668, 9707}) EXPECT_FALSE(tok->is_special(id)) << id;
  EXPECT_EQ(tok->added_tokens().size(), 26u);
}

TEST(TokenizerGolden, SkipSpecialDropsOnlySpecialTokens) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const std::vector<int32_t> ids = {151644, 77091, 198, 151667, 6023, 151668, 151645, 151643};
  EXPECT_EQ(tok->decode(ids), "<|im_start|>assistant\n<think>hi</think><|im_end|><|endoftext|>");
  EXPECT_EQ(tok->decode(ids, true), "assistant\n<think>hi</think>");
  // Ids without a token (a model's padding rows) are skipped, as HF does.
  EXPECT_EQ(tok->decode({9707, 151700, -5, 1879}), "Hello world");
}

TEST(TokenizerGolden, RejectsInvalidUtf8Input) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  try {
    tok->encode("ok \xC3(");
    ADD_FAILURE() << "invalid UTF-8 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("offset 3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace wick::test
