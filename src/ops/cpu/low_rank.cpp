// CPU twin of low_rank_product (ops/low_rank.h): per row of x, u = x A^T in f32 (r dot products over in),
// then y = scale u B^T (out dot products over r), written or added; bf16 operands are widened, a bf16 y is
// rounded once at the end.
#include <vector>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

void low_rank_product(const Tensor& x, const Tensor& A, const Tensor& B, float scale, Tensor& y, bool accumulate) {
  const bool f32 = x.dtype() == DType::F32;
  const Tensor X = f32 ? x : x.to(DType::F32);
  const Tensor AA = f32 ? A : A.to(DType::F32);
  const Tensor BB = f32 ? B : B.to(DType::F32);
  Tensor Y = f32 ? y : (accumulate ? y.to(DType::F32) : Tensor::empty(y.shape(), DType::F32));
  const int64_t M = x.dim(0), in = x.dim(1), r = A.dim(0), out = B.dim(0);
  const float* px = X.data<float>();
  const float* pa = AA.data<float>();
  const float* pb = BB.data<float>();
  float* py = Y.data<float>();
#pragma omp parallel for if (M * (in + out) * r > kParallelMin)
  for (int64_t m = 0; m < M; m++) {
    std::vector<float> u(static_cast<size_t>(r));
    for (int64_t k = 0; k < r; k++) u[k] = dot(px + m * in, pa + k * in, in);
    float* row = py + m * out;
    for (int64_t o = 0; o < out; o++) {
      const float v = scale * dot(u.data(), pb + o * r, r);
      row[o] = accumulate ? row[o] + v : v;
    }
  }
  if (!f32) cast_into(Y, y);
}

}  // namespace wick::cpu
