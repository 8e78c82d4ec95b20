// exp for f32 that GCC vectorises: no library call and no branches, so `#pragma omp simd` loops over it
// become 4-wide (SSE2), 8-wide (AVX2 + FMA) or 16-wide (AVX-512) code in the WICK_CPU_HOT clones. Needs
// -fno-trapping-math to be if-converted (CMakeLists.txt gives the CPU twins that flag). Why not a
// library: SLEEF and glibc's libmvec are called per vector width and ISA (one more runtime package for
// SLEEF on every machine), and neither fuses into the loops; this is 20 lines.
//
// Accuracy against the f64 exp: error <= 1.02 ulp of the result wherever the result is a normal float
// and x >= -87.3365 (just above ln(FLT_MIN) = -87.33654); below that the result is 0 (subnormal results
// are flushed: absolute error < 1.2e-38); above 88.72283 (ln(FLT_MAX)) and +inf -> +inf; -inf -> 0;
// NaN -> NaN. All 2^32 inputs were checked once: max 1.014 ulp with FMA contraction (the AVX2 and
// AVX-512 clones, bit-identical to each other, at x = 37.78), 0.99 without (the baseline clone), so
// the baseline clone can differ in the last bit;
// tests/ops/test_vec_exp.cpp checks random inputs over the range and the edges, for both builds.
//
// Method: x = n ln2 + r with n = round(x / ln2) and |r| <= ln2/2 (Cody-Waite: ln2 split into a 9-bit
// head, so n * head and x - n * head are exact, and a tail); exp(r) = 1 + r + r^2 q(r) with q a degree-4
// fit of (exp(r) - 1 - r) / r^2 on [-ln2/2, ln2/2] (0.07 ulp); 2^n is added to the exponent bits, which
// is exact for normal results; the out-of-range and NaN lanes are selected at the end.
#pragma once
#include <bit>
#include <cstdint>
#include <limits>

namespace wick::cpu {

inline float exp_f32(float x) {
  const float shifter = 0x1.8p23f;  // adding it rounds x / ln2 to an integer in the low mantissa bits
  const float t = x * 0x1.715476p+0f + shifter;
  const float n = t - shifter;
  const uint32_t ni = std::bit_cast<uint32_t>(t) - std::bit_cast<uint32_t>(shifter);  // n, two's complement
  const float r = (x - n * 0x1.63p-1f) - n * -0x1.bd0106p-13f;  // x - n ln2 (head exact, then tail)
  float q = 0x1.6a244cp-10f;
  q = q * r + 0x1.1239d4p-7f;
  q = q * r + 0x1.5558f2p-5f;
  q = q * r + 0x1.555492p-3f;
  q = q * r + 0x1.fffffcp-2f;
  const float p = 1.0f + (r + r * r * q);  // exp(r) in [0.7, 1.42]
  float y = std::bit_cast<float>(std::bit_cast<uint32_t>(p) + (ni << 23));  // p * 2^n, n in [-126, 128]
  y = x < -0x1.5d5894p+6f ? 0.0f : y;                                       // -87.3365, -inf
  y = x > 0x1.62e42ep+6f ? std::numeric_limits<float>::infinity() : y;      // 88.72283, +inf
  return x != x ? x : y;                                                    // NaN
}

// y [n] = exp_f32(x [n]), compiled as the CPU twins are (vec_exp.cpp); y may alias x.
void exp_span(const float* x, float* y, int64_t n);

}  // namespace wick::cpu
