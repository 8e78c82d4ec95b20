// Added tokens (tokenizer.json "added_tokens"): strings matched atomically on the raw text before
// normalization and BPE, special or not. Matching is leftmost-longest, as HF's aho-corasick matcher does.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wick::tok {

struct AddedToken {
  int32_t id;
  std::string content;
  bool special;  // dropped by decode(skip_special = true)
};

class AddedTokens {
 public:
  AddedTokens() = default;
  explicit AddedTokens(std::vector<AddedToken> tokens);

  // Cuts text into runs: calls on_text(segment) for plain text (never empty) and on_token(id) for each
  // added token found, in order.
  template <typename OnText, typename OnToken>
  void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
    size_t prev = 0;
    for (size_t i = 0; i < text.size();) {
      const int k = match_at(text, i);
      if (k < 0) {
        i++;
        continue;
      }
      if (i > prev) on_text(text.substr(prev, i - prev));
      on_token(tokens_[k].id);
      i += tokens_[k].content.size();
      prev = i;
    }
    if (prev < text.size()) on_text(text.substr(prev));
  }

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find_id(int32_t id) const;  // nullptr when id is not an added token
  const AddedToken* find_content(std::string_view content) const;

 private:
  int match_at(std::string_view text, size_t i) const;  // index of the longest token starting at i, or -1

  std::vector<AddedToken> tokens_;
  std::array<std::vector<int>, 256> by_first_byte_;  // token indices, longest first
};

}  // namespace wick::tok
