// Token choice for a server's batch (serve/scheduler.cpp): sample_tokens (ops/sampling.h) with each row's
// history mask taken from a pool of per-sequence rows, and the two scatters that keep such a pool and apply
// OpenAI's frequency and presence penalties. A sequence owns one row of the pool [S, V] for its lifetime; a
// step samples some sequences, in whatever order the forward put them, so the rows are named by index instead
// of being the logits' own rows: no [R, V] gather or scatter of masks per step.
//
// The CPU and CUDA twins are declared here, not in ops/cpu/cpu_ops.h and ops/cuda/cuda_ops.h, so that adding
// them rebuilt only the files that use them.
#pragma once
#include "core/tensor.h"
#include "ops/sampling.h"

namespace wick {

// sample_tokens with seen_rows [R] i32: row r's history is row seen_rows[r] of seen_pool [S, V] i32 (-1: no
// history, as seen null is for sample_tokens). Rows must not share a pool row (each marks its token in it).
// seen_pool may be null when every entry is -1. Otherwise exactly sample_tokens: the same token, codes and
// draw counting, and the chosen id marked in the row's history.
void sample_tokens_pooled(const Tensor& logits, Tensor* seen_pool, const Tensor& seen_rows, Tensor& params, Tensor& ids);

// seen_pool [S, V] i32, at [n, 2] i32 (pool row, token id) -> seen_pool[row, id] = 1: a prompt into its history.
void mark_tokens(Tensor& seen_pool, const Tensor& at);

// logits [R, V] f32, at [n, 2] i32 (row, token id; each pair at most once), amount [n] f32 ->
// logits[row, id] = logits[row, id] - amount (one f32 subtraction, as the host's `logit -= amount`).
void subtract_at(Tensor& logits, const Tensor& at, const Tensor& amount);

namespace cpu {
void sample_tokens_pooled(const Tensor& logits, Tensor* seen_pool, const Tensor& seen_rows, Tensor& params, Tensor& ids);
void mark_tokens(Tensor& seen_pool, const Tensor& at);
void subtract_at(Tensor& logits, const Tensor& at, const Tensor& amount);
}  // namespace cpu
namespace cuda_ops {
void sample_tokens_pooled(const Tensor& logits, Tensor* seen_pool, const Tensor& seen_rows, Tensor& params, Tensor& ids);
void mark_tokens(Tensor& seen_pool, const Tensor& at);
void subtract_at(Tensor& logits, const Tensor& at, const Tensor& amount);
}  // namespace cuda_ops

}  // namespace wick
