// Greedy token choice on CUDA (ops/sampling.h). One block per row: each thread scans a strided slice of the
// V scores (penalised where the history mask says), keeping its best (value, first index) and its first
// non-finite index; a block reduction picks the maximum with the lowest index among ties, so the result is
// torch.argmax's and the CPU twin's for any V. One launch per decode step (V = 152k: ~150 loads a thread).
#include <cmath>

#include "ops/cuda/argmax.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

constexpr int kThreads = 1024;

using argmax::Best;

__global__ void __launch_bounds__(kThreads)
    greedy_tokens_kernel(const float* __restrict__ logits, int* __restrict__ seen, float penalty, int* __restrict__ ids,
                         long long V) {
  const long long r = blockIdx.x;
  const float* row = logits + r * V;
  int* mark = seen ? seen + r * V : nullptr;
  Best me = argmax::none();
  for (long long i = threadIdx.x; i < V; i += kThreads) {
    float s = row[i];
    if (isnan(s) || s == INFINITY) {
      me.bad = min(me.bad, static_cast<int>(i));
      continue;
    }
    if (mark && mark[i] && penalty != 1.0f) s = s < 0.0f ? s * penalty : s / penalty;
    if (me.i == 0x7fffffff || s > me.s) me.s = s, me.i = static_cast<int>(i);  // ascending i: first index kept
  }
  __shared__ Best warps[kThreads / 32];
  me = argmax::block_best(me, warps);
  if (threadIdx.x != 0) return;
  if (me.bad != 0x7fffffff) {
    ids[r] = -1 - me.bad;
  } else {
    ids[r] = me.i;
    if (mark) mark[me.i] = 1;
  }
}

}  // namespace

void greedy_tokens(const Tensor& logits, Tensor* seen, float penalty, Tensor& ids) {
  const long long R = logits.dim(0), V = logits.dim(1);
  if (R == 0) return;
  greedy_tokens_kernel<<<static_cast<unsigned>(R), kThreads, 0, cuda::stream_of(ids)>>>(
      cuda::cptr<float>(logits), seen ? cuda::ptr<int>(*seen) : nullptr, penalty, cuda::ptr<int>(ids), V);
  WICK_CUDA_LAUNCH_CHECK();
}

}  // namespace wick::cuda_ops
