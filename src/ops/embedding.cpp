// Embedding lookup: validation and dispatch. Id ranges are checked by the backend (the CPU twin throws
// wick::Error; CUDA asserts on the device), since they live in device memory. Dtypes: ids i32 or i64;
// table and out share the activation dtype, as do dout and dtable.
#include "ops/embedding.h"

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  static const char* op = "embedding_forward";
  const Arg I{"ids", &ids}, W{"table", &table}, O{"out", &out};
  const Device dev = ops_detail::one_device(op, {I, W, O});
  ops_detail::need_index(op, I, true);
  ops_detail::need_rank(op, I, 1, "[N]");
  ops_detail::need_rank(op, W, 2, "[V, C]");
  ops_detail::need_act(op, W);
  ops_detail::need_same_dtype(op, O, W);
  ops_detail::need_shape(op, {I, W, O}, O, {ids.dim(0), table.dim(1)}, "[N, C]");
  WICK_OP_DISPATCH(op, dev, embedding_forward, ids, table, out);
}

void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  static const char* op = "embedding_backward";
  const Arg I{"ids", &ids}, DO{"dout", &dout}, DW{"dtable", &dtable};
  const Device dev = ops_detail::one_device(op, {I, DO, DW});
  ops_detail::need_index(op, I, true);
  ops_detail::need_rank(op, I, 1, "[N]");
  ops_detail::need_rank(op, DW, 2, "[V, C]");
  ops_detail::need_act(op, DO);
  ops_detail::need_same_dtype(op, DW, DO);
  ops_detail::need_shape(op, {I, DW, DO}, DO, {ids.dim(0), dtable.dim(1)}, "[N, C]");
  WICK_OP_DISPATCH(op, dev, embedding_backward, ids, dout, dtable);
}

}  // namespace wick
