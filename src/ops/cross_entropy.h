// Cross-entropy over logits, f32 statistics. Labels are NOT shifted here (the model shifts them).
#pragma once
#include "core/tensor.h"

namespace wick {

constexpr int32_t kIgnoreIndex = -100;

// logits [N, V] (f32 or bf16), targets [N] i32 (kIgnoreIndex = not counted; otherwise in [0, V))
// -> losses [N] f32 (=; 0 where ignored), lse [N] f32 (= log-sum-exp per row, for backward)
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse);
// dlogits [N, V] (=) = (softmax(logits) - onehot(target)) * grad_scale for counted rows, 0 for ignored.
// grad_scale is 1/(number of counted targets in the whole, possibly accumulated, batch) for a mean loss.
// dlogits may alias logits (in place).
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, float grad_scale,
                            Tensor& dlogits);

// Both, over each row at once: losses and lse as cross_entropy_forward, then dlogits as cross_entropy_backward
// from that lse; the same values bit for bit. dlogits has the logits' dtype and may alias them (the training
// loss writes dlogits in place). CUDA reads each row twice in one kernel, the second time mostly from L2, instead
// of two kernels reading it from memory; the CPU runs forward then backward.
void cross_entropy_forward_backward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse,
                                    float grad_scale, Tensor& dlogits);

// CUDA, bf16 logits, V a multiple of 8 (the vocabularies wick trains): read each row from memory once. A row is
// dealt to a cluster of up to 8 blocks (each holds its part in shared memory: ~150 KB of 0.5B's 152k-id row);
// the blocks combine their (max, sum) through distributed shared memory, then write dlogits from shared memory.
// cross_entropy_forward takes the same reduction order, so the two ops still agree bit for bit; the lse differs
// from the default kernels' in the last bits. Opt-in (WICK_CE_SINGLE_READ=1, read once): on an H200 the 0.5B training
// row measured level with the default (docs/benchmarks.md 8m); set_cross_entropy_single_read is the tests' switch.
bool cross_entropy_single_read();
void set_cross_entropy_single_read(bool on);

// Convenience (allocates; not for hot paths): mean loss over counted positions; 0 counted -> NaN.
float cross_entropy_mean(const Tensor& logits, const Tensor& targets);

}  // namespace wick
