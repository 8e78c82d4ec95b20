// The serving KV cache: one pool of fixed-size blocks per layer for K and V, allocated once when the server
// starts (`wick serve --kv-cache-tokens N`), shared by every running sequence (vLLM's PagedAttention). A
// sequence holds a block table (SeqBlocks): it takes blocks as it grows and gives them all back when it
// finishes, is cancelled, its client leaves or it is preempted, so memory follows the tokens in flight and the
// server never allocates KV memory while serving. ops/paged_attention.h reads and writes the pool.
//
// Block size: kKvBlockTokens = 16 tokens. A sequence wastes less than one block (< 16 token rows, under 3% of
// a 512 + 256-token request), block tables stay short (48 entries for 768 tokens), and the attention kernel's
// 32-key tiles span two whole blocks. Larger blocks waste more per sequence for no gain in the kernel, which
// looks every key's row up anyway; smaller ones lengthen the tables and the host's bookkeeping.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/causal_lm.h"

namespace wick::serve {

constexpr int64_t kKvBlockTokens = 16;

// One sequence's share of the pool.
struct SeqBlocks {
  std::vector<int32_t> table;  // logical block j -> physical block (token positions [j BS, (j + 1) BS))
  int64_t length = 0;          // tokens whose K and V are in the blocks
};

class KvPool {
 public:
  // Blocks for `tokens` tokens (rounded up to whole blocks) of every layer, K and V, in the model's dtype on
  // its device. wick::Error naming --kv-cache-tokens when tokens < 1 or the memory cannot be had.
  KvPool(const CausalLM& m, int64_t tokens, int64_t block_tokens = kKvBlockTokens);
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  int64_t block_tokens() const { return bs_; }
  int64_t blocks() const { return nb_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return nb_ - free_blocks(); }
  int64_t capacity_tokens() const { return nb_ * bs_; }
  int64_t blocks_for(int64_t tokens) const { return (tokens + bs_ - 1) / bs_; }
  int64_t bytes() const { return bytes_; }
  // [NB, BS, Hkv, D] of layer l.
  Tensor& k(size_t layer) { return k_[layer]; }
  Tensor& v(size_t layer) { return v_[layer]; }

  // Makes seq's table cover `tokens` token positions, taking blocks from the free list. All or nothing:
  // false (seq unchanged) when too few blocks are free.
  bool grow(SeqBlocks& seq, int64_t tokens);
  // Every block of seq back to the free list; seq is empty after.
  void release(SeqBlocks& seq);

 private:
  int64_t bs_, nb_, bytes_ = 0;
  std::vector<Tensor> k_, v_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is taken first
};

// --kv-cache-tokens' default: room for max_batch sequences of min(context, 4096) tokens each.
int64_t default_kv_cache_tokens(const ModelConfig& c, int64_t max_batch);

}  // namespace wick::serve
