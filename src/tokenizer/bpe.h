// BPE model: a vocabulary and a ranked merge list. In byte-level mode (Qwen, Llama 3) a word's raw bytes start
// as one symbol per byte (the GPT-2 byte alphabet); otherwise (SentencePiece-style Llama 2, Mistral, Gemma)
// as one symbol per character, a character missing from the vocabulary becoming its UTF-8 bytes' <0xNN>
// tokens (byte_fallback) or the unk token (consecutive ones fused when fuse_unk), as HF tokenizers does.
// Then the adjacent pair with the lowest merge rank (leftmost on ties) is merged until no pair has a merge.
// A priority queue over a linked list of symbols keeps long words O(n log n); results are cached per word.
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

struct BpeOptions {
  bool byte_level = true;
  bool ignore_merges = false;
  bool byte_fallback = false;
  std::string unk_token;  // "" = none (an unknown character is dropped, as HF does)
  bool fuse_unk = false;
};

class Bpe {
 public:
  // vocab: token -> id; merges in rank order (rank = index). where names the file for errors. In byte-level
  // mode every byte's symbol must be in vocab.
  Bpe(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& opt,
      const std::string& where);

  // Appends the ids of one pre-token (raw UTF-8 text, not yet byte-level mapped). Thread-safe.
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
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids, std::vector<int32_t>& lens) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  TokenMap vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_id_[256];    // byte-level mode: the symbol of each byte; else the <0xNN> token (-1 if none)
  BpeOptions opt_;
  int32_t unk_id_ = -1;

  // Word cache: bounded, shared by threads.
  static constexpr size_t kCacheCapacity = 100000, kCacheMaxWord = 256;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace wick::tok
