// Token choice on the device: validation and dispatch.
#include "ops/sampling.h"

#include <cmath>
#include <string>

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

void greedy_tokens(const Tensor& logits, Tensor* seen, float penalty, Tensor& ids) {
  static const char* op = "greedy_tokens";
  const Arg L{"logits", &logits}, S{"seen", seen}, I{"ids", &ids};
  const Device dev = ops_detail::one_device(op, seen ? ops_detail::Args{L, S, I} : ops_detail::Args{L, I});
  ops_detail::need_rank(op, L, 2, "[R, V]");
  ops_detail::need_dtype(op, L, DType::F32);
  ops_detail::need_dtype(op, I, DType::I32);
  ops_detail::need_shape(op, {L, I}, I, {logits.dim(0)}, "[R]");
  if (!(penalty > 0.0f) || !std::isfinite(penalty))
    fail(op, {L}, "the repetition penalty must be a positive finite number (1 = off), got " + std::to_string(penalty));
  if (seen) {
    ops_detail::need_dtype(op, S, DType::I32);
    ops_detail::need_shape(op, {L, S}, S, logits.shape(), "logits' shape [R, V]");
  } else if (penalty != 1.0f) {
    fail(op, {L}, "a repetition penalty needs the history: pass seen [R, V]");
  }
  if (logits.dim(1) <= 0 || logits.dim(1) > 0x7fffffffLL)
    fail(op, {L}, "the vocabulary V must be in [1, 2^31 - 1]");
  WICK_OP_DISPATCH(op, dev, greedy_tokens, logits, seen, penalty, ids);
}

}  // namespace wick
