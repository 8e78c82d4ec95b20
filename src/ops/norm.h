// RMSNorm exactly as Qwen2RMSNorm (formats.md §2.4): statistics in f32, normalised x cast to the
// activation dtype, THEN multiplied by the weight (a second rounding in bf16); or as Gemma3RMSNorm, whose
// weights are offsets from 1: (x * rstd) * (1 + w) all in f32, rounded once. LayerNorm as torch's.
#pragma once
#include "core/tensor.h"
#include "ops/matrix_view.h"

namespace wick {

// How RMSNorm applies its weight w.
enum class RmsWeight {
  Scale,      // y = round(x * rstd) * w: Qwen2RMSNorm, LlamaRMSNorm
  OneOffset,  // y = (x * rstd) * (1 + w), f32, one rounding: Gemma3RMSNorm (w stored as an offset from 1)
};

// x [N, C], w [C] -> y [N, C] (=), rstd [N] f32 (=)
void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd,
                      RmsWeight kind = RmsWeight::Scale);
// The residual add and the norm after it in one pass: h = a + b [N, C] (=, rounded to the dtype; may alias a
// or b), then y, rstd = rms_norm_forward(h): bit for bit the two calls, one read of h fewer and one launch.
void add_rms_norm_forward(const Tensor& a, const Tensor& b, const Tensor& w, float eps, Tensor& h, Tensor& y,
                          Tensor& rstd, RmsWeight kind = RmsWeight::Scale);
// The two above with y a block of a wider buffer (ops/matrix_view.h): y's view is [N, C] with its own row
// stride, e.g. the first C columns of a LoRA-folded [N, C + R] GEMM operand (model/linear.h), and no element
// outside it is written. Same values as the tensor forms. y must not overlap x (a, b, h).
void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, const MatrixView& y, Tensor& rstd,
                      RmsWeight kind = RmsWeight::Scale);
void add_rms_norm_forward(const Tensor& a, const Tensor& b, const Tensor& w, float eps, Tensor& h,
                          const MatrixView& y, Tensor& rstd, RmsWeight kind = RmsWeight::Scale);
// dy [N, C], x, w, rstd -> dx [N, C] (=, or += when accumulate), dw [C] (+= ; skipped when null). dw is
// d loss / d w either way. accumulate adds the norm's gradient, rounded to the dtype first, to dx: what a
// separate add of the two gradients (a residual's and the norm's) computes, in one pass.
void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx, Tensor* dw,
                       RmsWeight kind = RmsWeight::Scale, bool accumulate = false);

// x [N, C], w [C], b [C] -> y [N, C] (=), mean [N] f32 (=), rstd [N] f32 (=)
void layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, Tensor& mean,
                        Tensor& rstd);
// -> dx [N, C] (=), dw [C] (+=, skipped when null), db [C] (+=, skipped when null)
void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                         Tensor& dx, Tensor* dw, Tensor* db);

}  // namespace wick
