// RMSNorm exactly as Qwen2RMSNorm (formats.md §2.4): statistics in f32, normalised x cast to the
// activation dtype, THEN multiplied by the weight (a second rounding in bf16). LayerNorm as torch's.
#pragma once
#include "core/tensor.h"

namespace wick {

// x [N, C], w [C] -> y [N, C] (=), rstd [N] f32 (=)
void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd);
// dy [N, C], x, w, rstd -> dx [N, C] (=), dw [C] (+= ; skipped when null)
void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx, Tensor* dw);

// x [N, C], w [C], b [C] -> y [N, C] (=), mean [N] f32 (=), rstd [N] f32 (=)
void layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, Tensor& mean,
                        Tensor& rstd);
// -> dx [N, C] (=), dw [C] (+=, skipped when null), db [C] (+=, skipped when null)
void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                         Tensor& dx, Tensor* dw, Tensor* db);

}  // namespace wick
