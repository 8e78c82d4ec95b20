// Small helpers shared by the CPU twins: f32 reductions the compiler may vectorise (omp simd lets it
// keep several partial sums), and an OpenMP threshold so tiny ops do not pay for a thread team.
#pragma once
#include <cstdint>

namespace wick::cpu {

// Work (elements touched) below which a loop runs on one thread.
constexpr int64_t kParallelMin = 1 << 14;

inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

inline float sum(const float* a, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += a[i];
  return s;
}

}  // namespace wick::cpu
