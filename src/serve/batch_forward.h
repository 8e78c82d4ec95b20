// One forward over many independent sequences (continuous batching): each chunk is some new tokens of one
// sequence (its whole prompt when it joins, then one token per decode step) with its own KV cache and its
// own adapter. Rows of all chunks go through every projection together: the frozen GEMM once for all rows,
// then each adapter's low-rank path on its own rows (chunks of one adapter should be adjacent: the caller
// orders them so; each adjacent run of one adapter is one group). Attention runs per chunk over its cache.
//
// Seams for CUDA (not done here): the per-group adapter GEMMs become one segmented/gathered LoRA kernel
// (S-LoRA/Punica), the per-chunk attention one varlen/paged attention kernel, and sampling moves to the device.
#pragma once
#include <memory>
#include <vector>

#include "model/causal_lm.h"
#include "model/forward_workspace.h"
#include "serve/adapter_store.h"

namespace wick::serve {

struct SeqChunk {
  KVCache* cache = nullptr;             // batch 1, this sequence's; grows by ids.size()
  std::vector<int32_t> ids;             // the new tokens (>= 1)
  const ServeAdapter* adapter = nullptr;  // nullptr = base model
};

class BatchForward {
 public:
  explicit BatchForward(CausalLM& m);
  // -> logits [chunks, V] f32 on the host: row s after chunk s's last token. The model must carry no
  // attached adapter (adapters come with the chunks). wick::Error when a chunk does not fit its cache.
  void run(std::vector<SeqChunk>& chunks, std::vector<float>& logits);

 private:
  CausalLM& m_;
  ForwardWorkspace ws_;
  Tensor last_, logits_;  // [cap, C], [cap, V] device buffers for the chunks' last rows
  Tensor f32_x_, f32_y_, f32_u_;  // adapter scratch (f32)
  friend class RowBatchImpl;
};

}  // namespace wick::serve
