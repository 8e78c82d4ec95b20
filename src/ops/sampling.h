// Token choice on the device: what a decode step needs so that its logits never leave the GPU when the
// choice is greedy (infer/sampler.h holds the full Hugging Face sampling semantics on the host; this is its
// greedy rule, bit for bit).
#pragma once
#include "core/tensor.h"

namespace wick {

// logits [R, V] f32 -> ids [R] i32 (=): per row, the first index of the maximum (torch.argmax) of the scores
// after the repetition penalty on the ids marked in seen [R, V] i32 (non-zero = in the history): s < 0 ?
// s * penalty : s / penalty, in f32, as HF's RepetitionPenaltyLogitsProcessor (and infer/sampler.cpp's
// greedy_token). penalty 1 = off; seen may then be null. With seen given, the chosen id is marked in it, so a
// decode loop replayed as a CUDA graph keeps its own history. A row with a NaN or +inf logit gets
// -(1 + the index of the first one) instead of a token, for the caller to report.
void greedy_tokens(const Tensor& logits, Tensor* seen, float penalty, Tensor& ids);

}  // namespace wick
