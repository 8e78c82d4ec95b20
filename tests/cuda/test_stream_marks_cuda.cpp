// StreamMarks (core/device.h) on CUDA: the time between two marks is the device time of the work queued
// between them - more work, more time - and reading it waits for that work.
#include <gtest/gtest.h>

#include "common/testutil.h"
#include "core/device.h"
#include "core/tensor.h"
#include "ops/elementwise.h"

namespace wick::test {
namespace {

TEST(StreamMarksCuda, MarksTimeTheWorkQueuedBetweenThem) {
  WICK_REQUIRE_CUDA();
  const Device dev = Device::cuda();
  Tensor a = Tensor::from_f32(std::vector<float>(1 << 24, 1.5f), {1 << 24}, dev), b = Tensor::empty({1 << 24}, DType::F32, dev);
  StreamMarks marks(dev);
  // Warm: the first launch loads the kernel's module (lazy loading), which the device would wait for between
  // the marks, and the first mark creates its event; neither is the work being timed.
  add(a, a, b);
  marks.mark();
  marks.clear();
  device_synchronize(dev);
  const size_t m0 = marks.mark();
  add(a, a, b);
  const size_t m1 = marks.mark();
  for (int i = 0; i < 20; i++) add(a, a, b);
  const size_t m2 = marks.mark();
  const double one = marks.ms_between(m0, m1), twenty = marks.ms_between(m1, m2);
  EXPECT_GT(one, 0.0);
  EXPECT_GT(twenty, 5 * one);  // 20 times the work (a 64 MB add each), timed on the device
  EXPECT_EQ(b.to_f32_vector()[12345], 3.0f);
}

}  // namespace
}  // namespace wick::test
