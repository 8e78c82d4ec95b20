// The pooled token choice of a server's batch (ops/sampling_pool.h): validation and dispatch.
#include "ops/sampling_pool.h"

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::Args;
using ops_detail::fail;

namespace {

// at [n, 2] i32 of (row, id) pairs on dev.
void need_pairs(const char* op, const Args& involved, Arg at) {
  ops_detail::need_rank(op, at, 2, "[n, 2] (row, token id)");
  ops_detail::need_dtype(op, at, DType::I32);
  if (at.t->dim(1) != 2) fail(op, involved, std::string(at.name) + " must be [n, 2]: one (row, token id) pair a row");
}

}  // namespace

void sample_tokens_pooled(const Tensor& logits, Tensor* seen_pool, const Tensor& seen_rows, Tensor& params, Tensor& ids) {
  static const char* op = "sample_tokens_pooled";
  const Arg L{"logits", &logits}, S{"seen_pool", seen_pool}, W{"seen_rows", &seen_rows}, P{"params", &params},
      I{"ids", &ids};
  const Device dev = ops_detail::one_device(op, seen_pool ? ops_detail::Args{L, S, W, P, I} : ops_detail::Args{L, W, P, I});
  ops_detail::check_sampling_args(op, L, P, I);
  ops_detail::need_dtype(op, W, DType::I32);
  ops_detail::need_shape(op, {L, W}, W, {logits.dim(0)}, "[R] (a pool row, or -1, for each logits row)");
  if (seen_pool) {
    ops_detail::need_rank(op, S, 2, "[S, V]");
    ops_detail::need_dtype(op, S, DType::I32);
    if (seen_pool->dim(1) != logits.dim(1)) fail(op, {L, S}, "seen_pool must be [S, V] with logits' V");
  }
  // The rows are host data in every caller (uploaded beside params), so the CPU twin checks their range; the
  // device trusts them as it trusts params.
  WICK_OP_DISPATCH(op, dev, sample_tokens_pooled, logits, seen_pool, seen_rows, params, ids);
}

void mark_tokens(Tensor& seen_pool, const Tensor& at) {
  static const char* op = "mark_tokens";
  const Arg S{"seen_pool", &seen_pool}, A{"at", &at};
  const Device dev = ops_detail::one_device(op, {S, A});
  ops_detail::need_rank(op, S, 2, "[S, V]");
  ops_detail::need_dtype(op, S, DType::I32);
  need_pairs(op, {S, A}, A);
  WICK_OP_DISPATCH(op, dev, mark_tokens, seen_pool, at);
}

void subtract_at(Tensor& logits, const Tensor& at, const Tensor& amount) {
  static const char* op = "subtract_at";
  const Arg L{"logits", &logits}, A{"at", &at}, M{"amount", &amount};
  const Device dev = ops_detail::one_device(op, {L, A, M});
  ops_detail::need_rank(op, L, 2, "[R, V]");
  ops_detail::need_dtype(op, L, DType::F32);
  need_pairs(op, {L, A}, A);
  ops_detail::need_dtype(op, M, DType::F32);
  ops_detail::need_shape(op, {A, M}, M, {at.dim(0)}, "[n] (one amount a pair)");
  WICK_OP_DISPATCH(op, dev, subtract_at, logits, at, amount);
}

}  // namespace wick
