// tokenizer.json reading on small hand-made files: BPE merge order (hand-derived expectations), both
// merge formats, ignore_merges, the Split regex, and clear errors for everything wick does not implement.
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char kQwenRegex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// A tokenizer.json in the Qwen layout over a toy vocabulary: the 256 byte symbols (id = byte value) plus the
// tokens the merges create, ids from 256 up in merge order.
json toy(const std::vector<std::pair<std::string, std::string>>& merges, bool merges_as_strings = false) {
  const tok::ByteLevel& bl = tok::ByteLevel::get();
  json vocab = json::object(), mj = json::array();
  for (int b = 0; b < 256; b++) vocab[bl.symbol(static_cast<uint8_t>(b))] = b;
  int next = 256;
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    mj.push_back(merges_as_strings ? json(a + " " + b) : json::array({a, b}));
  }
  const json bytelevel = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", json::array({{{"id", 1000}, {"content", "<|end|>"}, {"single_word", false}, {"lstrip", false},
                                         {"rstrip", false}, {"normalized", false}, {"special", true}}})},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             json::array({{{"type", "Split"}, {"pattern", {{"Regex", kQwenRegex}}}, {"behavior", "Isolated"}, {"invert", false}},
                          bytelevel})}}},
          {"post_processor", bytelevel},
          {"decoder", bytelevel},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
            {"vocab", vocab}, {"merges", mj}}}};
}

std::string save(const json& j, const std::string& name) {
  const fs::path dir = fs::path(WICK_BINARY_DIR) / "test_scratch" / "tokenizer_json";
  fs::create_directories(dir);
  const fs::path p = dir / (name + ".json");
  std::ofstream(p) << j.dump();
  return p.string();
}

Tokenizer load(const json& j, const std::string& name) { return Tokenizer::from_file(save(j, name)); }

std::vector<std::string> tokens(const Tokenizer& t, const std::string& text) {
  std::vector<std::string> out;
  for (int32_t id : t.encode(text)) out.push_back(t.id_to_token(id));
  return out;
}

using V = std::vector<std::string>;

TEST(TokenizerJson, LowestRankMergesFirstLeftmostOnTies) {
  const Tokenizer aa = load(toy({{"a", "a"}}), "aa");
  EXPECT_EQ(tokens(aa, "aaa"), (V{"aa", "a"}));
  EXPECT_EQ(tokens(aa, "aaaaa"), (V{"aa", "aa", "a"}));
  // Rank decides, not position: "b c" (rank 0) beats "a b" (rank 1) in "abc".
  EXPECT_EQ(tokens(load(toy({{"b", "c"}, {"a", "b"}}), "bc_ab"), "abc"), (V{"a", "bc"}));
  EXPECT_EQ(tokens(load(toy({{"a", "b"}, {"b", "c"}}), "ab_bc"), "abc"), (V{"ab", "c"}));
  // Merged symbols merge again: a b -> ab, ab c -> abc; then "abc abc" keeps the space apart (regex).
  const Tokenizer chain = load(toy({{"a", "b"}, {"ab", "c"}, {"\xC4\xA0", "abc"}}), "chain");
  EXPECT_EQ(tokens(chain, "abc abc"), (V{"abc", "\xC4\xA0" "abc"}));
}

TEST(TokenizerJson, MergesAsStringsOrPairsAgree) {
  const std::vector<std::pair<std::string, std::string>> m = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}};
  const Tokenizer a = load(toy(m, false), "pairs"), b = load(toy(m, true), "strings");
  for (const std::string s : {"hello", "hellohello hel", "ohell"}) EXPECT_EQ(a.encode(s), b.encode(s)) << s;
  EXPECT_EQ(tokens(a, "hello"), (V{"hello"}));
  EXPECT_EQ(tokens(a, "ohell"), (V{"o", "hell"}));  // (o, hell) has no merge; (hell, o) would
}

TEST(TokenizerJson, IgnoreMergesTakesWholeWords) {
  json j = toy({{"a", "b"}});
  j["model"]["vocab"]["xyz"] = 500;  // no merges lead to it
  EXPECT_EQ(tokens(load(j, "no_ignore"), "xyz"), (V{"x", "y", "z"}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(tokens(load(j, "ignore"), "xyz"), (V{"xyz"}));
}

TEST(TokenizerJson, AddedTokensAndDecoding) {
  const Tokenizer t = load(toy({{"a", "b"}}), "added");
  EXPECT_EQ(t.encode("ab<|end|>ab"), (std::vector<int32_t>{256, 1000, 256}));
  EXPECT_EQ(t.decode({256, 1000, 256}), "ab<|end|>ab");
  EXPECT_EQ(t.decode({256, 1000, 256}, true), "abab");
  EXPECT_EQ(t.vocab_size(), 1001);
  EXPECT_TRUE(t.is_special(1000));
  EXPECT_THROW(t.id_to_token(700), Error);  // a gap between vocabulary and added tokens
}

// Oniguruma's \s is Unicode White_Space: U+0085 is whitespace, U+180E (Mongolian vowel separator) is not,
// though PCRE2's own \s takes it.
TEST(TokenizerJson, SplitRegexUsesOnigurumaWhitespace) {
  tok::SplitRegex re("\\s+|\\S+", "test");
  std::vector<std::string_view> pieces;
  re.split("a\xE1\xA0\x8E" "b\xC2\x85" "c", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"a\xE1\xA0\x8E" "b", "\xC2\x85", "c"}));
  // Text between matches is a piece of its own ("Isolated").
  tok::SplitRegex digits("\\d", "test");
  pieces.clear();
  digits.split("ab12c", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"ab", "1", "2", "c"}));
  EXPECT_THROW(tok::SplitRegex("\\w+", "test"), Error);
  EXPECT_THROW(tok::SplitRegex("(unclosed", "test"), Error);
}

// Each unsupported setting is refused with the file and the field in the message.
TEST(TokenizerJson, RefusesWhatItDoesNotImplement) {
  struct Case {
    std::string name, field;
    std::function<void(json&)> edit;
  };
  const std::vector<Case> cases = {
      {"unigram", "model.type", [](json& j) { j["model"]["type"] = "Unigram"; }},
      {"unk", "model.unk_token", [](json& j) { j["model"]["unk_token"] = "<not in vocab>"; }},
      {"dropout", "model.dropout", [](json& j) { j["model"]["dropout"] = 0.1; }},
      {"suffix", "model.end_of_word_suffix", [](json& j) { j["model"]["end_of_word_suffix"] = "</w>"; }},
      {"nfkc", "normalizer.type", [](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }},
      {"regex_replace", "normalizer.pattern", [](json& j) { j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", " "}}}, {"content", "x"}}; }},
      {"whitespace", "pre_tokenizer.type", [](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }},
      {"late_metaspace", "pre_tokenizer.pretokenizers[1]",
       [](json& j) { j["pre_tokenizer"]["pretokenizers"][1] = {{"type", "Metaspace"}}; }},
      {"bad_behavior", "pre_tokenizer.pretokenizers[0].behavior",
       [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Bogus"; }},
      {"glob_pattern", "pre_tokenizer.pretokenizers[0].pattern",
       [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Glob", " "}}; }},
      {"prefix_space", "pre_tokenizer.pretokenizers[1].add_prefix_space",
       [](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; }},
      {"decoder", "decoder.type", [](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }},
      {"null_decoder", "decoder", [](json& j) { j["decoder"] = nullptr; }},
      {"lstrip", "added_tokens[0].lstrip", [](json& j) { j["added_tokens"][0]["lstrip"] = true; }},
      {"bad_merge", "model.merges[0]", [](json& j) { j["model"]["merges"][0] = "a b c"; }},
      {"unknown_merge", "model.merges[1]", [](json& j) { j["model"]["merges"].push_back(json::array({"q", "zz"})); }},
      {"missing_byte", "model.vocab", [](json& j) { j["model"]["vocab"].erase("A"); }},
      {"no_model", "missing field \"model\"", [](json& j) { j.erase("model"); }},
      // fuzz_tokenizer_json: one id of 1,222,222,250 among a few hundred tokens asked for a 39 GB id table.
      {"huge_vocab_id", "model.vocab", [](json& j) { j["model"]["vocab"]["ab"] = 1222222250; }},
      {"huge_added_id", "added_tokens[0].id", [](json& j) { j["added_tokens"][0]["id"] = 2000000000; }},
  };
  for (const Case& c : cases) {
    json j = toy({{"a", "b"}});
    c.edit(j);
    const std::string path = save(j, c.name);
    try {
      Tokenizer::from_file(path);
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.field), std::string::npos) << c.name << ": " << msg;
    }
  }
  EXPECT_THROW(Tokenizer::from_file("/nonexistent/tokenizer.json"), Error);
  EXPECT_THROW(Tokenizer::from_model_dir("/nonexistent"), Error);
  std::ofstream(fs::path(WICK_BINARY_DIR) / "test_scratch" / "tokenizer_json" / "truncated.json") << "{\"model\": {";
  EXPECT_THROW(Tokenizer::from_file((fs::path(WICK_BINARY_DIR) / "test_scratch" / "tokenizer_json" / "truncated.json").string()), Error);
}

}  // namespace
}  // namespace wick::test
