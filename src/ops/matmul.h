// Matrix products. CPU: OpenBLAS sgemm (f32; bf16 inputs are widened). CUDA: one cuBLASLt wrapper,
// f32 or bf16 inputs, f32 accumulation, output f32 or bf16.
#pragma once
#include "core/tensor.h"

namespace wick {

// c = alpha * op(a) @ op(b) + beta * c (+ bias broadcast over rows, when given)
// a [..., M, K] (or [..., K, M] when trans_a), b [..., K, N] (or [..., N, K] when trans_b), c [..., M, N].
// Batch: a and b rank 3 with equal leading dim (strided-batched), or b rank 2 and a of any rank >= 2
// (leading dims of a and c are flattened into M). bias [N] only with beta == 0 or 1.
void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a = false, bool trans_b = false,
            float alpha = 1.0f, float beta = 0.0f, const Tensor* bias = nullptr);

// Linear layer, weights as Hugging Face stores them [out, in].
// x [N, in], w [out, in], b [out] or null -> y [N, out] (=)
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y);
// dy [N, out] -> dx [N, in] (= ; skipped when dx is null), dw [out, in] (+= ; skipped when null),
// db [out] (+= ; skipped when null)
void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor* dx, Tensor* dw, Tensor* db);

}  // namespace wick
