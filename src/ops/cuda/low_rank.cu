// CUDA twin of low_rank_product (ops/low_rank.h): the fused one-launch kernel (low_rank.cuh) when
// low_rank_fused(M, r) holds and the device runs cooperative launches, else the two matmuls with u [M, r]
// in x's dtype.
#include <atomic>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/low_rank.cuh"

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

}  // namespace

void low_rank_product(const Tensor& x, const Tensor& A, const Tensor& B, float scale, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), in = x.dim(1), r = A.dim(0), out = B.dim(0);
  const int dev = x.device().index;
  cudaStream_t s = cuda::stream_of(x);
  bool done = false;
  cuda::dispatch_float(x.dtype(), "low_rank_product", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (!low_rank_fused(M, r) || in > INT32_MAX / 2 || out > INT32_MAX / 2) return;
    const int occ = resident_blocks<T>(dev);
    if (occ == 0) return;
    const int G = lowrank::low_rank_grid(static_cast<int>(in), static_cast<int>(out), cuda::sm_count(dev), occ);
    float* ws = static_cast<float*>(
        cuda::scratch(dev, sizeof(float) * lowrank::low_rank_workspace_floats(G, static_cast<int>(M), static_cast<int>(r))));
    WICK_CUDA_CHECK(lowrank::low_rank_launch<T>(cuda::cptr<T>(x), cuda::cptr<T>(A), cuda::cptr<T>(B), cuda::ptr<T>(y),
                                                static_cast<int>(M), static_cast<int>(in), static_cast<int>(r),
                                                static_cast<int>(out), scale, accumulate, ws, G, s));
    done = true;
  });
  if (done) return;
  // Two GEMMs: u = x A^T [M, r] (x's dtype), y (=|+=) scale u B^T.
  Tensor u = Tensor::empty({M, r}, x.dtype(), x.device());
  wick::matmul(x, A, u, false, true, 1.0f, 0.0f, nullptr);
  wick::matmul(u, B, y, false, true, scale, accumulate ? 1.0f : 0.0f, nullptr);
}

}  // namespace wick::cuda_ops
