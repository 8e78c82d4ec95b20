// CPU matmul: op(a) [M, K] @ op(b) [K, N] per batch through cblas_sgemm. bf16 operands are widened to
// f32 scratch; a bf16 c is computed in f32 scratch and rounded once at the end. The matrix-view matmul
// hands its row strides to sgemm as lda / ldb / ldc (f32) and widens bf16 views into packed scratch, so
// sgemm sees the same values and sizes as the tensor matmul on copied-out blocks (the same bits).
#include <cblas.h>

#include <vector>

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

namespace {

// The first element of an f32 view.
const float* f32_base(const MatrixView& v) { return v.tensor->data<float>() + v.offset; }

// The view's elements widened to packed f32 [rows, cols].
std::vector<float> widen(const MatrixView& v) {
  std::vector<float> out(static_cast<size_t>(v.rows * v.cols));
  const uint16_t* src = v.tensor->data_u16() + v.offset;
  for (int64_t r = 0; r < v.rows; r++)
    for (int64_t j = 0; j < v.cols; j++) out[r * v.cols + j] = bf16_to_f32(src[r * v.ld + j]);
  return out;
}

}  // namespace

void matmul(const MatrixView& a, const MatrixView& b, const MatrixView& c, bool trans_a, bool trans_b, float alpha,
            float beta, const Tensor* bias) {
  const int64_t M = c.rows, N = c.cols, K = trans_a ? a.rows : a.cols;
  if (M == 0 || N == 0) return;
  // Inputs: f32 in place with their strides, bf16 widened to packed scratch.
  std::vector<float> a_wide, b_wide;
  const float* pa = nullptr;
  const float* pb = nullptr;
  int64_t lda = a.ld, ldb = b.ld;
  if (a.tensor->dtype() == DType::F32) pa = f32_base(a);
  else a_wide = widen(a), pa = a_wide.data(), lda = a.cols;
  if (b.tensor->dtype() == DType::F32) pb = f32_base(b);
  else b_wide = widen(b), pb = b_wide.data(), ldb = b.cols;
  // Output: an f32 c in place; a bf16 c through packed f32 scratch [M, N] (read in only when beta != 0).
  const bool c_f32 = c.tensor->dtype() == DType::F32;
  std::vector<float> c_wide;
  float* pc = nullptr;
  int64_t ldc = c.ld;
  if (c_f32) {
    pc = c.tensor->data<float>() + c.offset;
  } else {
    c_wide = beta != 0.0f ? widen(c) : std::vector<float>(static_cast<size_t>(M * N));
    pc = c_wide.data(), ldc = N;
  }
  if (K == 0) {  // no products: c = beta * c (BLAS rejects lda = 0)
    for (int64_t r = 0; r < M; r++)
      for (int64_t j = 0; j < N; j++) pc[r * ldc + j] = beta == 0.0f ? 0.0f : beta * pc[r * ldc + j];
  } else {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, pa,
                static_cast<blasint>(lda), pb, static_cast<blasint>(ldb), beta, pc, static_cast<blasint>(ldc));
  }
  if (bias) {  // c [M, N] += bias [N]
    const Tensor bf = bias->dtype() == DType::F32 ? *bias : bias->to(DType::F32);
    const float* pbias = bf.data<float>();
#pragma omp parallel for if (M * N > kParallelMin)
    for (int64_t r = 0; r < M; r++) {
      float* row = pc + r * ldc;
      for (int64_t j = 0; j < N; j++) row[j] += pbias[j];
    }
  }
  if (!c_f32) {  // round once into c's view
    uint16_t* dst = c.tensor->data_u16() + c.offset;
    for (int64_t r = 0; r < M; r++)
      for (int64_t j = 0; j < N; j++) dst[r * c.ld + j] = f32_to_bf16(pc[r * N + j]);
  }
}

// d = c, then the view matmul on d: the definition of matmul_into's numerics.
void matmul_into(const MatrixView& a, const MatrixView& b, const MatrixView& c, const MatrixView& d, bool trans_a,
                 bool trans_b, float alpha, float beta) {
  if (beta != 0.0f) cpu::copy_matrix(c, d, 1.0f);
  cpu::matmul(a, b, d, trans_a, trans_b, alpha, beta, nullptr);
}

}  // namespace wick::cpu
