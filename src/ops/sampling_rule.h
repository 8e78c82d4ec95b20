// The arithmetic of sample_tokens (ops/sampling.h) that the host and the GPU must do bit for bit alike, so
// that both give the same token for the same logits, settings, seed and draw number. Included by the CPU
// twin (ops/cpu/sampling.cpp, which infer's Sampler also runs) and by the CUDA kernel (ops/cuda/sample_tokens.cu).
//
// Three things would otherwise differ between the sides:
//  - exp: libm's expf and CUDA's differ in the last bit now and then (neither is correctly rounded).
//    rule_exp below is one sequence of IEEE double operations (+, *, rint: correctly rounded on both sides;
//    and a table of 64 constants;
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

// 2^(j/64), j = 0..63, as doubles (hex literals: both compilers read them exactly). The device reads its own
// copy (a __device__ array: lanes index it freely).
#define WICK_EXP2_64THS \
    0x1.0000000000000p+0, 0x1.02c9a3e778061p+0, 0x1.059b0d3158574p+0, 0x1.0874518759bc8p+0, \
    0x1.0b5586cf9890fp+0, 0x1.0e3ec32d3d1a2p+0, 0x1.11301d0125b51p+0, 0x1.1429aaea92de0p+0, \
    0x1.172b83c7d517bp+0, 0x1.1a35beb6fcb75p+0, 0x1.1d4873168b9aap+0, 0x1.2063b88628cd6p+0, \
    0x1.2387a6e756238p+0, 0x1.26b4565e27cddp+0, 0x1.29e9df51fdee1p+0, 0x1.2d285a6e4030bp+0, \
    0x1.306fe0a31b715p+0, 0x1.33c08b26416ffp+0, 0x1.371a7373aa9cbp+0, 0x1.3a7db34e59ff7p+0, \
    0x1.3dea64c123422p+0, 0x1.4160a21f72e2ap+0, 0x1.44e086061892dp+0, 0x1.486a2b5c13cd0p+0, \
    0x1.4bfdad5362a27p+0, 0x1.4f9b2769d2ca7p+0, 0x1.5342b569d4f82p+0, 0x1.56f4736b527dap+0, \
    0x1.5ab07dd485429p+0, 0x1.5e76f15ad2148p+0, 0x1.6247eb03a5585p+0, 0x1.6623882552225p+0, \
    0x1.6a09e667f3bcdp+0, 0x1.6dfb23c651a2fp+0, 0x1.71f75e8ec5f74p+0, 0x1.75feb564267c9p+0, \
    0x1.7a11473eb0187p+0, 0x1.7e2f336cf4e62p+0, 0x1.82589994cce13p+0, 0x1.868d99b4492edp+0, \
    0x1.8ace5422aa0dbp+0, 0x1.8f1ae99157736p+0, 0x1.93737b0cdc5e5p+0, 0x1.97d829fde4e50p+0, \
    0x1.9c49182a3f090p+0, 0x1.a0c667b5de565p+0, 0x1.a5503b23e255dp+0, 0x1.a9e6b5579fdbfp+0, \
    0x1.ae89f995ad3adp+0, 0x1.b33a2b84f15fbp+0, 0x1.b7f76f2fb5e47p+0, 0x1.bcc1e904bc1d2p+0, \
    0x1.c199bdd85529cp+0, 0x1.c67f12e57d14bp+0, 0x1.cb720dcef9069p+0, 0x1.d072d4a07897cp+0, \
    0x1.d5818dcfba487p+0, 0x1.da9e603db3285p+0, 0x1.dfc97337b9b5fp+0, 0x1.e502ee78b3ff6p+0, \
    0x1.ea4afa2a490dap+0, 0x1.efa1bee615a27p+0, 0x1.f50765b6e4540p+0, 0x1.fa7c1819e90d8p+0
#if defined(__CUDACC__)
static __device__ const double kExp2_64thsDevice[64] = {WICK_EXP2_64THS};
#endif
inline constexpr double kExp2_64ths[64] = {WICK_EXP2_64THS};
WICK_RULE_FN double exp2_64ths(int j) {
#if defined(__CUDA_ARCH__)
  return kExp2_64thsDevice[j];
#else
  return kExp2_64ths[j];
#endif
}

// exp(x) rounded to f32, for x <= 0 (x = score - max score). Reduction x = (64 k + j) ln2 / 64 + r with
// |r| <= ln2 / 128 (n = 64 k + j = round(64 x / ln2); n ln2_hi / 64 is exact: ln2_hi has 32 significant bits,
// n at most 14), e^r by its degree-5 Taylor polynomial (truncation < 4e-17), times the table's 2^(j/64) and 2^k
// (exact). Error before the one rounding to f32: a few 1e-17 relative. exp(0) = 1 exactly, and the result
// never exceeds 1, so the top token's weight is 1 and min-p's max probability is 1 / normaliser.
WICK_RULE_FN float rule_exp(float x) {
  if (!(x > -104.0f)) return 0.0f;  // e^-104 < 2^-150: rounds to 0 in f32 (-inf lands here too)
  const double xd = x;
  const double n = drint(dmul(xd, 0x1.71547652b82fep+6));  // 64 / ln2; n in [-9600, 0]
  const double l_hi = 0x1.62e42feep-7;        // ln2_hi / 64 (fdlibm's ln2_hi: 32 significant bits)
  const double l_lo = 0x1.a39ef35793c76p-39;  // ln2_lo / 64
  const double r = dadd(dadd(xd, -dmul(n, l_hi)), -dmul(n, l_lo));
  double p = 0x1.1111111111111p-7;  // 1/120, 1/24, 1/6 as hex literals: no compiler folds them differently
  p = dadd(dmul(p, r), 0x1.5555555555555p-5);
  p = dadd(dmul(p, r), 0x1.5555555555555p-3);
  p = dadd(dmul(p, r), 0.5);
  p = dadd(dmul(p, r), 1.0);
  p = dadd(dmul(p, r), 1.0);
  const int ni = static_cast<int>(n);
  const int j = ni & 63, k = (ni - j) / 64;  // n = 64 k + j, j in [0, 64)
  const double scale = bits_double(static_cast<uint64_t>(k + 1023) << 52);  // 2^k, a normal double
  const float e = to_f32(dmul(dmul(p, exp2_64ths(j)), scale));
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
