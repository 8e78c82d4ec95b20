// StreamMarks (core/device.h) on the CPU: marks read the host clock (CPU ops return when done), so the time
// between two marks is the host time between them; asking for a mark that was never made is an internal error naming both indices.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/device.h"
#include "core/error.h"

namespace wick {
namespace {

TEST(StreamMarks, CpuMarksMeasureTheTimeBetweenThem) {
  StreamMarks marks(Device::cpu());
  const size_t a = marks.mark();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const size_t b = marks.mark();
  const size_t c = marks.mark();
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 1u);
  EXPECT_GE(marks.ms_between(a, b), 19.0);
  EXPECT_LT(marks.ms_between(b, c), marks.ms_between(a, b));
  EXPECT_THROW(marks.ms_between(a, 3), InternalError);
  marks.clear();
  EXPECT_EQ(marks.mark(), 0u);  // cleared: indices start again
  EXPECT_THROW(marks.ms_between(0, 1), InternalError);
}

}  // namespace
}  // namespace wick
