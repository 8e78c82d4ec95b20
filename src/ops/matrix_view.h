// A row-major matrix inside a tensor's elements, for ops that read or write a block of a wider buffer without
// copying it out: matmul (ops/matmul.h), the RMSNorm's output (ops/norm.h), copy_matrix (ops/elementwise.h).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace wick {

// Element (r, c), r < rows, c < cols, is the tensor's element offset + r * ld + c (ld, the leading dimension,
// is the row stride in elements; ld >= cols). Uses: a column block of an [N, C + R] activation (a LoRA-folded
// K-concatenation [x | u]: model/linear.h), or the q / k / v column blocks of one [N, Q + 2 KV] projection
// output. The view borrows the tensor (which must outlive it) and uses only its elements, whatever its rank;
// the matrix is written through it when it is an op's output.
struct MatrixView {
  const Tensor* tensor = nullptr;
  int64_t offset = 0, rows = 0, cols = 0, ld = 0;

  // A rank-2 tensor [rows, cols] as a whole (ld = cols).
  static MatrixView whole(const Tensor& t);
  // Columns [first, first + count) of a rank-2 tensor [rows, C] (offset = first, ld = C).
  static MatrixView columns(const Tensor& t, int64_t first, int64_t count);
  // Whether the rows follow one another with no gap (ld == cols): the elements are one contiguous run.
  bool packed() const { return ld == cols; }
};

}  // namespace wick
