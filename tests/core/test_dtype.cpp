#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/testutil.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"

using namespace wick;

static uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Values worked out from the definitions of IEEE binary16 / bfloat16 with round-to-nearest-even; these
// match torch.tensor(x).to(torch.bfloat16 / torch.float16) bit for bit.
TEST(DType, Bf16RoundNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);  // just above the tie
  EXPECT_EQ(f32_to_bf16(-2.5f), 0xc020);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80);  // max float rounds to inf
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  const uint16_t nan = f32_to_bf16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7f80, 0x7f80);
  EXPECT_NE(nan & 0x007f, 0);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00000001u)), 0x0000);  // tiny subnormal rounds to 0
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
}

TEST(DType, F16RoundNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);  // below the halfway point to 65536
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // ties to even -> inf
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -26)), 0x0001);  // 0.75 ulp -> 1
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie, even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie, odd up
  EXPECT_EQ(f32_to_f16(0.1f), 0x2e66);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
}

TEST(DType, F16RoundTripEveryHalf) {
  for (uint32_t h = 0; h < 0x10000u; h++) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << "half bits " << h;
  }
  for (uint32_t h = 0; h < 0x10000u; h++) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), h) << "bf16 bits " << h;
  }
}

TEST(DType, F16MatchesLongDivisionOnRandomFloats) {
  // Independent reference: round |x| * 2^k to an integer with nearbyint (RNE) in double.
  Rng rng(7);
  for (int i = 0; i < 200000; i++) {
    const float x = from_bits(rng.next_u32());
    if (!std::isfinite(x)) continue;
    const double ax = std::fabs(static_cast<double>(x));
    double ref;
    if (ax >= 65520.0) {
      ref = INFINITY;
    } else {
      int e;
      std::frexp(ax, &e);                    // ax = m * 2^e, m in [0.5, 1)
      const int unit = std::max(e - 11, -24);  // 10 mantissa bits; subnormal unit 2^-24
      ref = std::nearbyint(std::ldexp(ax, -unit));
      ref = std::ldexp(ref, unit);
    }
    if (std::signbit(x)) ref = -ref;
    ASSERT_EQ(f16_to_f32(f32_to_f16(x)), static_cast<float>(ref)) << "x bits " << bits(x);
  }
}

TEST(Tensor, ViewsShareStorageAndCopiesDont) {
  Rng rng(1);
  Tensor a = test::randn({4, 6}, rng);
  Tensor v = a.view({2, 12});
  v.data<float>()[5] = 42.0f;
  EXPECT_EQ(a.data<float>()[5], 42.0f);
  Tensor rows = a.narrow0(1, 2);
  EXPECT_EQ(rows.shape(), (Shape{2, 6}));
  EXPECT_EQ(rows.data<float>()[0], a.data<float>()[6]);
  Tensor c = a.clone();
  c.data<float>()[0] = -1.0f;
  EXPECT_NE(a.data<float>()[0], -1.0f);
  EXPECT_THROW(a.view({5, 5}), InternalError);
  EXPECT_THROW(a.data<int32_t>(), InternalError);
}

TEST(Tensor, CastsRoundTrip) {
  Rng rng(2);
  Tensor a = test::randn({3, 5}, rng);
  Tensor b = a.to(DType::BF16).to(DType::F32);
  for (int i = 0; i < 15; i++) EXPECT_EQ(b.data<float>()[i], round_bf16(a.data<float>()[i]));
  Tensor ids = Tensor::from_i64({1, -2, 300}, {3}).to(DType::I32);
  EXPECT_EQ(ids.data<int32_t>()[1], -2);
  EXPECT_EQ(ids.to_i64_vector()[2], 300);
}

TEST(Tensor, BadShapesAreErrors) {
  EXPECT_THROW(Tensor::empty({-1, 2}, DType::F32), Error);
  EXPECT_THROW(Tensor::empty({1LL << 40, 1LL << 40}, DType::F32), Error);
  EXPECT_THROW(Device::parse("tpu"), Error);
  EXPECT_EQ(Device::parse("cuda:1").index, 1);
}
