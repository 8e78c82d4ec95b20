// TextStream (infer/text_stream.h): the streaming and stop rules Generator and wick serve share. Over the
// Qwen tokenizer and the texts of tests/fixtures/tokenizer (code, prose, emoji, CJK, whitespace runs), fed
// one id at a time with stop strings drawn at random from each text:
// - the pieces and the flush together are exactly the final text,
// - the final text is the whole decode cut before the first occurrence of the stop string,
// - no piece splits a UTF-8 character, and no piece shows text the stop string later removes.
#include <random>

#include "infer/text_stream.h"
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; k++)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

struct Streamed {
  std::vector<std::string> pieces;
  std::string flushed, text;
  bool stopped = false;
};

Streamed stream_ids(const Tokenizer* tok, const GenerateOptions& opt, const std::vector<int32_t>& ids) {
  TextStream ts(tok, opt);
  Streamed r;
  for (int32_t id : ids) {
    const TextStream::Step st = ts.push(id);
    r.pieces.push_back(st.piece);
    if (st.stop_string) {
      r.stopped = true;
      break;
    }
  }
  if (!r.stopped) r.flushed = ts.flush();
  r.text = ts.text();
  return r;
}

std::vector<nlohmann::json> text_cases() {
  std::vector<nlohmann::json> out;
  for (const auto& [line, c] : read_jsonl(std::string(WICK_SOURCE_DIR) + "/tests/fixtures/tokenizer/tokenizer_cases.jsonl"))
    if (c.contains("text") && !c.at("text").get<std::string>().empty()) out.push_back(c);
  return out;
}

TEST(TextStream, StopStringsCutTheTextAndNothingBeyondIsEverShown) {
  const Tokenizer* tok = qwen_tokenizer();
  ASSERT_TRUE(tok);
  std::mt19937_64 rng(20261202);
  size_t checked = 0, stopped = 0;
  for (const nlohmann::json& c : text_cases()) {
    const std::vector<int32_t> ids = tok->encode(c.at("text").get<std::string>());
    const std::string whole = tok->decode(ids, /*skip_special=*/true);
    if (!valid_utf8(whole) || whole.size() < 2) continue;
    for (int trial = 0; trial < 4; trial++) {
      // A stop string from the text (whole characters), or one that never occurs.
      GenerateOptions opt;
      std::string stop;
      if (trial == 3) {
        stop = "\x01never\x02";
      } else {
        size_t a = rng() % whole.size(), len = 1 + rng() % 6;
        while (a > 0 && (static_cast<unsigned char>(whole[a]) >> 6) == 2) a--;
        size_t b = std::min(whole.size(), a + len);
        while (b < whole.size() && (static_cast<unsigned char>(whole[b]) >> 6) == 2) b++;
        stop = whole.substr(a, b - a);
      }
      opt.stop_strings = {stop};
      const Streamed s = stream_ids(tok, opt, ids);
      const size_t at = whole.find(stop);
      const std::string want = at == std::string::npos ? whole : whole.substr(0, at);
      std::string joined;
      for (const std::string& p : s.pieces) {
        EXPECT_TRUE(valid_utf8(p)) << "a piece splits a character: " << c.at("text");
        joined += p;
      }
      joined += s.flushed;
      ASSERT_EQ(s.text, want) << "stop " << nlohmann::json(stop) << " in " << c.at("text");
      ASSERT_EQ(joined, want) << "stop " << nlohmann::json(stop) << " in " << c.at("text");
      EXPECT_EQ(s.stopped, at != std::string::npos);
      checked++;
      stopped += s.stopped;
    }
  }
  EXPECT_GT(checked, 100u);
  EXPECT_GT(stopped, 50u);
}

TEST(TextStream, AnEosIdReleasesTheHeldBackTail) {
  const Tokenizer* tok = qwen_tokenizer();
  ASSERT_TRUE(tok);
  const std::vector<int32_t> ids = tok->encode("The answer is 42. END");
  const std::string whole = tok->decode(ids, true);
  GenerateOptions opt;
  opt.stop_strings = {"42. ENDX"};  // the text ends in a proper prefix of it: " 42. END" is held back
  const int32_t eos = ids.back();
  opt.eos_ids = {eos};
  TextStream ts(tok, opt);
  std::string shown;
  TextStream::Step st;
  for (int32_t id : ids) {
    st = ts.push(id);
    shown += st.piece;
  }
  EXPECT_TRUE(st.eos);
  EXPECT_FALSE(st.stop_string);
  EXPECT_EQ(shown, whole);  // the eos token released what was held back
  opt.ignore_eos = true;
  TextStream ignoring(tok, opt);
  std::string held;
  for (int32_t id : ids) {
    st = ignoring.push(id);
    held += st.piece;
  }
  EXPECT_FALSE(st.eos);
  EXPECT_EQ(held, whole.substr(0, whole.find("42.")));
  EXPECT_EQ(held + ignoring.flush(), whole);
}

TEST(TextStream, WithoutATokenizerOnlyEosIdsStop) {
  GenerateOptions opt;
  opt.eos_ids = {7, 11};
  opt.stop_strings = {"x"};
  TextStream ts(nullptr, opt);
  EXPECT_FALSE(ts.push(3).eos);
  const TextStream::Step st = ts.push(11);
  EXPECT_TRUE(st.eos);
  EXPECT_EQ(st.piece, "");
  EXPECT_EQ(ts.flush(), "");
}

}  // namespace
}  // namespace wick::test
