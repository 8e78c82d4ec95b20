#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace wick::tok {

AddedTokens::AddedTokens(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (int k = 0; k < static_cast<int>(tokens_.size()); k++)
    if (!tokens_[k].content.empty()) by_first_byte_[static_cast<unsigned char>(tokens_[k].content[0])].push_back(k);
  for (auto& v : by_first_byte_)
    std::stable_sort(v.begin(), v.end(),
                     [&](int a, int b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
}

int AddedTokens::match_at(std::string_view text, size_t i) const {
  const auto& cands = by_first_byte_[static_cast<unsigned char>(text[i])];
  for (int k : cands)
    if (text.compare(i, tokens_[k].content.size(), tokens_[k].content) == 0) return k;
  return -1;
}

const AddedToken* AddedTokens::find_id(int32_t id) const {
  for (const auto& t : tokens_)
    if (t.id == id) return &t;
  return nullptr;
}

const AddedToken* AddedTokens::find_content(std::string_view content) const {
  for (const auto& t : tokens_)
    if (t.content == content) return &t;
  return nullptr;
}

}  // namespace wick::tok
