// One forward over many independent sequences (continuous batching): each chunk is some new tokens of one
// sequence (its whole prompt, or a piece of it, when it joins; then one token per decode step) with its own
// blocks of the paged KV cache (serve/kv_pool.h) and its own adapter. Rows of all chunks go through every
// projection together: the frozen GEMM once for all rows, then each adapter's low-rank path on its own rows
// (chunks of one adapter should be adjacent: the caller orders them so; each adjacent run of one adapter is one
// group). Attention: paged_kv_write puts every new row's K and V into its block slot, paged_attention_forward
// attends every chunk's queries to its cached keys through its block table (ops/paged_attention.h), one launch
// each for the whole batch. Chunks that start their sequence (nothing cached) and come last in the batch (the
// scheduler orders them so) see only their own rows' keys: they take attention_forward over those rows instead,
// packed with one segment id a prompt (tensor-core kernels on CUDA for prefill; on the CPU the same floats as the
// paged twin), except in sliding-window layers. The step's index data (ids, positions, slots, block tables, lengths,
// last rows) goes to the device in one copy. lm_head runs on each chunk's last row only.
//
// run_device() leaves the logits [chunks, V] f32 on the model's device, where the scheduler samples them
// (ops/sampling_pool.h) and copies back only the token ids; run() copies those rows to the host (tests and
// the host reference). Every group's adapter delta of a projection is one segmented_lora_add (S-LoRA/Punica's
// segmented kernel on CUDA: two launches for all adapters of the step).
#pragma once
#include <memory>
#include <vector>

#include "model/causal_lm.h"
#include "model/forward_workspace.h"
#include "serve/adapter_store.h"
#include "serve/kv_pool.h"

namespace wick::serve {

struct SeqChunk {
  SeqBlocks* kv = nullptr;  // this sequence's blocks: they must already cover kv->length + ids.size() tokens
                            // (KvPool::grow); length grows by ids.size()
  std::vector<int32_t> ids;  // the new tokens (>= 1)
  const ServeAdapter* adapter = nullptr;  // nullptr = base model
};

class BatchForward {
 public:
  BatchForward(CausalLM& m, KvPool& pool);
  // -> logits [chunks, V] f32 on the host: row s after chunk s's last token. The model must carry no
  // attached adapter (adapters come with the chunks). wick::Error when a chunk's blocks do not cover it.
  void run(std::vector<SeqChunk>& chunks, std::vector<float>& logits);
  // The same forward; the logits [chunks, V] f32 stay on the model's device (valid until the next call; the
  // caller may change them in place, e.g. apply penalties).
  Tensor& run_device(std::vector<SeqChunk>& chunks);
  const Tensor& logits() const { return logits_view_; }  // the last run_device's logits
  KvPool& pool() { return pool_; }

 private:
  CausalLM& m_;
  KvPool& pool_;
  ForwardWorkspace ws_;
  Tensor meta_;          // i32 device buffer of the step's index data (see run_device)
  Tensor last_, logits_, logits_view_;  // [cap, C], [cap, V] device buffers for the chunks' last rows
  friend class RowBatchImpl;
};

}  // namespace wick::serve
