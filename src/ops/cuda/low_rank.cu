// CUDA twin of low_rank_product (ops/low_rank.h): where low_rank_fused(M, r) holds, one of the three fused
// kernels - the one low_rank_kernel() forces (WICK_LOW_RANK_KERNEL), else the one ops/low_rank.cpp's rule picks
// (low_rank_rule, as this device runs it: device_rule below) -; otherwise, or where the cooperative kernel is
// picked and the device cannot launch it cooperatively, the two matmuls with u [M, r] in x's dtype.
#include <atomic>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/low_rank.cuh"
#include "ops/cuda/low_rank_recompute.cuh"
#include "ops/cuda/low_rank_split_k.cuh"
#include "ops/cuda/pdl.cuh"

namespace wick::cuda_ops {

static_assert(kLowRankFusedMaxRows == lowrank::kMaxM && kLowRankFusedMaxRank == lowrank::kMaxR,
              "ops/low_rank.h's bounds are the kernel's");

namespace {

constexpr int kMaxDevices = 64;

// Per device (and dtype), cached: blocks of the kernel resident per SM, 0 when the device cannot launch it
// cooperatively (then the op runs the two matmuls).
template <typename T> int resident_blocks(int dev) {
  static std::atomic<int> cache[kMaxDevices];  // 0: not asked yet; else value + 1
  std::atomic<int>* slot = dev >= 0 && dev < kMaxDevices ? &cache[dev] : nullptr;
  if (slot) {
    const int v = slot->load(std::memory_order_relaxed);
    if (v) return v - 1;
  }
  int coop = 0, occ = 0;
  WICK_CUDA_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
  if (coop)
    WICK_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, lowrank::low_rank_kernel<T>, lowrank::kThreads, 0));
  const int v = coop ? occ : 0;
  if (slot) slot->store(v + 1, std::memory_order_relaxed);
  return v;
}

// low_rank_rule as this device runs it: split-K's numbers are with programmatic dependent launch; without it
// (WICK_PDL=0, devices before sm_90) its two launches follow each other, so the cooperative kernel stays there.
LowRankKernel device_rule(int64_t M, int64_t in, int64_t r, int64_t out) {
  const LowRankKernel k = low_rank_rule(M, in, r, out);
  return k == LowRankKernel::kSplitK && !pdl::enabled() ? LowRankKernel::kCooperative : k;
}

}  // namespace

void low_rank_product(const Tensor& x, const Tensor& A, const Tensor& B, float scale, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), in = x.dim(1), r = A.dim(0), out = B.dim(0);
  const int dev = x.device().index;
  cudaStream_t s = cuda::stream_of(x);
  bool done = false;
  cuda::dispatch_float(x.dtype(), "low_rank_product", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (!low_rank_fused(M, r) || in > INT32_MAX / 2 || out > INT32_MAX / 2) return;
    const int Mi = static_cast<int>(M), ini = static_cast<int>(in), ri = static_cast<int>(r),
              outi = static_cast<int>(out);
    const T* px = cuda::cptr<T>(x);
    const T* pA = cuda::cptr<T>(A);
    const T* pB = cuda::cptr<T>(B);
    T* py = cuda::ptr<T>(y);
    LowRankKernel k = low_rank_kernel();
    if (k == LowRankKernel::kRule) k = device_rule(M, in, r, out);
    if (k == LowRankKernel::kRecompute) {
      WICK_CUDA_CHECK(lowrank::recompute_launch<T>(px, pA, pB, py, Mi, ini, ri, outi, scale, accumulate, s));
    } else if (k == LowRankKernel::kSplitK) {
      const int G1 = lowrank::split_k_partials(ini);
      const size_t wsf = lowrank::split_k_workspace_floats(G1, Mi, ri);
      float* ws = static_cast<float*>(cuda::scratch(dev, sizeof(float) * wsf));
      WICK_CUDA_CHECK(lowrank::split_k_launch<T>(px, pA, pB, py, Mi, ini, ri, outi, scale, accumulate, G1, ws, s));
    } else {
      const int occ = resident_blocks<T>(dev);
      if (occ == 0) return;
      const int G = lowrank::low_rank_grid(ini, outi, cuda::sm_count(dev), occ);
      const size_t wsf = lowrank::low_rank_workspace_floats(G, Mi, ri);
      float* ws = static_cast<float*>(cuda::scratch(dev, sizeof(float) * wsf));
      WICK_CUDA_CHECK(lowrank::low_rank_launch<T>(px, pA, pB, py, Mi, ini, ri, outi, scale, accumulate, ws, G, s));
    }
    done = true;
  });
  if (done) return;
  // Two GEMMs: u = x A^T [M, r] (x's dtype), y (=|+=) scale u B^T.
  Tensor u = Tensor::empty({M, r}, x.dtype(), x.device());
  wick::matmul(x, A, u, false, true, 1.0f, 0.0f, nullptr);
  wick::matmul(u, B, y, false, true, scale, accumulate ? 1.0f : 0.0f, nullptr);
}

}  // namespace wick::cuda_ops
