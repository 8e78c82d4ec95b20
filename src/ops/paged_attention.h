// Attention over a paged (blocked) KV cache, for serving many sequences in one call (vLLM's PagedAttention,
// with varlen queries as FlashAttention's varlen API takes them).
//
// The cache of one layer is a pool of fixed-size blocks: k_pool, v_pool [NB, BS, Hkv, D] (NB blocks of BS
// token rows). A sequence owns some blocks, in any order: its block table maps its logical block j (token
// positions [j BS, (j + 1) BS)) to a physical block of the pool. One call attends the new query rows of S
// sequences: sequence s contributes T_s >= 1 consecutive rows of q (its whole prompt or a piece of it at
// prefill, one row when decoding), whose keys and values paged_kv_write has already put into its blocks.
// Query t of sequence s sits at position kv_len[s] - T_s + t and sees its keys [0, that position] (causal
// within the chunk and over everything cached before it; (position - window, position] with a sliding
// window). GQA: query head h reads kv head h / (H / Hkv). Softmax in f32 with the given scale, out = P.v.
//
// The CPU twin sums in the order of the CPU attention_forward (ops/attention.h), so over the same keys it
// gives the same floats, bit for bit. The CUDA kernel is the CUDA-core attention kernel's scheme
// (ops/cuda/attention.cuh: a block of 8 warps per (row block, kv head, sequence), 32-key tiles staged in
// shared memory, online softmax in f32), with each key's row looked up in the block table: ONE launch for
// every sequence of the batch, prefill and decode alike.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace wick {

// The batch's layout, every tensor i32 on the op's device (the caller uploads them once per step and reuses
// them for every layer).
struct PagedKvBatch {
  Tensor query_start;  // [S + 1]: sequence s's query rows are [query_start[s], query_start[s + 1]) of q; [0] = 0
  Tensor kv_len;       // [S]: sequence s's keys, this call's included (>= its query count)
  Tensor block_table;  // [S, MB]: physical block of sequence s's logical block j (j < ceil(kv_len[s] / BS))
  int64_t max_query_len = 0;  // on the host: the largest T_s (the CUDA grid is planned from it)
  // On the host, optional: the largest kv_len. When given (> 0) and the grid of a batch is too small to fill the
  // GPU (few sequences), CUDA splits the keys of each row into chunks (flash-decoding) and combines them.
  int64_t max_kv_len = 0;
};

// q [N, H, D] -> out [N, H, D] (=); k_pool, v_pool [NB, BS, Hkv, D]. scale > 0 (the model's attention scale);
// window > 0: sliding window (keys of the last `window` positions only), 0: none. q, k_pool, v_pool, out share
// one dtype (f32 on the CPU, f32 or bf16 on CUDA). On the CPU the batch tensors are checked (ranges, lengths);
// on CUDA the kernel reads them as given.
void paged_attention_forward(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const PagedKvBatch& batch,
                             float scale, int64_t window, Tensor& out);

// The new rows' keys and values into their slots: k_rows, v_rows [N, X] (X = Hkv * D, after RoPE) -> row
// slots[i] of k_pool, v_pool viewed as [NB * BS, X] (=), slot = physical block * BS + offset in the block.
// Other rows untouched. It is kv_cache_write (ops/attention.h) over the pool seen as one cache of NB * BS rows,
// so it is one launch on CUDA and a slot outside the pool is a wick::Error on the CPU, a device assert on CUDA.
void paged_kv_write(const Tensor& k_rows, const Tensor& v_rows, const Tensor& slots, Tensor& k_pool, Tensor& v_pool);

}  // namespace wick
