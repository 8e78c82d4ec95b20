// segmented_lora_add's argument checks (the values are the op cases' job: tests/common/op_cases.cpp): each
// bad call is a wick::Error that names the op, the segment and what was expected.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "ops/segmented_lora.h"

using namespace wick;

TEST(SegmentedLora, BadSegmentsAreErrorsNamingTheSegment) {
  Rng rng(5);
  const Tensor x = test::randn({10, 12}, rng);
  const Tensor A = test::randn({4, 12}, rng), B = test::randn({6, 4}, rng);
  const Tensor A_wrong_in = test::randn({4, 11}, rng), B_wrong_r = test::randn({6, 3}, rng);
  const Tensor A16 = A.to(DType::BF16);
  const auto error = [&](std::vector<LoraSegment> segs) {
    Tensor y = test::randn({10, 6}, rng);
    return test::error_of([&] { segmented_lora_add(x, segs, y); });
  };
  const auto expect = [](const std::string& e, const std::string& part) {
    EXPECT_NE(e.find("segmented_lora_add"), std::string::npos) << e;
    EXPECT_NE(e.find(part), std::string::npos) << e;
  };
  expect(error({{0, 4, &A, &B, 1.0f}, {3, 2, &A, &B, 1.0f}}), "overlap at row 3");
  expect(error({{8, 3, &A, &B, 1.0f}}), "segment 0 (rows 8 + 3) must lie inside the 10 rows");
  expect(error({{-1, 2, &A, &B, 1.0f}}), "must lie inside");
  expect(error({{0, 2, &A, &B, 1.0f}, {2, 2, &A_wrong_in, &B, 1.0f}}), "segment 1 (rows 2 + 2): A must be [r, in] with in = 12");
  expect(error({{0, 2, &A, &B_wrong_r, 1.0f}}), "B must be [out, r] = [6, 4]");
  expect(error({{0, 2, &A16, &B, 1.0f}}), "A must be f32");
  expect(error({{0, 2, &A, nullptr, 1.0f}}), "must have both A and B");
  // No segment, or empty ones: y unchanged.
  Tensor y = test::randn({10, 6}, rng);
  const std::vector<float> before = y.to_f32_vector();
  segmented_lora_add(x, {}, y);
  segmented_lora_add(x, {{3, 0, &A, &B, 1.0f}}, y);
  EXPECT_EQ(y.to_f32_vector(), before);
}
