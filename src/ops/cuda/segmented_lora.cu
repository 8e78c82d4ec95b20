// CUDA twin of segmented_lora_add (ops/segmented_lora.h): every segment's y += scale (x A^T) B^T in two
// launches, whatever the number of segments.
//
// shrink: grid (in slices of kSlice, row tiles of kRowTile, segments). A block stages its rows' slice of x and
//   the slice of its segment's A [r, kSlice] (f32, row stride kSlice + 1: lane k reads row k without bank
//   conflicts) in shared memory; warp w computes u[row w][k] over the slice for k = lane, lane + 32 and writes
//   it to part[slice][row][k] (f32 scratch).
// expand: grid (out tiles of kThreads columns, row tiles, segments). A block sums its rows' u over the slices
//   in slice order (so a row's u does not depend on the batch it is in), scaled, into shared memory; thread o
//   then adds sum_k u[i][k] B[o][k] to y[row i][o] for its tile's rows, rounding once.
// The work is small (r <= 64): the point is one launch per phase for all adapters of a step, not FLOPs.
#include <algorithm>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRowTile = kWarps;  // rows per block: one a warp in shrink
constexpr int kSlice = 128;       // elements of in per shrink block
constexpr int kMaxRank = static_cast<int>(kSegmentedLoraMaxRank);
constexpr int kMaxSegs = 32;      // segments per launch (kernel arguments); more go in further launches

struct Seg {
  const float* A;  // [r, in]
  const float* B;  // [out, r]
  int row0, rows, r;
  float scale;
};

template <typename T> struct Args {
  const T* x;  // [M, in]
  T* y;        // [M, out]
  float* part; // [slices, M, rs]
  int M, in, out, slices, nseg, rs;  // rs: the largest rank of the launch's segments
  Seg seg[kMaxSegs];
};

template <typename T> __global__ void __launch_bounds__(kThreads) shrink_kernel(const __grid_constant__ Args<T> a) {
  __shared__ float xs[kRowTile][kSlice];
  __shared__ float As[kMaxRank][kSlice + 1];
  const Seg& s = a.seg[blockIdx.z];
  const int tile0 = blockIdx.y * kRowTile;
  if (tile0 >= s.rows) return;  // block-uniform
  const int nrow = min(kRowTile, s.rows - tile0), d0 = blockIdx.x * kSlice, dn = min(kSlice, a.in - d0);
  const long long row_base = (long long)(s.row0 + tile0) * a.in + d0;
  for (int idx = threadIdx.x; idx < kRowTile * kSlice; idx += kThreads) {
    const int i = idx / kSlice, d = idx - i * kSlice;
    xs[i][d] = i < nrow && d < dn ? cuda::to_f(a.x[row_base + (long long)i * a.in + d]) : 0.0f;
  }
  for (int idx = threadIdx.x; idx < s.r * kSlice; idx += kThreads) {
    const int k = idx / kSlice, d = idx - k * kSlice;
    As[k][d] = d < dn ? s.A[(long long)k * a.in + d0 + d] : 0.0f;
  }
  __syncthreads();
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (w >= nrow) return;
  float* out = a.part + ((long long)blockIdx.x * a.M + s.row0 + tile0 + w) * a.rs;
  for (int k = lane; k < s.r; k += 32) {
    float acc = 0.0f;
#pragma unroll 8
    for (int d = 0; d < kSlice; d++) acc = fmaf(xs[w][d], As[k][d], acc);
    out[k] = acc;
  }
}

template <typename T> __global__ void __launch_bounds__(kThreads) expand_kernel(const __grid_constant__ Args<T> a) {
  __shared__ float us[kRowTile][kMaxRank];
  const Seg& s = a.seg[blockIdx.z];
  const int tile0 = blockIdx.y * kRowTile;
  if (tile0 >= s.rows) return;  // block-uniform
  const int nrow = min(kRowTile, s.rows - tile0);
  for (int idx = threadIdx.x; idx < kRowTile * s.r; idx += kThreads) {
    const int i = idx / s.r, k = idx - i * s.r;
    float sum = 0.0f;
    if (i < nrow)
      for (int sl = 0; sl < a.slices; sl++) sum += a.part[((long long)sl * a.M + s.row0 + tile0 + i) * a.rs + k];
    us[i][k] = sum * s.scale;
  }
  __syncthreads();
  const int o = blockIdx.x * kThreads + threadIdx.x;
  if (o >= a.out) return;
  float acc[kRowTile];
#pragma unroll
  for (int i = 0; i < kRowTile; i++) acc[i] = 0.0f;
  const float* b = s.B + (long long)o * s.r;
  for (int k = 0; k < s.r; k++) {
    const float bk = __ldg(b + k);
#pragma unroll
    for (int i = 0; i < kRowTile; i++) acc[i] = fmaf(us[i][k], bk, acc[i]);
  }
  T* y = a.y + (long long)(s.row0 + tile0) * a.out + o;
#pragma unroll
  for (int i = 0; i < kRowTile; i++)
    if (i < nrow) y[(long long)i * a.out] = cuda::from_f<T>(cuda::to_f(y[(long long)i * a.out]) + acc[i]);
}

}  // namespace

void segmented_lora_add(const Tensor& x, const std::vector<LoraSegment>& segments, Tensor& y) {
  const int64_t M = x.dim(0), in = x.dim(1), out = y.dim(1);
  WICK_CHECK(M <= INT32_MAX && in <= INT32_MAX && out <= INT32_MAX, "segmented_lora_add: x " << x.str() << " too large");
  const int dev = x.device().index;
  cudaStream_t st = cuda::stream_of(x);
  const int slices = static_cast<int>((in + kSlice - 1) / kSlice);
  int64_t rs = 1;
  for (const LoraSegment& ls : segments) rs = std::max(rs, ls.A->dim(0));
  float* part = static_cast<float*>(cuda::scratch(dev, sizeof(float) * size_t(slices) * size_t(M) * size_t(rs)));
  cuda::dispatch_float(x.dtype(), "segmented_lora_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t first = 0; first < segments.size(); first += kMaxSegs) {
      Args<T> a{};
      a.x = cuda::cptr<T>(x);
      a.y = cuda::ptr<T>(y);
      a.part = part;
      a.M = static_cast<int>(M), a.in = static_cast<int>(in), a.out = static_cast<int>(out), a.slices = slices;
      a.rs = static_cast<int>(rs);
      a.nseg = static_cast<int>(std::min<size_t>(kMaxSegs, segments.size() - first));
      int max_rows = 0;
      for (int i = 0; i < a.nseg; i++) {
        const LoraSegment& ls = segments[first + static_cast<size_t>(i)];
        a.seg[i] = Seg{cuda::cptr<float>(*ls.A), cuda::cptr<float>(*ls.B), static_cast<int>(ls.row0),
                       static_cast<int>(ls.rows), static_cast<int>(ls.A->dim(0)), ls.scale};
        max_rows = std::max(max_rows, a.seg[i].rows);
      }
      const unsigned tiles = static_cast<unsigned>((max_rows + kRowTile - 1) / kRowTile);
      WICK_CHECK(tiles <= 65535, "segmented_lora_add: a segment of " << max_rows << " rows is too long");
      shrink_kernel<T><<<dim3(static_cast<unsigned>(slices), tiles, a.nseg), kThreads, 0, st>>>(a);
      WICK_CUDA_LAUNCH_CHECK();
      const unsigned col_tiles = static_cast<unsigned>((out + kThreads - 1) / kThreads);
      expand_kernel<T><<<dim3(col_tiles, tiles, a.nseg), kThreads, 0, st>>>(a);
      WICK_CUDA_LAUNCH_CHECK();
    }
  });
}

}  // namespace wick::cuda_ops
