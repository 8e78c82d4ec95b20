// Greedy token choice on CUDA (ops/sampling.h). One block per row: each thread scans a strided slice of the
// V scores (penalised where the history mask says), keeping its best (value, first index) and its first
// non-finite index; a block reduction picks the maximum with the lowest index among ties, so the result is
// torch.argmax's and the CPU twin's for any V. One launch per decode step (V = 152k: ~150 loads a thread).
#include <cmath>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

constexpr int kThreads = 1024;

struct Best {
  float s;
  int i;    // index of s (INT_MAX: none)
  int bad;  // first NaN / +inf index (INT_MAX: none)
};

__device__ __forceinline__ Best better(const Best& a, const Best& b) {
  Best r;
  r.bad = min(a.bad, b.bad);
  const bool take_b = b.i != 0x7fffffff && (a.i == 0x7fffffff || b.s > a.s || (b.s == a.s && b.i < a.i));
  r.s = take_b ? b.s : a.s;
  r.i = take_b ? b.i : a.i;
  return r;
}

// The warp's best in lane 0.
__device__ __forceinline__ Best warp_best(Best me) {
  for (int off = 16; off > 0; off >>= 1) {
    Best o;
    o.s = __shfl_down_sync(0xffffffffu, me.s, off);
    o.i = __shfl_down_sync(0xffffffffu, me.i, off);
    o.bad = __shfl_down_sync(0xffffffffu, me.bad, off);
    me = better(me, o);
  }
  return me;
}

__global__ void __launch_bounds__(kThreads)
    greedy_tokens_kernel(const float* __restrict__ logits, int* __restrict__ seen, float penalty, int* __restrict__ ids,
                         long long V) {
  const long long r = blockIdx.x;
  const float* row = logits + r * V;
  int* mark = seen ? seen + r * V : nullptr;
  Best me{0.0f, 0x7fffffff, 0x7fffffff};
  for (long long i = threadIdx.x; i < V; i += kThreads) {
    float s = row[i];
    if (isnan(s) || s == INFINITY) {
      me.bad = min(me.bad, static_cast<int>(i));
      continue;
    }
    if (mark && mark[i] && penalty != 1.0f) s = s < 0.0f ? s * penalty : s / penalty;
    if (me.i == 0x7fffffff || s > me.s) me.s = s, me.i = static_cast<int>(i);  // ascending i: first index kept
  }
  me = warp_best(me);
  __shared__ Best warps[kThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warps[warp] = me;
  __syncthreads();
  if (warp != 0) return;
  me = lane < kThreads / 32 ? warps[lane] : Best{0.0f, 0x7fffffff, 0x7fffffff};
  me = warp_best(me);
  if (lane != 0) return;
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
