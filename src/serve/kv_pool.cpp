#include "serve/kv_pool.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace wick::serve {

KvPool::KvPool(const CausalLM& m, int64_t tokens, int64_t block_tokens) : bs_(block_tokens) {
  const ModelConfig& c = m.config();
  if (block_tokens < 1) throw Error("KV cache blocks must hold at least 1 token, got " + std::to_string(block_tokens));
  if (tokens < 1) throw Error("must be at least 1 (tokens of KV cache)", "--kv-cache-tokens");
  nb_ = (tokens + bs_ - 1) / bs_;
  if (nb_ > INT32_MAX / bs_) throw Error("is too large (" + std::to_string(tokens) + " tokens)", "--kv-cache-tokens");
  const Shape shape = {nb_, bs_, c.num_kv_heads, c.head_dim};
  const int64_t per_tensor = nb_ * bs_ * c.kv_dim() * static_cast<int64_t>(dtype_size(m.dtype()));
  bytes_ = 2 * c.num_layers * per_tensor;
  try {
    for (int64_t l = 0; l < c.num_layers; l++) {
      k_.push_back(Tensor::empty(shape, m.dtype(), m.device()));
      v_.push_back(Tensor::empty(shape, m.dtype(), m.device()));
    }
  } catch (const std::exception& e) {
    char gib[32];
    std::snprintf(gib, sizeof gib, "%.2f", static_cast<double>(bytes_) / (1 << 30));
    throw Error(std::string("cannot allocate a KV cache of ") + std::to_string(nb_ * bs_) + " tokens (" + gib +
                    " GiB on " + m.device().str() + "): " + e.what(),
                "--kv-cache-tokens", "give fewer tokens");
  }
  free_.reserve(static_cast<size_t>(nb_));
  for (int64_t b = nb_ - 1; b >= 0; b--) free_.push_back(static_cast<int32_t>(b));  // block 0 is taken first
}

bool KvPool::grow(SeqBlocks& seq, int64_t tokens) {
  const int64_t have = static_cast<int64_t>(seq.table.size()), need = blocks_for(tokens) - have;
  if (need <= 0) return true;
  if (need > free_blocks()) return false;
  for (int64_t i = 0; i < need; i++) {
    seq.table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvPool::release(SeqBlocks& seq) {
  for (auto it = seq.table.rbegin(); it != seq.table.rend(); ++it) free_.push_back(*it);
  seq.table.clear();
  seq.length = 0;
}

int64_t default_kv_cache_tokens(const ModelConfig& c, int64_t max_batch) {
  return std::max<int64_t>(1, max_batch) * std::min<int64_t>(c.max_position_embeddings, 4096);
}

}  // namespace wick::serve
