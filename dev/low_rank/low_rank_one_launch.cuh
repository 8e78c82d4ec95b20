// Variant v5 of the fused small-M low-rank product (ops/low_rank.h), a dev/ experiment built only by the harness
// beside it: v4's two kinds of blocks (src/ops/cuda/low_rank_split_k.cuh: split-K partial blocks, then finish
// blocks chained by programmatic dependent launch) in ONE launch, the finish blocks waiting on a counter the
// partial blocks raise instead of a kernel boundary.
//
// Why it was tried. The seed suite times a call with a CUDA event pair around it, so every launch's submission
// is inside the time (an empty launch times ~5.6-5.8 us); v4 costs 11-16 us on the seed rows against v3's one
// launch at 8.6-11 where v3 applies, and the guess was that v4's second submission was most of the difference.
// The hand-over: a partial block stores its partial u_b, fences, and adds 1 to counters[0]; a finish block stages
// its B tile, then its thread 0 polls counters[0] (an acquire load, __nanosleep between polls) until it reaches
// G1, fences, and the block sums the partials from L2. The last finish block to be done (counters[1]) sets both
// counters back to 0 for the next launch, which cannot pass its pdl::enter before this one has finished. The
// partial blocks are the grid's lowest indices, so they are dispatched before any finish block and the wait
// cannot deadlock (the order the decoupled look-back of single-pass scans relies on). B is staged after
// pdl::enter (the kernel before may be writing it), not before as v4's finish kernel may.
//
// Status: measured on an NVIDIA H100 (session 38, low_rank_bench.bin one: docs/benchmarks.md 8q). Correct on every
// shape and bit for bit v4's output, but slower than v4 on every seed row by 0.3-1.4 us (e.g. 1024 r 16 13.70 /
// 14.02 against 13.28 / 13.12; r 64 16.00 / 15.87 against 15.52 / 15.52) and level at decode's M 1, 896 r 16:
// under PDL the second launch costs less than a counter hand-over through L2. Not in wick.
#pragma once
#include "ops/cuda/low_rank_split_k.cuh"  // split_k_partial, split_k_finish, split_k_args, tiles

namespace wick::lowrank {

static_assert(sizeof(Phase1Smem) + sizeof(float) * kMaxTM * kMaxR <= kTileStaticSmemBound,
              "one_launch_kernel's static shared memory is what tile_smem_allow assumes");

template <typename T, int TM>
__global__ void __launch_bounds__(kThreads) one_launch_kernel(TileArgs<T> a, int* counters) {
  pdl::enter();
  if ((int)blockIdx.x < a.G1) {  // a partial block
    __shared__ __align__(16) Phase1Smem sm;
    split_k_partial(a, blockIdx.x, sm);
    __threadfence();  // this thread's stores before the count (with the barrier: the whole block's)
    __syncthreads();
    if (threadIdx.x == 0) atomicAdd(counters, 1);
    return;
  }
  // A finish block: tile (rt, ct) of the RT x CT tiles, after the hand-over.
  extern __shared__ __align__(16) float bs[];
  __shared__ __align__(16) float us[kMaxTM * kMaxR];
  const int f = (int)blockIdx.x - a.G1, RT = (a.M + TM - 1) / TM;
  const int m0 = (f % RT) * TM, o0 = (f / RT) * a.tn;
  tile_stage_b(a, bs, o0);
  if (threadIdx.x == 0) {
    int seen;
    while (true) {
      asm volatile("ld.acquire.gpu.global.s32 %0, [%1];" : "=r"(seen) : "l"(counters) : "memory");
      if (seen >= a.G1) break;
      __nanosleep(32);
    }
    __threadfence();
  }
  __syncthreads();
  split_k_finish<T, TM>(a, bs, us, m0, o0);
  if (threadIdx.x == 0 && atomicAdd(counters + 1, 1) == (int)gridDim.x - a.G1 - 1) {
    counters[0] = 0;  // every finish block has seen the count, every partial block has added to it
    counters[1] = 0;
  }
}

// y (=|+=) scale (x A^T) B^T by one_launch_kernel: split_k_launch's G1 partial blocks and finish grid in one launch
// (by pdl::launch). counters: two ints on the device, 0 before the first launch (each launch leaves them at 0),
// used by one launch at a time. The other arguments as split_k_launch.
template <typename T, int TM = kSplitKTM>
cudaError_t split_k_one_launch(const T* x, const T* A, const T* B, T* y, int M, int in, int r, int out, float scale,
                               bool accumulate, int G1, float* ws, int* counters, cudaStream_t s,
                               int target = kSplitKBlocks, TileGrid* used = nullptr) {
  TileGrid g;
  const TileArgs<T> a = split_k_args(x, A, B, y, M, in, r, out, scale, accumulate, G1, ws, TM, target, g);
  if (used) *used = g;
  const size_t smem = tile_smem_bytes(g.tn, a.r);
  const cudaError_t e = tile_smem_allow(one_launch_kernel<T, TM>, smem);
  if (e != cudaSuccess) return e;
  return pdl::launch(one_launch_kernel<T, TM>, dim3(a.G1 + g.RT * g.CT), dim3(kThreads), smem, s, a, counters);
}

}  // namespace wick::lowrank
