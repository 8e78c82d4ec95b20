// CPU matmul: op(a) [M, K] @ op(b) [K, N] per batch through cblas_sgemm. bf16 operands are widened to
// f32 scratch; a bf16 c is computed in f32 scratch and rounded once at the end.
#include <cblas.h>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b, float alpha, float beta,
            const Tensor* bias) {
  const Tensor A = a.dtype() == DType::F32 ? a : a.to(DType::F32);
  const Tensor B = b.dtype() == DType::F32 ? b : b.to(DType::F32);
  const bool c_f32 = c.dtype() == DType::F32;
  Tensor C = c_f32 ? c : (beta != 0.0f ? c.to(DType::F32) : Tensor::empty(c.shape(), DType::F32));

  const bool batched = b.ndim() == 3;
  const int64_t batch = batched ? b.dim(0) : 1;
  const int64_t K = trans_b ? b.dim(-1) : b.dim(-2);
  const int64_t N = trans_b ? b.dim(-2) : b.dim(-1);
  // Unbatched: a's leading dims fold into M (trans_a only with a rank 2 a, checked by the caller).
  int64_t lead = 1;
  for (int i = 0; i + 1 < a.ndim(); i++) lead *= a.dim(i);
  const int64_t M = batched ? (trans_a ? a.dim(2) : a.dim(1)) : (trans_a ? a.dim(1) : lead);
  const int64_t lda = a.dim(-1), ldb = b.dim(-1);
  float* pc = C.data<float>();
  if (M > 0 && N > 0) {
    if (K == 0) {  // no products: c = beta * c (BLAS rejects lda = 0)
      const int64_t n = batch * M * N;
      for (int64_t i = 0; i < n; i++) pc[i] = beta == 0.0f ? 0.0f : beta * pc[i];
    } else {
      const float* pa = A.data<float>();
      const float* pb = B.data<float>();
      for (int64_t i = 0; i < batch; i++) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha,
                    pa + i * M * K, static_cast<blasint>(lda), pb + i * K * N, static_cast<blasint>(ldb), beta,
                    pc + i * M * N, static_cast<blasint>(N));
      }
    }
  }
  if (bias) {  // c [rows, N] += bias [N]
    const Tensor bf = bias->dtype() == DType::F32 ? *bias : bias->to(DType::F32);
    const float* pbias = bf.data<float>();
    const int64_t rows = batch * M;
#pragma omp parallel for if (rows * N > kParallelMin)
    for (int64_t r = 0; r < rows; r++) {
      float* row = pc + r * N;
      for (int64_t j = 0; j < N; j++) row[j] += pbias[j];
    }
  }
  if (!c_f32) cast_into(C, c);
}

}  // namespace wick::cpu
