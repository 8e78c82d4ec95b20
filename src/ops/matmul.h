// Matrix products. CPU: OpenBLAS sgemm (f32; bf16 inputs are widened). CUDA: one cuBLASLt wrapper,
// f32 or bf16 inputs, f32 accumulation, output f32 or bf16.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "ops/matrix_view.h"

namespace wick {

// c = alpha * op(a) @ op(b) + beta * c (+ bias broadcast over rows, when given), on matrix views.
// op(a) [M, K] (a's view is [K, M] when trans_a), op(b) [K, N] (b's view [N, K] when trans_b), c's view
// [M, N]; bias [N] (a contiguous tensor) only with beta == 0 or 1. Dtypes and numerics as the tensor
// matmul below (a and b both f32 or both bf16; c f32 or bf16; bias c's dtype; on the CPU the same sgemm
// on the same values, so results equal the tensor matmul's on copied-out blocks bit for bit). Only the
// elements inside c's view are written. Rules (wick::Error otherwise): one device; ld >= cols;
// every view inside its tensor (offset + (rows - 1) * ld + cols <= numel); c shares no element with a or b
// (views of one buffer with the same row stride may interleave, e.g. c the columns next to a's).
void matmul(const MatrixView& a, const MatrixView& b, const MatrixView& c, bool trans_a, bool trans_b,
            float alpha, float beta, const Tensor* bias = nullptr);

// d = alpha * op(a) @ op(b) + beta * c on matrix views, where c is only read and the result goes to d
// (cuBLASLt's C != D): a GEMM that adds to an accumulator kept somewhere else, e.g. the folded adapter
// backward's dx = dx_base + du A with dx_base a column block of a wider buffer and dx a tensor of its own,
// without copying dx_base first. c and d are [M, N] of one dtype (f32 or bf16; their row strides may differ);
// d shares no element with a, b or c (c may overlap a or b: it is only read); beta == 0 does not read c. The
// same numerics as the view matmul on d after copying c into it (the CPU does exactly that); no bias.
void matmul_into(const MatrixView& a, const MatrixView& b, const MatrixView& c, const MatrixView& d, bool trans_a,
                 bool trans_b, float alpha, float beta);

// c = alpha * op(a) @ op(b) + beta * c (+ bias broadcast over rows, when given)
// a [..., M, K] (or [..., K, M] when trans_a), b [..., K, N] (or [..., N, K] when trans_b), c [..., M, N].
// Batch: a and b rank 3 with equal leading dim (strided-batched), or b rank 2 and a of any rank >= 2
// (leading dims of a and c are flattened into M). bias [N] only with beta == 0 or 1.
void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a = false, bool trans_b = false,
            float alpha = 1.0f, float beta = 0.0f, const Tensor* bias = nullptr);

// The GEMM algorithm tuning (CUDA, ops/cuda/cublaslt.h: a recurring shape of >= 2^30 multiply-adds timed once
// with each algorithm that gives the heuristic's bits) runs only for products issued on a thread inside a
// MatmulTuningScope. A training step opens one (LossAndGrads): it repeats one set of shapes for thousands of
// steps. Generation and serving do not: their row counts change from call to call, so every new count would be
// tuned, and a tuning call synchronises the stream. Scopes nest; WICK_GEMM_TUNE=0 turns tuning off everywhere.
class MatmulTuningScope {
 public:
  MatmulTuningScope();
  ~MatmulTuningScope();
  MatmulTuningScope(const MatmulTuningScope&) = delete;
  MatmulTuningScope& operator=(const MatmulTuningScope&) = delete;

 private:
  bool before_;
};
bool matmul_tuning_allowed();  // on this thread
// How many GEMM shapes this process has tuned so far (0 without CUDA).
int64_t matmul_tuned_shapes();
// Shapes tuned, plus the calls (in tuning scopes) that brought a shape still to be tuned closer to its tuning: a
// piece of work that leaves this unchanged would tune nothing if run again, so it may be captured as a CUDA graph
// (where nothing is tuned) without keeping an untuned choice. 0 without CUDA.
int64_t matmul_tuning_progress();

// Linear layer, weights as Hugging Face stores them [out, in].
// x [N, in], w [out, in], b [out] or null -> y [N, out] (=)
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);
// dy [N, out] -> dx [N, in] (= ; skipped when dx is null), dw [out, in] (+= ; skipped when null),
// db [out] (+= ; skipped when null)
void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor* dx, Tensor* dw, Tensor* db);

}  // namespace wick
