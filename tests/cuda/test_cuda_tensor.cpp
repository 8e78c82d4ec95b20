// Host <-> device copies and device casts against the host's exact conversions.
#include <gtest/gtest.h>

#include "common/testutil.h"

using namespace wick;

TEST(CudaTensor, RoundTripAndCasts) {
  WICK_REQUIRE_CUDA();
  Rng rng(3);
  Tensor a = test::randn({7, 33}, rng, 3.0f);
  Tensor d = a.to(Device::cuda());
  EXPECT_EQ(test::max_abs_diff(d.to(Device::cpu()), a), 0.0);
  for (DType t : {DType::BF16, DType::F16}) {
    Tensor host = a.to(t);
    Tensor dev = d.to(t).to(Device::cpu());
    ASSERT_EQ(host.nbytes(), dev.nbytes());
    EXPECT_EQ(std::memcmp(host.raw(), dev.raw(), host.nbytes()), 0) << dtype_name(t);
  }
  Tensor z = Tensor::empty({5}, DType::F32, Device::cuda());
  z.zero_();
  for (float x : z.to_f32_vector()) EXPECT_EQ(x, 0.0f);
}
