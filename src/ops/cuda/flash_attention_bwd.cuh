// Flash attention backward on tensor cores (FlashAttention-2 scheme, deterministic; shared pieces in
// flash_attention.cuh). P is recomputed from lse (P = exp(scale q.k - lse)); dS = P (dO.V^T - delta).
//
// Two launches (three with the split below), no atomics, so the gradients are bit-for-bit repeatable:
//  1. dQ, query-major like the forward: a block of 4 warps owns 64 queries of one head and walks key tiles
//     (K, V double-buffered through shared memory): S = Q.K^T, dP = dO.V^T (Q, dO fragments in registers),
//     dS in registers, dQ += dS.K. Key tiles of 64 (D = 64) or 32 (D = 128, to stay in registers). It also
//     computes delta = rowsum(dO * O) [B, H, T] f32 for its rows and leaves it in the scratch for launch 2.
//  2. dK, dV, key-major: a block of 4 warps owns 64 keys of one kv head (each warp 16) and walks the query
//     tiles of ALL the group's query heads (GQA): S^T = K.Q^T, dP^T = V.dO^T, dV += P^T.dO, dK += dS^T.Q.
//     The group's sum happens in registers, so dK and dV are written (=) once. Query tiles of 64 (D = 64)
//     or 32 (D = 128); for D = 64 the warp's K and V fragments stay in registers.
//     When (key tiles x kv heads x batch) gives under 4 blocks an SM (the 0.5B layer: 256 blocks, the
//     first with 16 times the work of the last), the group's heads are split over dkv_split blocks that
//     write f32 partials, and
//  3. a reduce sums the partials in split order (still deterministic) and rounds dK, dV to bf16 once.
// Fused: the masks, P, dP and dS never leave registers (P and dS go from the accumulator layout straight
// into A fragments). Cost: S and dP are computed in both 1 and 2 (7 tile products instead of the 5 of a
// single pass with dQ atomics): the price of determinism.
// Measured (H200, 0.5B layer fwd+bwd) in dev/attention/NOTES.md.
//
// Tiles that the causal mask or the segment ranges leave empty are skipped, as in the forward.
#pragma once
#include "flash_attention.cuh"

namespace wick::flash {

constexpr int kBwdThreads = 128;
constexpr int kDqBM = 64;
constexpr int kDkvBN = 64;
template <int D> __host__ __device__ constexpr int dq_bn() { return D <= 64 ? 64 : 32; }
template <int D> __host__ __device__ constexpr int dkv_bm() { return D <= 64 ? 64 : 32; }

// Scratch layout: delta [B, H, T] f32, then (dkv_split > 1) the dK, dV partials, 16-byte aligned.
__host__ __device__ inline long long dkv_part_offset(const FlashParams& p) {
  return ((long long)p.B * p.H * p.T + 3) / 4 * 4;
}

// Picks p.dkv_split for a GPU of `sms` multiprocessors and returns the bytes of p.scratch the backward
// needs. Splits only when the dK/dV grid is under 4 blocks an SM: then into n_rep (every head its own block;
// min_blocks_per_sm = 0) or into the fewest splits that reach min_blocks_per_sm blocks an SM (fewer f32
// partials to write and reduce; heads split as evenly as n_rep allows).
inline size_t flash_bwd_plan(FlashParams& p, int sms, int min_blocks_per_sm = 0) {
  const long long blocks = (long long)((p.T + kDkvBN - 1) / kDkvBN) * p.Hkv * p.B;
  p.dkv_split = 1;
  if (p.n_rep > 1 && blocks < 4LL * sms) {
    p.dkv_split = p.n_rep;
    if (min_blocks_per_sm > 0)
      for (int d = 2; d < p.n_rep; ++d)
        if (blocks * d >= (long long)min_blocks_per_sm * sms) {
          p.dkv_split = d;
          break;
        }
  }
  long long floats = dkv_part_offset(p);
  if (p.dkv_split > 1) floats += 2LL * p.dkv_split * p.B * p.T * p.Hkv * p.D;
  return sizeof(float) * size_t(floats);
}

// dk, dv = sum over splits of the partials (in split order), rounded to bf16. 4 elements a thread.
__global__ void __launch_bounds__(256) flash_bwd_dkv_reduce_kernel(const FlashParams p) {
  const long long n = (long long)p.B * p.T * p.Hkv * p.D;  // elements of one partial
  const long long e = ((long long)blockIdx.x * 256 + threadIdx.x) * 4;
  if (e >= n) return;
  const float* part = p.scratch + dkv_part_offset(p);
  float4 k = make_float4(0.f, 0.f, 0.f, 0.f), v = k;
  for (int s = 0; s < p.dkv_split; ++s) {
    const float4 a = *reinterpret_cast<const float4*>(part + s * n + e);
    const float4 c = *reinterpret_cast<const float4*>(part + (p.dkv_split + s) * n + e);
    k.x += a.x, k.y += a.y, k.z += a.z, k.w += a.w;
    v.x += c.x, v.y += c.y, v.z += c.z, v.w += c.w;
  }
  const long long per_b = (long long)p.T * p.Hkv * p.D;
  const long long o = e / per_b * p.dkv_rows * p.Hkv * p.D + e % per_b;
  __nv_bfloat162* dk = reinterpret_cast<__nv_bfloat162*>(p.dk + o);
  __nv_bfloat162* dv = reinterpret_cast<__nv_bfloat162*>(p.dv + o);
  dk[0] = __floats2bfloat162_rn(k.x, k.y), dk[1] = __floats2bfloat162_rn(k.z, k.w);
  dv[0] = __floats2bfloat162_rn(v.x, v.y), dv[1] = __floats2bfloat162_rn(v.z, v.w);
}

inline size_t dq_smem_bytes(int D, int T) {
  const int bn = D <= 64 ? 64 : 32;
  const int tiles = (T + bn - 1) / bn;
  return sizeof(bf16) * size_t(2 * kDqBM + 4 * bn) * D + sizeof(uint32_t) * (tiles / 32 + 1) + 64;
}

template <int D>
__global__ void __launch_bounds__(kBwdThreads) flash_bwd_dq_kernel(const FlashParams p) {
  constexpr int BM = kDqBM, BN = dq_bn<D>(), NT = kBwdThreads;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* Qs = reinterpret_cast<bf16*>(smem_raw);  // [BM][D]
  bf16* dOs = Qs + BM * D;                        // [BM][D]
  bf16* Ks = dOs + BM * D;                        // [2][BN][D]
  bf16* Vs = Ks + 2 * BN * D;                     // [2][BN][D]
  int* red = reinterpret_cast<int*>(Vs + 2 * BN * D);
  uint32_t* bits = reinterpret_cast<uint32_t*>(red + 8);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int h = blockIdx.y, b = blockIdx.z, g = h / p.n_rep;
  const int t0 = (gridDim.x - 1 - blockIdx.x) * BM;
  const int rows = min(BM, p.T - t0);
  const long long q_stride = (long long)p.H * D, kv_stride = (long long)p.Hkv * D;
  const long long q_base = ((long long)b * p.T + t0) * q_stride + (long long)h * D;
  const bf16* kg = p.k + (long long)b * p.S * kv_stride + (long long)g * D;
  const bf16* vg = p.v + (long long)b * p.S * kv_stride + (long long)g * D;
  const int key_hi = p.kv_start + t0 + rows;
  const int n_tiles = (key_hi + BN - 1) / BN;
  const int32_t* segb = p.seg ? p.seg + (long long)b * p.T : nullptr;

  load_tile<BM, D, NT>(Qs, p.q + q_base, q_stride, rows);
  load_tile<BM, D, NT>(dOs, p.dout + q_base, q_stride, rows);
  cp_async_commit();
  if (segb) {
    const int t = t0 + (threadIdx.x < rows ? threadIdx.x : 0);
    int lo, hi;
    block_minmax<NT>(segb[t], segb[t], red, lo, hi);
    mark_tiles<BN, NT>(bits, n_tiles / 32 + 1, segb, key_hi, lo, hi);
  }
  auto next_tile = [&](int j) {
    ++j;
    if (segb)
      while (j < n_tiles && !tile_marked(bits, j)) ++j;
    return j;
  };

  const int r0 = warp * 16 + (lane >> 2);
  const int tq[2] = {t0 + r0, t0 + r0 + 8};
  const int kend[2] = {p.kv_start + tq[0], p.kv_start + tq[1]};
  int sq[2] = {0, 0};
  float lse2[2] = {0.0f, 0.0f}, dl[2] = {0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    // delta = rowsum(dO * O): the quad's 4 lanes take D/4 dims each (16-byte loads); the dK/dV pass reads it
    // back from the scratch
    float part = 0.0f;
    if (tq[i] < p.T) {
      const long long off = q_base + (long long)(tq[i] - t0) * q_stride + (lane & 3) * (D / 4);
#pragma unroll
      for (int c = 0; c < D / 32; ++c) {
        const uint4 x = *reinterpret_cast<const uint4*>(p.dout + off + c * 8);
        const uint4 y = *reinterpret_cast<const uint4*>(p.out + off + c * 8);
        const __nv_bfloat162* x2 = reinterpret_cast<const __nv_bfloat162*>(&x);
        const __nv_bfloat162* y2 = reinterpret_cast<const __nv_bfloat162*>(&y);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 a = __bfloat1622float2(x2[e]), c2 = __bfloat1622float2(y2[e]);
          part += a.x * c2.x + a.y * c2.y;
        }
      }
    }
    dl[i] = quad_sum(part);
    if (tq[i] >= p.T) continue;
    const long long st = ((long long)b * p.H + h) * p.T + tq[i];
    lse2[i] = p.lse[st] * kLog2e;
    if ((lane & 3) == 0) p.scratch[st] = dl[i];
    if (segb) sq[i] = segb[tq[i]];
  }
  const int warp_first_key = p.kv_start + t0 + warp * 16;
  const float sl2 = p.scale * kLog2e;

  int j = next_tile(-1);
  if (j < n_tiles) {
    load_tile<BN, D, NT>(Ks, kg + (long long)j * BN * kv_stride, kv_stride, min(BN, key_hi - j * BN));
    load_tile<BN, D, NT>(Vs, vg + (long long)j * BN * kv_stride, kv_stride, min(BN, key_hi - j * BN));
  }
  cp_async_commit();

  uint32_t qf[D / 16][4], df[D / 16][4];
  float acc[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
  bool have_q = false;
  int stage = 0;

  while (j < n_tiles) {
    const int jn = next_tile(j);
    cp_async_wait<0>();
    __syncthreads();
    if (!have_q) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        load_a<D>(qf[kk], Qs, warp * 16, kk, lane);
        load_a<D>(df[kk], dOs, warp * 16, kk, lane);
      }
      have_q = true;
    }
    if (jn < n_tiles) {
      load_tile<BN, D, NT>(Ks + (stage ^ 1) * BN * D, kg + (long long)jn * BN * kv_stride, kv_stride,
                           min(BN, key_hi - jn * BN));
      load_tile<BN, D, NT>(Vs + (stage ^ 1) * BN * D, vg + (long long)jn * BN * kv_stride, kv_stride,
                           min(BN, key_hi - jn * BN));
    }
    cp_async_commit();

    const int k0 = j * BN;
    if (k0 <= warp_first_key + 15) {
      const bf16* kt = Ks + stage * BN * D;
      const bf16* vt = Vs + stage * BN * D;
      float s[BN / 8][4], dp[BN / 8][4];
#pragma unroll
      for (int i = 0; i < BN / 8; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[i][e] = dp[i][e] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
        for (int np = 0; np < BN / 16; ++np) {
          uint32_t kb[4], vb[4];
          load_b<D>(kb, kt, np * 16, kk, lane);
          load_b<D>(vb, vt, np * 16, kk, lane);
          mma_bf16(s[2 * np], qf[kk], kb[0], kb[1]);
          mma_bf16(s[2 * np + 1], qf[kk], kb[2], kb[3]);
          mma_bf16(dp[2 * np], df[kk], vb[0], vb[1]);
          mma_bf16(dp[2 * np + 1], df[kk], vb[2], vb[3]);
        }
      }
      const bool mask = segb || k0 + BN - 1 > warp_first_key;
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = e >> 1;
          bool ok = true;
          if (mask) {
            const int key = k0 + nt * 8 + ((lane & 3) << 1) + (e & 1);
            ok = key <= kend[i] && key < key_hi;
            if (segb && ok) ok = segb[key] == sq[i];
          }
          const float pr = ok ? fast_exp2(fmaf(s[nt][e], sl2, -lse2[i])) : 0.0f;
          s[nt][e] = pr * (dp[nt][e] - dl[i]);  // dS
        }
      }
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        const uint32_t a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                               pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int dp2 = 0; dp2 < D / 16; ++dp2) {
          uint32_t kb[4];
          load_b_trans<D>(kb, kt, kk * 16, dp2, lane);
          mma_bf16(acc[2 * dp2], a, kb[0], kb[1]);
          mma_bf16(acc[2 * dp2 + 1], a, kb[2], kb[3]);
        }
      }
    }
    stage ^= 1;
    j = jn;
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (tq[i] >= p.T) continue;
    bf16* row = p.dq + q_base + (long long)(tq[i] - t0) * q_stride;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      *reinterpret_cast<__nv_bfloat162*>(row + dt * 8 + ((lane & 3) << 1)) =
          __floats2bfloat162_rn(acc[dt][2 * i] * p.scale, acc[dt][2 * i + 1] * p.scale);
  }
}

inline size_t dkv_smem_bytes(int D, int T) {
  const int bm = D <= 64 ? 64 : 32;
  const int tiles = (T + bm - 1) / bm;
  return sizeof(bf16) * size_t(2 * kDkvBN + 4 * bm) * D + sizeof(float) * 4 * bm +
         sizeof(uint32_t) * (tiles / 32 + 1) + 64;
}

template <int D>
__global__ void __launch_bounds__(kBwdThreads) flash_bwd_dkdv_kernel(const FlashParams p) {
  constexpr int BN = kDkvBN, BM = dkv_bm<D>(), NT = kBwdThreads;
  constexpr bool kHoist = D <= 64;  // keep the warp's K, V fragments in registers
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* Ks = reinterpret_cast<bf16*>(smem_raw);  // [BN][D]
  bf16* Vs = Ks + BN * D;                         // [BN][D]
  bf16* Qs = Vs + BN * D;                         // [2][BM][D]
  bf16* dOs = Qs + 2 * BM * D;                    // [2][BM][D]
  float* Ls = reinterpret_cast<float*>(dOs + 2 * BM * D);  // [2][BM] lse * log2(e) (+inf past T)
  float* Dl = Ls + 2 * BM;                                 // [2][BM] delta
  int* red = reinterpret_cast<int*>(Dl + 2 * BM);
  uint32_t* bits = reinterpret_cast<uint32_t*>(red + 8);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = blockIdx.y / p.dkv_split, split = blockIdx.y % p.dkv_split, b = blockIdx.z;
  // the block's heads: g n_rep + [h_lo, h_lo + hpb) (splits of n_rep / dkv_split heads, rounded)
  const int h_lo = split * p.n_rep / p.dkv_split, hpb = (split + 1) * p.n_rep / p.dkv_split - h_lo;
  const int k0 = blockIdx.x * BN;  // the block's keys [k0, k0 + krows); low keys (most queries) first
  const int krows = min(BN, p.T - k0);
  const long long q_stride = (long long)p.H * D, kv_stride = (long long)p.Hkv * D;
  const int32_t* segb = p.seg ? p.seg + (long long)b * p.T : nullptr;

  load_tile<BN, D, NT>(Ks, p.k + ((long long)b * p.S + k0) * kv_stride + (long long)g * D, kv_stride, krows);
  load_tile<BN, D, NT>(Vs, p.v + ((long long)b * p.S + k0) * kv_stride + (long long)g * D, kv_stride, krows);
  cp_async_commit();

  const int q_lo = max(0, k0 - p.kv_start);  // first query that sees key k0
  const int qt_lo = q_lo / BM;
  const int n_qt = (p.T + BM - 1) / BM;
  const int span = n_qt - qt_lo;
  if (segb) {
    const int kk = k0 + (threadIdx.x < krows ? threadIdx.x : 0);
    int lo, hi;
    block_minmax<NT>(segb[kk], segb[kk], red, lo, hi);
    mark_tiles<BM, NT>(bits, n_qt / 32 + 1, segb, p.T, lo, hi);
  }
  const int n_it = span * hpb;  // (head of the block, query tile), heads outer
  auto next_it = [&](int it) {
    ++it;
    if (segb)
      while (it < n_it && !tile_marked(bits, qt_lo + it % span)) ++it;
    return it;
  };
  auto issue = [&](int it, int st) {  // loads of iteration it into stage st
    const int h = g * p.n_rep + h_lo + it / span, q0 = (qt_lo + it % span) * BM;
    const long long base = ((long long)b * p.T + q0) * q_stride + (long long)h * D;
    const int rows = min(BM, p.T - q0);
    load_tile<BM, D, NT>(Qs + st * BM * D, p.q + base, q_stride, rows);
    load_tile<BM, D, NT>(dOs + st * BM * D, p.dout + base, q_stride, rows);
    for (int i = threadIdx.x; i < BM; i += NT) {
      const long long sidx = ((long long)b * p.H + h) * p.T + q0 + i;
      Ls[st * BM + i] = i < rows ? p.lse[sidx] * kLog2e : INFINITY;
      Dl[st * BM + i] = i < rows ? p.scratch[sidx] : 0.0f;
    }
  };

  int it = next_it(-1);
  if (it < n_it) issue(it, 0);
  cp_async_commit();

  const int kr = warp * 16 + (lane >> 2);  // this thread's key rows kr, kr + 8 (of the block's)
  const int key[2] = {k0 + kr, k0 + kr + 8};
  int sk[2] = {0, 0};
  if (segb) sk[0] = segb[min(key[0], p.T - 1)], sk[1] = segb[min(key[1], p.T - 1)];
  const float sl2 = p.scale * kLog2e;

  uint32_t kf[kHoist ? D / 16 : 1][4], vf[kHoist ? D / 16 : 1][4];
  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[i][e] = dv[i][e] = 0.0f;
  bool have_kv = false;
  int stage = 0;

  while (it < n_it) {
    const int itn = next_it(it);
    cp_async_wait<0>();
    __syncthreads();
    if (kHoist && !have_kv) {
#pragma unroll
      for (int kk = 0; kk < (kHoist ? D / 16 : 1); ++kk) {
        load_a<D>(kf[kk], Ks, warp * 16, kk, lane);
        load_a<D>(vf[kk], Vs, warp * 16, kk, lane);
      }
      have_kv = true;
    }
    if (itn < n_it) issue(itn, stage ^ 1);
    cp_async_commit();

    const int q0 = (qt_lo + it % span) * BM;
    // the warp's keys k0 + 16 warp .. + 15 are seen by queries t >= key - kv_start
    if (q0 + BM - 1 >= k0 + warp * 16 - p.kv_start) {
      const bf16* qt = Qs + stage * BM * D;
      const bf16* dt = dOs + stage * BM * D;
      const float* ls = Ls + stage * BM;
      const float* dls = Dl + stage * BM;
      float s[BM / 8][4], dp[BM / 8][4];
#pragma unroll
      for (int i = 0; i < BM / 8; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[i][e] = dp[i][e] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t ka[4], va[4];
        if constexpr (kHoist) {
#pragma unroll
          for (int e = 0; e < 4; ++e) ka[e] = kf[kHoist ? kk : 0][e], va[e] = vf[kHoist ? kk : 0][e];
        } else {
          load_a<D>(ka, Ks, warp * 16, kk, lane);
          load_a<D>(va, Vs, warp * 16, kk, lane);
        }
#pragma unroll
        for (int np = 0; np < BM / 16; ++np) {
          uint32_t qb[4], db[4];
          load_b<D>(qb, qt, np * 16, kk, lane);
          load_b<D>(db, dt, np * 16, kk, lane);
          mma_bf16(s[2 * np], ka, qb[0], qb[1]);
          mma_bf16(s[2 * np + 1], ka, qb[2], qb[3]);
          mma_bf16(dp[2 * np], va, db[0], db[1]);
          mma_bf16(dp[2 * np + 1], va, db[2], db[3]);
        }
      }
      const bool mask = segb || q0 < k0 + warp * 16 + 15 - p.kv_start || q0 + BM > p.T;
#pragma unroll
      for (int nt = 0; nt < BM / 8; ++nt) {
        const float2 l2 = *reinterpret_cast<const float2*>(ls + nt * 8 + ((lane & 3) << 1));
        const float2 d2v = *reinterpret_cast<const float2*>(dls + nt * 8 + ((lane & 3) << 1));
        const float lq[2] = {l2.x, l2.y}, dq2[2] = {d2v.x, d2v.y};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = e >> 1, c = nt * 8 + ((lane & 3) << 1) + (e & 1);
          bool ok = true;
          if (mask) {
            const int t = q0 + c;
            ok = t < p.T && key[i] <= p.kv_start + t && key[i] < p.T;
            if (segb && ok) ok = segb[t] == sk[i];
          }
          const float pr = ok ? fast_exp2(fmaf(s[nt][e], sl2, -lq[e & 1])) : 0.0f;
          s[nt][e] = pr;
          dp[nt][e] = pr * (dp[nt][e] - dq2[e & 1]);  // dS^T
        }
      }
#pragma unroll
      for (int kk = 0; kk < BM / 16; ++kk) {
        const uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
        const uint32_t sa[4] = {pack_bf16(dp[2 * kk][0], dp[2 * kk][1]), pack_bf16(dp[2 * kk][2], dp[2 * kk][3]),
                                pack_bf16(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                                pack_bf16(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
        for (int d2 = 0; d2 < D / 16; ++d2) {
          uint32_t gb[4], qb[4];
          load_b_trans<D>(gb, dt, kk * 16, d2, lane);
          load_b_trans<D>(qb, qt, kk * 16, d2, lane);
          mma_bf16(dv[2 * d2], pa, gb[0], gb[1]);
          mma_bf16(dv[2 * d2 + 1], pa, gb[2], gb[3]);
          mma_bf16(dk[2 * d2], sa, qb[0], qb[1]);
          mma_bf16(dk[2 * d2 + 1], sa, qb[2], qb[3]);
        }
      }
    }
    stage ^= 1;
    it = itn;
  }
  cp_async_wait<0>();  // K/V may still be in flight when there was no iteration

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (key[i] >= p.T) continue;
    if (p.dkv_split > 1) {  // f32 partials [2][split][B][T][Hkv][D]: dk (scaled), then dv
      const long long n = (long long)p.B * p.T * kv_stride;
      float* pk = p.scratch + dkv_part_offset(p) + split * n + ((long long)b * p.T + key[i]) * kv_stride +
                  (long long)g * D + ((lane & 3) << 1);
      float* pv = pk + p.dkv_split * n;
#pragma unroll
      for (int d = 0; d < D / 8; ++d) {
        *reinterpret_cast<float2*>(pk + d * 8) = make_float2(dk[d][2 * i] * p.scale, dk[d][2 * i + 1] * p.scale);
        *reinterpret_cast<float2*>(pv + d * 8) = make_float2(dv[d][2 * i], dv[d][2 * i + 1]);
      }
      continue;
    }
    const long long o = ((long long)b * p.dkv_rows + key[i]) * kv_stride + (long long)g * D + ((lane & 3) << 1);
#pragma unroll
    for (int d = 0; d < D / 8; ++d) {
      *reinterpret_cast<__nv_bfloat162*>(p.dk + o + d * 8) =
          __floats2bfloat162_rn(dk[d][2 * i] * p.scale, dk[d][2 * i + 1] * p.scale);
      *reinterpret_cast<__nv_bfloat162*>(p.dv + o + d * 8) = __floats2bfloat162_rn(dv[d][2 * i], dv[d][2 * i + 1]);
    }
  }
}

// parts: 2 dQ (+ delta), 4 dK/dV (+ reduce); the harness times them one by one.
template <int D> cudaError_t launch_bwd(const FlashParams& p, cudaStream_t stream, int parts = 7) {
  cudaError_t e = cudaSuccess;
  if (parts & 2) {
    const size_t smem = dq_smem_bytes(D, p.T);
    e = cudaFuncSetAttribute(flash_bwd_dq_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    flash_bwd_dq_kernel<D><<<dim3((p.T + kDqBM - 1) / kDqBM, p.H, p.B), kBwdThreads, smem, stream>>>(p);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
  }
  if (parts & 4) {
    const size_t smem = dkv_smem_bytes(D, p.T);
    e = cudaFuncSetAttribute(flash_bwd_dkdv_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    const dim3 grid((p.T + kDkvBN - 1) / kDkvBN, p.Hkv * p.dkv_split, p.B);
    flash_bwd_dkdv_kernel<D><<<grid, kBwdThreads, smem, stream>>>(p);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    if (p.dkv_split > 1) {
      const long long n4 = (long long)p.B * p.T * p.Hkv * D / 4;
      flash_bwd_dkv_reduce_kernel<<<static_cast<unsigned>((n4 + 255) / 256), 256, 0, stream>>>(p);
      if ((e = cudaGetLastError()) != cudaSuccess) return e;
    }
  }
  return e;
}

// Backward (kv_len == T, no cache). p.dkv_split and p.scratch as flash_bwd_plan() said.
inline cudaError_t flash_backward(const FlashParams& p, cudaStream_t stream, int parts = 7) {
  if (p.D == 64) return launch_bwd<64>(p, stream, parts);
  if (p.D == 128) return launch_bwd<128>(p, stream, parts);
  return cudaErrorInvalidValue;
}

}  // namespace wick::flash
