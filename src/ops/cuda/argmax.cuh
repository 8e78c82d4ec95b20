// The block-wide argmax of the greedy choice (ops/sampling.h), shared by greedy_tokens (sampling.cu) and
// sample_tokens (sample_tokens.cu): each thread's best (score, first index) and first non-finite index,
// combined so that the result is the maximum with the lowest index among ties (torch.argmax's rule) and the
// lowest bad index, whatever the order of combination.
#pragma once
#include <climits>

namespace wick::cuda_ops::argmax {

struct Best {
  float s;
  int i;    // index of s (INT_MAX: none)
  int bad;  // first NaN / +inf index (INT_MAX: none)
};

__device__ __forceinline__ Best none() { return Best{0.0f, INT_MAX, INT_MAX}; }

__device__ __forceinline__ Best better(const Best& a, const Best& b) {
  Best r;
  r.bad = min(a.bad, b.bad);
  const bool take_b = b.i != INT_MAX && (a.i == INT_MAX || b.s > a.s || (b.s == a.s && b.i < a.i));
  r.s = take_b ? b.s : a.s;
  r.i = take_b ? b.i : a.i;
  return r;
}

// The warp's best, in lane 0.
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

// The block's best, returned to every thread. sh: blockDim.x / 32 entries of shared memory (blockDim.x a
// multiple of 32, at most 1024); every thread of the block calls it.
__device__ __forceinline__ Best block_best(Best me, Best* sh) {
  me = warp_best(me);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) sh[warp] = me;
  __syncthreads();
  if (warp == 0) {
    me = warp_best(lane < static_cast<int>(blockDim.x / 32) ? sh[lane] : none());
    if (lane == 0) sh[0] = me;
  }
  __syncthreads();
  return sh[0];
}

}  // namespace wick::cuda_ops::argmax
