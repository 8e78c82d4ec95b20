// Bandwidth-bound projections of a few rows (ops/small_m_linear.h): y_j = x W_j^T (+ b_j) for up to three
// weights read by one x in ONE launch, and the MLP's act(x Wg^T) * (x Wu^T) in one launch. x [M, in] with
// M <= kMaxM; W_j [out_j, in] row-major (the HF layout of Linear::w). Header-only (CUDA runtime and cuda_bf16
// only) so the dev/ harness (dev/small_m/small_m_bench.cu) builds the very kernel wick runs.
//
// Why. At decode (one row per sequence) a projection reads out * in weights and does one FMA per weight per
// row: it is a matrix-vector product, bound by the weight read (0.5B Qwen2.5: 1 GB per token; 4.8 TB/s on an
// H200), while a GEMM library tiles for M >= 64 and leaves most of the bandwidth unused at M = 1. So:
//   - the grid covers every output row of every member (q | k | v rows one after the other; gate/up: one row
//     index for the pair); each row is taken by K warps (K = 1, 2, 4 or 8 per row: more warps per row when there
//     are few rows, so that enough loads are in flight to cover the memory latency, but no more blocks than fit
//     on the GPU at once; small_m_plan.h's rule), 8 warps per block;
//   - lane l of the k-th warp of a row reads the row in 16-byte vectors (8 bf16 / 4 f32; when in and the
//     pointers allow it, else one element at a time), vectors k*32 + l, k*32 + l + 32 K, ..., up to U (4 or 8) of
//     them issued before any is used; the weights go through the streaming cache path (__ldcs: read once),
//     x through the read-only path (__ldg: every warp reads it, it stays in L1/L2); x is not staged in shared
//     memory (M in f32 can exceed it: 7B's down_proj has in = 18944);
//   - each lane accumulates its M dot products in f32 registers, the warp reduces them with shuffles
//     (butterfly), the K warps of a row through shared memory in warp order; lane m of the row's first warp
//     writes y[m, o]: y = round(acc + b) (bias added in f32, then one rounding to y's dtype).
//   - gate/up + GLU: one warp (group) reads the gate row o and the up row o against the same x vector, then
//     g = round(acc_g + bg), u = round(acc_u + bu) (to the dtype T, as the unfused path writes A.g and A.u),
//     s = round(round(act(g)) * u): ops/cuda/swiglu.cu's forward, act() from glu_act.cuh.
//   - adapters (Args::lu, decode with a LoRA adapter): lane m adds member j's round(scale u_j B_j[o]^T), u = x A^T
//     precomputed in f32 by the caller (one small_m launch over the group's stacked A's), B_j's row o read after
//     the weights (r values, from L2): the adapter costs the caller that one launch, not two GEMMs a member;
//   - input norm (Args::nw, decode's RMSNorm before the projection, x its input): RMSNorm(x) W^T =
//     rstd (x * w) W^T with rstd = rsqrt(mean(x^2) + eps) one number a row, so each lane multiplies the x chunk it
//     reads anyway by the norm weight's chunk (1 + w for Gemma) and adds its squares into a sum that the warp and
//     the K warps reduce with the dot products; the row's results are scaled by rstd before the bias. No pass of
//     its own (session 31's version summed x first in every block, then normalised: 11-12% slower) and no norm
//     launch; not the separate norm's bits (that rounds the normalised x to T before the projection);
//   - residual (Args::res, one plain member): y = round(round(acc + b) + res), the decoder layer's residual add
//     rounded as the separate add rounds it; prefetch (Args::prefetch): the first U weight loads are issued
//     before pdl::enter(), overlapping the previous kernel (the weights must be settled: ops/small_m_linear.h),
//     and with them a plain row's bias and (Args::res_early) its residual, the epilogue's other round trips.
// Every load is bounds-checked (rows past the last member's, vector starts past in); any M in [1, kMaxM],
// in >= 1 and out >= 0 work. Deterministic: a fixed summation order (per lane in vector order, the warp
// butterfly, the K warps in order), not the CPU twin's order nor cuBLASLt's.
//
// Rounding against the cuBLASLt path (matmul with the bias epilogue, beta = 0): both accumulate in f32 and
// round once after adding the bias in f32 (cuBLASLt's CUBLASLT_EPILOGUE_BIAS); only the summation order
// differs. (matmul adds a bias it cannot fuse - misaligned - in a second kernel after rounding: round(round(acc)
// + b); this kernel always rounds once.)
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ops/cuda/glu_act.cuh"
#include "ops/cuda/pdl.cuh"
#include "ops/cuda/small_m_plan.h"
#include "ops/cuda/vec16.cuh"

namespace wick::small_m {

template <typename T, typename TY> struct Args {
  const T* x;                   // [M, in]
  const T* w[kMaxMembers];      // [out_j, in]; GLU: w[0] gate, w[1] up
  const T* b[kMaxMembers];      // [out_j] or null
  TY* y[kMaxMembers];           // [M, out_j]; GLU: y[0] = s [M, I]
  int out[kMaxMembers];         // rows of each member (GLU: out[0] = I)
  int row0[kMaxMembers + 1];    // first global row of each member, and the total
  int rows;                     // = row0[members]
  int members;
  int M, in;
  int K;                        // warps per output row: 1, 2, 4 or 8
  const TY* res;                // [M, out[0]] or null (plain, one member): y0 = round(round(x w0^T + b0) + res)
  int prefetch;                 // 1: w and b may be read before pdl::enter() (see below)
  int bias_early;               // 1: the bias is read before pdl::enter() (prefetch's promise; WICK_EARLY_EPILOGUE)
  int res_early;                // 1: res is read before pdl::enter() (written two or more launches back)
  // Adapter terms (ops/small_m_linear.h SmallMLowRank), read after pdl::enter(): y_j gets
  // round_T(lscale_j sum_k lu[m, lcol_j + k] lb_j[o, k]) before its rounding. lu null: none.
  const float* lu;              // [M, lu_ld] f32
  int lu_ld;
  const T* lb[kMaxMembers];     // [out_j, lr_j] or null (no adapter on member j)
  int lr[kMaxMembers], lcol[kMaxMembers];
  float lscale[kMaxMembers];
  // The input's RMSNorm (ops/small_m_linear.h SmallMNorm), read after pdl::enter(); nw null: none.
  const T* nw;                  // [in]
  float neps;
  int noffset;                  // 1: Gemma's (1 + w)
};

__device__ __forceinline__ float sm_to_f(float v) { return v; }
__device__ __forceinline__ float sm_to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T sm_from_f(float v);
template <> __device__ __forceinline__ float sm_from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 sm_from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <typename T> __device__ __forceinline__ float sm_round(float v) { return sm_to_f(sm_from_f<T>(v)); }

// E elements of T as f32: E * sizeof(T) == 16 (one 16-byte vector) or E == 1.
template <int E> __device__ __forceinline__ void sm_unpack(const uint4& v, float (&f)[E]);
template <> __device__ __forceinline__ void sm_unpack<4>(const uint4& v, float (&f)[4]) {
  vec16::unpack(v, static_cast<const float*>(nullptr), f);
}
template <> __device__ __forceinline__ void sm_unpack<8>(const uint4& v, float (&f)[8]) {
  vec16::unpack(v, static_cast<const __nv_bfloat16*>(nullptr), f);
}

// Raw storage of E elements of T: one uint4 (E * sizeof(T) == 16) or one T (E == 1).
template <typename T, int E> struct Chunk {
  uint4 v;
  __device__ __forceinline__ void load_stream(const T* p) { v = __ldcs(reinterpret_cast<const uint4*>(p)); }
  __device__ __forceinline__ void load_ro(const T* p) { v = __ldg(reinterpret_cast<const uint4*>(p)); }
  __device__ __forceinline__ void get(float (&f)[E]) const { sm_unpack<E>(v, f); }
};
template <typename T> struct Chunk<T, 1> {
  T v;
  __device__ __forceinline__ void load_stream(const T* p) { v = __ldcs(p); }
  __device__ __forceinline__ void load_ro(const T* p) { v = __ldg(p); }
  __device__ __forceinline__ void get(float (&f)[1]) const { f[0] = sm_to_f(v); }
};

// MM: compile-time bound on M (1, 4 or 8; rows m >= M are skipped). E: elements per load (16 bytes, or 1).
// R: weight rows per warp group (1 plain, 2 GLU: gate and up). U: weight loads per lane issued before any is used.
// The work of block `block` of the launch (its kWarps / K output rows), with wait() where the kernel calls
// pdl::enter(): after the prefetched weight loads, before x is read. small_m_kernel runs it for blockIdx.x;
// dev/megakernel's persistent kernel runs it for many blocks in a row, with its own wait (a caller that runs it
// again must __syncthreads() between calls: red, the block's shared scratch, is reused). Threads return early only
// after the function's last barrier, so every thread of the block reaches the caller's next one.
// NORM: a.nw is set (the input norm); a template parameter so that the kernels without it keep their registers
// (plain at M 1, U 8: 64, four blocks an SM; as a runtime branch the norm's chunk and sums made it 77: three).
template <typename T, typename TY, int MM, int E, int MODE, int U, bool NORM = false, class Wait>
__device__ __forceinline__ void small_m_block(const Args<T, TY>& a, int block, Wait&& wait) {
  constexpr int R = MODE == kPlain ? 1 : 2;
  __shared__ float red[kWarps][R][MM];
  __shared__ float red_ssq[kWarps][MM];  // the input norm's sums (NORM; unused otherwise)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int K = a.K, M = a.M, in = a.in;
  const int rows_per_block = kWarps / K;
  const int row = block * rows_per_block + warp / K;  // global row over the members
  const int kpart = warp % K;
  const bool live = row < a.rows;
  // The member the row belongs to and its row o there (GLU: the gate/up pair's row o), its pointers: picked
  // with constant indices only (a dynamic index into the kernel parameters copies them to local memory).
  const T* wj = a.w[0];
  const T* bj = a.b[0];
  TY* yj = a.y[0];
  int outj = a.out[0], o = row;
  if constexpr (MODE == kPlain) {
#pragma unroll
    for (int t = 1; t < kMaxMembers; t++)
      if (t < a.members && row >= a.row0[t]) wj = a.w[t], bj = a.b[t], yj = a.y[t], outj = a.out[t], o = row - a.row0[t];
  }
  const T* wr[R];
  wr[0] = live ? wj + (size_t)o * in : nullptr;
  if constexpr (R == 2) wr[R - 1] = live ? a.w[1] + (size_t)o * in : nullptr;

  float acc[R][MM];
#pragma unroll
  for (int r = 0; r < R; r++)
#pragma unroll
    for (int m = 0; m < MM; m++) acc[r][m] = 0.0f;

  // Launched with pdl::launch: the kernel before this one may still be writing x (and reading y). With
  // a.prefetch (the weights are settled: no kernel just before writes them) the first U weight loads of each
  // lane are issued before pdl::enter(), so that they overlap that kernel's tail.
  const int stride = 32 * K * E;  // elements between a lane's consecutive vectors
  const int base0 = (kpart * 32 + lane) * E;
  Chunk<T, E> wv[R][U];
  const auto load_w = [&](int base) {
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int i = base + u * stride;
      if (i < in)  // E divides in on the vector path: the whole vector is inside the row
#pragma unroll
        for (int r = 0; r < R; r++) wv[r][u].load_stream(wr[r] + i);
    }
  };
  if (live && a.prefetch) load_w(base0);
  // The epilogue's operands that no running kernel writes, read before pdl::enter() too (a plain row's lane m,
  // m < M, holds row m's): the bias with the weights (a.bias_early: settled) and the residual (a.res_early:
  // written two or more launches back, see pdl.cuh), so that their round trips overlap the kernel before this
  // one instead of following the reduction at the end of the chain's critical path. The same values, the same bits.
  float early_bias = 0.0f, early_res = 0.0f;
  if constexpr (MODE == kPlain) {
    if (live && kpart == 0 && lane < M) {
      if (a.bias_early && bj) early_bias = sm_to_f(bj[o]);
      if (a.res_early && a.res) early_res = sm_to_f(a.res[(size_t)lane * outj + o]);
    }
  }
  wait();
  float ssq[MM];  // the input norm's sums of squares (NORM), reduced with acc
#pragma unroll
  for (int m = 0; m < MM; m++) ssq[m] = 0.0f;
  if (live) {
    for (int base = base0; base < in; base += stride * U) {
      if (base != base0 || !a.prefetch) load_w(base);
#pragma unroll
      for (int u = 0; u < U; u++) {
        const int i = base + u * stride;
        if (i >= in) break;
        float wf[R][E];
#pragma unroll
        for (int r = 0; r < R; r++) wv[r][u].get(wf[r]);
        float nwf[E];
        if constexpr (NORM) {
          Chunk<T, E> nv;
          nv.load_ro(a.nw + i);
          nv.get(nwf);
          if (a.noffset)
#pragma unroll
            for (int e = 0; e < E; e++) nwf[e] += 1.0f;
        }
#pragma unroll
        for (int m = 0; m < MM; m++) {
          if (m >= M) break;
          Chunk<T, E> xv;
          xv.load_ro(a.x + (size_t)m * in + i);
          float xf[E];
          xv.get(xf);
          if constexpr (NORM)
#pragma unroll
            for (int e = 0; e < E; e++) ssq[m] = fmaf(xf[e], xf[e], ssq[m]), xf[e] *= nwf[e];
#pragma unroll
          for (int r = 0; r < R; r++)
#pragma unroll
            for (int e = 0; e < E; e++) acc[r][m] = fmaf(wf[r][e], xf[e], acc[r][m]);
        }
      }
    }
  }
  // Warp butterfly: every lane ends with the warp's sums.
#pragma unroll
  for (int r = 0; r < R; r++)
#pragma unroll
    for (int m = 0; m < MM; m++)
#pragma unroll
      for (int s = 16; s > 0; s >>= 1) acc[r][m] += __shfl_xor_sync(0xffffffffu, acc[r][m], s);
  if constexpr (NORM)
#pragma unroll
    for (int m = 0; m < MM; m++)
#pragma unroll
      for (int s = 16; s > 0; s >>= 1) ssq[m] += __shfl_xor_sync(0xffffffffu, ssq[m], s);
  if (K > 1) {  // the K warps of a row, summed in warp order
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; r++)
#pragma unroll
        for (int m = 0; m < MM; m++) red[warp][r][m] = acc[r][m];
      if constexpr (NORM)
#pragma unroll
        for (int m = 0; m < MM; m++) red_ssq[warp][m] = ssq[m];
    }
    __syncthreads();
    if (kpart == 0) {
#pragma unroll
      for (int r = 0; r < R; r++)
#pragma unroll
        for (int m = 0; m < MM; m++) {
          float s = red[warp][r][m];
          for (int k = 1; k < K; k++) s += red[warp + k][r][m];
          acc[r][m] = s;
        }
      if constexpr (NORM)
#pragma unroll
        for (int m = 0; m < MM; m++) {
          float s = red_ssq[warp][m];
          for (int k = 1; k < K; k++) s += red_ssq[warp + k][m];
          ssq[m] = s;
        }
    }
  }
  if (!live || kpart != 0) return;
  if constexpr (NORM)  // RMSNorm(x) W^T = rstd (x * w) W^T
#pragma unroll
    for (int m = 0; m < MM; m++) {
      const float rstd = rsqrtf(ssq[m] / static_cast<float>(in) + a.neps);
#pragma unroll
      for (int r = 0; r < R; r++) acc[r][m] *= rstd;
    }
  // Member t's adapter term for row m (lane m), picked with constant indices as above.
  const auto low_rank = [&](int t, int m) -> float {
    const T* lb = a.lb[0];
    int r = a.lr[0], col = a.lcol[0];
    float scale = a.lscale[0];
#pragma unroll
    for (int q = 1; q < kMaxMembers; q++)
      if (q == t) lb = a.lb[q], r = a.lr[q], col = a.lcol[q], scale = a.lscale[q];
    if (!a.lu || !lb) return 0.0f;
    const float* up = a.lu + (size_t)m * a.lu_ld + col;
    const T* bp = lb + (size_t)o * r;
    float s = 0.0f;
#pragma unroll 4
    for (int k = 0; k < r; k++) s = fmaf(__ldg(up + k), sm_to_f(bp[k]), s);
    return sm_round<T>(scale * s);
  };
  // The member of a plain row (for its adapter term).
  int member = 0;
  if constexpr (MODE == kPlain) {
#pragma unroll
    for (int t = 1; t < kMaxMembers; t++)
      if (t < a.members && row >= a.row0[t]) member = t;
  }
  // Lane m writes row m of the output.
#pragma unroll
  for (int m = 0; m < MM; m++) {
    if (m >= M || lane != m) continue;
    if constexpr (MODE == kPlain) {
      float v = acc[0][m];
      if (bj) v += a.bias_early ? early_bias : sm_to_f(bj[o]);
      if (a.lu) v += low_rank(member, m);
      if (a.res)  // one member: yj = y[0]
        v = sm_round<TY>(v) + (a.res_early ? early_res : sm_to_f(a.res[(size_t)m * outj + o]));
      yj[(size_t)m * outj + o] = sm_from_f<TY>(v);
    } else {
      float g = acc[0][m], u = acc[1][m];
      if (a.b[0]) g += sm_to_f(a.b[0][o]);
      if (a.b[1]) u += sm_to_f(a.b[1][o]);
      if (a.lu) {
        g += low_rank(0, m);
        u += low_rank(1, m);
      }
      g = sm_round<T>(g);  // A.g, A.u as the unfused path writes them
      u = sm_round<T>(u);
      const float s = sm_round<T>(glu_act::act<MODE == kGluSilu>(g)) * u;  // swiglu.cu's glu_fwd_kernel
      a.y[0][(size_t)m * a.out[0] + o] = sm_from_f<TY>(s);
    }
  }
}

// kMinBlocks blocks an SM for the M = 1 kernels that fit 64 registers without spills (small_m_plan.h says why).
template <int MM, int MODE, int U, bool NORM> constexpr int min_blocks() {
  return MM == 1 && (U == 4 || (MODE == kPlain && !NORM)) ? kMinBlocks : 1;
}
template <typename T, typename TY, int MM, int E, int MODE, int U, bool NORM>
__global__ void __launch_bounds__(kThreads, min_blocks<MM, MODE, U, NORM>()) small_m_kernel(Args<T, TY> a) {
  small_m_block<T, TY, MM, E, MODE, U, NORM>(a, blockIdx.x, [] { pdl::enter(); });
}

template <typename T, typename TY, int MM, int E, int U>
cudaError_t launch_mm_e(const Args<T, TY>& a, int mode, cudaStream_t stream) {
  const long long rows = a.rows;
  const int rows_per_block = kWarps / a.K;
  const dim3 blocks((unsigned)((rows + rows_per_block - 1) / rows_per_block)), threads(kThreads);
  const auto go = [&](auto norm) {
    constexpr bool N = decltype(norm)::value;
    if (mode == kPlain) return pdl::launch(small_m_kernel<T, TY, MM, E, kPlain, U, N>, blocks, threads, 0, stream, a);
    if (mode == kGluSilu) return pdl::launch(small_m_kernel<T, TY, MM, E, kGluSilu, U, N>, blocks, threads, 0, stream, a);
    return pdl::launch(small_m_kernel<T, TY, MM, E, kGluGelu, U, N>, blocks, threads, 0, stream, a);
  };
  return a.nw ? go(std::true_type{}) : go(std::false_type{});
}

template <typename T, typename TY, int MM>
cudaError_t launch_mm(const Args<T, TY>& a, int mode, bool vec, int unroll, cudaStream_t stream) {
  constexpr int kVec = 16 / (int)sizeof(T);
  if (unroll == 8)
    return vec ? launch_mm_e<T, TY, MM, kVec, 8>(a, mode, stream) : launch_mm_e<T, TY, MM, 1, 8>(a, mode, stream);
  return vec ? launch_mm_e<T, TY, MM, kVec, 4>(a, mode, stream) : launch_mm_e<T, TY, MM, 1, 4>(a, mode, stream);
}

// What a launch runs: the load width (16-byte vectors or one element), U, and the blocks of the grid.
struct Plan {
  bool vec;
  int unroll;
  int blocks;
};

// Fills a's row0, rows and K, and picks the load width and U (the default rule, or tune). mode: kPlain (members
// 1..3) or a GLU mode (members = 2: gate, up, out[0] = out[1] = I, y[0] = s). The caller checks M in [1, kMaxM],
// in >= 1, and that every row count and M * in, M * out fit in int. Rows = 0: blocks = 0.
template <typename T, typename TY> Plan plan(Args<T, TY>& a, int mode, Tuning tune = {}) {
  a.row0[0] = 0;
  if (mode == kPlain) {
    for (int j = 0; j < a.members; j++) a.row0[j + 1] = a.row0[j] + a.out[j];
  } else {  // one row index for the gate/up pair
    a.members = 2;
    a.row0[1] = a.row0[2] = a.out[0];
  }
  a.rows = a.row0[a.members];
  constexpr int kVec = 16 / (int)sizeof(T);
  bool vec = (a.in % kVec) == 0 && reinterpret_cast<uintptr_t>(a.x) % 16 == 0;
  for (int j = 0; j < a.members; j++) vec = vec && reinterpret_cast<uintptr_t>(a.w[j]) % 16 == 0;
  const LaunchShape shape = launch_shape(a.rows, a.members, (a.in + kVec - 1) / kVec, mode, a.M, tune);
  a.K = shape.k;
  return {vec, shape.unroll, static_cast<int>(shape.blocks)};
}

// plan(), then the launch: MM 1, 4 or 8 from M. Rows = 0 launches nothing.
template <typename T, typename TY> cudaError_t launch(Args<T, TY> a, int mode, cudaStream_t stream, Tuning tune = {}) {
  const Plan p = plan(a, mode, tune);
  if (p.blocks == 0) return cudaSuccess;
  if (a.M == 1) return launch_mm<T, TY, 1>(a, mode, p.vec, p.unroll, stream);
  if (a.M <= 4) return launch_mm<T, TY, 4>(a, mode, p.vec, p.unroll, stream);
  return launch_mm<T, TY, 8>(a, mode, p.vec, p.unroll, stream);
}

}  // namespace wick::small_m
