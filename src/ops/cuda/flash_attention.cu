// wick glue for the tensor-core flash attention kernels (flash_attention_fwd.cuh, flash_attention_bwd.cuh):
// Tensor + AttentionArgs -> FlashParams, launch on wick's stream. attention.cu and attention_backward.cu
// call these when attention_cuda_flash() (ops/attention.h) picks this path; shapes and dtypes were
// validated by the public op already. cuDNN's fused attention (cudnn_sdpa.h) takes the call first where it
// applies and WICK_ATTENTION allows; these kernels run the rest.
#include "ops/cuda/attention.cuh"
#include "ops/cuda/cudnn_sdpa.h"
#include "ops/cuda/flash_attention_bwd.cuh"
#include "ops/cuda/flash_attention_fwd.cuh"

namespace wick::cuda_ops {

namespace {

flash::FlashParams make_params(const Tensor& q, const Tensor& k, const Tensor& v, const attn::Dims& a) {
  flash::FlashParams p;
  p.q = cuda::cptr<flash::bf16>(q);
  p.k = cuda::cptr<flash::bf16>(k);
  p.v = cuda::cptr<flash::bf16>(v);
  p.seg = a.seg;
  p.B = a.B, p.T = a.T, p.H = a.H, p.Hkv = a.Hkv, p.D = a.D, p.n_rep = a.n_rep;
  p.kv_len = a.kv_len, p.kv_start = a.kv_start;
  p.S = a.S;
  p.scale = a.scale;
  return p;
}

}  // namespace

void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args,
                             Tensor& out, Tensor* lse) {
  const attn::Dims a = attn::make_dims(q, k, args);
  if (cudnn_attention_forward(q, k, v, a, out, lse)) return;
  flash::FlashParams p = make_params(q, k, v, a);
  if (p.B == 0 || p.T == 0 || p.H == 0) return;
  p.o = cuda::ptr<flash::bf16>(out);
  p.lse = lse ? cuda::ptr<float>(*lse) : nullptr;
  WICK_CUDA_CHECK(flash::flash_forward(p, cuda::stream_of(out)));
}

void flash_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, const AttentionArgs& args, Tensor& dq, Tensor& dk,
                              Tensor& dv) {
  const attn::Dims a = attn::make_dims(q, k, args);
  if (cudnn_attention_backward(dout, q, k, v, out, lse, a, dq, dk, dv)) return;
  flash::FlashParams p = make_params(q, k, v, a);
  if (p.B == 0 || p.T == 0 || p.H == 0) return;
  const int dev = dq.device().index;
  p.out = cuda::cptr<flash::bf16>(out);
  p.dout = cuda::cptr<flash::bf16>(dout);
  p.lse = const_cast<float*>(cuda::cptr<float>(lse));  // read only in backward
  p.dq = cuda::ptr<flash::bf16>(dq);
  p.dk = cuda::ptr<flash::bf16>(dk);
  p.dv = cuda::ptr<flash::bf16>(dv);
  p.dkv_rows = dk.dim(1);
  cudaStream_t s = cuda::stream_of(dq);
  const size_t bytes = flash::flash_bwd_plan(p, cuda::sm_count(dev));
  p.scratch = static_cast<float*>(cuda::scratch(dev, bytes));
  WICK_CUDA_CHECK(flash::flash_backward(p, s));
}

}  // namespace wick::cuda_ops
