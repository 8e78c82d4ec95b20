// exp for f32 that GCC vectorises: no library call, no branches, so `#pragma omp simd` loops over it
// become 4-wide (SSE2) or 8-wide (AVX2) code. Needs -fno-trapping-math to be if-converted (the CPU twins
// get it from CMakeLists.txt). Why not a library: SLEEF and glibc's libmvec are only callable per vector
// width and ISA (their SSE and AVX2 variants round differently, and SLEEF would be one more runtime
// package on every machine); this is 20 lines, the same bits on every x86-64, and fuses into the loops.
//
// Accuracy against the f64 exp: error < 1 ulp of the result wherever it is a normal float (x in
// [-87.33, 88.72]); a subnormal result (x down to -103.97) is within 1 subnormal step (2^-149), below that it
// is 0; -inf -> 0, above 88.72 and +inf -> +inf, NaN -> NaN. All 2^32 inputs were checked once (max
// 0.989 ulp, 0.75 subnormal steps; the same in the baseline and the AVX2 build); tests/ops/test_vec_exp.cpp
// checks random inputs over the range and the edges.
//
// Method: x = n ln2 + r with n = round(x / ln2) and |r| <= ln2/2 (Cody-Waite: ln2 split into a 9-bit
// head, so n * head and x - n * head are exact, and a tail); exp(r) = 1 + r + r^2 q(r) with q a degree-4
// fit of (exp(r) - 1 - r) / r^2 on [-ln2/2, ln2/2] (0.07 ulp); 2^n applied as two exact factors 2^(n/2)
// and 2^(n - n/2), so that subnormal results round once and large ones overflow to inf.
#pragma once
#include <bit>
#include <cstdint>

namespace wick::cpu {

inline float exp_f32(float x) {
  x = x < -104.0f ? -104.0f : x;  // exp(-104) rounds to 0; NaN passes both
  x = x > 88.8f ? 88.8f : x;      // exp(88.8) overflows to inf
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
  const uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(ni) >> 1), n2 = ni - n1;  // n in [-150, 128]
  return p * std::bit_cast<float>((n1 + 127u) << 23) * std::bit_cast<float>((n2 + 127u) << 23);
}

// y [n] = exp_f32(x [n]), compiled as the CPU twins are (vec_exp.cpp); y may alias x.
void exp_span(const float* x, float* y, int64_t n);

}  // namespace wick::cpu
