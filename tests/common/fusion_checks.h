// Fused ops against the unfused ops they replace, on one device, bit for bit:
//  - glu_backward's recomputed forward output (ops/swiglu.h): glu_forward's, written in place over dout or into
//    its own tensor, with dgate and dup unchanged by asking for it;
//  - rms_norm_backward accumulating into dx (ops/norm.h): the plain backward, then add;
//  - rope_forward_qk / rope_backward_qk (ops/rope.h): rope_forward / rope_backward on q and on k;
//  - add_rms_norm_forward (ops/norm.h): add, then rms_norm_forward;
//  - cross_entropy_forward_backward (ops/cross_entropy.h): cross_entropy_forward, then cross_entropy_backward;
//  - rope on misaligned tensors (CUDA's one-pair kernel) and on aligned ones (its 4-pair kernel);
//  - the RMSNorms' view form (ops/norm.h: y a block of a wider buffer): the tensor form's values, nothing
//    outside the view written;
//  - copy_matrix (ops/elementwise.h) against the host's rounding of scale * src, nothing outside dst written.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace wick::test {

// Both activations, odd and vector-friendly sizes, the given dtype (f32; bf16 on CUDA); EXPECT_EQ per element.
void check_glu_backward_recomputes_forward(Device dev, DType dt);
// Both weight kinds, several widths; dx starts random.
void check_rms_norm_backward_accumulates(Device dev, DType dt);
// GQA head counts, a Llama 3 rescaled and a plain theta, positions past 30000; forward and backward.
void check_rope_qk_equals_two_ropes(Device dev, DType dt);
// Both weight kinds, odd and vector-friendly widths, h in place over a and in its own tensor.
void check_add_rms_norm_equals_add_then_norm(Device dev, DType dt);
// Odd and vector-friendly vocabularies (or the given ones), ignored rows, in place over the logits and into their
// own tensor.
void check_cross_entropy_fused_equals_separate(Device dev, DType dt, const std::vector<int64_t>& vocabs = {151, 1000, 4096});
// Head dims 8, 64, 128; forward and backward.
void check_rope_misaligned_equals_aligned(Device dev, DType dt);
// rms_norm_forward and add_rms_norm_forward into column blocks (aligned and not) of wider buffers.
void check_norm_view_equals_tensor(Device dev, DType dt);
// Every f32 / bf16 pair of src and dst dtypes, column blocks below leading rows, scales 1 and 0.37.
void check_copy_matrix(Device dev);
// copy_matrices: many copies in one call, the bits of copy_matrix one at a time; the overlap refusals.
void check_copy_matrices(Device dev);

}  // namespace wick::test
