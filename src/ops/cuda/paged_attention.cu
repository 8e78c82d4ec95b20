// Paged attention on CUDA (ops/paged_attention.h): ONE launch for every sequence of a serving step.
//
// The scheme and the device functions are the CUDA-core attention kernel's (attention.cuh, attention.cu's
// attn_fwd_kernel): a block of 8 warps owns 8 query rows of one (sequence s, kv head g), a row being one query
// (t, h) with h in g's group (so GQA's n_rep query heads share every key tile); 32-key tiles are staged in
// shared memory as f32 and reused by the 8 warps; scores lane-per-key (dot_rows), the running max / sum /
// rescaled accumulator of the online softmax in f32, one rounding on the store. What differs: the keys of
// sequence s are found through its block table (key j is row table[s, j / BS] * BS + j % BS of the pool), the
// queries of all sequences sit in one [N, H, D] tensor (varlen: rows query_start[s] ..), and each sequence
// has its own length. Grid (row blocks of the longest chunk, Hkv, S): a decode sequence (T = 1: n_rep rows,
// one row block) uses only blockIdx.x = 0, a prefill chunk of T rows ceil(T n_rep / 8) of them; the blocks a
// shorter sequence does not need return at once.
//
// Key splits (flash-decoding, as attention.cu's choose_split): when the grid is too small to keep every SM busy
// with several blocks and the batch says how long the longest cache is, each block takes one chunk of its row's
// keys and writes its unnormalised (m, l, acc[D]) to scratch; paged_combine_kernel merges the chunks per row.
// A decoding sequence is only Hkv blocks (2 for Qwen2.5-0.5B), and a block walks its keys one 32-key tile
// after another, each behind a global-load latency: at 64 sequences of 512 keys the unsplit grid (128 blocks,
// one an SM, 16 tiles each) took 111 us a layer (ncu, H200), 63% of the serving step. The grid is now split
// towards ~4 blocks an SM (session 16).
// Tiles are staged 16 bytes a load (8 bf16 or 4 f32 of one key row) when the head dim allows it; one block-table
// lookup per 16 bytes instead of per element.
// Not here (yet): the tensor-core tiles for long prefill chunks (flash_attention_fwd.cuh), which would need the
// gather in their K/V loads.
#include <algorithm>
#include <cstdint>

#include "ops/cuda/attention.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/vec16.cuh"

namespace wick::cuda_ops {
namespace {

using namespace attn;

struct Paged {
  Dims a;          // H, Hkv, D, n_rep, D4, KS, window, scale (the rest unused)
  int BS = 0;      // tokens per block
  int MB = 0;      // block-table columns
  const int32_t* start = nullptr;  // [S + 1]
  const int32_t* kv_len = nullptr;  // [S]
  const int32_t* table = nullptr;  // [S, MB]
  // Key splits: block x = split * row_blocks + row block; split covers keys [split * chunk, (split + 1) * chunk).
  // part null: one split, the block normalises and writes out; else (m, l, acc[D]) of global row
  // ((split * S + s) * Hkv + g) * rows_max + r at part[that * (D + 2)].
  int splits = 1, chunk = 0x7fffffff, row_blocks = 1, rows_max = 0, S = 0;
  float* part = nullptr;
};

size_t smem_bytes(const Dims& a) {
  return sizeof(float) * (size_t(kTile) * a.KS + size_t(kTile) * a.D4 + size_t(kWarps) * a.D4 + kWarps * kTile);
}

// q [N, H, D], k/v pools [NB, BS, Hkv, D] -> out [N, H, D] (or its parts). grid (row blocks * splits, Hkv, S),
// kThreads threads. The tile loop is attn_fwd_kernel's without its segment ids and device positions, the key rows
// gathered through the table (kept apart so the training and decode kernel stays as it was measured).
// VEC: a.D is a multiple of 16 / sizeof(T) (then D4 == D: no padding columns), tiles staged 16 bytes a load.
template <typename T, int DPL, bool VEC>
__global__ void __launch_bounds__(kThreads)
    paged_attn_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ out,
                      Paged p) {
  extern __shared__ float4 smem4[];
  const Dims& a = p.a;
  float* Ks = reinterpret_cast<float*>(smem4);  // [kTile][KS]
  float* Vs = Ks + kTile * a.KS;                // [kTile][D4]
  float* Qs = Vs + kTile * a.D4;                // [kWarps][D4]
  float* Ps = Qs + kWarps * a.D4;               // [kWarps][kTile]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = blockIdx.y, s = blockIdx.z;
  const int q0 = p.start[s], Tq = p.start[s + 1] - q0, len = p.kv_len[s];
  const int rows = Tq * a.n_rep;
  const int row_blocks = (rows + kWarps - 1) / kWarps;
  const int split = blockIdx.x / p.row_blocks, rb = blockIdx.x % p.row_blocks;
  if (rb >= row_blocks) return;  // block-uniform
  const int row0 = (row_blocks - 1 - rb) * kWarps;  // late rows (most keys) first
  const int r = row0 + warp;
  const bool active = r < rows;
  int t = 0, h = 0;
  if (active) row_to_th(a, g, r, t, h);
  const int past = len - Tq;  // query t sits at position past + t
  const int my_pos = past + t;
  const int key_lo = active ? (a.window ? max(0, my_pos + 1 - a.window) : 0) : 0;  // this row's keys [key_lo, key_end)
  const int key_end = active ? my_pos + 1 : 0;
  const int t_first = row0 / a.n_rep, t_last = (min(rows, row0 + kWarps) - 1) / a.n_rep;
  const int split_lo = split * p.chunk;
  const int k_lo = max(split_lo, a.window ? max(0, past + t_first + 1 - a.window) : 0);  // this block's keys [k_lo, k_hi)
  const int k_hi = p.part ? min(past + t_last + 1, split_lo + p.chunk) : past + t_last + 1;
  const long long kv_row = (long long)a.Hkv * a.D;   // one token row of the pool
  const int32_t* table = p.table + (long long)s * p.MB;
  const long long q_off = ((long long)(q0 + t) * a.H + h) * a.D;

  float* qs = Qs + warp * a.D4;
  for (int d = lane; d < a.D4; d += 32) qs[d] = active && d < a.D ? cuda::to_f(q[q_off + d]) : 0.0f;

  float m = -INFINITY, l = 0.0f, acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) acc[i] = 0.0f;

  for (int k0 = k_lo; k0 < k_hi; k0 += kTile) {
    __syncthreads();  // the previous tile is consumed
    if constexpr (VEC) {
      constexpr int E = 16 / sizeof(T);
      const int chunks = a.D / E;  // 16-byte pieces of a key row
      for (int idx = threadIdx.x; idx < kTile * chunks; idx += kThreads) {
        const int j = idx / chunks, d = (idx - j * chunks) * E;
        const int key = k0 + j;
        float kf[E], vf[E];
        if (key < k_hi) {
          const long long slot = (long long)table[key / p.BS] * p.BS + key % p.BS;
          const long long off = slot * kv_row + (long long)g * a.D + d;
          vec16::unpack(__ldg(reinterpret_cast<const uint4*>(k + off)), k, kf);
          vec16::unpack(__ldg(reinterpret_cast<const uint4*>(v + off)), v, vf);
        } else {
#pragma unroll
          for (int i = 0; i < E; i++) kf[i] = vf[i] = 0.0f;
        }
#pragma unroll
        for (int i = 0; i < E; i += 4) {
          *reinterpret_cast<float4*>(Ks + j * a.KS + d + i) = make_float4(kf[i], kf[i + 1], kf[i + 2], kf[i + 3]);
          *reinterpret_cast<float4*>(Vs + j * a.D4 + d + i) = make_float4(vf[i], vf[i + 1], vf[i + 2], vf[i + 3]);
        }
      }
    } else {
      for (int idx = threadIdx.x; idx < kTile * a.D4; idx += kThreads) {
        const int j = idx / a.D4, d = idx - j * a.D4;
        const int key = k0 + j;
        float kv = 0.0f, vv = 0.0f;
        if (key < k_hi && d < a.D) {
          const long long slot = (long long)table[key / p.BS] * p.BS + key % p.BS;
          const long long off = slot * kv_row + (long long)g * a.D + d;
          kv = cuda::to_f(k[off]);
          vv = cuda::to_f(v[off]);
        }
        Ks[j * a.KS + d] = kv;
        Vs[j * a.D4 + d] = vv;
      }
    }
    __syncthreads();
    if (!active || k0 >= key_end) continue;  // warp-uniform

    const int key = k0 + lane;
    const bool ok = key >= key_lo && key < key_end;
    const float sc = ok ? dot_rows(qs, Ks + lane * a.KS, a.D4) * a.scale : -INFINITY;
    const float m_new = fmaxf(m, cuda::warp_max(sc));
    float pr = 0.0f, alpha = 1.0f;
    if (m_new != -INFINITY) {  // else no key of this row yet (a window starting past this tile's keys)
      pr = ok ? expf(sc - m_new) : 0.0f;
      alpha = expf(m - m_new);  // 0 when m = -inf (acc and l are still 0)
    }
    l = l * alpha + cuda::warp_sum(pr);
    m = m_new;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[i] *= alpha;
    Ps[warp * kTile + lane] = pr;
    __syncwarp();
    const int jn = min(kTile, key_end - k0);
    for (int j = 0; j < jn; ++j) {
      const float pj = Ps[warp * kTile + j];
      const float* vr = Vs + j * a.D4;
#pragma unroll
      for (int i = 0; i < DPL; ++i) {
        const int d = lane + 32 * i;
        if (d < a.D) acc[i] += pj * vr[d];
      }
    }
    __syncwarp();  // Ps is rewritten by the next tile
  }

  if (!active) return;
  if (p.part) {  // a split past this row's keys leaves m = -inf, l = 0: the combine skips it
    float* pr = p.part + ((((long long)split * p.S + s) * a.Hkv + g) * p.rows_max + r) * (a.D + 2);
    if (lane == 0) pr[0] = m, pr[1] = l;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < a.D) pr[2 + d] = acc[i];
    }
    return;
  }
  const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    if (d < a.D) out[q_off + d] = cuda::from_f<T>(acc[i] * inv_l);
  }
}

// Merges the splits, one warp per (s, g, row r < rows_max): out = sum_j acc_j e^(m_j - M) / sum_j l_j e^(m_j - M).
// grid (ceil(rows_max / kWarps), Hkv, S).
template <typename T>
__global__ void __launch_bounds__(kThreads) paged_combine_kernel(T* __restrict__ out, Paged p) {
  const Dims& a = p.a;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = blockIdx.y, s = blockIdx.z, r = blockIdx.x * kWarps + warp;
  const int q0 = p.start[s], rows = (p.start[s + 1] - q0) * a.n_rep;
  if (r >= rows) return;
  int t, h;
  row_to_th(a, g, r, t, h);
  const long long stride = (long long)p.S * a.Hkv * p.rows_max * (a.D + 2);  // between splits
  const float* base = p.part + (((long long)s * a.Hkv + g) * p.rows_max + r) * (a.D + 2);
  float M = -INFINITY;
  for (int j = 0; j < p.splits; ++j) M = fmaxf(M, base[j * stride]);
  float L = 0.0f;
  for (int j = 0; j < p.splits; ++j)
    if (base[j * stride] != -INFINITY) L += base[j * stride + 1] * expf(base[j * stride] - M);
  const float inv_l = L > 0.0f ? 1.0f / L : 0.0f;
  const long long q_off = ((long long)(q0 + t) * a.H + h) * a.D;
  for (int d = lane; d < a.D; d += 32) {
    float o = 0.0f;
    for (int j = 0; j < p.splits; ++j)
      if (base[j * stride] != -INFINITY) o += base[j * stride + 2 + d] * expf(base[j * stride] - M);
    out[q_off + d] = cuda::from_f<T>(o * inv_l);
  }
}

}  // namespace

// q [N, H, D], k/v pools [NB, BS, Hkv, D] -> out [N, H, D] (=); validated by the op.
void paged_attention_forward(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const PagedKvBatch& batch,
                             float scale, int64_t window, Tensor& out) {
  Paged p;
  Dims& a = p.a;
  a.H = static_cast<int>(q.dim(1));
  a.D = static_cast<int>(q.dim(2));
  a.Hkv = static_cast<int>(k_pool.dim(2));
  a.n_rep = a.H / a.Hkv;
  a.D4 = (a.D + 3) / 4 * 4;
  a.KS = (a.D4 / 4) % 2 == 0 ? a.D4 + 4 : a.D4 + 8;
  a.window = static_cast<int>(window);
  a.scale = scale;
  if (a.D > kMaxD)
    throw Error("paged_attention_forward: CUDA head dim " + std::to_string(a.D) + " is larger than " + std::to_string(kMaxD));
  p.BS = static_cast<int>(k_pool.dim(1));
  p.MB = static_cast<int>(batch.block_table.dim(1));
  p.start = cuda::cptr<int32_t>(batch.query_start);
  p.kv_len = cuda::cptr<int32_t>(batch.kv_len);
  p.table = cuda::cptr<int32_t>(batch.block_table);
  const long long S = batch.kv_len.dim(0);
  const long long row_blocks = (batch.max_query_len * a.n_rep + kWarps - 1) / kWarps;
  const int dev = out.device().index;
  p.S = static_cast<int>(S);
  p.row_blocks = static_cast<int>(row_blocks);
  p.rows_max = static_cast<int>(batch.max_query_len * a.n_rep);
  // Key splits when the grid would give the SMs fewer than two blocks each and the longest cache has at least two
  // tiles: towards 4 blocks an SM, at least one tile a split.
  const long long blocks = row_blocks * a.Hkv * S, sms = cuda::sm_count(dev);
  if (batch.max_kv_len >= 2 * kTile && blocks < 2 * sms) {
    const long long n = std::min<long long>({(4 * sms + blocks - 1) / blocks, batch.max_kv_len / kTile, 256});
    if (n >= 2) {
      const long long tiles = (batch.max_kv_len + kTile - 1) / kTile;
      p.chunk = static_cast<int>((tiles + n - 1) / n) * kTile;
      p.splits = static_cast<int>((batch.max_kv_len + p.chunk - 1) / p.chunk);
    }
  }
  if (p.splits > 1)
    p.part = static_cast<float*>(cuda::scratch(dev, sizeof(float) * size_t(p.splits) * S * a.Hkv * p.rows_max * (a.D + 2)));
  WICK_CHECK(S <= 65535 && row_blocks * p.splits <= 0x7fffffffLL,
             "paged_attention_forward: grid too large (" << S << " sequences)");
  cudaStream_t st = cuda::stream_of(out);
  const size_t smem = smem_bytes(a);
  const dim3 grid(static_cast<unsigned>(row_blocks * p.splits), a.Hkv, static_cast<unsigned>(S));
  cuda::dispatch_float(q.dtype(), "paged_attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    // 16-byte loads: a row piece d..d+E of key slot s sits at (s Hkv + g) D + d elements from the pool's start.
    const auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0; };
    const bool vec = a.D % (16 / sizeof(T)) == 0 && aligned(k_pool) && aligned(v_pool);
    dispatch_dpl(a.D, [&](auto dpl) {
      constexpr int DPL = decltype(dpl)::value;
      const auto launch = [&](auto kernel) {
        prepare_smem(kernel, smem, dev);
        kernel<<<grid, kThreads, smem, st>>>(cuda::cptr<T>(q), cuda::cptr<T>(k_pool), cuda::cptr<T>(v_pool),
                                             cuda::ptr<T>(out), p);
        WICK_CUDA_LAUNCH_CHECK();
      };
      if (vec) launch(paged_attn_kernel<T, DPL, true>);
      else launch(paged_attn_kernel<T, DPL, false>);
    });
    if (p.splits > 1) {
      const dim3 cgrid(static_cast<unsigned>((p.rows_max + kWarps - 1) / kWarps), a.Hkv, static_cast<unsigned>(S));
      paged_combine_kernel<T><<<cgrid, kThreads, 0, st>>>(cuda::ptr<T>(out), p);
      WICK_CUDA_LAUNCH_CHECK();
    }
  });
}

}  // namespace wick::cuda_ops
