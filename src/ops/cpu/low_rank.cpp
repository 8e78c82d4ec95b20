// CPU twin of low_rank_product (ops/low_rank.h): two sgemms (the CPU matmul twin), u = x A^T [M, r] in f32,
// then y = scale u B^T (+ y with accumulate). bf16 operands are widened; a bf16 y is computed in f32 and
// rounded once at the end.
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

void low_rank_product(const Tensor& x, const Tensor& A, const Tensor& B, float scale, Tensor& y, bool accumulate) {
  const bool f32 = x.dtype() == DType::F32;
  const Tensor X = f32 ? x : x.to(DType::F32);
  const Tensor AA = f32 ? A : A.to(DType::F32);
  const Tensor BB = f32 ? B : B.to(DType::F32);
  Tensor Y = f32 ? y : (accumulate ? y.to(DType::F32) : Tensor::empty(y.shape(), DType::F32));
  Tensor u = Tensor::empty({x.dim(0), A.dim(0)}, DType::F32);
  cpu::matmul(X, AA, u, false, true, 1.0f, 0.0f, nullptr);                   // u = x A^T        [M, r]
  cpu::matmul(u, BB, Y, false, true, scale, accumulate ? 1.0f : 0.0f, nullptr);  // y (=|+=) s u B^T [M, out]
  if (!f32) cast_into(Y, y);
}

}  // namespace wick::cpu
