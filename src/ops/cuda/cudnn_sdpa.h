// cuDNN's fused flash attention (forward and backward) as a second implementation of wick's bf16 attention,
// beside the tensor-core FlashAttention-2 kernels (flash_attention_*.cuh); which one runs is
// cuda_attention() (ops/attention.h: WICK_ATTENTION=auto|flash|cudnn, or set_cuda_attention()).
// cuDNN applies to bf16, head dim 64 or 128, plain causal (no packed segments, no KV-cache offset, no window).
// cuDNN's backward is built in its deterministic form (dQ without atomics), so a step stays bit-for-bit
// repeatable (resume, checkpointing) as with wick's kernels, unless that form's workspace is over
// cuda_attention_deterministic_cap() (long sequences): then its non-deterministic form, with a warning.
// A graph cuDNN refuses for a shape is remembered and that shape runs wick's kernels (warned once).
#pragma once
#include "ops/cuda/attention.cuh"

namespace wick::cuda_ops {

// True when it ran; false when the caller must use wick's kernels.
bool cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const attn::Dims& a, Tensor& out,
                             Tensor* lse);
bool cudnn_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, const attn::Dims& a, Tensor& dq, Tensor& dk,
                              Tensor& dv);

}  // namespace wick::cuda_ops
