// The arithmetic of sample_tokens (ops/sampling.h) that the host and the GPU must do bit for bit alike, so
// that both give the same token for the same logits, settings, seed and draw number. Included by the CPU
// twin (ops/cpu/sampling.cpp, which infer's Sampler also runs) and by the CUDA kernel (ops/cuda/sample_tokens.cu).
//
// Three things would otherwise differ between the sides:
//  - exp: libm's expf and CUDA's differ in the last bit now and then (neither is correctly rounded).
//    rule_exp below is one sequence of IEEE double operations (+, *, rint: correctly rounded on both sides;
//    the device spells each one as an intrinsic so nvcc cannot contract a*b+c into an FMA, and the CPU twins
//    compile with -ffp-contract=off), then one rounding to f32. Its error before that rounding is ~1e-16, so it
//    is f32 exp rounded correctly but for values within 1e-16 of a rounding midpoint, identically on both sides.
//  - sums: a softmax normaliser or a top-p cumulative mass summed in f64 depends on the order of the terms,
//    and a GPU sums in another order than a loop. Every sum here is an integer sum of fixed-point terms, which
//    is exact and so independent of order: e in [0, 1] as floor(e * 2^96) in 128 bits (the normalisers: at
//    most V terms below 2^31 * 2^96), p in [0, 1] as floor(p * 2^62) in 64 bits (top-p masses: they sum to
//    ~1). Each term loses < 2^-96 (2^-62): far below the f64 sums' rounding that these replace.
//  - the draw: a counter-based hash of (seed, draw number) (SplitMix64), so a replayed CUDA graph needs no
//    random input from the host and the host's Sampler draws the same uniform for the same step.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define WICK_RULE_FN __host__ __device__ __forceinline__
#else
#define WICK_RULE_FN inline
#endif

namespace wick::sampling_rule {

// 128-bit unsigned, two halves (device code and shuffles want the halves anyway).
struct U128 {  // no member initialisers: it lives in __shared__ arrays; write U128{} for zero
  uint64_t lo, hi;
};

WICK_RULE_FN U128 add(U128 a, U128 b) {
  U128 r{};
  r.lo = a.lo + b.lo;
  r.hi = a.hi + b.hi + (r.lo < a.lo ? 1u : 0u);
  return r;
}
WICK_RULE_FN bool greater(U128 a, U128 b) { return a.hi > b.hi || (a.hi == b.hi && a.lo > b.lo); }

WICK_RULE_FN uint64_t mul_hi(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}

WICK_RULE_FN uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
WICK_RULE_FN float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}
WICK_RULE_FN double bits_double(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
#endif
}

// IEEE double operations that no compiler may fuse.
WICK_RULE_FN double dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
WICK_RULE_FN double dadd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
WICK_RULE_FN double drint(double a) {
#if defined(__CUDA_ARCH__)
  return rint(a);
#else
  return __builtin_rint(a);
#endif
}
WICK_RULE_FN float to_f32(double a) {
#if defined(__CUDA_ARCH__)
  return __double2float_rn(a);
#else
  return static_cast<float>(a);
#endif
}
// f32 operations of the rule, spelled out on the device for the same reason (division: IEEE, not approximate).
WICK_RULE_FN float fdiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
WICK_RULE_FN float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
WICK_RULE_FN float fsub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

// exp(x) rounded to f32, for x <= 0 (x = score - max score). Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2,
// a degree-13 Taylor polynomial for e^r (truncation < 5e-18), scaled by 2^k exactly. exp(0) = 1 exactly, and
// the result never exceeds 1, so the top token's weight is 1 and min-p's max probability is 1 / normaliser.
WICK_RULE_FN float rule_exp(float x) {
  if (!(x > -104.0f)) return 0.0f;  // e^-104 < 2^-150: rounds to 0 in f32 (-inf lands here too)
  const double xd = x;
  const double k = drint(dmul(xd, 1.4426950408889634));  // round(x / ln2), in [-150, 0]
  const double ln2_hi = 6.93147180369123816490e-01;       // 32 significant bits: k * ln2_hi is exact
  const double ln2_lo = 1.90821492927058770002e-10;
  const double r = dadd(dadd(xd, -dmul(k, ln2_hi)), -dmul(k, ln2_lo));
  // 1/13!, ..., 1/2!, 1, 1
  const double c[14] = {1.6059043836821613e-10, 2.08767569878681e-09, 2.505210838544172e-08, 2.755731922398589e-07,
                        2.7557319223985893e-06, 2.48015873015873e-05, 1.984126984126984e-04, 1.388888888888889e-03,
                        8.333333333333333e-03,  4.1666666666666664e-02, 1.6666666666666666e-01, 0.5,
                        1.0,                    1.0};
  double p = c[0];
  for (int i = 1; i < 14; i++) p = dadd(dmul(p, r), c[i]);
  const int ki = static_cast<int>(k);
  const double scale = bits_double(static_cast<uint64_t>(ki + 1023) << 52);  // 2^k, a normal double
  const float e = to_f32(dmul(p, scale));
  return e > 1.0f ? 1.0f : e;
}

// floor(f * 2^96) for a finite f in [0, 2^31): the exact fixed-point value of a weight (truncated below 2^-96).
WICK_RULE_FN U128 fixed96(float f) {
  const uint32_t b = float_bits(f);
  const int E = static_cast<int>((b >> 23) & 0xff);
  if (b == 0 || E == 0) return U128{};  // zero, or a subnormal (< 2^-126: its 2^96 multiple is < 1)
  const uint64_t mant = (b & 0x7fffffu) | 0x800000u;  // f = mant * 2^(E - 150)
  const int shift = E - 150 + 96;                         // of mant, into the fixed point
  U128 r{};
  if (shift <= -64) return r;
  if (shift < 0) {
    r.lo = mant >> -shift;
  } else if (shift < 64) {
    r.lo = mant << shift;
    r.hi = shift == 0 ? 0 : mant >> (64 - shift);
  } else {
    r.hi = mant << (shift - 64);
  }
  return r;
}

// floor(p * 2^62) for p in [0, 1] (a probability): its exact fixed-point mass.
WICK_RULE_FN uint64_t fixed62(float p) {
  const uint32_t b = float_bits(p);
  const int E = static_cast<int>((b >> 23) & 0xff);
  if (b == 0 || E == 0) return 0;
  const uint64_t mant = (b & 0x7fffffu) | 0x800000u;
  const int shift = E - 150 + 62;
  if (shift <= -64) return 0;
  return shift < 0 ? mant >> -shift : mant << shift;
}

WICK_RULE_FN int clz64(uint64_t x) {  // x != 0
#if defined(__CUDA_ARCH__)
  return __clzll(static_cast<long long>(x));
#else
  return __builtin_clzll(x);
#endif
}
WICK_RULE_FN U128 shr(U128 a, int s) {  // 0 <= s < 128
  if (s == 0) return a;
  if (s >= 64) return U128{a.hi >> (s - 64), 0};
  return U128{(a.lo >> s) | (a.hi << (64 - s)), a.hi >> s};
}
WICK_RULE_FN U128 shl(U128 a, int s) {  // 0 <= s < 128
  if (s == 0) return a;
  if (s >= 64) return U128{0, a.lo << (s - 64)};
  return U128{a.lo << s, (a.hi << s) | (a.lo >> (64 - s))};
}

// z * 2^-frac rounded to nearest f32 (ties to even), for z != 0 with a normal result. Integer work only.
WICK_RULE_FN float fixed_to_float(U128 z, int frac) {
  const int msb = z.hi ? 127 - clz64(z.hi) : 63 - clz64(z.lo);
  uint64_t mant;  // the 24 leading bits
  if (msb <= 23) {
    mant = z.lo << (23 - msb);
  } else {
    const U128 r = shr(z, msb - 24);  // the 24 bits and the one below them
    mant = r.lo >> 1;
    const bool half = r.lo & 1;
    const bool sticky = msb - 24 > 0 && (shl(r, msb - 24).lo != z.lo || shl(r, msb - 24).hi != z.hi);
    if (half && (sticky || (mant & 1))) mant++;
  }
  int e = msb - frac;
  if (mant == (uint64_t{1} << 24)) {
    mant >>= 1;
    e++;
  }
  return bits_float(static_cast<uint32_t>(e + 127) << 23 | static_cast<uint32_t>(mant & 0x7fffff));
}

// Top-p's crossing test: HF keeps the tokens whose ascending cumulative probability, stored as f32, is
// > 1 - top_p (cut). f32(cum * 2^-62) is non-decreasing in cum, so the test is cum >= the smallest mass that
// passes it: found once per row by bisection, then every comparison is an integer one. cut <= 1 < 2 = the
// value of 2^63, so that mass exists.
WICK_RULE_FN bool mass_crossed(uint64_t cum, float cut) {
  return (cum == 0 ? 0.0f : fixed_to_float(U128{cum, 0}, 62)) > cut;
}
WICK_RULE_FN uint64_t crossing_mass(float cut) {
  uint64_t lo = 0, hi = uint64_t{1} << 63;  // crossed(hi); the answer is in [lo, hi]
  if (mass_crossed(0, cut)) return 0;
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (mass_crossed(mid, cut)) hi = mid;
    else lo = mid;
  }
  return hi;
}

// A float's total order as an unsigned key (-0 and +0 one key: the rule compares scores as floats).
WICK_RULE_FN uint32_t score_key(float s) {
  uint32_t u = float_bits(s == 0.0f ? 0.0f : s);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
WICK_RULE_FN float key_score(uint32_t k) { return bits_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }
// Top-p's candidate order: ascending score, and among equal scores the higher id first (so the lowest id of a
// tie is the "largest", as argmax would pick it). Unique per token.
WICK_RULE_FN uint64_t cand_key(float s, uint32_t id) {
  return (static_cast<uint64_t>(score_key(s)) << 32) | (0xffffffffu - id);
}

// The draw's 64 random bits for draw number n of a row seeded with seed (SplitMix64's output n).
WICK_RULE_FN uint64_t draw_bits(uint64_t seed, uint64_t n) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (n + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// floor(u * total / 2^64) for the draw's bits u: the target mass, in [0, total).
WICK_RULE_FN U128 draw_target(uint64_t u, U128 total) {
  // u * (hi 2^64 + lo) / 2^64 = u hi + u lo / 2^64
  U128 a{};
  a.lo = u * total.hi;
  a.hi = mul_hi(u, total.hi);
  U128 b{};
  b.lo = mul_hi(u, total.lo);
  return add(a, b);
}

}  // namespace wick::sampling_rule
