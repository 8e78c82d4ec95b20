// Flash attention forward on tensor cores (FlashAttention-2 scheme; shared pieces in flash_attention.cuh).
//
// What is fused: S = scale Q.K^T, the causal / kv_len / segment masks, the online softmax (running row max
// m and sum l in f32, the output accumulator rescaled when m grows), O += P.V and lse = scale m + ln l, in
// one pass over the keys: S and P never touch device memory.
//
// Tiles: a block of 4 warps owns BM = 64 queries of one query head (each warp 16 rows) and walks key tiles
// of BN = 64 keys of its kv head. Q fragments are loaded once into registers; K and V tiles go through
// shared memory, two stages (cp.async for tile j+1 while tile j is multiplied). Per warp and key tile:
// 16x64 S = (D/16) x 8 mma, P (bf16, from the S registers without shared memory) times V = 4 x (D/8) mma.
// Shared memory: (BM + 4 BN) D bf16 = 40 KiB (D = 64) or 80 KiB (D = 128), plus a tile bitmap for segments.
// Blocks of the latest queries (most keys under the causal mask) start first.
//
// Tiles wholly above the diagonal are never loaded; tiles wholly below it skip the mask. With segment ids
// the block first marks the key tiles holding an id of its queries' range and visits only those.
#pragma once
#include "flash_attention.cuh"

namespace wick::flash {

constexpr int kFwdBM = 64, kFwdBN = 64, kFwdThreads = 128;

inline size_t fwd_smem_bytes(int D, int kv_len) {
  const int tiles = (kv_len + kFwdBN - 1) / kFwdBN;
  return sizeof(bf16) * size_t(kFwdBM + 4 * kFwdBN) * D + sizeof(uint32_t) * (tiles / 32 + 1) + 64;
}

template <int D>
__global__ void __launch_bounds__(kFwdThreads) flash_fwd_kernel(const FlashParams p) {
  constexpr int BM = kFwdBM, BN = kFwdBN, NT = kFwdThreads;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* Qs = reinterpret_cast<bf16*>(smem_raw);  // [BM][D]
  bf16* Ks = Qs + BM * D;                         // [2][BN][D]
  bf16* Vs = Ks + 2 * BN * D;                     // [2][BN][D]
  int* red = reinterpret_cast<int*>(Vs + 2 * BN * D);  // [8]
  uint32_t* bits = reinterpret_cast<uint32_t*>(red + 8);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int h = blockIdx.y, b = blockIdx.z, g = h / p.n_rep;
  const int t0 = (gridDim.x - 1 - blockIdx.x) * BM;
  const int rows = min(BM, p.T - t0);
  const long long q_stride = (long long)p.H * D, kv_stride = (long long)p.Hkv * D;
  const long long q_base = ((long long)b * p.T + t0) * q_stride + (long long)h * D;
  const bf16* kg = p.k + (long long)b * p.S * kv_stride + (long long)g * D;
  const bf16* vg = p.v + (long long)b * p.S * kv_stride + (long long)g * D;
  const int key_hi = p.kv_start + t0 + rows;  // the block's keys: [0, key_hi)
  const int n_tiles = (key_hi + BN - 1) / BN;
  const int32_t* segb = p.seg ? p.seg + (long long)b * p.T : nullptr;

  load_tile<BM, D, NT>(Qs, p.q + q_base, q_stride, rows);
  cp_async_commit();

  if (segb) {  // kv_len == T here: key positions are query positions
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

  // this thread's rows (C fragment rows lane/4 and lane/4 + 8 of the warp's 16)
  const int r0 = warp * 16 + (lane >> 2);
  const int tq[2] = {t0 + r0, t0 + r0 + 8};
  const int kend[2] = {p.kv_start + tq[0], p.kv_start + tq[1]};  // last visible key
  int sq[2] = {0, 0};
  if (segb) sq[0] = segb[min(tq[0], p.T - 1)], sq[1] = segb[min(tq[1], p.T - 1)];
  const int warp_first_key = p.kv_start + t0 + warp * 16;  // smallest last-visible key of the warp's rows
  const float sl2 = p.scale * kLog2e;

  int j = next_tile(-1);
  if (j < n_tiles) {
    load_tile<BN, D, NT>(Ks, kg + (long long)j * BN * kv_stride, kv_stride, min(BN, key_hi - j * BN));
    load_tile<BN, D, NT>(Vs, vg + (long long)j * BN * kv_stride, kv_stride, min(BN, key_hi - j * BN));
  }
  cp_async_commit();

  uint32_t qf[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  bool have_q = false;
  int stage = 0;

  while (j < n_tiles) {
    const int jn = next_tile(j);
    cp_async_wait<0>();
    __syncthreads();  // tile j (and Q) landed; everyone is done with the other stage
    if (!have_q) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) load_a<D>(qf[kk], Qs, warp * 16, kk, lane);
      have_q = true;
    }
    if (jn < n_tiles) {
      bf16* kn = Ks + (stage ^ 1) * BN * D;
      bf16* vn = Vs + (stage ^ 1) * BN * D;
      load_tile<BN, D, NT>(kn, kg + (long long)jn * BN * kv_stride, kv_stride, min(BN, key_hi - jn * BN));
      load_tile<BN, D, NT>(vn, vg + (long long)jn * BN * kv_stride, kv_stride, min(BN, key_hi - jn * BN));
    }
    cp_async_commit();

    const int k0 = j * BN;
    if (k0 <= p.kv_start + t0 + warp * 16 + 15) {  // else the warp's rows see none of these keys
      const bf16* kt = Ks + stage * BN * D;
      const bf16* vt = Vs + stage * BN * D;
      float s[BN / 8][4];
#pragma unroll
      for (int i = 0; i < BN / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
        for (int np = 0; np < BN / 16; ++np) {
          uint32_t kb[4];
          load_b<D>(kb, kt, np * 16, kk, lane);
          mma_bf16(s[2 * np], qf[kk], kb[0], kb[1]);
          mma_bf16(s[2 * np + 1], qf[kk], kb[2], kb[3]);
        }
      }
      if (segb || k0 + BN - 1 > warp_first_key) {
#pragma unroll
        for (int nt = 0; nt < BN / 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = k0 + nt * 8 + ((lane & 3) << 1) + (e & 1);
            const int i = e >> 1;
            bool ok = key <= kend[i] && key < key_hi;  // rows past T would reach past the loaded keys
            if (segb && ok) ok = segb[key] == sq[i];
            if (!ok) s[nt][e] = -INFINITY;
          }
        }
      }
      float alpha[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        float mx = m[i];
#pragma unroll
        for (int nt = 0; nt < BN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * i], s[nt][2 * i + 1]));
        mx = quad_max(mx);
        const float ms = mx == -INFINITY ? 0.0f : mx * sl2;
        alpha[i] = fast_exp2(m[i] * sl2 - ms);  // 0 while m is -inf (o, l are 0 then)
        m[i] = mx;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < BN / 8; ++nt) {
          s[nt][2 * i] = fast_exp2(fmaf(s[nt][2 * i], sl2, -ms));
          s[nt][2 * i + 1] = fast_exp2(fmaf(s[nt][2 * i + 1], sl2, -ms));
          sum += s[nt][2 * i] + s[nt][2 * i + 1];
        }
        l[i] = l[i] * alpha[i] + sum;  // this thread's columns only; the quad's sum is taken at the end
      }
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][0] *= alpha[0], o[dt][1] *= alpha[0];
        o[dt][2] *= alpha[1], o[dt][3] *= alpha[1];
      }
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        const uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t vb[4];
          load_b_trans<D>(vb, vt, kk * 16, dp, lane);
          mma_bf16(o[2 * dp], pa, vb[0], vb[1]);
          mma_bf16(o[2 * dp + 1], pa, vb[2], vb[3]);
        }
      }
    }
    stage ^= 1;
    j = jn;
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const float sum = quad_sum(l[i]);
    if (tq[i] >= p.T) continue;
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    bf16* orow = p.o + q_base + (long long)(tq[i] - t0) * q_stride;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      *reinterpret_cast<__nv_bfloat162*>(orow + dt * 8 + ((lane & 3) << 1)) =
          __floats2bfloat162_rn(o[dt][2 * i] * inv, o[dt][2 * i + 1] * inv);
    if (p.lse && (lane & 3) == 0)
      p.lse[((long long)b * p.H + h) * p.T + tq[i]] = sum > 0.0f ? m[i] * p.scale + logf(sum) : -INFINITY;
  }
}

// Sets the shared-memory limit once per process and launches. Returns the launch error.
template <int D> cudaError_t launch_fwd(const FlashParams& p, cudaStream_t stream) {
  const size_t smem = fwd_smem_bytes(D, p.kv_len);
  cudaError_t e = cudaFuncSetAttribute(flash_fwd_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (e != cudaSuccess) return e;
  const dim3 grid((p.T + kFwdBM - 1) / kFwdBM, p.H, p.B);
  flash_fwd_kernel<D><<<grid, kFwdThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

inline cudaError_t flash_forward(const FlashParams& p, cudaStream_t stream) {
  if (p.D == 64) return launch_fwd<64>(p, stream);
  if (p.D == 128) return launch_fwd<128>(p, stream);
  return cudaErrorInvalidValue;
}

}  // namespace wick::flash
