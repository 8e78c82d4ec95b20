// median_us(stream, f, iters, warmup): the dev/ harnesses' timing of one call, as bench/bench_seed.cpp times a row:
// `warmup` calls (10), then `iters` calls each between a CUDA event pair on `stream` (synchronised), the median in
// µs.
#pragma once
#include <algorithm>
#include <vector>

#include "cuda_check.cuh"

template <class F> double median_us(cudaStream_t s, F&& f, int iters = 200, int warmup = 10) {
  for (int i = 0; i < warmup; i++) f();
  CK(cudaStreamSynchronize(s));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<double> us;
  for (int i = 0; i < iters; i++) {
    CK(cudaEventRecord(a, s));
    f();
    CK(cudaEventRecord(b, s));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    us.push_back(ms * 1e3);
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}
