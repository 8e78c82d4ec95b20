// Cases and checks of the matrix-view matmul (ops/matmul.h MatrixView): each operand is a block of a wider
// buffer (a column block at some first column, optionally below some leading rows, so the view starts at a
// non-zero offset with ld > cols), filled with random values (never zeros), c's buffer included: every
// element of c's buffer outside its view is a guard that must keep its value.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ops/matmul.h"

namespace wick::test {

// One operand's place in its buffer: stored [rows, cols] at (row0, col0) of a [row0 + rows + rows_after,
// col0 + cols + cols_after] buffer. All zero: the whole buffer (MatrixView::whole); row0 = rows_after = 0:
// a column block (MatrixView::columns).
struct ViewPlace {
  int64_t row0 = 0, col0 = 0, rows_after = 0, cols_after = 0;
};

struct StridedMatmulCase {
  int64_t M = 1, N = 1, K = 1;
  bool ta = false, tb = false;
  float alpha = 1.0f, beta = 0.0f;
  bool bias = false;
  DType ab = DType::F32, c = DType::F32;  // a and b, c (bias has c's dtype)
  ViewPlace pa, pb, pc;
  // matmul_into: the result goes to d, a block of a buffer of its own at place pd (c's dtype); no bias.
  bool into = false;
  ViewPlace pd;
  std::string name() const;  // "M7_N13_K5_ta_a0.5_b1_bias_bf16_cf32_A1.2.0.3_B..._C...", a gtest parameter name
};

// The hand-written cases (the 0.5B shapes scaled down: x|u K-concatenation, q|k|v column blocks) and
// `random` random ones from a fixed seed.
std::vector<StridedMatmulCase> strided_matmul_cases(int random);
// matmul_into's cases: the folded backward's dx = dx_base + du A (c a column block, d whole) scaled down, and
// `random` random ones from a fixed seed of their own.
std::vector<StridedMatmulCase> matmul_into_cases(int random);

// The case's buffers on the host (random values; seed from the case's index) and its views into them.
struct StridedMatmulOperands {
  Tensor a, b, c, bias, d;  // buffers (bias [N] or undefined; d only for matmul_into's cases)
  MatrixView va, vb, vc, vd;
};
StridedMatmulOperands make_strided_operands(const StridedMatmulCase& s, uint64_t seed);
// The operands' buffers copied to dev (views re-pointed at the copies).
StridedMatmulOperands copy_operands(const StridedMatmulOperands& o, Device dev);

// A host copy of t (its own storage).
Tensor host_copy(const Tensor& t);
// A view's elements copied out into a contiguous [rows, cols] host tensor of its dtype.
Tensor copy_block(const MatrixView& v);
// Number of elements of c's buffer outside its view whose bits differ between two host buffers.
int64_t guard_changes(const Tensor& before, const Tensor& after, const MatrixView& view);

}  // namespace wick::test
