// Rng: a small, fast, seedable generator (PCG32) whose full state can be saved and restored, so that
// checkpoints resume bit-exactly. Not torch's generator: wick never claims to reproduce torch's draws.
#pragma once
#include <cmath>
#include <cstdint>

namespace wick {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0x853c49e6748fea9bULL, uint64_t stream = 0xda3e39cb94b95bdbULL) { seed_(seed, stream); }
  void seed_(uint64_t seed, uint64_t stream = 0xda3e39cb94b95bdbULL) {
    state_ = 0;
    inc_ = (stream << 1u) | 1u;
    next_u32();
    state_ += seed;
    next_u32();
  }
  uint32_t next_u32() {
    const uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    const uint32_t xorshifted = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
    const uint32_t rot = static_cast<uint32_t>(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
  }
  uint64_t next_u64() { return (static_cast<uint64_t>(next_u32()) << 32) | next_u32(); }
  // Uniform in [0, 1) with 24 random bits.
  float uniform() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal (Box-Muller, double inside).
  float normal() {
    double u1 = (static_cast<double>(next_u32()) + 1.0) / 4294967297.0;
    double u2 = static_cast<double>(next_u32()) / 4294967296.0;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n ? next_u64() % n : 0; }

  // Skips n draws of next_u32 in O(log n) (the LCG's jump-ahead): work split into chunks draws the same
  // numbers as one sequential pass.
  void advance(uint64_t n) {
    uint64_t mult = 6364136223846793005ULL, plus = inc_, acc_mult = 1, acc_plus = 0;
    for (; n > 0; n >>= 1) {
      if (n & 1) {
        acc_mult *= mult;
        acc_plus = acc_plus * mult + plus;
      }
      plus = (mult + 1) * plus;
      mult *= mult;
    }
    state_ = acc_mult * state_ + acc_plus;
  }

  uint64_t state() const { return state_; }
  uint64_t inc() const { return inc_; }
  void restore(uint64_t state, uint64_t inc) { state_ = state; inc_ = inc; }

 private:
  uint64_t state_ = 0, inc_ = 0;
};

}  // namespace wick
