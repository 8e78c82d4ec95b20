// A decode projection of ONE row (y = x W^T, x [in], W [rows, in] bf16, y [rows] bf16) that streams the weights
// into shared memory with Hopper's bulk asynchronous copies (cp.async.bulk, completion on an mbarrier), for
// dev/small_m/small_m_bench.cu's `bulk` rows. Session 34; written and compiled, not yet run on a GPU.
//
// Why. dev/small_m's harness has 1.5B's down projection [1536, 8960] at 10.1 us on an H200 (2.7 TB/s, 57% of the
// card) while lm_head [151936, 1536] streams at 93% (bench/results/2026-12-04-h200-session21.txt); in the decode
// chain (session 32's trace, H100) down costs 11.6 us for 8.9 us of bytes at 3.1 TB/s, gate/up + GLU 19.4 for
// 17.8. small_m's blocks each issue one round of register loads for their row (17.9 KB at down: one row a block,
// 8 warps), wait, reduce and exit, and a whole wave of them does so in step: the loads in flight an SM are
// bounded by registers (four blocks: ~72 KB) and fall to nothing between waves. Here the loads in flight are
// bounded by shared memory instead, and never stop until a warp's rows are done:
//   - one block an SM (grid = SMs, or fewer when there are fewer rows than warps), NW warps a block; warp w of
//     the grid owns the contiguous rows [w rows / GW, (w + 1) rows / GW) (GW: the grid's warps), so every SM gets
//     the same bytes within a row or so, and no wave ends;
//   - each warp has its own ring of S stages of RS rows (RS rows are contiguous in W: ONE bulk copy a stage);
//     lane 0 fills a stage (mbarrier expect_tx + cp.async.bulk), the warp waits on the stage's barrier
//     (phase parity), computes its rows' dot products from shared memory, and lane 0 refills the stage with the
//     stage S ahead; no block-wide barrier after the start;
//   - x is read once a block into shared memory (bf16), after pdl::enter(); the first S stages of each warp are
//     issued before it when `prefetch` (the weights settled, as small_m's Args::prefetch), overlapping the
//     kernel before.
// Dot products: lane l takes the 16-byte chunks l, l + 32, ... of a row (8 bf16: conflict-free 512-byte warp
// reads of the weights and of x), f32 fmaf in chunk order on two chains (even and odd elements), then a butterfly
// over the warp; lane 0 writes y.
// Deterministic (a fixed order), not small_m's order.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "ops/cuda/pdl.cuh"

namespace wick::bulk_gemv {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void barrier_init(uint64_t* bar, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(arrivals) : "memory");
}
// The barriers' initialisation made visible to the async proxy (the bulk copies complete on them).
__device__ __forceinline__ void barrier_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
// One arrival that also expects `bytes` of transactions (the stage's bulk copy) before the phase completes.
__device__ __forceinline__ void barrier_expect(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}
// bytes (a multiple of 16, both addresses 16-byte aligned) from global src to shared dst; completes on bar.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                   smem_addr(dst)),
               "l"(src), "r"(bytes), "r"(smem_addr(bar))
               : "memory");
}
// Waits until the barrier's phase of this parity has completed.
__device__ __forceinline__ void barrier_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n"
      "}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}
// Orders this thread's earlier shared-memory accesses (generic proxy) before its later bulk copies (async proxy).
__device__ __forceinline__ void async_proxy_fence() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

struct Plan {
  int warps = 4;       // NW: warps a block
  int stages = 2;      // S: stages a warp's ring
  int rows_stage = 1;  // RS: rows a stage
  int blocks = 0;
  size_t smem = 0;     // dynamic shared memory a block: barriers, x, the rings
};

constexpr size_t kSmemBudget = 200 * 1024;

inline size_t round16(size_t n) { return (n + 15) / 16 * 16; }
inline size_t plan_smem(int in, int warps, int stages, int rows_stage) {
  return round16((size_t)warps * stages * 8) + round16((size_t)in * 2) + (size_t)warps * stages * rows_stage * in * 2;
}

// A plan of `warps` warps and at most `max_stages` stages a warp, stages of about 12 KB (whole rows), as many stages
// as fit kSmemBudget; 0 blocks when none fits (a row wider than the budget allows).
inline Plan make_plan(int rows, int in, int sms, int warps, int max_stages) {
  Plan p;
  p.warps = warps;
  const size_t row_bytes = (size_t)in * 2;
  p.rows_stage = (int)((12288 + row_bytes - 1) / row_bytes);
  if (p.rows_stage < 1) p.rows_stage = 1;
  p.stages = max_stages;
  while (p.stages > 1 && plan_smem(in, warps, p.stages, p.rows_stage) > kSmemBudget) p.stages--;
  while (p.rows_stage > 1 && plan_smem(in, warps, p.stages, p.rows_stage) > kSmemBudget) p.rows_stage--;
  p.smem = plan_smem(in, warps, p.stages, p.rows_stage);
  if (p.smem > kSmemBudget) return Plan{warps, 0, 0, 0, 0};
  const int max_blocks = (rows + warps - 1) / warps;  // every warp at least one row
  p.blocks = sms < max_blocks ? sms : max_blocks;
  return p;
}

// grid p.blocks, NW * 32 threads, p.smem bytes of dynamic shared memory; in % 8 == 0, W and x 16-byte aligned.
template <int NW>
__global__ void __launch_bounds__(NW * 32, 1)
    bulk_gemv_kernel(const bf16* __restrict__ W, const bf16* __restrict__ x, bf16* __restrict__ y, int rows, int in,
                     int S, int RS, int prefetch) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem);
  bf16* xs = reinterpret_cast<bf16*>(smem + ((NW * S * 8 + 15) / 16 * 16));
  bf16* rings = xs + (in + 7) / 8 * 8;
  const size_t stage_elems = (size_t)RS * in;
  uint64_t* bar = bars + warp * S;
  bf16* ring = rings + (size_t)warp * S * stage_elems;

  // This warp's rows [r0, r1), walked RS at a time.
  const long long gw = (long long)blockIdx.x * NW + warp, GW = (long long)gridDim.x * NW;
  const int r0 = (int)(gw * rows / GW), r1 = (int)((gw + 1) * rows / GW);
  const int walk = (r1 - r0 + RS - 1) / RS;  // stages this warp walks
  if (lane == 0) {
    for (int s = 0; s < S; s++) barrier_init(&bar[s], 1);
    barrier_init_fence();
  }
  __syncwarp();
  // Stage k of the walk into slot k % S (lane 0 only).
  const auto fill = [&](int k) {
    const int r = r0 + k * RS;
    const int n = r1 - r < RS ? r1 - r : RS;
    const uint32_t bytes = (uint32_t)n * (uint32_t)in * 2u;
    barrier_expect(&bar[k % S], bytes);
    bulk_copy(ring + (size_t)(k % S) * stage_elems, W + (size_t)r * in, bytes, &bar[k % S]);
  };
  const int first = walk < S ? walk : S;
  if (lane == 0 && prefetch)
    for (int k = 0; k < first; k++) fill(k);
  pdl::enter();
  for (int i = threadIdx.x * 8; i < in; i += NW * 32 * 8)
    *reinterpret_cast<uint4*>(xs + i) = *reinterpret_cast<const uint4*>(x + i);
  __syncthreads();
  if (lane == 0 && !prefetch)
    for (int k = 0; k < first; k++) fill(k);

  for (int k = 0; k < walk; k++) {
    barrier_wait(&bar[k % S], (uint32_t)(k / S) & 1u);
    const int r = r0 + k * RS;
    const int n = r1 - r < RS ? r1 - r : RS;
    const bf16* stage = ring + (size_t)(k % S) * stage_elems;
    for (int j = 0; j < n; j++) {
      const bf16* wr = stage + (size_t)j * in;
      float even = 0.0f, odd = 0.0f;  // two chains: a row is ~280 fmaf a lane at in 8,960
#pragma unroll 4
      for (int i = lane * 8; i < in; i += 256) {
        const uint4 wv = *reinterpret_cast<const uint4*>(wr + i);
        const uint4 xv = *reinterpret_cast<const uint4*>(xs + i);
        const __nv_bfloat162* w2 = reinterpret_cast<const __nv_bfloat162*>(&wv);
        const __nv_bfloat162* x2 = reinterpret_cast<const __nv_bfloat162*>(&xv);
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const float2 wf = __bfloat1622float2(w2[e]), xf = __bfloat1622float2(x2[e]);
          even = fmaf(wf.x, xf.x, even);
          odd = fmaf(wf.y, xf.y, odd);
        }
      }
      float acc = even + odd;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (lane == 0) y[r + j] = __float2bfloat16_rn(acc);
    }
    __syncwarp();  // every lane has read the stage
    if (lane == 0 && k + S < walk) {
      async_proxy_fence();
      fill(k + S);
    }
  }
}

// Launches the plan (pdl::launch); its kernel's shared-memory limit is raised on first use of each NW.
template <int NW>
cudaError_t launch_nw(const Plan& p, const bf16* W, const bf16* x, bf16* y, int rows, int in, int prefetch,
                      cudaStream_t st) {
  static bool raised = false;
  if (!raised) {
    const cudaError_t e = cudaFuncSetAttribute(bulk_gemv_kernel<NW>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               (int)kSmemBudget + 1024);
    if (e != cudaSuccess) return e;
    raised = true;
  }
  return pdl::launch(bulk_gemv_kernel<NW>, dim3(p.blocks), dim3(NW * 32), p.smem, st, W, x, y, rows, in, p.stages,
                     p.rows_stage, prefetch);
}
inline cudaError_t launch(const Plan& p, const bf16* W, const bf16* x, bf16* y, int rows, int in, int prefetch,
                          cudaStream_t st) {
  switch (p.warps) {
    case 2: return launch_nw<2>(p, W, x, y, rows, in, prefetch, st);
    case 4: return launch_nw<4>(p, W, x, y, rows, in, prefetch, st);
    case 8: return launch_nw<8>(p, W, x, y, rows, in, prefetch, st);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace wick::bulk_gemv
