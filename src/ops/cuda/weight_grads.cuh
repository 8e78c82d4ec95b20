// weight_grad_products (ops/weight_grads.h) on tensor cores: out_i (+)= scale_i a_i^T b_i for a set of products in
// ONE launch, a_i [K, M_i] and b_i [K, R_i] bf16 row-major views (R_i <= 64, a multiple of 8), out_i f32 [M_i, R_i]
// or its transpose [R_i, M_i]. Header-only (CUDA runtime only) so dev/weight_grads/ builds the very kernel wick runs.
//
// What it replaces and why. The LoRA adapters' weight gradients of a training step are products of this shape:
// dB_j += s dy_j^T u_j ([out_j, r], K = the step's N tokens) and dA += du^T x (stored [R, in]: the transposed
// form). cuBLASLt runs each as its own GEMM split over K (the output is a thin [M, 16..64] slab) plus a reduce
// launch: on the 0.5B step (8 x 1024) ~11 GEMMs and ~12 reduce launches a layer, ~4.7 ms of a ~51 ms H200 step
// (ncu, session 28), where reading the operands once at HBM speed takes ~2 ms. The work is a stream over a
// (8 K M bytes at gate/up) with ~16-64 multiply-adds per element: bandwidth, not arithmetic. So:
//  - a block takes a 128-column tile of one product's a and a range of K rows ("split"), streams [64 x 128] a
//    tiles and [64 x RT] b tiles through a ring of kStages cp.async stages, and multiplies them with mma.sync
//    m16n8k16 (bf16 in, f32 accumulate; ldmatrix.trans turns the row-major tiles into the fragments);
//  - every product of the set shares the grid (a block finds its product by its index), so small products (k/v's
//    dB, 2 MB) run beside large ones instead of one after another;
//  - the K splits of a tile leave f32 partials [128 x RT] in a workspace; the tile's last block (a ticket counter
//    a tile, reset by that block) sums them in split order and adds scale * sum to out: no atomics on the output,
//    no reduce launch, and the same bits every run (the order does not depend on which block finishes last).
// Summation order of an element: within a split, the 64-row stages in order, each as mma's k16 steps in order;
// then the splits 0, 1, .. in order. Not the CPU twin's (sgemm's) order.
//
// The reduction (V, the kernel's last template parameter; WICK_WEIGHT_GRADS picks, ops/weight_grads.h):
//  - kLastBlock (1, measured in session 28): any grid (plan()); the tile's last block sums every split's partial,
//    so a tile's reduction is S L2 round trips by one block and the splits are capped at kMaxSplits (8). A thin
//    product (q|k|v's dA: 7 tiles) then runs on 56 blocks, at ~11 GB/s a block: latency-bound.
//  - kWave (2, opt-in; H200: level with cuBLASLt in training, docs/benchmarks.md 8m): ONE wave (plan_wave(): grid <=
//    the kernel's resident blocks, occupancy x SMs) with up to kMaxWaveSplits (32) splits a tile, and a parallel
//    reduction: each block writes its partial, fences, arrives on the tile's counter and waits (acquire loads,
//    __nanosleep backoff) until the tile's S splits have arrived; then each of the S blocks sums its own 1/S of the
//    tile's elements over the S partials in split order (float4 __ldcg loads, all issued before the adds, staged in the
//    idle stage ring) and writes out (+)= scale * sum. The order is fixed, so a run repeats its bits; it differs from
//    kLastBlock's in the last bits (other split counts). The wait cannot deadlock: launch_wave() launches
//    cooperatively, so the driver refuses a grid that is not co-resident rather than run part of it, and plan_wave()
//    never plans more blocks than resident (it declines a batch whose tiles, split in two, exceed one wave; the caller
//    then runs kLastBlock's plan and kernel). The counter counts arrivals to S, then departures (a block departs once
//    its wait is over) to 2S; the S-th departure resets it to 0 for the next launch: no block reads it after its
//    departure, and it never exceeds 2S <= 64. Splits give each block >= kMinSplitRows (256) rows, one full ring of 4
//    stages: with fewer the ring never fills and a block's fixed costs (the first loads' latency, the partial's 8-32
//    KB, the wait, its share of the sum) stop being small against its stream; at K 8192 that is 32 splits. The K stages
//    are dealt out as evenly as whole stages allow (split rows differ by at most one stage).
//  - kLoadOnly (dev/weight_grads only): kWave's plan and the same cp.async ring, no MMA, no partials, one value a
//    block: how fast the stream itself runs.
// Requirements (ops/cuda/weight_grads.cu checks them and sends anything else to cuBLASLt): bf16 a and b, a's and
// b's base addresses 16-byte aligned with row strides a multiple of 8 elements, M a multiple of 8, R a multiple
// of 8 and <= 64, K, M < 2^31.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/cp_async.cuh"
#include "ops/cuda/mma_sync.cuh"
#include "ops/cuda/weight_grads_plan.h"

namespace wick::wgrad {

using bf16 = __nv_bfloat16;

// The kernel's reductions (the V template parameter); the header's top says what each does.
constexpr int kLastBlock = 1, kWave = 2, kLoadOnly = 3;

struct Product {
  const bf16* a = nullptr;  // [K, M], row stride lda
  const bf16* b = nullptr;  // [K, R], row stride ldb
  float* out = nullptr;     // [M, R] (row stride ldo) or, transposed, [R, M]
  long long lda = 0, ldb = 0, ldo = 0;
  int K = 0, M = 0, R = 0;
  int transposed = 0;
  int accumulate = 1;  // out += scale * sum (else out = scale * sum)
  float scale = 1.0f;
  // Planned by plan(): tiles of M, K splits, rows a split, the first block, partials and counters offsets.
  int tiles = 0, splits = 1, split_rows = 0, first_block = 0;
  long long part_offset = 0;  // floats into the workspace
  int counter_offset = 0;     // tiles before this product's (the counters are one per tile)
};

struct Batch {
  Product p[kMaxProducts];
  int n = 0;
  int blocks = 0;
  float* part = nullptr;     // workspace: sum over products of tiles * splits * kTileM * RT floats
  unsigned* counters = nullptr;  // one per tile, zero between launches (each launch's blocks reset their tile's)
};

// Shared memory a block of rank tile RT, TM columns and ST stages uses.
template <int RT, int TM = kTileM, int ST = kStages> __host__ __device__ constexpr size_t smem_bytes() {
  return size_t(ST) * kStageK * (TM + 8 + RT + 8) * sizeof(bf16);
}

// kWave's wait: an acquire load of the tile's counter (sm_70+).
__device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// One block: product p, tile `tile` of its M, rows [k0, k1) of its K. RT: the rank tile (16, 32, 48 or 64), R <= RT.
template <int RT, int TM = kTileM, int ST = kStages, int SU = 1, int V = kLastBlock>
__global__ void __launch_bounds__(TM) weight_grad_kernel(const __grid_constant__ Batch batch) {
  // TM columns of a a block (TM / 32 warps of 32 columns), ST pipeline stages, SU splits summed a round trip in the
  // tile's reduction (kLastBlock's; kWave ignores it), V the reduction: wick runs (kTileM, kStages, 1) with
  // kLastBlock or kWave; dev/weight_grads times others.
  // kPitchA: the a tile's shared-memory row pitch (elements), so that the 8 rows of an ldmatrix hit 8 bank groups.
  constexpr int kTileM = TM, kThreads = TM, kStages = ST, kPitchA = TM + 8, kSU = SU;
  static_assert(RT % 16 == 0 && RT <= 64, "rank tile");
  static_assert(V == kLastBlock || V == kWave || V == kLoadOnly, "reduction");
  constexpr int kPitchB = RT + 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sa = reinterpret_cast<bf16*>(smem);                  // [kStages][kStageK][kPitchA]
  bf16* sb = sa + kStages * kStageK * kPitchA;               // [kStages][kStageK][kPitchB]
  __shared__ unsigned last_flag;

  int pi = 0;
  while (pi + 1 < batch.n && (int)blockIdx.x >= batch.p[pi + 1].first_block) pi++;
  const Product& P = batch.p[pi];
  const int local = blockIdx.x - P.first_block;
  const int tile = local / P.splits, split = local % P.splits;
  const int m0 = tile * kTileM;
  int k0, k1;
  split_range(P, split, V != kLastBlock, k0, k1);
  const int nstages = (k1 - k0 + kStageK - 1) / kStageK;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  // Stage s of this block's rows into ring slot `slot`: a [64 x 128] (16 chunks of 16 B a row), b [64 x RT].
  auto load = [&](int s, int slot) {
    const int kb = k0 + s * kStageK;
    bf16* da = sa + slot * kStageK * kPitchA;
#pragma unroll
    for (int i = 0; i < kStageK * (kTileM / 8) / kThreads; i++) {
      const int c = tid + i * kThreads, row = c / (kTileM / 8), col = (c % (kTileM / 8)) * 8;
      const int k = kb + row, m = m0 + col;
      const bool ok = k < k1 && m < P.M;
      const bf16* src = ok ? P.a + (long long)k * P.lda + m : P.a;
      cp_async::cp_async16(cp_async::smem_u32(da + row * kPitchA + col), src, ok);
    }
    bf16* db = sb + slot * kStageK * kPitchB;
    for (int c = tid; c < kStageK * (RT / 8); c += kThreads) {
      const int row = c / (RT / 8), col = (c % (RT / 8)) * 8;
      const int k = kb + row;
      const bool ok = k < k1 && col < P.R;
      const bf16* src = ok ? P.b + (long long)k * P.ldb + col : P.b;
      cp_async::cp_async16(cp_async::smem_u32(db + row * kPitchB + col), src, ok);
    }
  };

  // acc[mt][nt]: rows (m) mw + 16 mt + {g, g + 8}, columns (r) 8 nt + {2t, 2t + 1}.
  float acc[2][RT / 8][4];
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int nt = 0; nt < RT / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[mt][nt][e] = 0.0f;

#pragma unroll
  for (int s = 0; s < kStages - 1; s++) {
    if (s < nstages) load(s, s);
    cp_async::cp_async_commit();
  }
  const int mw = warp * 32;
  const int mat = lane / 8, rr = lane % 8;
  for (int s = 0; s < nstages; s++) {
    cp_async::cp_async_wait<kStages - 2>();
    __syncthreads();  // stage s has landed for every thread; slot (s - 1) % kStages is free
    if (s + kStages - 1 < nstages) load(s + kStages - 1, (s + kStages - 1) % kStages);
    cp_async::cp_async_commit();
    const bf16* ta = sa + (s % kStages) * kStageK * kPitchA;
    const bf16* tb = sb + (s % kStages) * kStageK * kPitchB;
    if constexpr (V == kLoadOnly) {  // one word of each tile read, so that the stage is consumed, no MMA
      acc[0][0][0] += __bfloat162float(ta[(tid % kStageK) * kPitchA + tid % kTileM]) +
                      __bfloat162float(tb[(tid % kStageK) * kPitchB + tid % RT]);
    } else {
#pragma unroll
      for (int kk = 0; kk < kStageK; kk += 16) {
        // A fragments (m x k) of a^T from the [k][m] tile: matrices (m +0/+8) x (k +0/+8), transposed by ldmatrix.
        uint32_t af[2][4];
#pragma unroll
        for (int mt = 0; mt < 2; mt++) {
          const int k = kk + (mat / 2) * 8 + rr, m = mw + mt * 16 + (mat % 2) * 8;
          mma::ldmatrix_x4_trans(af[mt], cp_async::smem_u32(ta + k * kPitchA + m));
        }
        // B fragments (k x r) from the [k][r] tile, two 8-column tiles an ldmatrix x4.
#pragma unroll
        for (int np = 0; np < RT / 16; np++) {
          uint32_t bfr[4];
          const int k = kk + (mat % 2) * 8 + rr, n = np * 16 + (mat / 2) * 8;
          mma::ldmatrix_x4_trans(bfr, cp_async::smem_u32(tb + k * kPitchB + n));
#pragma unroll
          for (int mt = 0; mt < 2; mt++) {
            mma::mma_bf16(acc[mt][2 * np], af[mt], bfr[0], bfr[1]);
            mma::mma_bf16(acc[mt][2 * np + 1], af[mt], bfr[2], bfr[3]);
          }
        }
      }
    }
  }
  cp_async::cp_async_wait<0>();
  if constexpr (V == kLoadOnly) {  // one value a block, in the workspace (it holds a tile per block at least)
    if (tid == 0) batch.part[blockIdx.x] = acc[0][0][0];
    return;
  }

  // This split's partial tile [TM][RT] f32 to the workspace.
  const int g = lane / 4, t2 = (lane % 4) * 2;
  float* part = batch.part + P.part_offset + (long long)(tile * P.splits + split) * kTileM * RT;
#pragma unroll
  for (int mt = 0; mt < 2; mt++)
#pragma unroll
    for (int nt = 0; nt < RT / 8; nt++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int m = mw + mt * 16 + g + h * 8, r = nt * 8 + t2;
        *reinterpret_cast<float2*>(part + m * RT + r) = make_float2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
      }
  if constexpr (V == kWave) {
    // kWave: wait for the tile's S splits (all resident: a cooperative launch of plan_wave's grid), then this
    // block sums its own 1/S of the tile: float4 chunks [c0, c1) of the [TM][RT] tile, S partials each, in split
    // order. The chunks' S partials are loaded together (all loads issued, then stored to the idle stage ring),
    // then each thread sums its elements over the S from shared memory.
    const int S = P.splits;
    unsigned* counter = batch.counters + P.counter_offset + tile;
    __threadfence();  // this thread's partial is visible device-wide before the block arrives
    __syncthreads();  // ... every thread's; and every warp is done with the ring (reused below)
    if (S > 1) {
      if (tid == 0) {
        __threadfence();
        atomicAdd(counter, 1u);  // arrive
        unsigned ns = 32;
        while (load_acquire(counter) < unsigned(S)) {  // S..2S: every split has arrived (departures add on top)
          __nanosleep(ns);
          ns = ns < 256 ? 2 * ns : 256;
        }
        __threadfence();
        // Depart: the last of the S resets the counter for the next launch; no block of this launch reads it again.
        if (atomicAdd(counter, 1u) == 2u * unsigned(S) - 1u) *counter = 0u;
      }
      __syncthreads();  // the other splits' partials are visible to every thread of the block
    }
    constexpr int kChunks = kTileM * RT / 4;  // float4 chunks of a tile
    const int c0 = int((long long)split * kChunks / S), c1 = int((long long)(split + 1) * kChunks / S);
    const int C = c1 - c0, n = S * C;  // n <= kChunks + S - 1
    const float4* tp =
        reinterpret_cast<const float4*>(batch.part + P.part_offset + (long long)tile * S * kTileM * RT);
    float4* staged = reinterpret_cast<float4*>(smem);  // [S][C]
    constexpr int kLoads = (kChunks + kMaxWaveSplits - 1 + kThreads - 1) / kThreads;
    static_assert((kChunks + kMaxWaveSplits) * sizeof(float4) <= smem_bytes<RT, TM, ST>(), "staging fits the ring");
    float4 v[kLoads];
#pragma unroll
    for (int i = 0; i < kLoads; i++) {
      const int idx = i * kThreads + tid;
      if (idx < n) v[i] = __ldcg(tp + (long long)(idx / C) * kChunks + c0 + idx % C);
    }
#pragma unroll
    for (int i = 0; i < kLoads; i++)
      if (i * kThreads + tid < n) staged[i * kThreads + tid] = v[i];
    __syncthreads();
    const float* sf = reinterpret_cast<const float*>(smem);  // [S][4C]
    const int E = 4 * C;
    float* __restrict__ out = P.out;
    for (int e = tid; e < E; e += kThreads) {
      float sum = 0.0f;
#pragma unroll 8
      for (int s = 0; s < S; s++) sum += sf[s * E + e];  // split order
      const int g = 4 * c0 + e, m = m0 + g / RT, r = g % RT;
      if (m < P.M && r < P.R) {
        float* o = P.transposed ? out + (long long)r * P.ldo + m : out + (long long)m * P.ldo + r;
        const float prev = P.accumulate ? *o : 0.0f;
        *o = prev + P.scale * sum;
      }
    }
    return;
  }
  if (P.splits > 1) {
    __threadfence();  // the partial is visible device-wide before the ticket
    __syncthreads();
    if (tid == 0) {
      unsigned* counter = batch.counters + P.counter_offset + tile;
      const unsigned ticket = atomicAdd(counter, 1u);
      last_flag = ticket == unsigned(P.splits - 1);
      if (last_flag) *counter = 0;  // ready for the next launch (stream order)
    }
    __syncthreads();
    if (!last_flag) return;
    __threadfence();
  } else {
    __syncthreads();
  }
  // The tile's last block: out (+)= scale * sum over the splits, in split order. Thread t owns the float4 chunks
  // c = i * kThreads + t of the [TM][RT] tile (elements 4c .. 4c + 3: one m, four r); SU splits' RT / 4 chunks
  // are loaded together (one L2 round trip for SU splits, not one an element), then the outputs are read and written.
  const float* __restrict__ tile_part = batch.part + P.part_offset + (long long)tile * P.splits * kTileM * RT;
  float sum[RT];
#pragma unroll
  for (int i = 0; i < RT; i++) sum[i] = 0.0f;
  int s = 0;
  for (; s + kSU <= P.splits; s += kSU) {  // kSU splits' chunks loaded together, added in split order
    float4 v[kSU][RT / 4];
#pragma unroll
    for (int u = 0; u < kSU; u++)
#pragma unroll
      for (int i = 0; i < RT / 4; i++)
        v[u][i] = __ldcg(reinterpret_cast<const float4*>(tile_part + (long long)(s + u) * kTileM * RT) + i * kThreads + tid);
#pragma unroll
    for (int u = 0; u < kSU; u++)
#pragma unroll
      for (int i = 0; i < RT / 4; i++) {
        sum[4 * i] += v[u][i].x;
        sum[4 * i + 1] += v[u][i].y;
        sum[4 * i + 2] += v[u][i].z;
        sum[4 * i + 3] += v[u][i].w;
      }
  }
  for (; s < P.splits; s++) {
    const float4* ps = reinterpret_cast<const float4*>(tile_part + (long long)s * kTileM * RT);
    float4 v[RT / 4];
#pragma unroll
    for (int i = 0; i < RT / 4; i++) v[i] = __ldcg(ps + i * kThreads + tid);
#pragma unroll
    for (int i = 0; i < RT / 4; i++) {
      sum[4 * i] += v[i].x;
      sum[4 * i + 1] += v[i].y;
      sum[4 * i + 2] += v[i].z;
      sum[4 * i + 3] += v[i].w;
    }
  }
  float* __restrict__ out = P.out;
  float prev[RT];
#pragma unroll
  for (int i = 0; i < RT / 4; i++) {
    const int e = 4 * (i * kThreads + tid), m = m0 + e / RT, r = e % RT;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const bool ok = m < P.M && r + j < P.R && P.accumulate;
      prev[4 * i + j] = ok ? (P.transposed ? out[(long long)(r + j) * P.ldo + m] : out[(long long)m * P.ldo + r + j]) : 0.0f;
    }
  }
#pragma unroll
  for (int i = 0; i < RT / 4; i++) {
    const int e = 4 * (i * kThreads + tid), m = m0 + e / RT, r = e % RT;
#pragma unroll
    for (int j = 0; j < 4; j++)
      if (m < P.M && r + j < P.R) {
        float* o = P.transposed ? out + (long long)(r + j) * P.ldo + m : out + (long long)m * P.ldo + r + j;
        *o = prev[4 * i + j] + P.scale * sum[4 * i + j];
      }
  }
}

// Blocks of the <RT, TM, ST, SU, V> kernel resident at once on the current device: its occupancy times the SMs,
// 0 when a block does not fit an SM (plan() then plans for one block at a time and the launch fails with the
// driver's error; plan_wave() declines every batch). The capacity plan() and plan_wave() take. Also opts the
// kernel into its dynamic shared memory (the launches do that too).
template <int RT, int TM = kTileM, int ST = kStages, int SU = 1, int V = kLastBlock>
inline cudaError_t resident_blocks(int sms, int* blocks) {
  constexpr size_t smem = smem_bytes<RT, TM, ST>();
  auto* kernel = weight_grad_kernel<RT, TM, ST, SU, V>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return e;
  int occ = 0;
  e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kernel, TM, smem);
  *blocks = occ * sms;
  return e;
}

// Launches the planned batch (plan<RT, TM>() first) on stream s.
template <int RT, int TM = kTileM, int ST = kStages, int SU = 1>
inline cudaError_t launch(const Batch& b, cudaStream_t s) {
  if (b.blocks == 0) return cudaSuccess;
  constexpr size_t smem = smem_bytes<RT, TM, ST>();
  cudaError_t e =
      cudaFuncSetAttribute(weight_grad_kernel<RT, TM, ST, SU>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return e;
  weight_grad_kernel<RT, TM, ST, SU><<<b.blocks, TM, smem, s>>>(b);
  return cudaGetLastError();
}

// Launches a batch planned by plan_wave<RT, TM>() with kWave's reduction on stream s, cooperatively: the driver
// runs every block at once or refuses the launch (cudaErrorCooperativeLaunchTooLarge), never a part of the grid
// that would wait for blocks not resident. The device must support cooperative launches
// (cudaDevAttrCooperativeLaunch). V = kLoadOnly (dev/weight_grads) runs the load-only probe on the same plan.
template <int RT, int TM = kTileM, int ST = kStages, int V = kWave>
inline cudaError_t launch_wave(const Batch& b, cudaStream_t s) {
  if (b.blocks == 0) return cudaSuccess;
  constexpr size_t smem = smem_bytes<RT, TM, ST>();
  auto* kernel = weight_grad_kernel<RT, TM, ST, 1, V>;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e != cudaSuccess) return e;
  void* args[] = {const_cast<Batch*>(&b)};
  return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), dim3(b.blocks), dim3(TM), args, smem, s);
}

}  // namespace wick::wgrad
