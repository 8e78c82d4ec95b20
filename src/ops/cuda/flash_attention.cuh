// Tensor-core (mma.sync m16n8k16, bf16 in, f32 accumulate) flash attention: the pieces shared by the
// forward (flash_attention_fwd.cuh) and backward (flash_attention_bwd.cuh) kernels.
//
// Why: the CUDA-core kernels (attention.cu, attention_backward.cu) do every q.k and p.v product as f32
// FMAs, about 1/15 of what the tensor cores give. These kernels are FlashAttention-2 on sm_80+: each warp
// owns 16 rows of a tile and multiplies 16x16 bf16 fragments (ldmatrix from shared memory, mma.sync into
// f32 registers); K/V (or Q/dO) tiles stream through shared memory with cp.async, two stages deep, so the
// next tile's load overlaps this tile's math. Softmax statistics stay f32; outputs are rounded to bf16 once.
//
// Standalone on purpose: only CUDA headers, no wick types, so dev/attention/ builds the same kernels into
// its harness. src/ops/cuda/flash_attention.cu is the wick glue (Tensor -> FlashParams, dispatch).
//
// Layouts (wick's, see ops/attention.h): q, out, dout, dq [B, T, H, D]; k, v [B, S, Hkv, D] (S >= kv_len,
// the cache capacity); dk, dv [B, dkv_rows, Hkv, D]; lse, delta [B, H, T] f32; segments [B, T] i32.
// Query head h reads kv head h / n_rep. Query t sits at key position kv_start + t (kv_start = kv_len - T)
// and sees keys [0, kv_start + t] with the same segment id.
//
// Shared-memory tiles are rows of D bf16 (D = 64 or 128: 8 or 16 chunks of 16 bytes) with the chunk index
// XOR-ed by (row & 7): the 8 rows one ldmatrix 8x8 matrix reads land on 8 different 16-byte bank groups.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/cp_async.cuh"
#include "ops/cuda/mma_sync.cuh"

namespace wick::flash {

using bf16 = __nv_bfloat16;

struct FlashParams {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const bf16* out = nullptr;   // backward: the forward's output
  const bf16* dout = nullptr;  // backward
  bf16* o = nullptr;           // forward output
  float* lse = nullptr;        // forward: written when non-null; backward: read
  bf16* dq = nullptr;
  bf16* dk = nullptr;
  bf16* dv = nullptr;
  float* scratch = nullptr;  // backward: flash_bwd_plan() bytes of device memory (delta, dK/dV partials)
  int dkv_split = 1;         // backward: blocks a GQA group's heads are split over (set by flash_bwd_plan)
  const int32_t* seg = nullptr;
  int B = 0, T = 0, H = 0, Hkv = 0, D = 0, n_rep = 1;
  int kv_len = 0, kv_start = 0;
  long long S = 0;         // rows of k / v per batch item
  long long dkv_rows = 0;  // rows of dk / dv per batch item
  float scale = 1.0f;
};

constexpr float kLog2e = 1.4426950408889634f;

using cp_async::cp_async16;
using cp_async::cp_async_commit;
using cp_async::cp_async_wait;
using cp_async::smem_u32;

using mma::ldmatrix_x4;
using mma::ldmatrix_x4_trans;
using mma::mma_bf16;

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Element offset of 16-byte chunk c of row r in a swizzled tile of D-wide rows.
template <int D> __device__ __forceinline__ int swz(int r, int c) { return r * D + ((c ^ (r & 7)) << 3); }

// cp.async a tile of ROWS rows of D bf16 (global row stride `stride` elements) into a swizzled shared
// tile; rows >= valid_rows are zero-filled. All NT threads of the block call it.
template <int ROWS, int D, int NT>
__device__ __forceinline__ void load_tile(bf16* smem, const bf16* g, long long stride, int valid_rows) {
  constexpr int DC = D / 8;
#pragma unroll
  for (int i = 0; i < (ROWS * DC + NT - 1) / NT; ++i) {
    const int idx = threadIdx.x + i * NT;
    if (ROWS * DC % NT == 0 || idx < ROWS * DC) {
      const int r = idx / DC, c = idx % DC;
      const bool ok = r < valid_rows;
      cp_async16(smem_u32(smem + swz<D>(r, c)), ok ? g + r * stride + c * 8 : g, ok);
    }
  }
}

// A fragments (16 rows x 16 dims, k-step kk) of rows row0.. of a swizzled tile: ldmatrix x4, matrices
// (rows 0-7, dims 0-7), (rows 8-15, dims 0-7), (rows 0-7, dims 8-15), (rows 8-15, dims 8-15).
template <int D> __device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16* tile, int row0, int kk, int lane) {
  ldmatrix_x4(a, smem_u32(tile + swz<D>(row0 + (lane & 15), kk * 2 + (lane >> 4))));
}
// B fragments of two 8-column n-tiles (rows n0..n0+15 of the tile are the n index, dims the k index):
// b[0], b[1] for rows n0..n0+7, b[2], b[3] for n0+8..n0+15, at k-step kk. (Q.K^T with K row-major.)
template <int D> __device__ __forceinline__ void load_b(uint32_t (&b)[4], const bf16* tile, int n0, int kk, int lane) {
  ldmatrix_x4(b, smem_u32(tile + swz<D>(n0 + ((lane >> 4) << 3) + (lane & 7), kk * 2 + ((lane >> 3) & 1))));
}
// B fragments where the tile's rows are the k index and its dims the n index (P.V with V row-major):
// rows k0..k0+15, dims 16 dp .. 16 dp + 15 -> b[0], b[1] for dims 16 dp..+7, b[2], b[3] for +8..+15.
template <int D>
__device__ __forceinline__ void load_b_trans(uint32_t (&b)[4], const bf16* tile, int k0, int dp, int lane) {
  ldmatrix_x4_trans(b, smem_u32(tile + swz<D>(k0 + (((lane >> 3) & 1) << 3) + (lane & 7), dp * 2 + (lane >> 4))));
}

// 2^x on the special-function unit (ex2.approx.ftz: ~2 ulp, results under 2^-126 flush to 0, 2^-inf = 0).
// exp2f without fast-math adds denormal handling around the same instruction; softmax weights that small
// vanish next to the row's largest (1) anyway.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Packed segments: marks, in a shared bitmap, the tiles of TILE positions among [0, n) holding any
// position whose segment id lies in [lo, hi] (a superset of the tiles with a matching pair: exact for
// sorted ids, safe for any). Block-wide; ends with a barrier.
template <int TILE, int NT>
__device__ __forceinline__ void mark_tiles(uint32_t* bits, int words, const int32_t* seg, int n, int lo, int hi) {
  for (int w = threadIdx.x; w < words; w += NT) bits[w] = 0u;
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += NT) {
    const int s = seg[i];
    if (s >= lo && s <= hi) atomicOr(&bits[(i / TILE) >> 5], 1u << ((i / TILE) & 31));
  }
  __syncthreads();
}
__device__ __forceinline__ bool tile_marked(const uint32_t* bits, int t) { return (bits[t >> 5] >> (t & 31)) & 1u; }

// Block-wide min and max of v over the NT threads (red: 2 * NT / 32 ints of shared memory). Ends with a barrier.
template <int NT> __device__ __forceinline__ void block_minmax(int v_lo, int v_hi, int* red, int& lo, int& hi) {
  for (int o = 16; o > 0; o >>= 1) {
    v_lo = min(v_lo, __shfl_xor_sync(0xffffffffu, v_lo, o));
    v_hi = max(v_hi, __shfl_xor_sync(0xffffffffu, v_hi, o));
  }
  const int warp = threadIdx.x >> 5;
  if ((threadIdx.x & 31) == 0) red[warp] = v_lo, red[NT / 32 + warp] = v_hi;
  __syncthreads();
  lo = red[0], hi = red[NT / 32];
#pragma unroll
  for (int w = 1; w < NT / 32; ++w) lo = min(lo, red[w]), hi = max(hi, red[NT / 32 + w]);
  __syncthreads();
}

}  // namespace wick::flash
