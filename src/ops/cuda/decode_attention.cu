// Decode attention on CUDA: one query per (batch row, head) over a short KV cache, in one launch.
//
// Why. A decode step (T = 1) of Qwen2.5-0.5B has 2 kv heads; the general kernel (attention.cu) then splits
// the keys over many blocks (flash-decoding) and combines the parts in a second launch. At a few hundred keys
// that is two launches and a round trip of partial sums through memory for ~100 KB of keys and values, and
// it was the largest kernel of a replayed decode step. Here one block owns (batch row b, query head h) and walks
// all the keys its query sees (the note above kDecodeMaxKeys says why a head a block and not a kv head's group: the
// other blocks of the group read the same keys and values, from L2):
//   - the keys [first, pos] are dealt to the block's kDecodeWarps warps, at most 32 a warp and step, as evenly as
//     the steps allow (384 keys: 24 a warp, not 32 to 12 warps and none to 4); for its keys a warp computes the
//     scores, updates a running max m, sum l and accumulator (online softmax, f32), then adds p * v lane-per-dim
//     (lane owns D/32 consecutive dims of each value row), p_j by a shuffle and the value rows from the warp's
//     tile in shared memory;
//   - the scores a 16-byte chunk a lane: a warp-wide load reads 32 / C whole key rows (C chunks a row), so the
//     rows come coalesced; each lane keeps its chunk of C keys in registers, multiplies it by its chunk of q
//     (registers), and the C lanes of a key add their products by halving exchanges (halving_sums), which leave
//     every key's score on one lane;
//   - a step's value rows go to the warp's tile by cp.async and its key chunks to registers, both issued as soon
//     as the position is known: for the first step BEFORE the queries' RoPE and the cache append, so the cache's
//     latency hides behind that phase (the rows read are below positions[b], never the one this launch appends);
//   - at the end the warps' (m, l, acc) are merged through shared memory (each warp's acc in its spent tile) and
//     the block writes out (and lse).
// Session 22 moved the value rows from registers (32 slices a lane, 64 registers at D 128, with spills) to the
// tile and issued the loads before the RoPE phase: the same arithmetic in the same order (the same bits), and on
// an H200 0.5B decode 1,289 -> ~1,500 tok/s, 1.5B 643 -> 716, 7B 232.6 -> 246.3 (docs/benchmarks.md section 10).
// Session 32 replaced its key row a lane (each warp-wide load touched 32 rows: the block's first loads queued
// ~600 cycles a warp in L1 at D 128, the largest phase of session 22's clock stamps) by the chunk a lane, spread
// the keys over all the warps and took the branch out of the merge: on an H100, 1.5B decode 635-640 -> 655-666
// tok/s, 0.5B 1,307-1,315 -> 1,402-1,423 (docs/benchmarks.md section 10, session 32).
// Session 34 split a head's keys over up to 8 blocks where the query sees more than one step of the warps (512
// keys at 16 warps: DecodeSplit), the last block to finish merging the parts; below that one block a head, as
// before. On an H100 with a 760-token prompt, 1.5B decode 604 -> 643 tok/s and 0.5B 1,272 -> 1,360.
// Taken for T = 1, head dim 64 or 128, no segment ids, and at most kDecodeMaxKeys keys a query may see (the
// cache's capacity when the positions are on the device: a replayed graph plans for the longest); beyond that
// the split-key path fills the GPU better. WICK_DECODE_ATTENTION=0 turns it off (the split-key path then runs).
//
// Numerics: f32 inside, expf, one rounding to T on the store; the summation order differs from the split-key
// kernel's (a score is the halving tree over its 16-byte chunks' products; the warps' parts merged in warp order,
// then a split head's parts in part order: the warps a block, the keys a warp and the parts change it).
//
// rope_cache_attention (ops/attention.h) runs the step's RoPE and KV-cache append in the same launch
// (RopeAppend): each block rotates its query head (written back to q) and its kv head's key as it loads them
// (rope_rotate.cuh: rope.cu's arithmetic, so the same bits), keeps the new key and value row in shared memory and
// attends to it from there, and the block of the group's first head stores both rows at row positions[b] of the
// caches. A decode layer then runs one kernel fewer, and the append costs no extra round trip: its loads go out
// with the query's. The keys and values are read through L2 (__ldcg, cp.async.cg), never the non-coherent path:
// the caches are written in this launch (other rows than the ones read).
#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "core/env.h"
#include "ops/cuda/attention.cuh"
#include "ops/cuda/cp_async.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.cuh"
#include "ops/cuda/rope_rotate.cuh"
#include "ops/cuda/vec16.cuh"

namespace wick::cuda_ops {
namespace {

using namespace attn;
using cuda::bf16;

// Warps a block (the kernel's W): 16 lets a block walk up to 512 keys in one 32-key step a warp. Measured on an
// H200 (session 20, a block per query head, RoPE inside; same build, alternating): 8 -> 16 warps, 0.5B 1,249 ->
// 1,382 tok/s, 1.5B 676 -> 689, 7B 243.0 -> 247.8; 4 warps: 0.5B 1,066, 1.5B 631. (Other greedy tokens on the
// random-weight models: the warps' parts merge in another order.)
constexpr int kDecodeWarps = 16;
constexpr int kDecodeMaxKeys = 1024;
// A query head's keys split over several blocks (DecodeSplit; decode_splits picks how many): at most this many.
constexpr int kDecodeMaxSplits = 8;
// Query heads a block takes: one. Measured on an H200 (session 20, the kernel of then, wick generate, batch 1,
// 128-token prompt + 256 new, with the RoPE and cache append in the kernel): 8 (a block per kv head, all its query
// heads) -> 4 -> 2 -> 1: 0.5B 1,107 -> 1,182 -> 1,215 -> 1,238 tok/s, 1.5B 539 -> 615 -> 630 -> 644, 7B 208.5 ->
// 221.6 -> 223.3 -> 226.4. More blocks each with less arithmetic a step (the scores, the softmax and P.V are per
// head) shorten the chain more than the repeated key and value reads (from L2 after the first block) cost.

// A lane's DPL consecutive elements of one value row as loaded (1, 2 or 4 32-bit words), widened when used.
template <typename T, int DPL> struct VSlice {
  static constexpr int kWords = DPL * static_cast<int>(sizeof(T)) / 4;
  static_assert(kWords == 1 || kWords == 2 || kWords == 4, "a lane's slice is 4, 8 or 16 bytes");
  uint32_t w[kWords];
  // From shared memory (the warp's value tile, or the appended row).
  __device__ __forceinline__ void load(const T* p) {
    if constexpr (kWords == 1) {
      w[0] = *reinterpret_cast<const uint32_t*>(p);
    } else if constexpr (kWords == 2) {
      const uint2 u = *reinterpret_cast<const uint2*>(p);
      w[0] = u.x, w[1] = u.y;
    } else {
      const uint4 u = *reinterpret_cast<const uint4*>(p);
      w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
    }
  }
  __device__ __forceinline__ void get(float (&f)[DPL]) const {
    if constexpr (sizeof(T) == 4) {
#pragma unroll
      for (int i = 0; i < DPL; i++) f[i] = __uint_as_float(w[i]);
    } else {
#pragma unroll
      for (int i = 0; i < kWords; i++) {
        const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i]));
        f[2 * i] = a.x, f[2 * i + 1] = a.y;
      }
    }
  }
};

// The exchanges of the chunk scores (attn_decode_kernel), from mask N down to 1: lanes l and l ^ n trade
// halves of their first 2n partial sums, each keeping the half whose index bit n is its own lane bit n, and add.
template <int N, int C> __device__ __forceinline__ void halving_sums(float (&part)[C], int lane) {
  if constexpr (N >= 1) {
    const bool upper = (lane & N) != 0;
#pragma unroll
    for (int t = 0; t < N; t++) {
      const float lo = part[t], hi = part[t + N];
      part[t] = (upper ? hi : lo) + __shfl_xor_sync(0xffffffffu, upper ? lo : hi, N);
    }
    halving_sums<N / 2>(part, lane);
  }
}

// rope_cache_attention's part (null inv_freq: plain attention): this step's projections, rotated and appended by
// the kernel. q is then the kernel's q too; the kernel's k, v are the caches.
template <typename T> struct RopeAppend {
  const float* inv_freq = nullptr;  // [D/2] (rope_inv_freq_device)
  int early_loads = 0;              // 1: the first step's cache loads before pdl::enter() (see the kernel)
  T* q = nullptr;                   // the kernel's q, writable: rotated in place
  const T* k = nullptr;             // [B, 1, Hkv, D]: rotated and stored at row positions[b] of the k cache
  const T* v = nullptr;             // [B, 1, Hkv, D]: stored at row positions[b] of the v cache
  const int32_t* pos = nullptr;     // [B, 1] (a.pos is the same tensor)
  T* k_cache = nullptr;             // the kernel's k and v, writable
  T* v_cache = nullptr;
};

// A query head's keys over up to `splits` blocks (grid.x = H * splits). Where the query sees more than min_keys
// keys, block (h, part) walks the part-th of [first key, position] (contiguous, as even as may be, possibly empty),
// writes its (max, sum, unnormalised output) to part, and the head's last block to finish (count) merges the parts
// in part order (the same bits whichever finishes last), writes out, lse and the rotated query, and sets count back
// to 0 for the next launch. Otherwise block (h, 0) walks them all, as with one block a head (the same bits), and the
// other parts return at once. The choice is the device's, from the keys at this step: a replayed graph and an
// eager step make the same one. Why: one block a head streams the head's key and value rows through one SM
// (session 33: ~55 GB/s an SM), and beyond 32 W keys each warp takes two steps; 1.5B has 12 heads for 132 SMs.
// Below that the merge costs more than it saves (docs/benchmarks.md section 10, session 34).
struct DecodeSplit {
  int splits = 1;
  int min_keys = 0;       // parts only for more keys than this (decode_splits' rule: 32 W; forced: 0)
  float* part = nullptr;  // [B, H, splits, 2 + D] f32: max, sum, output (splits > 1)
  int* count = nullptr;   // [B, H]: parts done, 0 between launches (splits > 1)
};

// The block's query head h into qs as f32. With ra.inv_freq, first the RoPE and the cache append of
// rope_qk_cache_write: the query head rotated (and, with store_q, written back to q: a head whose keys are split
// over several blocks has its query written by the last of them, after all have read it), the key of kv head g
// rotated into knew and the value copied into vnew (every block of g does it for itself and attends to the new row
// from there, so that no block reads what another block writes), and one block of g (writer: the first part of
// g's first query head) stores both rows at row positions[b] of the caches. ra.k is left as it is (several blocks
// read it). Every thread loads its items (query pairs, key pairs, value elements: one each at the kernel's warp
// counts, more with fewer threads than 2 D) before the position-dependent cos/sin are needed, so the loads of the
// step's projections and of the position are in flight together. Ends with a barrier.
template <typename T, int D, int W>
__device__ __forceinline__ void load_query_head(const T* q, const RopeAppend<T>& ra, const Dims& a, int b, int h,
                                                int g, bool writer, bool store_q, float (&qs)[D],
                                                float (&cs)[2][D / 2], T* knew, T* vnew) {
  if (!ra.inv_freq) {
    for (int d = threadIdx.x; d < D; d += W * 32) qs[d] = cuda::to_f(q[((long long)b * a.H + h) * D + d]);
    __syncthreads();
    return;
  }
  constexpr int half = D / 2;
  constexpr int kItems = 2 * half + D;                  // the query's pairs, the key's pairs, the value row
  constexpr int NI = (kItems + W * 32 - 1) / (W * 32);  // items a thread
  static_assert(half <= W * 32, "cos/sin: one pair a thread");
  const T* kr = ra.k + ((long long)b * a.Hkv + g) * D;
  const T* vr = ra.v + ((long long)b * a.Hkv + g) * D;
  T* xq = ra.q + ((long long)b * a.H + h) * D;
  // Item i: query pair i (i < half), key pair i - half (i < 2 half), value element i - 2 half (i < 2 half + D).
  T x1[NI], x2[NI];
#pragma unroll
  for (int n = 0; n < NI; n++) {
    const int i = threadIdx.x + n * W * 32;
    x1[n] = T{}, x2[n] = T{};
    if (i < 2 * half) {
      const T* x = i < half ? xq : kr;
      const int j = i < half ? i : i - half;
      x1[n] = x[j], x2[n] = x[j + half];
    } else if (i < kItems) {
      x1[n] = vr[i - 2 * half];
    }
  }
  const long long p = ra.pos[b];
  if (p < 0 || p >= a.S) {
    printf("wick rope_cache_attention: positions[%d] = %lld is outside the cache's [0, %lld)\n", b, p, a.S);
    __trap();
  }
  if (threadIdx.x < half)
    cuda::rope_math::cos_sin<T>(static_cast<float>(p), ra.inv_freq[threadIdx.x], cs[0][threadIdx.x], cs[1][threadIdx.x]);
  __syncthreads();
  const long long row = ((long long)b * a.S + p) * a.Hkv * D + (long long)g * D;  // (b, p, g) in the caches
#pragma unroll
  for (int n = 0; n < NI; n++) {
    const int i = threadIdx.x + n * W * 32;
    if (i >= kItems) break;
    if (i >= 2 * half) {
      const int d = i - 2 * half;
      vnew[d] = x1[n];
      if (writer) ra.v_cache[row + d] = x1[n];
      continue;
    }
    const bool is_query = i < half;
    const int j = is_query ? i : i - half;
    float y1, y2;
    cuda::rope_math::rotate<T, false>(cuda::to_f(x1[n]), cuda::to_f(x2[n]), cs[0][j], cs[1][j], y1, y2);
    const T r1 = cuda::from_f<T>(y1), r2 = cuda::from_f<T>(y2);
    if (!is_query) {
      knew[j] = r1, knew[j + half] = r2;
      if (writer) ra.k_cache[row + j] = r1, ra.k_cache[row + j + half] = r2;
    } else {
      if (store_q) xq[j] = r1, xq[j + half] = r2;
      qs[j] = cuda::to_f(r1), qs[j + half] = cuda::to_f(r2);
    }
  }
  __syncthreads();
}

// q [B, 1, H, D], k/v [B, S, Hkv, D] -> out [B, 1, H, D], lse [B, H, 1] (may be null). grid (H * sp.splits, B), W
// warps; dynamic shared memory: the warps' value tiles, W * 32 * D * sizeof(T) bytes (decode_smem). ra: see
// RopeAppend (q, k, v may then be written by this kernel: not restrict); sp: see DecodeSplit.
template <typename T, int D, int W>
__global__ void __launch_bounds__(W * 32)
    attn_decode_kernel(const T* q, const T* k, const T* v, T* __restrict__ out, float* __restrict__ lse, Dims a,
                       RopeAppend<T> ra, DecodeSplit sp) {
  // Launched with pdl::launch. With ra.early_loads (WICK_DECODE_EARLY_LOADS, ops/attention.h) the position and
  // the first step's cache rows are read BEFORE pdl::enter(), overlapping the tail of the kernel before (the q|k|v
  // projection): the cache rows below positions[b] were appended by earlier steps and positions[] was copied in
  // before the step's first kernel, so neither is written by that kernel nor by the one before it - and when this
  // kernel starts, the one before that has finished (pdl::enter waits, then lets the next kernel start). The
  // step's own q, k, v (that kernel's outputs) are read after pdl::enter(), in load_query_head.
  const bool early = ra.inv_freq && ra.early_loads;
  if (!early) pdl::enter();
  using namespace cp_async;
  constexpr int DPL = D / 32;                          // dims a lane owns in P.V
  constexpr int E = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte chunk
  constexpr int C = D / E;                             // chunks a row
  extern __shared__ __align__(16) unsigned char decode_tiles[];
  __shared__ __align__(16) float qs[D];
  __shared__ float ms[W], ls[W];
  __shared__ float cs[2][D / 2];              // RoPE's cos and sin (ra.inv_freq)
  __shared__ __align__(16) T knew[D], vnew[D];  // the appended key and value row (ra.inv_freq)
  __shared__ int merger;                         // parts > 1: this block finished its head's parts last
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int b = blockIdx.y, h = blockIdx.x / sp.splits, part = blockIdx.x - h * sp.splits, g = h / a.n_rep;
  T* tile = reinterpret_cast<T*>(decode_tiles) + warp * 32 * D;  // this warp's value rows [32][D]
  const int pos = query_pos(a, b, 0);
  // The keys the query sees, [first_key_at, pos], or this block's part of them (possibly none); the parts of this
  // step (DecodeSplit): one, or all of the grid's.
  int key_lo = first_key_at(a, pos), key_end = pos + 1;
  const int parts = key_end - key_lo > sp.min_keys ? sp.splits : 1;
  if (part >= parts) {  // nothing to do at this step
    if (early) pdl::enter();  // (without the early loads it was called above)
    return;
  }
  if (parts > 1) {
    const int per = (key_end - key_lo + parts - 1) / parts;
    key_lo = min(key_lo + part * per, key_end);
    key_end = min(key_lo + per, key_end);
  }
  // The key read from knew / vnew instead of the caches: the appended row (positions[b]; pos is it clamped to
  // kv_len - 1, so a position past kv_len, whose row the two ops would not attend to either, matches no key).
  const int fresh = ra.inv_freq ? ra.pos[b] : -1;
  const long long kv_b = (long long)b * a.S * a.Hkv * D + (long long)g * D;  // k/v of (b, key 0, g)
  const long long kv_row = (long long)a.Hkv * D;

  // Keys a warp takes a step: as few as spread the keys evenly over the warps in the fewest steps (kpw <= 32).
  // Warp w's step s: the keys from k0 = key_lo + (s W + w) kpw, below k_stop = min(k0 + kpw, key_end).
  const int n_keys = key_end - key_lo;  // >= 1 with one part (the query sees itself); a part may have none
  const int steps = (n_keys + 32 * W - 1) / (32 * W);
  const int kpw = n_keys > 0 ? (n_keys + steps * W - 1) / (steps * W) : 1;
  // Step k0's loads: the value rows into the tile (consecutive lanes: consecutive 16-byte chunks of a row; the
  // fresh row zero-filled, never read), and the lane's chunk kc of the keys k0 + i * KPI + kh (i < C) into kr[i]
  // (zero past k_stop and for the fresh key), so that a warp-wide load reads KPI whole rows.
  constexpr int KPI = 32 / C;  // keys a warp-wide load covers
  static_assert(C <= 32 && 32 % C == 0, "a key row is 1 to 32 chunks, a power of two");
  const int kc = lane % C, kh = lane / C;
  uint4 kr[C];
  const auto issue = [&](int k0) {
    const int k_stop = min(k0 + kpw, key_end);
#pragma unroll 4
    for (int i = lane; i < kpw * C; i += 32) {
      const int j = i / C, c = i - j * C, key = k0 + j;
      const bool ok = key < k_stop && key != fresh;
      cp_async16(smem_u32(tile + j * D + c * E), ok ? v + kv_b + key * kv_row + c * E : v, ok);
    }
    cp_async_commit();
#pragma unroll
    for (int i = 0; i < C; i++) {
      const int key = k0 + i * KPI + kh;
      kr[i] = key < k_stop && key != fresh ? __ldcg(reinterpret_cast<const uint4*>(k + kv_b + key * kv_row + kc * E))
                                            : make_uint4(0, 0, 0, 0);
    }
  };
  const int k_first = key_lo + warp * kpw;
  if (k_first < key_end) issue(k_first);
  if (early) pdl::enter();
  load_query_head<T, D, W>(q, ra, a, b, h, g, part == 0 && h % a.n_rep == 0, parts == 1, qs, cs, knew, vnew);

  float qc[E];  // the query's chunk kc
#pragma unroll
  for (int e = 0; e < E; e++) qc[e] = qs[kc * E + e];
  float m = -INFINITY, l = 0.0f, acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; i++) acc[i] = 0.0f;
  for (int k0 = k_first; k0 < key_end; k0 += W * kpw) {
    if (k0 != k_first) issue(k0);
    // Scores: lane j ends with key k0 + j's.
    const int k_stop = min(k0 + kpw, key_end);
    const int key = k0 + lane;
    const bool ok = key < k_stop;
    // Each lane's chunk products of its C keys (the fresh key's chunk from knew), then the C lanes of a key sum
    // them by halving exchanges: after the step of mask n a lane keeps the half of its partial sums whose index
    // has the lane's bit n, so at the end lane l holds the whole score of key index i = l % C, which the last
    // shuffle brings to lane i * KPI + kh.
    float part[C];
#pragma unroll
    for (int i = 0; i < C; i++) {
      if (k0 + i * KPI + kh == fresh) kr[i] = *reinterpret_cast<const uint4*>(knew + kc * E);
      float kf[E];
      vec16::unpack(kr[i], static_cast<const T*>(nullptr), kf);
      float p = 0.0f;
#pragma unroll
      for (int e = 0; e < E; e++) p = fmaf(qc[e], kf[e], p);
      part[i] = p;
    }
    halving_sums<C / 2>(part, lane);
    const float s = __shfl_sync(0xffffffffu, part[0], (lane % KPI) * C + lane / KPI);
    // Online softmax; every step of a warp has its first key (lane 0) inside [key_lo, key_end).
    const float sh = ok ? s * a.scale : -INFINITY;
    const float m_new = fmaxf(m, cuda::warp_max(sh));
    const float p = ok ? expf(sh - m_new) : 0.0f;
    const float alpha = expf(m - m_new);  // 0 on the first step (m = -inf)
    l = l * alpha + cuda::warp_sum(p);
    m = m_new;
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[i] *= alpha;
    // P.V, lane per DPL consecutive dims, from the tile (the fresh row from vnew).
    cp_async_wait<0>();
    __syncwarp();
    const int jn = k_stop - k0;
#pragma unroll 4
    for (int j = 0; j < jn; j++) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
      VSlice<T, DPL> vs;
      vs.load((k0 + j == fresh ? vnew : tile + j * D) + lane * DPL);
      float vf[DPL];
      vs.get(vf);
#pragma unroll
      for (int i = 0; i < DPL; i++) acc[i] = fmaf(pj, vf[i], acc[i]);
    }
    __syncwarp();  // the tile is refilled by the next step
  }

  // Merge the warps' parts (a warp without keys has m = -inf, l = 0, acc = 0), each warp's accumulator in its own
  // value tile (its last cp.async has landed: waited above; a warp without keys issued none).
  float* accs = reinterpret_cast<float*>(decode_tiles);  // [W][32 * D * sizeof(T) / 4] floats, row w's first D used
  constexpr int kTileFloats = 32 * D * static_cast<int>(sizeof(T)) / 4;
  if (lane == 0) ms[warp] = m, ls[warp] = l;
#pragma unroll
  for (int i = 0; i < DPL; i++) accs[warp * kTileFloats + lane * DPL + i] = acc[i];
  __syncthreads();
  const long long bh = (long long)b * a.H + h;
  float* my_part = parts > 1 ? sp.part + (bh * sp.splits + part) * (2 + D) : nullptr;
  for (int d = threadIdx.x; d < D; d += W * 32) {
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < W; w++) M = fmaxf(M, ms[w]);
    // M is finite when some warp has keys (always with one part); a part without keys sums zeros.
    const float M0 = M == -INFINITY ? 0.0f : M;
    float L = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < W; w++) {
      // No branch, so that the loads and exponentials of all warps can be in flight together: a warp without keys
      // adds 0 * 0, which leaves L and o as they are.
      const float f = expf(ms[w] - M0);
      L += ls[w] * f;
      o += accs[w * kTileFloats + d] * f;
    }
    if (parts > 1) {
      my_part[2 + d] = o;
      if (d == 0) my_part[0] = M, my_part[1] = L;
      continue;
    }
    const float inv_l = L > 0.0f ? 1.0f / L : 0.0f;
    out[bh * D + d] = cuda::from_f<T>(o * inv_l);
    if (lse && d == 0) lse[bh] = L > 0.0f ? M + logf(L) : -INFINITY;
  }
  if (parts == 1) return;

  // The head's last block to finish merges the parts (the fence orders this block's part before its count, the
  // reader's fence its reads after the count it saw: the pattern of CUDA's threadFenceReduction sample).
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) merger = atomicAdd(sp.count + bh, 1) == parts - 1;
  __syncthreads();
  if (!merger) return;
  __threadfence();
  const float* head_parts = sp.part + bh * sp.splits * (2 + D);
  for (int d = threadIdx.x; d < D; d += W * 32) {
    float M = -INFINITY;
    for (int s = 0; s < parts; s++) M = fmaxf(M, __ldcg(head_parts + s * (2 + D)));  // finite: pos's part has a key
    float L = 0.0f, o = 0.0f;
    for (int s = 0; s < parts; s++) {
      const float f = expf(__ldcg(head_parts + s * (2 + D)) - M);
      L += __ldcg(head_parts + s * (2 + D) + 1) * f;
      o += __ldcg(head_parts + s * (2 + D) + 2 + d) * f;
    }
    out[bh * D + d] = cuda::from_f<T>(o * (1.0f / L));
    if (lse && d == 0) lse[bh] = M + logf(L);
    if (ra.inv_freq) ra.q[bh * D + d] = cuda::from_f<T>(qs[d]);  // every part has read q: the rotated query
  }
  if (threadIdx.x == 0) sp.count[bh] = 0;
}

// Warps a block: kDecodeWarps, or 8 for f32 at D 128 so that the value tiles stay at 128 KB; and those tiles' bytes
// (the kernel's dynamic shared memory). elem: sizeof(T).
constexpr int decode_warps(int elem, int D) { return elem * D > 256 ? 8 : kDecodeWarps; }
constexpr int decode_smem(int elem, int D) { return decode_warps(elem, D) * 32 * D * elem; }
constexpr int kDecodeStaticSmem = 4096;  // the kernel's static shared memory, at most (~2 KB at D 128, f32)

// The keys a query of these dims may see, at most: the window, or every key up to kv_len (the cache's capacity when
// the positions are on the device).
int max_span(const Dims& a) { return a.window > 0 ? std::min(a.window, a.kv_len) : a.kv_len; }

// The grid's parts a query head (DecodeSplit::splits) and the keys from which they are used (min_keys):
// WICK_DECODE_SPLITS / set_decode_splits where set (parts at every step: min_keys 0), else none where no query
// can see more than one step of all the warps (32 W keys), and otherwise the largest power of two up to
// kDecodeMaxSplits that keeps the grid (B H parts: one block an SM at 16 warps) within the SMs, used beyond 32 W
// keys. Measured in the decode loop (H100, session 34, wick generate + 256 new tokens): 8 parts at every step are
// 3.7% (1.5B) and 7.5% (0.5B) slower with a 128-token prompt; beyond 512 keys they win: with a 760-token prompt
// 1.5B 604 -> 643 tok/s, 0.5B 1,272 -> 1,360 (500: +3.6% and +1.3%).
DecodeSplit decode_splits(const Dims& a, int elem, int device) {
  DecodeSplit sp;
  const int forced = wick::decode_splits_forced();
  if (forced > 0) {
    sp.splits = forced;
    return sp;
  }
  const int one_step = 32 * decode_warps(elem, a.D);
  if (max_span(a) <= one_step) return sp;
  const long long heads = (long long)a.B * a.H;
  while (sp.splits < kDecodeMaxSplits && heads * sp.splits * 2 <= cuda::sm_count(device)) sp.splits *= 2;
  sp.min_keys = one_step;
  return sp;
}

// sp's workspace (part and count) on this device, grown as needed; the counts are zeroed when allocated and each
// launch leaves them at 0. Not grown while a graph is being captured (the first eager step of a decode loop grows
// it): that is an error that says so. A block it outgrows is kept, not freed (a few KB a head): a graph captured
// with it, whose loop is still alive, may replay it.
void split_workspace(int device, cudaStream_t s, long long heads, int D, DecodeSplit& sp) {
  struct Ws {
    void* p = nullptr;
    size_t heads = 0, part_floats = 0;
  };
  static std::mutex mu;
  static std::vector<Ws> per_device;
  std::lock_guard<std::mutex> lock(mu);
  if (per_device.empty()) per_device.resize(std::max(1, cuda_device_count()));
  Ws& w = per_device.at(device);
  const size_t want_heads = static_cast<size_t>(heads), want_floats = static_cast<size_t>(heads) * sp.splits * (2 + D);
  if (!w.p || w.heads < want_heads || w.part_floats < want_floats) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    WICK_CUDA_CHECK(cudaStreamIsCapturing(s, &cs));
    if (cs != cudaStreamCaptureStatusNone)
      throw Error("decode attention: its split workspace must grow (" + std::to_string(want_heads) +
                  " heads) while a CUDA graph is being captured; run one step of that shape before capturing");
    w.heads = std::max(w.heads, want_heads);
    w.part_floats = std::max(w.part_floats, want_floats);
    cuda::alloc_or_explain(&w.p, w.heads * sizeof(int) + w.part_floats * sizeof(float), device, s,
                           "decode attention's split workspace");
    WICK_CUDA_CHECK(cudaMemsetAsync(w.p, 0, w.heads * sizeof(int), s));
  }
  sp.count = static_cast<int*>(w.p);
  sp.part = reinterpret_cast<float*>(static_cast<int*>(w.p) + w.heads);
}

bool decode_attention_on() {
  static const bool on = env_default_on("WICK_DECODE_ATTENTION");
  return on;
}

bool aligned16(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0; }

// Whether the one-launch kernel takes a call with these dims (k, v: what it reads the keys and values from).
bool decode_kernel_applies(const Tensor& k, const Tensor& v, const Dims& a) {
  const int span = max_span(a);
  return decode_attention_on() && a.T == 1 && (a.D == 64 || a.D == 128) && !a.seg &&
         span <= kDecodeMaxKeys && a.B <= 65535 && aligned16(k) && aligned16(v) &&
         decode_smem(static_cast<int>(dtype_size(k.dtype())), a.D) + kDecodeStaticSmem <=
             cuda::max_shared_memory_optin(k.device().index);
}

// One launch of the kernel (decode_kernel_applies said yes); ra.inv_freq null: plain attention.
template <typename T>
void launch_decode(const T* q, const T* k, const T* v, T* out, float* lse, const Dims& a, const RopeAppend<T>& ra,
                   int device, cudaStream_t s) {
  DecodeSplit sp = decode_splits(a, static_cast<int>(sizeof(T)), device);
  if (sp.splits > 1) split_workspace(device, s, (long long)a.B * a.H, a.D, sp);
  const auto go = [&](auto d_tag) {
    constexpr int D = decltype(d_tag)::value, elem = sizeof(T);
    constexpr int W = decode_warps(elem, D), smem = decode_smem(elem, D);
    const auto kernel = attn_decode_kernel<T, D, W>;
    prepare_smem(kernel, smem, device);
    WICK_CUDA_CHECK(pdl::launch(kernel, dim3(a.H * sp.splits, a.B), dim3(W * 32), smem, s, q, k, v, out, lse, a, ra, sp));
  };
  if (a.D == 64) go(std::integral_constant<int, 64>{});
  else go(std::integral_constant<int, 128>{});
}

}  // namespace

bool decode_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const attn::Dims& a, Tensor& out,
                              Tensor* lse) {
  if (!decode_kernel_applies(k, v, a)) return false;
  float* lse_p = lse ? cuda::ptr<float>(*lse) : nullptr;
  cuda::dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_decode<T>(cuda::cptr<T>(q), cuda::cptr<T>(k), cuda::cptr<T>(v), cuda::ptr<T>(out), lse_p, a, RopeAppend<T>{},
                     out.device().index, cuda::stream_of(out));
  });
  return true;
}

bool rope_cache_attention(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                          Tensor& k_cache, Tensor& v_cache, const AttentionArgs& args, Tensor& out, Tensor* lse) {
  static const bool on = env_default_on("WICK_ROPE_ATTENTION");
  // The kernel attends at the positions it appends at: a decode step with its positions on the device.
  if (!on || q.dim(1) != 1 || !args.positions || args.positions->raw() != positions.raw() || args.segments ||
      positions.dtype() != DType::I32)
    return false;
  const int64_t B = k.dim(0), S = k_cache.dim(1), Hkv = k.dim(2), D = k.dim(3);
  const Tensor kc4 = k_cache.view({B, S, Hkv, D}), vc4 = v_cache.view({B, S, Hkv, D});
  const Dims a = make_dims(q, kc4, args);
  if (a.B == 0 || a.H == 0 || !decode_kernel_applies(kc4, vc4, a)) return false;
  const float* inv = rope_inv_freq_device(out.device().index, f, static_cast<int>(D));
  float* lse_p = lse ? cuda::ptr<float>(*lse) : nullptr;
  cuda::dispatch_float(q.dtype(), "rope_cache_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    RopeAppend<T> ra;
    ra.inv_freq = inv;
    ra.q = cuda::ptr<T>(q);
    ra.k = cuda::ptr<T>(k);
    ra.v = cuda::cptr<T>(v);
    ra.pos = cuda::cptr<int32_t>(positions);
    ra.k_cache = cuda::ptr<T>(k_cache);
    ra.v_cache = cuda::ptr<T>(v_cache);
    ra.early_loads = wick::decode_early_loads() ? 1 : 0;
    launch_decode<T>(ra.q, ra.k_cache, ra.v_cache, cuda::ptr<T>(out), lse_p, a, ra, out.device().index,
                     cuda::stream_of(out));
  });
  return true;
}

}  // namespace wick::cuda_ops
