// The paged KV cache ops on CUDA against the CPU twin (tests/common/paged_checks.h): random data, shuffled block
// tables, unused blocks NaN, out between guard rows; f32 and bf16, head dims 64 and 128.
#include <gtest/gtest.h>

#include "common/paged_checks.h"
#include "common/testutil.h"

using namespace wick;

TEST(PagedAttentionCuda, MatchesTheCpuTwinF32) {
  WICK_REQUIRE_CUDA();
  test::check_paged_attention_device(Device::cuda(), DType::F32);
}

TEST(PagedAttentionCuda, MatchesTheCpuTwinBf16) {
  WICK_REQUIRE_CUDA();
  test::check_paged_attention_device(Device::cuda(), DType::BF16);
}

TEST(PagedKvWriteCuda, RowsLandAtTheirSlotsAndNothingElseMoves) {
  WICK_REQUIRE_CUDA();
  test::check_paged_kv_write(Device::cuda(), DType::F32);
  test::check_paged_kv_write(Device::cuda(), DType::BF16);
}
