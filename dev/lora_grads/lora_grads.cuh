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
