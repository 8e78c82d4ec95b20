// CUDA twin of weight_grad_products (ops/weight_grads.h): the products the kernel takes (weight_grads.cuh:
// bf16, R <= 64 and a multiple of 8, M a multiple of 8, 16-byte aligned rows) go to one launch a rank tile
// (16, 32, 48 or 64; at most kMaxProducts a launch), the others to the view matmul (cuBLASLt). The kernel is
// opt-in (WICK_WEIGHT_GRADS=1, or set_weight_grad_kernel): measured level with cuBLASLt in training so far
// (docs/benchmarks.md 8j); without it every product is the view matmul. WICK_WEIGHT_GRADS=2 runs its one-wave
// variant (kWave: plan_wave, a cooperative launch) where the device launches cooperatively and the launch's tiles
// fit one wave, else that launch as 1 (measured level with cuBLASLt in training: docs/benchmarks.md 8m).
#include <atomic>
#include <mutex>
#include <type_traits>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/weight_grads.cuh"

namespace wick::cuda_ops {

namespace {

using bf16 = __nv_bfloat16;
constexpr int kMaxDevices = 64;
// Tile counters a device keeps (zero between launches); a launch needing more is split.
constexpr int kCounters = 1 << 14;

unsigned* tile_counters(int dev) {
  static std::mutex mu;
  static unsigned* counters[kMaxDevices] = {};
  WICK_CHECK(dev >= 0 && dev < kMaxDevices, "weight_grad_products: device " << dev << " out of range");
  std::lock_guard<std::mutex> lock(mu);
  if (!counters[dev]) {
    cuda::set_device(dev);
    void* p = nullptr;
    WICK_CUDA_CHECK(cudaMalloc(&p, kCounters * sizeof(unsigned)));
    WICK_CUDA_CHECK(cudaMemset(p, 0, kCounters * sizeof(unsigned)));
    counters[dev] = static_cast<unsigned*>(p);
  }
  return counters[dev];
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The kernel's requirements (weight_grads.cuh); the rank tile it would use, 0 when it does not take p.
int rank_tile(const WeightGradProduct& p) {
  const Tensor& a = *p.a.tensor;
  const Tensor& b = *p.b.tensor;
  if (a.dtype() != DType::BF16 || p.a.rows == 0 || p.a.rows > INT32_MAX || p.a.cols > INT32_MAX) return 0;
  const int64_t M = p.a.cols, R = p.b.cols;
  if (M % 8 != 0 || R % 8 != 0 || R == 0 || R > 64 || p.a.ld % 8 != 0 || p.b.ld % 8 != 0) return 0;
  if ((M + wgrad::kTileM - 1) / wgrad::kTileM > kCounters) return 0;  // more tiles than one launch counts
  const auto* pa = static_cast<const bf16*>(a.raw()) + p.a.offset;
  const auto* pb = static_cast<const bf16*>(b.raw()) + p.b.offset;
  if (!aligned16(pa) || !aligned16(pb)) return 0;
  return static_cast<int>((R + 15) / 16 * 16);
}

wgrad::Product to_kernel(const WeightGradProduct& p) {
  wgrad::Product k;
  k.a = static_cast<const bf16*>(p.a.tensor->raw()) + p.a.offset;
  k.b = static_cast<const bf16*>(p.b.tensor->raw()) + p.b.offset;
  k.out = static_cast<float*>(p.out.tensor->raw()) + p.out.offset;
  k.lda = p.a.ld;
  k.ldb = p.b.ld;
  k.ldo = p.out.ld;
  k.K = static_cast<int>(p.a.rows);
  k.M = static_cast<int>(p.a.cols);
  k.R = static_cast<int>(p.b.cols);
  k.transposed = p.transposed;
  k.accumulate = p.accumulate;
  k.scale = p.scale;
  return k;
}

// Resident blocks on device dev of the RT kernel with kWave's reduction (wave) or kLastBlock's, cached per device,
// rank tile and reduction; for kWave 0 when the device cannot launch cooperatively (plan_wave then declines every
// batch).
template <int RT, bool Wave> int capacity_rt(int dev) {
  static std::atomic<int> cache[kMaxDevices];  // 0: not asked yet; else value + 1
  int v = cache[dev].load(std::memory_order_relaxed);
  if (v == 0) {
    int coop = 1, blocks = 0;
    if (Wave) WICK_CUDA_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
    constexpr int V = Wave ? wgrad::kWave : wgrad::kLastBlock;
    if (coop) WICK_CUDA_CHECK((wgrad::resident_blocks<RT, wgrad::kTileM, wgrad::kStages, 1, V>(cuda::sm_count(dev), &blocks)));
    v = blocks + 1;
    cache[dev].store(v, std::memory_order_relaxed);
  }
  return v - 1;
}

// f(std::integral_constant<int, RT>) for the rank tile rt (16, 32, 48 or 64).
template <class F> auto with_rank_tile(int rt, F&& f) {
  switch (rt) {
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
    case 48: return f(std::integral_constant<int, 48>{});
    default: return f(std::integral_constant<int, 64>{});
  }
}

// The batch's plan for a launch of the kernel with reduction `wave` (kWave: plan_wave, -1 when the batch does not
// fit one wave, the caller then plans it for kLastBlock; else plan), and that launch.
long long plan_for(int rt, bool wave, wgrad::Batch& b, int dev) {
  return with_rank_tile(rt, [&](auto t) {
    constexpr int RT = decltype(t)::value;
    return wave ? wgrad::plan_wave<RT>(b, capacity_rt<RT, true>(dev)) : wgrad::plan<RT>(b, capacity_rt<RT, false>(dev));
  });
}
cudaError_t launch_for(int rt, bool wave, const wgrad::Batch& b, cudaStream_t s) {
  return with_rank_tile(rt, [&](auto t) {
    constexpr int RT = decltype(t)::value;
    return wave ? wgrad::launch_wave<RT>(b, s) : wgrad::launch<RT>(b, s);
  });
}

}  // namespace

void weight_grad_products(const std::vector<WeightGradProduct>& products) {
  const WeightGradKernel mode = wick::weight_grad_kernel();
  const bool on = mode != WeightGradKernel::kCublasLt;
  const int dev = products[0].a.tensor->device().index;
  // Batches of one rank tile each, in list order; the rest by the view matmul.
  struct Pending {
    int rt;
    wgrad::Batch batch;
    long long floats;
    bool wave;  // planned by plan_wave (launched cooperatively), else by plan
  };
  std::vector<Pending> launches;
  for (const WeightGradProduct& p : products) {
    const int rt = on ? rank_tile(p) : 0;
    if (rt == 0) {
      const float beta = p.accumulate ? 1.0f : 0.0f;
      if (p.transposed) cuda_ops::matmul(p.b, p.a, p.out, true, false, p.scale, beta, nullptr);  // [R, M] = b^T a
      else cuda_ops::matmul(p.a, p.b, p.out, true, false, p.scale, beta, nullptr);               // [M, R] = a^T b
      continue;
    }
    const int tiles = static_cast<int>((p.a.cols + wgrad::kTileM - 1) / wgrad::kTileM);
    Pending* l = nullptr;
    for (Pending& c : launches)
      if (c.rt == rt && c.batch.n < wgrad::kMaxProducts && wgrad::counters_needed(c.batch) + tiles <= kCounters) l = &c;
    if (!l) {
      launches.push_back({rt, wgrad::Batch{}, 0, false});
      l = &launches.back();
    }
    l->batch.p[l->batch.n++] = to_kernel(p);
  }
  if (launches.empty()) return;
  cuda::set_device(dev);
  long long total = 0;
  for (Pending& l : launches) {
    l.floats = mode == WeightGradKernel::kWave ? plan_for(l.rt, true, l.batch, dev) : -1;
    l.wave = l.floats >= 0;
    if (!l.wave) l.floats = plan_for(l.rt, false, l.batch, dev);  // kLastBlock, or a batch too wide for kWave
    total += l.floats;
  }
  // One scratch() call for every launch's partials (ops/cuda/runtime.h); launches on one stream run one after
  // another, so they share the tile counters (both reductions leave them zero).
  float* ws = static_cast<float*>(cuda::scratch(dev, sizeof(float) * static_cast<size_t>(total)));
  unsigned* counters = tile_counters(dev);
  cudaStream_t s = cuda::stream_of(*products[0].a.tensor);
  long long at = 0;
  for (Pending& l : launches) {
    l.batch.part = ws + at;
    l.batch.counters = counters;
    at += l.floats;
    WICK_CUDA_CHECK(launch_for(l.rt, l.wave, l.batch, s));
  }
}

}  // namespace wick::cuda_ops
