// Byte-level BPE model: a vocabulary of byte-level token strings and a ranked merge list. A pre-token's raw
// bytes start as one symbol per byte; the adjacent pair with the lowest merge rank (leftmost on ties) is
// merged until no pair has a merge, exactly as HF tokenizers' BPE does. A priority queue over a linked list
// of symbols keeps long words O(n log n); results are cached per word.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wick::tok {

struct StringHash {  // lets the maps be probed with a string_view, no temporary std::string
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class Bpe {
 public:
  // vocab: byte-level token -> id; merges in rank order (rank = index). where names the file for errors.
  // Every byte's symbol must be in vocab (wick does not implement unk_token / byte_fallback).
  Bpe(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
      const std::string& where);

  // Appends the ids of one pre-token (raw UTF-8 bytes, not yet byte-level mapped). Thread-safe.
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

  const TokenMap& vocab() const { return vocab_; }
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  // "" for an id with no token
  const std::string& token(int32_t id) const;
  size_t num_merges() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank, new_id;
  };
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
  const Merge* find_merge(int32_t a, int32_t b) const {
    auto it = merges_.find(key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }
  void merge_word(std::string_view bytes, std::vector<int32_t>& out) const;

  TokenMap vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_id_[256];
  bool ignore_merges_;

  // Word cache: bounded, shared by threads.
  static constexpr size_t kCacheCapacity = 100000, kCacheMaxWord = 256;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace wick::tok
