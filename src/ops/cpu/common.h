// Small helpers shared by the CPU twins: an OpenMP threshold so tiny ops do not pay for a thread team,
// the attribute that compiles a hot loop for two x86-64 levels, and f32 reductions in a fixed order.
//
// WICK_CPU_HOT (CMake option WICK_CPU_CLONES, on by default on x86-64): GCC compiles the function three
// times, for x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA) and the baseline (SSE2), and picks one when the
// program loads (an ifunc; every x86-64 runs it). Put it on per-row / per-span kernels, not on functions
// holding an OpenMP region: the region's body is outlined before cloning and would stay baseline. The
// v3/v4 clones fuse multiply-adds, so their last bits can differ from the baseline clone's (AdamW
// excepted: optim.cpp is built without contraction). The reductions below use 32 lanes in a fixed order
// whatever the vector width.
#pragma once
#include <cstdint>
#include <cstring>

namespace wick::cpu {

// Work (elements touched) below which a loop runs on one thread.
constexpr int64_t kParallelMin = 1 << 14;

// GCC only: clang 14 (the sanitizer and fuzz build, scripts/fuzz_configure.sh) resolved the x86-64-v4 clone on
// an AMD EPYC without AVX-512 and the first AVX-512 instruction raised SIGILL (VecExp tests, 2026-12-03), so a
// clang build runs the baseline code.
#if defined(WICK_CPU_CLONES) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WICK_CPU_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define WICK_CPU_HOT
#endif

// 8 f32 lanes as a GCC vector: one AVX register in the v3 clone, two SSE registers in the baseline one.
using f32x8 = float __attribute__((vector_size(32)));
using f32x4 = float __attribute__((vector_size(16)));
using f64x4 = double __attribute__((vector_size(32)));

inline void load8(f32x8& v, const float* p) { std::memcpy(&v, p, sizeof v); }
inline float hsum(const f32x8& v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

// Reductions keep four 8-lane partial results (32 lanes: independent chains, so the adds overlap), fold
// them in a fixed order, then take the tail in order.

// sum_i a[i] * b[i]
inline float dot(const float* a, const float* b, int64_t n) {
  f32x8 s[4] = {}, x, y;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; k++) load8(x, a + i + 8 * k), load8(y, b + i + 8 * k), s[k] += x * y;
  float t = hsum((s[0] + s[2]) + (s[1] + s[3]));
  for (; i < n; i++) t += a[i] * b[i];
  return t;
}

// sum_i a[i]
inline float sum(const float* a, int64_t n) {
  f32x8 s[4] = {}, x;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; k++) load8(x, a + i + 8 * k), s[k] += x;
  float t = hsum((s[0] + s[2]) + (s[1] + s[3]));
  for (; i < n; i++) t += a[i];
  return t;
}

// sum_i (a[i] - c)^2 (the centred second moment of a row, without storing a - c)
inline float sum_sq_dev(const float* a, float c, int64_t n) {
  f32x8 s[4] = {}, x;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; k++) load8(x, a + i + 8 * k), x -= c, s[k] += x * x;
  float t = hsum((s[0] + s[2]) + (s[1] + s[3]));
  for (; i < n; i++) t += (a[i] - c) * (a[i] - c);
  return t;
}

// sum_i a[i] accumulated in f64 (long rows: vocabulary-sized sums that must not drift with n).
inline double sum_f64(const float* a, int64_t n) {
  f64x4 s0 = {}, s1 = {};
  f32x4 lo, hi;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::memcpy(&lo, a + i, sizeof lo), std::memcpy(&hi, a + i + 4, sizeof hi);
    s0 += __builtin_convertvector(lo, f64x4);
    s1 += __builtin_convertvector(hi, f64x4);
  }
  const f64x4 s = s0 + s1;
  double t = (s[0] + s[2]) + (s[1] + s[3]);
  for (; i < n; i++) t += a[i];
  return t;
}

// max_i a[i] (n >= 1). With NaNs in a the result is unspecified (exp of a NaN row is NaN anyway).
inline float max(const float* a, int64_t n) {
  float m = a[0];
  int64_t i = 0;
  if (n >= 32) {
    f32x8 mv[4], x;
    for (int k = 0; k < 4; k++) load8(mv[k], a + 8 * k);
    for (i = 32; i + 32 <= n; i += 32)
      for (int k = 0; k < 4; k++) load8(x, a + i + 8 * k), mv[k] = x > mv[k] ? x : mv[k];
    for (int k = 1; k < 4; k++) mv[0] = mv[k] > mv[0] ? mv[k] : mv[0];
    m = mv[0][0];
    for (int j = 1; j < 8; j++) m = mv[0][j] > m ? mv[0][j] : m;
  }
  for (; i < n; i++) m = a[i] > m ? a[i] : m;
  return m;
}

}  // namespace wick::cpu
