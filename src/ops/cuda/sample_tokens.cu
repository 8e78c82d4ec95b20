// sample_tokens on CUDA (ops/sampling.h): Hugging Face's sampling processors and one seeded draw, per row, with
// the CPU twin's result token for token (ops/cpu/sampling.cpp; the shared arithmetic is ops/sampling_rule.h).
//
// One block of 1024 threads per row; nothing is sorted and nothing is written but the token. Every pass
// re-reads the row's logits (and history mask) from L2 and recomputes the scores and weights, which is cheaper
// than a scratch row and keeps the op allocation-free:
//   A  scores s (penalty, temperature): the first non-finite logit, the maximum and its first index (greedy
//      rows end here, with greedy_tokens' result), and top-k's first histogram. For greedy rows a launch before
//      (greedy_split_kernel) has already split this pass over many blocks, their partial results in the
//      runtime's scratch buffer; the row's block only combines them.
//   top-k: the k-th largest score by a radix select over the scores' order-preserving 32-bit keys (11/11/10-bit
//      digits, a count histogram each): keep s >= it, every tie. When at most 1024 tokens are left (a small k,
//      or V <= 1024), they are gathered into shared memory and the rest of the rule runs over them, a token a
//      thread (compact_rule: order statistics by counting); otherwise the passes below run over the row.
//   top-p: the normaliser Z1 of the kept weights e = exp(s - max), then a radix search over the 64-bit candidate
//      key (score, then higher id first) with a histogram of exact fixed-point masses p = e / Z1: the first key
//      at which the ascending cumulative mass reaches the crossing mass; the id digits are searched only when
//      more than one token holds the crossing score
//   min-p: the normaliser Z2 of what is left, then keep p = e / Z2 >= min_p * (1 / Z2) (the top weight is 1)
//   draw: the final normaliser Z3, the target u Z3 / 2^64, then each thread sums the weights of a contiguous id
//      range, a block scan finds the range holding the target, and its thread walks it in id order.
// All sums are integer sums (exact): the order of a parallel reduction cannot change a result. Each pass keeps
// 4 loads a thread in flight (for_scores); with a penalty, pass A packs the history mask into a shared-memory
// bitmap that the later passes read instead of the [V] i32 mask (V <= 180k).
// sample_tokens_pooled (ops/sampling_pool.h) is the same kernel with row r's history at pool row seen_rows[r];
// mark_tokens and subtract_at, the serving scheduler's two scatters, are at the end.
#include <climits>
#include <cmath>

#include "core/env.h"
#include "ops/cuda/argmax.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.cuh"
#include "ops/sampling_pool.h"
#include "ops/sampling_rule.h"

namespace wick::cuda_ops {
namespace {

using namespace sampling_rule;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 2048;  // 11-bit digits: each thread owns two bins
constexpr unsigned kFull = 0xffffffffu;

// ---- block reductions and scans (every thread calls them; the result is every thread's) ----

using argmax::Best;
using argmax::block_best;

__device__ __forceinline__ U128 shfl_up(U128 v, int off) {
  U128 r;
  r.lo = __shfl_up_sync(kFull, v.lo, off);
  r.hi = __shfl_up_sync(kFull, v.hi, off);
  return r;
}
// Exclusive prefix sum over the block's threads in thread order; *total gets the sum of all.
__device__ U128 block_exclusive_scan(U128 v, U128* sh, U128* total) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  U128 inc = v;
  for (int off = 1; off < 32; off <<= 1) {
    const U128 o = shfl_up(inc, off);
    if (lane >= off) inc = add(inc, o);
  }
  __syncthreads();
  if (lane == 31) sh[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    U128 w = sh[lane], winc = w;
    for (int off = 1; off < 32; off <<= 1) {
      const U128 o = shfl_up(winc, off);
      if (lane >= off) winc = add(winc, o);
    }
    // exclusive warp offsets: winc - w
    U128 ex;
    ex.lo = winc.lo - w.lo;
    ex.hi = winc.hi - w.hi - (winc.lo < w.lo ? 1u : 0u);
    sh[lane] = ex;
    if (lane == 31) sh[32] = winc;
  }
  __syncthreads();
  U128 ex_in_warp;
  ex_in_warp.lo = inc.lo - v.lo;
  ex_in_warp.hi = inc.hi - v.hi - (inc.lo < v.lo ? 1u : 0u);
  const U128 r = add(sh[warp], ex_in_warp);
  *total = sh[32];
  __syncthreads();
  return r;
}

__device__ U128 block_sum(U128 v, U128* sh) {
  U128 total;
  block_exclusive_scan(v, sh, &total);
  return total;
}

// ---- the row's rule ----

struct Rule {
  const float* row;
  const int* mark;        // history mask, or null (no penalty)
  const unsigned* bits;   // the same as a bitmap in shared memory once pass A built it, else null
  unsigned* build_bits;   // pass A: where to build it (null: no bitmap)
  float penalty, temperature;
  float m;               // the maximum score
  uint32_t kth_key;      // top-k: keep score_key(s) >= this (0: all)
  bool top_p;
  uint64_t cut;          // top-p: keep cand_key >= this
  bool min_p;
  float norm2, thr;      // min-p: keep e / norm2 >= thr
};

// The score of logit x (seen: the token is in the history).
__device__ __forceinline__ float score_of(const Rule& q, float x, bool seen) {
  float s = x;
  if (seen) s = s < 0.0f ? fmul(s, q.penalty) : fdiv(s, q.penalty);
  if (q.temperature != 1.0f) s = fdiv(s, q.temperature);
  return s;
}
__device__ __forceinline__ bool seen_at(const Rule& q, long long i) {
  if (q.bits) return (q.bits[i >> 5] >> (i & 31)) & 1u;
  return q.mark && q.mark[i] != 0;
}
__device__ __forceinline__ float score_at(const Rule& q, long long i) { return score_of(q, q.row[i], seen_at(q, i)); }

// Calls f(i, s, x) for every token i in [lo, hi) of the row (s its score, x its logit), kUnroll loads in flight
// per thread before any is used (one load at a time would leave a pass waiting on L2 latency). A warp takes
// kUnroll * 32 consecutive ids a step (coalesced), each thread's ids ascend, and whole warps step together: lanes
// past hi get i = -1, so f may call warp-collective helpers. kBlock: the block's threads.
constexpr int kUnroll = 4;
template <int kBlock, class F>
__device__ __forceinline__ void for_scores_in(const Rule& q, long long lo, long long hi, F&& f) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (long long base = lo + static_cast<long long>(warp) * 32 * kUnroll; base < hi;
       base += static_cast<long long>(kBlock) * kUnroll) {
    float x[kUnroll];
    bool seen[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      const long long i = base + u * 32 + lane;
      x[u] = i < hi ? __ldg(q.row + i) : 0.0f;
      seen[u] = i < hi && seen_at(q, i);
    }
    if (q.build_bits) {  // pass A: the warp's 32 marks of each step are one bitmap word
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        const unsigned word = __ballot_sync(kFull, seen[u]);
        if (lane == 0 && base + u * 32 < hi) q.build_bits[(base + u * 32) >> 5] = word;
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      const long long i = base + u * 32 + lane;
      f(i < hi ? i : -1LL, score_of(q, x[u], seen[u]), x[u]);
    }
  }
}
// The whole row, by the main kernel's kThreads.
template <class F>
__device__ __forceinline__ void for_scores(const Rule& q, long long V, F&& f) {
  for_scores_in<kThreads>(q, 0, V, f);
}

// Stage 1: after top-k; 2: after top-p; 3: after min-p. The weight exp(s - max) of token i with score s if it
// is kept, else 0.
__device__ __forceinline__ float kept_weight_of(const Rule& q, long long i, float s, int stage) {
  if (s == -INFINITY || score_key(s) < q.kth_key) return 0.0f;
  if (stage >= 2 && q.top_p && cand_key(s, static_cast<uint32_t>(i)) < q.cut) return 0.0f;
  const float e = rule_exp(fsub(s, q.m));
  if (stage >= 3 && q.min_p && e > 0.0f && fdiv(e, q.norm2) < q.thr) return 0.0f;
  return e;
}
__device__ __forceinline__ float kept_weight(const Rule& q, long long i, int stage) {
  return kept_weight_of(q, i, score_at(q, i), stage);
}

__device__ U128 weight_sum(const Rule& q, long long V, int stage, U128* sh) {
  U128 z{};
  for_scores(q, V, [&](long long i, float s, float) {
    if (i < 0) return;
    const float e = kept_weight_of(q, i, s, stage);
    if (e > 0.0f) z = add(z, fixed96(e));
  });
  return block_sum(z, sh);
}

// After a small top-k (at most kThreads tokens kept) the rest of the rule runs over those tokens alone, one a
// thread, from shared memory (the histograms' space: they are done by then).
struct Compact {
  int id[kThreads];
  float e[kThreads];
  unsigned long long key[kThreads];
  unsigned long long mass[kThreads];
};

struct Shared {
  union {
    struct {
      unsigned long long mass[kBins];
      unsigned int count[kBins];
    };
    Compact c;
  };
  int n_cand;
  unsigned long long cut;
  U128 scan[33];
  Best best[kWarps];
  // the digit search's answer
  int digit;
  unsigned long long before;  // count or mass of the bins before the chosen one (in search order)
  unsigned int digit_count;
};

// The histograms (count, and mass when with_mass) are complete; finds the bin where the running sum, in
// ascending bin order (descending when desc), first reaches `need` (counts when !with_mass). Sets sh.digit
// (-1 when the total never reaches it), sh.before and sh.digit_count.
__device__ void find_bin(Shared& sh, int nbins, bool desc, bool with_mass, unsigned long long need) {
  const int t = threadIdx.x;
  // thread t owns positions 2t, 2t + 1 of the search order
  auto bin_of = [&](int pos) { return desc ? nbins - 1 - pos : pos; };
  auto val = [&](int pos) -> unsigned long long {
    if (pos >= nbins) return 0;
    const int b = bin_of(pos);
    return with_mass ? sh.mass[b] : sh.count[b];
  };
  const unsigned long long v0 = val(2 * t), v1 = val(2 * t + 1);
  U128 total;
  if (t == 0) sh.digit = -1;
  const U128 ex = block_exclusive_scan(U128{v0 + v1, 0}, sh.scan, &total);  // sums < 2^64: the masses < 2^63
  const unsigned long long before = ex.lo;
  if (2 * t < nbins && before < need && before + v0 >= need) {
    sh.digit = bin_of(2 * t);
    sh.before = before;
    sh.digit_count = sh.count[bin_of(2 * t)];
  } else if (2 * t + 1 < nbins && before + v0 < need && before + v0 + v1 >= need) {
    sh.digit = bin_of(2 * t + 1);
    sh.before = before + v0;
    sh.digit_count = sh.count[bin_of(2 * t + 1)];
  }
  __syncthreads();
}

__device__ void clear_bins(Shared& sh) {
  for (int b = threadIdx.x; b < kBins; b += kThreads) sh.mass[b] = 0, sh.count[b] = 0;
  __syncthreads();
}

// Adds v to sh.mass[bin] (and 1 to sh.count[bin]) for every lane with bin >= 0, one atomic per distinct bin of
// the warp: the scores of a row crowd into a few high-digit bins, where per-lane atomics would serialise. The
// lanes of one bin sum their masses with __reduce_add_sync (sm_80+) in three 21-bit pieces (a mass is below
// 2^63; 32 pieces of 21 bits fit 32 bits), exactly. All lanes call it.
__device__ __forceinline__ void add_mass(Shared& sh, int bin, unsigned long long v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  if (bin >= 0) atomicAdd(&sh.mass[bin], v), atomicAdd(&sh.count[bin], 1u);  // correct, slower
#else
  if (!__any_sync(kFull, bin >= 0)) return;
  const unsigned peers = __match_any_sync(kFull, bin);
  const unsigned c0 = __reduce_add_sync(peers, static_cast<unsigned>(v & 0x1fffffu));
  const unsigned c1 = __reduce_add_sync(peers, static_cast<unsigned>((v >> 21) & 0x1fffffu));
  const unsigned c2 = __reduce_add_sync(peers, static_cast<unsigned>(v >> 42));
  if (bin >= 0 && static_cast<int>(threadIdx.x % 32) == __ffs(peers) - 1) {
    atomicAdd(&sh.mass[bin], c0 + (static_cast<unsigned long long>(c1) << 21) + (static_cast<unsigned long long>(c2) << 42));
    atomicAdd(&sh.count[bin], static_cast<unsigned>(__popc(peers)));
  }
#endif
}

// The same for a count alone (top-k's histogram).
__device__ __forceinline__ void add_count(Shared& sh, int bin) {
  const unsigned peers = __match_any_sync(kFull, bin);
  if (bin >= 0 && threadIdx.x % 32 == __ffs(peers) - 1) atomicAdd(&sh.count[bin], static_cast<unsigned>(__popc(peers)));
}

// Top-k's threshold: the k-th largest score key over every token (ties counted), as the CPU's nth_element.
// *n_ge: how many tokens have a key >= it (k and the k-th's ties beyond).
// The first digit's histogram is pass A's (it counts score_key(s) >> 21 of every token).
__device__ uint32_t kth_score_key(const Rule& q, long long V, int k, Shared& sh, long long* n_ge) {
  const int shifts[3] = {21, 10, 0}, widths[3] = {11, 11, 10};
  uint32_t prefix = 0, mask = 0;
  unsigned long long need = static_cast<unsigned long long>(k), above = 0;
  for (int pass = 0; pass < 3; pass++) {
    const int nb = 1 << widths[pass];
    if (pass > 0) {
      clear_bins(sh);
      for_scores(q, V, [&](long long i, float s, float) {
        const uint32_t key = score_key(s);
        const int bin = i >= 0 && (key & mask) == prefix ? static_cast<int>((key >> shifts[pass]) & static_cast<uint32_t>(nb - 1)) : -1;
        add_count(sh, bin);
      });
    }
    __syncthreads();
    find_bin(sh, nb, /*desc=*/true, /*with_mass=*/false, need);
    // k < V: the k-th largest exists, so the search always lands
    need -= sh.before;
    above += sh.before;
    prefix |= static_cast<uint32_t>(sh.digit) << shifts[pass];
    mask |= static_cast<uint32_t>(nb - 1) << shifts[pass];
    *n_ge = static_cast<long long>(above + sh.digit_count);
    __syncthreads();
  }
  return prefix;
}

// The rest of the rule over the kept tokens of a small top-k, one a thread (thread t < n holds token t of
// sh.c, in no particular order): top-p's cut, min-p, and the draw, with the full path's arithmetic. Order
// statistics come from counting over all n tokens (n <= kThreads: n steps a thread).
__device__ void compact_rule(const SampleRow* prow, uint64_t top_key, Shared& sh, int* out_id) {
  const int t = threadIdx.x, n = sh.n_cand;
  const bool have = t < n;
  const float e = have ? sh.c.e[t] : 0.0f;
  const unsigned long long key = have ? sh.c.key[t] : 0;
  bool kept = have && e > 0.0f;
  if (prow->top_p < 1.0f) {
    const float norm1 = fixed_to_float(block_sum(kept ? fixed96(e) : U128{}, sh.scan), 96);
    const uint64_t cross = crossing_mass(prow->top_p_cut);
    const unsigned long long mass = kept ? fixed62(fdiv(e, norm1)) : 0;
    if (have) sh.c.mass[t] = mass;
    if (t == 0) sh.cut = top_key;
    __syncthreads();
    if (kept) {
      unsigned long long cum = 0;  // mass at keys <= mine (sums < 2^63)
      for (int u = 0; u < n; u++)
        if (sh.c.key[u] <= key) cum += sh.c.mass[u];
      if (cum >= cross && cum - mass < cross) sh.cut = key;  // the first key the cumulative mass reaches it at
    }
    __syncthreads();
    kept = kept && key >= sh.cut;
  }
  if (prow->min_p > 0.0f) {
    const float norm2 = fixed_to_float(block_sum(kept ? fixed96(e) : U128{}, sh.scan), 96);
    const float thr = fmul(prow->min_p, fdiv(1.0f, norm2));
    kept = kept && !(fdiv(e, norm2) < thr);
  }
  // the draw: the weights in ascending id order
  if (have) sh.c.e[t] = kept ? e : 0.0f;
  const U128 mine = kept ? fixed96(e) : U128{};
  const U128 total = block_sum(mine, sh.scan);  // syncs: every thread's weight is written
  const uint64_t seed = (uint64_t{prow->seed_hi} << 32) | prow->seed_lo;
  const uint64_t draws = (uint64_t{prow->draws_hi} << 32) | prow->draws_lo;
  const U128 target = draw_target(draw_bits(seed, draws), total);
  if (kept) {
    const int id = sh.c.id[t];
    U128 before{};
    for (int u = 0; u < n; u++)
      if (sh.c.id[u] < id && sh.c.e[u] > 0.0f) before = add(before, fixed96(sh.c.e[u]));
    if (!greater(before, target) && greater(add(before, mine), target)) *out_id = id;
  }
}

// Top-p's cut: the smallest candidate key (among tokens with e > 0) at which the ascending cumulative mass of
// p = e / norm1 reaches `cross`, or the top token's key when the whole mass does not (keep the top alone).
__device__ uint64_t top_p_cut(const Rule& q, long long V, float norm1, uint64_t cross, uint64_t top_key, Shared& sh) {
  const int shifts[6] = {53, 42, 32, 21, 10, 0}, widths[6] = {11, 11, 10, 11, 11, 10};
  uint64_t prefix = 0, mask = 0;
  unsigned long long need = cross;
  for (int pass = 0; pass < 6; pass++) {
    clear_bins(sh);
    const int nb = 1 << widths[pass];
    for_scores(q, V, [&](long long i, float s, float) {  // add_mass is warp-collective: every lane calls it
      int bin = -1;
      unsigned long long mass = 0;
      if (i >= 0) {  // kept_weight_of(q, i, s, 1) with the prefix test before the exp
        const uint64_t key = cand_key(s, static_cast<uint32_t>(i));
        if (s != -INFINITY && score_key(s) >= q.kth_key && (key & mask) == prefix) {
          const float e = rule_exp(fsub(s, q.m));
          if (e > 0.0f) {
            bin = static_cast<int>((key >> shifts[pass]) & static_cast<uint64_t>(nb - 1));
            mass = fixed62(fdiv(e, norm1));
          }
        }
      }
      add_mass(sh, bin, mass);
    });
    __syncthreads();
    find_bin(sh, nb, /*desc=*/false, /*with_mass=*/true, need);
    if (sh.digit < 0) return top_key;  // only in the first pass: the total mass never reaches it
    need -= sh.before;
    prefix |= static_cast<uint64_t>(sh.digit) << shifts[pass];
    mask |= static_cast<uint64_t>(nb - 1) << shifts[pass];
    const bool alone = sh.digit_count == 1;
    __syncthreads();
    // The score is known after pass 2; one token holding it is the crossing token, whatever its id.
    if (pass == 2 && alone) return prefix;
  }
  return prefix;
}

// Row r's history mask: row r of seen, or (pooled) the pool row seen_rows[r], -1 = none; null without one.
template <class I>  // int or const int
__device__ __forceinline__ I* history_of(I* seen, const int* seen_rows, long long r, long long V) {
  const long long hist = seen_rows ? seen_rows[r] : r;
  return seen && hist >= 0 ? seen + hist * V : nullptr;
}

// Pass A's test of one token: a bad logit (NaN, +inf) is remembered by index, otherwise the score competes.
// Called in ascending id order per thread, so the first index of the maximum is kept.
__device__ __forceinline__ void take_score(Best& me, long long i, float s, float x) {
  if (isnan(x) || x == INFINITY) {
    me.bad = min(me.bad, static_cast<int>(i));
    return;
  }
  if (me.i == INT_MAX || s > me.s) me.s = s, me.i = static_cast<int>(i);
}

// Pass A of the greedy rows, split over many blocks. One block reads a whole row in the kernel below, and one
// SM keeps too few loads in flight for a 152k-token row: at batch 1 that pass alone took ~40 us of a ~0.7 ms
// 0.5B decode step (ncu, session 20). Here block (p, r) scores ids [p kSplitChunk, (p + 1) kSplitChunk) of row
// r as pass A does and writes its Best to part[r P + p]; the main kernel combines the P of a greedy row. Best's
// combination (argmax::better) does not depend on the order, so the token is the one-block pass's. Rows that
// sample leave at once: their passes need the whole row in one block.
constexpr int kSplitThreads = 256;
constexpr int kSplitChunk = kSplitThreads * kUnroll * 2;  // ids per block: two steps of for_scores' pattern
__global__ void __launch_bounds__(kSplitThreads)
    greedy_split_kernel(const float* __restrict__ logits, const int* __restrict__ seen, const int* __restrict__ seen_rows,
                        const SampleRow* __restrict__ params, Best* __restrict__ part, long long V) {
  pdl::enter();
  const long long r = blockIdx.y;
  const SampleRow& row = params[r];
  if (row.temperature != 0.0f) return;
  Rule q{};
  q.row = logits + r * V;
  q.penalty = row.penalty;
  q.mark = q.penalty != 1.0f ? history_of(seen, seen_rows, r, V) : nullptr;
  q.temperature = 1.0f;
  const long long lo = static_cast<long long>(blockIdx.x) * kSplitChunk, hi = min(V, lo + kSplitChunk);
  Best me = argmax::none();
  for_scores_in<kSplitThreads>(q, lo, hi, [&](long long i, float s, float x) {
    if (i >= 0) take_score(me, i, s, x);
  });
  __shared__ Best warps[kSplitThreads / 32];
  me = block_best(me, warps);
  if (threadIdx.x == 0) part[r * gridDim.x + blockIdx.x] = me;
}

// Row r's token or code t: into ids, or with report (ops/sampling.h) the token or 0 into ids and t with the bad
// logit's bits (row: the row's logits) into report.
__device__ __forceinline__ void put_token(int* ids, int* report, long long r, int t, const float* row) {
  if (!report) {
    ids[r] = t;
    return;
  }
  ids[r] = t >= 0 ? t : 0;
  report[2 * r] = t;
  report[2 * r + 1] = t < 0 && t != INT_MIN ? __float_as_int(row[-1 - static_cast<long long>(t)]) : 0;
}

// part: greedy_split_kernel's P Bests a row, or null (pass A over the whole row here, as for sampled rows).
// report: null, or [R, 2] (put_token).
__global__ void __launch_bounds__(kThreads)
    sample_tokens_kernel(const float* __restrict__ logits, int* __restrict__ seen, const int* __restrict__ seen_rows,
                         SampleRow* __restrict__ params, int* __restrict__ ids, int* __restrict__ report, long long V,
                         bool bitmap, const Best* __restrict__ part, int P) {
  pdl::enter();  // launched with pdl::launch: the last kernel of a decode step (lm_head) may still be running
  __shared__ Shared sh;
  extern __shared__ unsigned seen_bitmap[];  // [ceil(V / 32)] when bitmap
  const long long r = blockIdx.x;
  SampleRow* prow = params + r;
  Rule q;
  q.row = logits + r * V;
  int* mark = history_of(seen, seen_rows, r, V);
  q.penalty = prow->penalty;
  q.mark = q.penalty != 1.0f ? mark : nullptr;
  q.bits = nullptr;
  q.build_bits = bitmap && q.mark ? seen_bitmap : nullptr;
  const float temperature = prow->temperature;
  q.temperature = temperature == 0.0f ? 1.0f : temperature;
  q.kth_key = 0;
  q.top_p = false;
  q.min_p = false;
  q.cut = 0;
  q.norm2 = 1.0f;
  q.thr = 0.0f;

  // A: the first bad logit, the maximum score and its first index
  const int top_k = prow->top_k;
  const bool top_k_on = temperature != 0.0f && top_k > 0 && top_k < V;
  if (top_k_on) clear_bins(sh);
  Best me = argmax::none();
  if (part && temperature == 0.0f) {  // the split pass's partial results
    for (int p = threadIdx.x; p < P; p += kThreads) me = argmax::better(me, part[r * P + p]);
  } else {
    for_scores(q, V, [&](long long i, float s, float x) {  // each thread's ids ascend: the first index is kept
      if (top_k_on) add_count(sh, i >= 0 ? static_cast<int>(score_key(s) >> 21) : -1);  // top-k's first digit
      if (i >= 0) take_score(me, i, s, x);
    });
  }
  const Best best = block_best(me, sh.best);  // syncs: the bitmap is complete
  q.bits = q.build_bits;
  q.build_bits = nullptr;
  if (best.bad != INT_MAX) {
    if (threadIdx.x == 0) put_token(ids, report, r, -1 - best.bad, q.row);
    return;
  }
  if (temperature == 0.0f) {
    if (threadIdx.x == 0) {
      put_token(ids, report, r, best.i, q.row);
      if (mark) mark[best.i] = 1;
    }
    return;
  }
  if (best.s == -INFINITY) {
    if (threadIdx.x == 0) put_token(ids, report, r, INT_MIN, q.row);
    return;
  }
  q.m = best.s;

  long long n_ge = V;
  if (top_k_on) q.kth_key = kth_score_key(q, V, top_k, sh, &n_ge);
  if (n_ge <= kThreads) {  // a small top-k: gather its tokens, finish over them
    if (threadIdx.x == 0) sh.n_cand = 0;
    __syncthreads();
    for_scores(q, V, [&](long long i, float s, float) {
      if (i < 0 || s == -INFINITY || score_key(s) < q.kth_key) return;
      const int slot = atomicAdd(&sh.n_cand, 1);
      sh.c.id[slot] = static_cast<int>(i);
      sh.c.e[slot] = rule_exp(fsub(s, q.m));
      sh.c.key[slot] = cand_key(s, static_cast<uint32_t>(i));
    });
    __syncthreads();
    int chosen = -1;
    compact_rule(prow, cand_key(best.s, static_cast<uint32_t>(best.i)), sh, &chosen);
    if (chosen >= 0) {
      const uint64_t draws = (uint64_t{prow->draws_hi} << 32) | prow->draws_lo;
      put_token(ids, report, r, chosen, q.row);
      if (mark) mark[chosen] = 1;
      prow->draws_lo = static_cast<uint32_t>(draws + 1);
      prow->draws_hi = static_cast<uint32_t>((draws + 1) >> 32);
    }
    return;
  }

  if (prow->top_p < 1.0f) {
    const float norm1 = fixed_to_float(weight_sum(q, V, 1, sh.scan), 96);
    const uint64_t cross = crossing_mass(prow->top_p_cut);
    q.cut = top_p_cut(q, V, norm1, cross, cand_key(best.s, static_cast<uint32_t>(best.i)), sh);
    q.top_p = true;
  }
  if (prow->min_p > 0.0f) {
    q.norm2 = fixed_to_float(weight_sum(q, V, 2, sh.scan), 96);
    q.thr = fmul(prow->min_p, fdiv(1.0f, q.norm2));
    q.min_p = true;
  }

  // the draw: thread t sums the weights of ids [t c, (t + 1) c); the range holding the target walks in id order
  const long long c = (V + kThreads - 1) / kThreads;
  const long long lo = threadIdx.x * c, hi = min(V, lo + c);
  U128 mine{};
  for (long long i = lo; i < hi; i++) {
    const float e = kept_weight(q, i, 3);
    if (e > 0.0f) mine = add(mine, fixed96(e));
  }
  U128 total;
  const U128 before = block_exclusive_scan(mine, sh.scan, &total);
  const uint64_t seed = (uint64_t{prow->seed_hi} << 32) | prow->seed_lo;
  const uint64_t draws = (uint64_t{prow->draws_hi} << 32) | prow->draws_lo;
  const U128 target = draw_target(draw_bits(seed, draws), total);
  if (!greater(before, target) && greater(add(before, mine), target)) {
    U128 cum = before;
    for (long long i = lo; i < hi; i++) {
      const float e = kept_weight(q, i, 3);
      if (!(e > 0.0f)) continue;
      cum = add(cum, fixed96(e));
      if (greater(cum, target)) {
        put_token(ids, report, r, static_cast<int>(i), q.row);
        if (mark) mark[i] = 1;
        prow->draws_lo = static_cast<uint32_t>(draws + 1);
        prow->draws_hi = static_cast<uint32_t>((draws + 1) >> 32);
        break;
      }
    }
  }
}

void launch_sample_tokens(const Tensor& logits, Tensor* seen, const int* seen_rows, Tensor& params, Tensor& ids,
                          Tensor* report) {
  const long long R = logits.dim(0), V = logits.dim(1);
  if (R == 0) return;
  // The history as a bitmap in shared memory after the first pass, when it fits beside the static shared memory
  // under the 48 KiB a launch gets without opting in (V <= 180k: Qwen's 151,936 and Llama 3's 128,256 do);
  // otherwise every pass reads the [V] i32 mask.
  const size_t bitmap_bytes = static_cast<size_t>((V + 31) / 32) * sizeof(unsigned);
  const bool bitmap = seen && bitmap_bytes + sizeof(Shared) <= 48 * 1024;
  cudaStream_t s = cuda::stream_of(ids);
  int* seen_p = seen ? cuda::ptr<int>(*seen) : nullptr;
  SampleRow* rows = reinterpret_cast<SampleRow*>(cuda::ptr<int>(params));
  // The greedy rows' pass A over many blocks first (WICK_GREEDY_SPLIT=0: in the one block of each row).
  static const bool split = env_default_on("WICK_GREEDY_SPLIT");
  const long long P = (V + kSplitChunk - 1) / kSplitChunk;
  Best* part = nullptr;
  if (split && P <= INT_MAX && R <= 65535) {
    part = static_cast<Best*>(cuda::scratch(ids.device().index, sizeof(Best) * static_cast<size_t>(R * P)));
    WICK_CUDA_CHECK(pdl::launch(greedy_split_kernel, dim3(static_cast<unsigned>(P), static_cast<unsigned>(R)),
                                dim3(kSplitThreads), 0, s, cuda::cptr<float>(logits), seen_p, seen_rows, rows, part, V));
  }
  WICK_CUDA_CHECK(pdl::launch(sample_tokens_kernel, dim3(static_cast<unsigned>(R)), dim3(kThreads),
                              bitmap ? bitmap_bytes : 0, s, cuda::cptr<float>(logits), seen_p, seen_rows, rows,
                              cuda::ptr<int>(ids), report ? cuda::ptr<int>(*report) : nullptr, V, bitmap, part,
                              static_cast<int>(part ? P : 0)));
}

// One thread a (row, id) pair; pairs outside [rows, V] are skipped (the CPU twin reports them).
__global__ void mark_tokens_kernel(int* __restrict__ seen, const int* __restrict__ at, long long n, long long rows,
                                   long long V) {
  const long long j = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  const long long row = at[2 * j], id = at[2 * j + 1];
  if (row >= 0 && row < rows && id >= 0 && id < V) seen[row * V + id] = 1;
}

__global__ void subtract_at_kernel(float* __restrict__ logits, const int* __restrict__ at,
                                   const float* __restrict__ amount, long long n, long long rows, long long V) {
  const long long j = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  const long long row = at[2 * j], id = at[2 * j + 1];
  if (row >= 0 && row < rows && id >= 0 && id < V) {
    float& x = logits[row * V + id];
    x = __fsub_rn(x, amount[j]);
  }
}

}  // namespace

void sample_tokens(const Tensor& logits, Tensor* seen, Tensor& params, Tensor& ids, Tensor* report) {
  launch_sample_tokens(logits, seen, nullptr, params, ids, report);
}

void sample_tokens_pooled(const Tensor& logits, Tensor* seen_pool, const Tensor& seen_rows, Tensor& params, Tensor& ids) {
  launch_sample_tokens(logits, seen_pool, cuda::cptr<int>(seen_rows), params, ids, nullptr);
}

void mark_tokens(Tensor& seen_pool, const Tensor& at) {
  const long long n = at.dim(0);
  if (n == 0) return;
  mark_tokens_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, cuda::stream_of(seen_pool)>>>(
      cuda::ptr<int>(seen_pool), cuda::cptr<int>(at), n, seen_pool.dim(0), seen_pool.dim(1));
  WICK_CUDA_LAUNCH_CHECK();
}

void subtract_at(Tensor& logits, const Tensor& at, const Tensor& amount) {
  const long long n = at.dim(0);
  if (n == 0) return;
  subtract_at_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, cuda::stream_of(logits)>>>(
      cuda::ptr<float>(logits), cuda::cptr<int>(at), cuda::cptr<float>(amount), n, logits.dim(0), logits.dim(1));
  WICK_CUDA_LAUNCH_CHECK();
}

}  // namespace wick::cuda_ops
