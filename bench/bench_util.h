// Shared helpers of the wick_bench suites: random inputs on a device, and a timed loop that reports each
// iteration's time to Google Benchmark (manual time) plus the median over iterations as a counter
// `median_us`, the statistic the torch peer (bench/peer/torch_peer.py) reports.
//   CPU:  wall clock around the call (the ops return when done).
//   CUDA: CUDA events recorded on wick's stream around the call, warm, one event pair per iteration.
#pragma once
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/rng.h"
#include "core/tensor.h"

#ifdef WICK_CUDA
#include <cuda_profiler_api.h>

#include "ops/cuda/runtime.h"
#endif

namespace wick::bench {

// Registration hooks, called by bench_main.cpp (CUDA rows only when a GPU is usable).
void register_seed_benchmarks(const std::vector<Device>& devices);
void register_sampler_benchmarks(const std::vector<Device>& devices);  // bench_sampler.cpp
void register_linear_benchmarks(const std::vector<Device>& devices);  // bench_linear.cpp
void register_prefill_benchmarks(const std::vector<Device>& devices);  // bench_prefill.cpp
void register_serve_step_benchmarks(const std::vector<Device>& devices);  // bench_serve_step.cpp
void register_gemm_strided_benchmarks(const std::vector<Device>& devices);  // bench_gemm_strided.cpp
void register_chat_template_benchmarks(const std::vector<Device>& devices);  // bench_chat_template.cpp
void register_decode_attention_benchmarks(const std::vector<Device>& devices);  // bench_decode_attention.cpp

// N(0, scale^2) f32 tensor of `shape` on dev.
inline Tensor randn(const Shape& shape, Rng& rng, Device dev, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = scale * rng.normal();
  return Tensor::from_f32(v, shape, dev);
}
inline Tensor constant(const Shape& shape, float value, Device dev) {
  return Tensor::from_f32(std::vector<float>(static_cast<size_t>(shape_numel(shape)), value), shape, dev);
}

inline std::string dev_suffix(Device d) { return d.is_cpu() ? "/cpu" : "/cuda"; }

// Runs fn once per benchmark iteration after `warmup` untimed calls (plan caches, allocator pools).
// WICK_BENCH_PROFILE=1 brackets the timed iterations with cudaProfilerStart/Stop, so that
// `ncu --profile-from-start off` sees only them (bench/ncu_summary.py divides by the iterations).
template <class F>
void timed_loop(benchmark::State& st, Device dev, F&& fn, int warmup = 5) {
  for (int i = 0; i < warmup; i++) fn();
  device_synchronize(dev);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(std::max<benchmark::IterationCount>(st.max_iterations, 1)));
#ifdef WICK_CUDA
  if (dev.is_cuda()) {
    cudaStream_t s = cuda::stream(dev.index);
    cudaEvent_t a, b;
    WICK_CUDA_CHECK(cudaEventCreate(&a));
    WICK_CUDA_CHECK(cudaEventCreate(&b));
    const bool profile = std::getenv("WICK_BENCH_PROFILE") != nullptr;
    if (profile) WICK_CUDA_CHECK(cudaProfilerStart());
    for (auto _ : st) {
      WICK_CUDA_CHECK(cudaEventRecord(a, s));
      fn();
      WICK_CUDA_CHECK(cudaEventRecord(b, s));
      WICK_CUDA_CHECK(cudaEventSynchronize(b));
      float ms = 0;
      WICK_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
      st.SetIterationTime(ms * 1e-3);
      us.push_back(ms * 1e3);
    }
    if (profile) WICK_CUDA_CHECK(cudaProfilerStop());
    WICK_CUDA_CHECK(cudaEventDestroy(a));
    WICK_CUDA_CHECK(cudaEventDestroy(b));
  } else
#endif
  {
    for (auto _ : st) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      const auto t1 = std::chrono::steady_clock::now();
      const double sec = std::chrono::duration<double>(t1 - t0).count();
      st.SetIterationTime(sec);
      us.push_back(sec * 1e6);
    }
  }
  if (!us.empty()) {
    std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
    st.counters["median_us"] = us[us.size() / 2];
  }
}

}  // namespace wick::bench
