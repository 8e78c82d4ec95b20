// The heap-based BPE against the textbook definition (repeatedly merge the adjacent pair of lowest rank,
// leftmost first), written here independently and slowly, on random long words over the real Qwen merges.
#include <map>

#include "core/rng.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer_testutil.h"

namespace wick::test {
namespace {

std::vector<std::string> naive_bpe(const std::string& word, const std::map<std::pair<std::string, std::string>, int>& rank) {
  std::vector<std::string> s;
  for (unsigned char b : word) s.push_back(tok::ByteLevel::get().symbol(b));
  while (s.size() > 1) {
    int best = INT32_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < s.size(); i++) {
      auto it = rank.find({s[i], s[i + 1]});
      if (it != rank.end() && it->second < best) best = it->second, at = i;
    }
    if (best == INT32_MAX) break;
    s[at] += s[at + 1];
    s.erase(s.begin() + static_cast<long>(at) + 1);
  }
  return s;
}

TEST(BpeReference, RandomLongWordsMatchTextbookMerging) {
  const Tokenizer* tok = qwen_tokenizer();
  if (!tok) return;
  std::ifstream f(qwen_tokenizer_dir() + "/tokenizer.json");
  const nlohmann::json merges = nlohmann::json::parse(f).at("model").at("merges");
  std::map<std::pair<std::string, std::string>, int> rank;
  for (size_t r = 0; r < merges.size(); r++) {
    const auto& m = merges[r];
    std::pair<std::string, std::string> p;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      p = {s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)};
    } else {
      p = {m[0].get<std::string>(), m[1].get<std::string>()};
    }
    rank.emplace(p, static_cast<int>(r));
  }
  Rng rng(1234);
  // Each word is one pre-token: letters only (\p{L}+), or spaces only.
  const std::vector<std::string> alphabets = {"abcdefghijklmnopqrstuvwxyz", "aeinst", "ab", " "};
  for (int trial = 0; trial < 60; trial++) {
    const std::string& alpha = alphabets[trial % alphabets.size()];
    const size_t len = 1 + rng.below(trial < 40 ? 40 : 1500);
    std::string w;
    for (size_t i = 0; i < len; i++) w.push_back(alpha[rng.below(alpha.size())]);
    std::vector<std::string> got;  // a run of spaces alone is one piece too (\s+(?!\S) up to the end)
    for (int32_t id : tok->encode(w)) got.push_back(tok->id_to_token(id));
    EXPECT_EQ(got, naive_bpe(w, rank)) << w;
  }
}

}  // namespace
}  // namespace wick::test
