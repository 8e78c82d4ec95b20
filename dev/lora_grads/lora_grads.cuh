// A LoRA linear's backward products from ONE read of dy (issue 8; variant v1, tensor cores through WMMA):
//   dB  [out, r] f32  += s * dy^T u        (u = x A^T, kept from forward as u^T [r, N] bf16)
//   du^T [r, N] bf16   = s * B^T dy^T       (B [out, r] bf16)
// wick runs these today as two cuBLASLt GEMMs (model/linear.cpp adapter_grads_B16), each reading dy [N, out]
// from memory, the dB one split over K = N with a reduce launch. On the 0.5B step (8 x 1024) the adapters'
// small GEMMs and reduces are ~4 ms of ~54 (bench/results/2026-12-03-h200-ncu-0.5b-train-step.txt); dy is
// 80 MB for gate and for up.
//
// Design (r = 16 only: one 16 x 16 WMMA tile of rank):
//  - grid (P, Q): block (p, q) takes rows [256 p, 256 p + 256) of dy as two 128-row blocks, and the 128-column
//    tiles of out from q * tiles_per_q on; 8 warps.
//  - per column tile it stages B's 128 rows, then per row block dy's 128 x 128 tile (smem, ld 136 against bank
//    conflicts), and each warp does 8 MMAs into its du^T fragment ([16 ranks x its 16 rows], kept across tiles)
//    and 8 into its dB fragment ([its 16 columns x 16 ranks], kept across the row blocks, stored per tile).
//  - partials, no atomics (deterministic): W1 [P, out, 16] f32 (dB per row group), W2 [Q, 16, N] f32 (du^T per
//    column group); lora_grads_reduce sums them in a fixed order, scales by s, adds into dB and writes du^T.
// Requirements: r == 16, out % 16 == 0, dy / u^T / B 16-byte aligned with N % 8 == 0 and out % 8 == 0 for the
// vector loads (wick's shapes); anything else keeps the two GEMMs.
#pragma once
#include <cuda_bf16.h>
#include <mma.h>

namespace lora_grads {

constexpr int kRank = 16, kRowsBlock = 128, kRowBlocks = 2, kColsTile = 128, kLd = kColsTile + 8, kThreads = 256;
constexpr int kRowsCta = kRowsBlock * kRowBlocks;

struct Shape {
  int N, out, P, Q, tiles_per_q;
};

inline Shape plan(int N, int out, int sms) {
  Shape s{N, out, (N + kRowsCta - 1) / kRowsCta, 1, 1};
  const int tiles = (out + kColsTile - 1) / kColsTile;
  int want_q = (2 * sms + s.P - 1) / s.P;  // about two blocks an SM
  if (want_q < 1) want_q = 1;
  if (want_q > tiles) want_q = tiles;
  s.tiles_per_q = (tiles + want_q - 1) / want_q;
  s.Q = (tiles + s.tiles_per_q - 1) / s.tiles_per_q;
  return s;
}

using bf16 = __nv_bfloat16;
namespace wmma = nvcuda::wmma;

// smem: dy tile [128][kLd] bf16, u^T of both row blocks [2][16][kLd] bf16, B rows [128][16] bf16.
constexpr size_t kSmemBytes = (size_t)kRowsBlock * kLd * 2 + (size_t)kRowBlocks * kRank * kLd * 2 + (size_t)kColsTile * kRank * 2;

__global__ void __launch_bounds__(kThreads) lora_grads_v1(const bf16* __restrict__ dy, const bf16* __restrict__ uT,
                                                          const bf16* __restrict__ B, float* __restrict__ W1,
                                                          float* __restrict__ W2, Shape sh) {
  __shared__ __align__(128) unsigned char smem[kSmemBytes];
  bf16* dys = reinterpret_cast<bf16*>(smem);
  bf16* us = dys + kRowsBlock * kLd;
  bf16* bs = us + kRowBlocks * kRank * kLd;
  const int p = blockIdx.x, q = blockIdx.y, warp = threadIdx.x / 32;
  const int row0 = p * kRowsCta;
  const int tiles = (sh.out + kColsTile - 1) / kColsTile;
  const int t0 = q * sh.tiles_per_q, t1 = min(tiles, t0 + sh.tiles_per_q);
  const uint4 zero = make_uint4(0, 0, 0, 0);

  // u^T of this block's rows: [2][16][128] (8 bf16 a load; rows past N are zero).
  for (int i = threadIdx.x; i < kRowBlocks * kRank * (kRowsBlock / 8); i += kThreads) {
    const int rb = i / (kRank * 16), j = (i / 16) % kRank, c = (i % 16) * 8;
    const int n = row0 + rb * kRowsBlock + c;
    *reinterpret_cast<uint4*>(us + (rb * kRank + j) * kLd + c) =
        n < sh.N ? *reinterpret_cast<const uint4*>(uT + (size_t)j * sh.N + n) : zero;
  }
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> du_acc[kRowBlocks];
  for (int rb = 0; rb < kRowBlocks; rb++) wmma::fill_fragment(du_acc[rb], 0.0f);

  for (int t = t0; t < t1; t++) {
    const int o0 = t * kColsTile;
    __syncthreads();  // the previous tile's readers are done with bs and dys
    for (int i = threadIdx.x; i < kColsTile * (kRank / 8); i += kThreads) {
      const int o = o0 + i / 2, c = (i % 2) * 8;
      *reinterpret_cast<uint4*>(bs + (i / 2) * kRank + c) =
          o < sh.out ? *reinterpret_cast<const uint4*>(B + (size_t)o * kRank + c) : zero;
    }
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> db_acc;
    wmma::fill_fragment(db_acc, 0.0f);
    for (int rb = 0; rb < kRowBlocks; rb++) {
      if (rb > 0) __syncthreads();
      for (int i = threadIdx.x; i < kRowsBlock * (kColsTile / 8); i += kThreads) {
        const int r = i / (kColsTile / 8), c = (i % (kColsTile / 8)) * 8;
        const int n = row0 + rb * kRowsBlock + r, o = o0 + c;
        *reinterpret_cast<uint4*>(dys + r * kLd + c) =
            n < sh.N && o < sh.out ? *reinterpret_cast<const uint4*>(dy + (size_t)n * sh.out + o) : zero;
      }
      __syncthreads();
      const bf16* ub = us + rb * kRank * kLd;
#pragma unroll
      for (int k = 0; k < kColsTile / 16; k++) {
        // du^T [16 ranks x 16 rows of this warp] += B^T [16 x 16 cols k] . dy^T [16 cols k x 16 rows]
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b;
        wmma::load_matrix_sync(a, bs + k * 16 * kRank, kRank);
        wmma::load_matrix_sync(b, dys + warp * 16 * kLd + k * 16, kLd);
        wmma::mma_sync(du_acc[rb], a, b, du_acc[rb]);
      }
#pragma unroll
      for (int k = 0; k < kRowsBlock / 16; k++) {
        // dB [16 cols of this warp x 16 ranks] += dy^T [16 cols x 16 rows k] . u [16 rows k x 16 ranks]
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b;
        wmma::load_matrix_sync(a, dys + k * 16 * kLd + warp * 16, kLd);
        wmma::load_matrix_sync(b, ub + k * 16, kLd);
        wmma::mma_sync(db_acc, a, b, db_acc);
      }
    }
    const int oc = o0 + warp * 16;
    if (oc < sh.out)
      wmma::store_matrix_sync(W1 + ((size_t)p * sh.out + oc) * kRank, db_acc, kRank, wmma::mem_row_major);
  }
  // du^T partial of this column group, through smem (rows past N are not written).
  __syncthreads();
  float* stage = reinterpret_cast<float*>(smem) + warp * 16 * 16;
  for (int rb = 0; rb < kRowBlocks; rb++) {
    wmma::store_matrix_sync(stage, du_acc[rb], 16, wmma::mem_row_major);
    __syncwarp();
    for (int e = threadIdx.x % 32; e < 256; e += 32) {
      const int j = e / 16, n = row0 + rb * kRowsBlock + warp * 16 + e % 16;
      if (n < sh.N) W2[((size_t)q * kRank + j) * sh.N + n] = stage[e];
    }
    __syncwarp();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// v2: v1's tiles and WMMA addressing, streamed. v1 (first H200 run, session 18) read each 128 x 128 dy tile with
// plain loads, a thread's 8 loads one after another, each waiting for the last: on gate/up [8192 x 4864] it took
// 73.9 us against the two cuBLAS GEMMs' 56.1, far from one read of dy's 80 MB at ~4 TB/s (~20 us). Here a block's
// sub-tiles (column tile t, row block rb: rb fastest) go through a ring of kStages shared-memory stages by
// cp.async, kStages - 1 of them in flight while the current one is multiplied; each stage carries its tile's 128
// rows of B with it. A block takes rbs (1..4) row blocks of 128 rows, so that the dB partials W1 [P, out, 16]
// shrink with P = row blocks / rbs, and the plan (plan2) picks rbs and the column tiles a block takes by a cost
// model: the sub-tiles of the busiest SM plus the partials written and read back. One block an SM (~170 KB of
// shared memory at rbs 4), 8 warps. The same partials' layout and the same reduce (lora_grads_reduce) as v1;
// deterministic likewise (fixed tiles, fixed order).
constexpr int kStages = 4, kMaxRbs = 4;
constexpr size_t kStageBytes = (size_t)kColsTile * kLd * 2 + (size_t)kColsTile * kRank * 2;  // dy tile + B rows
inline size_t smem2_bytes(int rbs) { return kStages * kStageBytes + (size_t)rbs * kRank * kLd * 2; }

struct Plan2 {
  int N, out, tiles, rbs, P, tiles_per_q, Q;
  Shape shape() const { return Shape{N, out, P, Q, tiles_per_q}; }  // what lora_grads_reduce reads (P, Q)
};

inline Plan2 plan2(int N, int out, int sms) {
  const int tiles = (out + kColsTile - 1) / kColsTile, row_blocks = (N + kRowsBlock - 1) / kRowsBlock;
  Plan2 best{N, out, tiles, 1, row_blocks, tiles, 1};
  double best_cost = -1;
  for (int rbs = 1; rbs <= kMaxRbs; rbs++)
    for (int tpq = 1; tpq <= tiles; tpq++) {
      const int P = (row_blocks + rbs - 1) / rbs, Q = (tiles + tpq - 1) / tpq;
      const long long waves = ((long long)P * Q + sms - 1) / sms;
      // bytes the busiest SM streams, times the SMs (so: bytes at the whole chip's rate), plus the partials
      // written and read back by the reduce
      const double cost = (double)waves * rbs * tpq * kStageBytes * sms + 2.0 * ((double)P * out + (double)Q * N) * kRank * 4;
      if (best_cost < 0 || cost < best_cost) {
        best_cost = cost;
        best = Plan2{N, out, tiles, rbs, P, tpq, Q};
      }
    }
  return best;
}

__device__ __forceinline__ void cp16(void* dst, const void* src, bool valid) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__global__ void __launch_bounds__(kThreads) lora_grads_v2(const bf16* __restrict__ dy, const bf16* __restrict__ uT,
                                                          const bf16* __restrict__ B, float* __restrict__ W1,
                                                          float* __restrict__ W2, Plan2 pl) {
  extern __shared__ __align__(128) unsigned char smem2[];
  bf16* us = reinterpret_cast<bf16*>(smem2 + kStages * kStageBytes);  // u^T of the block's rows [rbs][16][kLd]
  const int p = blockIdx.x, q = blockIdx.y, warp = threadIdx.x / 32, rbs = pl.rbs;
  const int row0 = p * rbs * kRowsBlock;
  const int t0 = q * pl.tiles_per_q, t1 = min(pl.tiles, t0 + pl.tiles_per_q);
  const int n_sub = (t1 - t0) * rbs;
  auto dy_stage = [&](int i) { return reinterpret_cast<bf16*>(smem2 + (i % kStages) * kStageBytes); };
  auto b_stage = [&](int i) { return dy_stage(i) + kColsTile * kLd; };

  // u^T [rbs][16][128] (rows past N zero-filled): in the first group, with sub-tile 0.
  for (int i = threadIdx.x; i < rbs * kRank * (kRowsBlock / 8); i += kThreads) {
    const int rb = i / (kRank * 16), j = (i / 16) % kRank, c = (i % 16) * 8;
    const int n = row0 + rb * kRowsBlock + c;
    cp16(us + (rb * kRank + j) * kLd + c, uT + (size_t)j * pl.N + (n < pl.N ? n : 0), n < pl.N);
  }
  // Sub-tile i: dy rows [row0 + rb * 128, +128) x columns [t * 128, +128), and B's rows of tile t. Every thread
  // commits one group per call (empty past the end), so that wait_group counts the same in every thread.
  auto issue = [&](int i) {
    if (i < n_sub) {
      const int t = t0 + i / rbs, rb = i % rbs, o0 = t * kColsTile, n0 = row0 + rb * kRowsBlock;
      bf16* d = dy_stage(i);
#pragma unroll
      for (int k = 0; k < kColsTile * kRowsBlock / 8 / kThreads; k++) {
        const int c = threadIdx.x + k * kThreads, r = c / (kColsTile / 8), col = (c % (kColsTile / 8)) * 8;
        const int n = n0 + r, o = o0 + col;
        const bool ok = n < pl.N && o < pl.out;
        cp16(d + r * kLd + col, dy + (ok ? (size_t)n * pl.out + o : 0), ok);
      }
      const int r = threadIdx.x / 2, half = (threadIdx.x % 2) * 8;  // 256 threads: B's 128 rows x 2 halves
      const bool ok = o0 + r < pl.out;
      cp16(b_stage(i) + r * kRank + half, B + (ok ? (size_t)(o0 + r) * kRank + half : 0), ok);
    }
    cp_commit();
  };
  for (int i = 0; i < kStages - 1; i++) issue(i);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> du_acc[kMaxRbs], db_acc;
#pragma unroll
  for (int rb = 0; rb < kMaxRbs; rb++) wmma::fill_fragment(du_acc[rb], 0.0f);
  wmma::fill_fragment(db_acc, 0.0f);

  for (int i = 0; i < n_sub; i++) {
    cp_wait<kStages - 2>();  // this thread's copies of sub-tile i (and u^T) have landed
    __syncthreads();         // everyone's have; and everyone is done with sub-tile i - 1, whose stage is refilled next
    issue(i + kStages - 1);
    const int t = t0 + i / rbs, rb = i % rbs;
    const bf16* dys = dy_stage(i);
    const bf16* bs = b_stage(i);
    const bf16* ub = us + rb * kRank * kLd;
    // rb is not a compile-time index of du_acc: select the fragment by a switch over the unrolled range, so the
    // accumulators stay in registers.
#pragma unroll
    for (int r2 = 0; r2 < kMaxRbs; r2++) {
      if (r2 != rb) continue;
#pragma unroll
      for (int k = 0; k < kColsTile / 16; k++) {
        // du^T [16 ranks x 16 rows of this warp] += B^T [16 x 16 cols k] . dy^T [16 cols k x 16 rows]
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b;
        wmma::load_matrix_sync(a, bs + k * 16 * kRank, kRank);
        wmma::load_matrix_sync(b, dys + warp * 16 * kLd + k * 16, kLd);
        wmma::mma_sync(du_acc[r2], a, b, du_acc[r2]);
      }
    }
#pragma unroll
    for (int k = 0; k < kRowsBlock / 16; k++) {
      // dB [16 cols of this warp x 16 ranks] += dy^T [16 cols x 16 rows k] . u [16 rows k x 16 ranks]
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b;
      wmma::load_matrix_sync(a, dys + k * 16 * kLd + warp * 16, kLd);
      wmma::load_matrix_sync(b, ub + k * 16, kLd);
      wmma::mma_sync(db_acc, a, b, db_acc);
    }
    if (rb == rbs - 1) {  // the column tile's last row block: its dB partial for row group p
      const int oc = t * kColsTile + warp * 16;
      if (oc < pl.out)
        wmma::store_matrix_sync(W1 + ((size_t)p * pl.out + oc) * kRank, db_acc, kRank, wmma::mem_row_major);
      wmma::fill_fragment(db_acc, 0.0f);
    }
  }
  // du^T partial of this column group, through the (now idle) stages; rows past N are not written.
  cp_wait<0>();
  __syncthreads();
  float* stage = reinterpret_cast<float*>(smem2) + warp * 16 * 16;
#pragma unroll
  for (int rb = 0; rb < kMaxRbs; rb++) {
    if (rb >= rbs) break;
    wmma::store_matrix_sync(stage, du_acc[rb], 16, wmma::mem_row_major);
    __syncwarp();
    for (int e = threadIdx.x % 32; e < 256; e += 32) {
      const int j = e / 16, n = row0 + rb * kRowsBlock + warp * 16 + e % 16;
      if (n < pl.N) W2[((size_t)q * kRank + j) * pl.N + n] = stage[e];
    }
    __syncwarp();
  }
}

// dB [out, 16] += s * sum_p W1[p]; du^T [16, N] = bf16(s * sum_q W2[q]); fixed order, so the same bits every run.
__global__ void lora_grads_reduce(const float* __restrict__ W1, const float* __restrict__ W2, float s, float* __restrict__ dB,
                                  bf16* __restrict__ duT, Shape sh) {
  const long long nb = (long long)sh.out * kRank, nd = (long long)kRank * sh.N;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < nb + nd; i += (long long)gridDim.x * blockDim.x) {
    float acc = 0.0f;
    if (i < nb) {
      for (int p = 0; p < sh.P; p++) acc += W1[(long long)p * nb + i];
      dB[i] += s * acc;
    } else {
      const long long k = i - nb;
      for (int q = 0; q < sh.Q; q++) acc += W2[(long long)q * nd + k];
      duT[k] = __float2bfloat16_rn(s * acc);
    }
  }
}

}  // namespace lora_grads
