// The paged KV cache ops on the CPU (ops/paged_attention.h): attention against a plain reference and bit for bit
// against the contiguous attention_forward; the K/V write; the op's argument checks. CUDA: tests/cuda/.
#include <gtest/gtest.h>

#include "common/paged_checks.h"
#include "common/testutil.h"
#include "ops/paged_attention.h"

using namespace wick;

TEST(PagedAttention, MatchesTheReferenceAndTheContiguousAttentionBitForBit) { test::check_paged_attention_cpu(); }

TEST(PagedKvWrite, RowsLandAtTheirSlotsAndNothingElseMoves) { test::check_paged_kv_write(Device::cpu(), DType::F32); }

TEST(PagedAttention, BadBatchesAreErrorsNamingWhatIsWrong) {
  Rng rng(5);
  const Tensor q = test::randn({3, 4, 64}, rng), k = test::randn({4, 16, 2, 64}, rng), v = test::randn({4, 16, 2, 64}, rng);
  Tensor out = Tensor::empty({3, 4, 64}, DType::F32);
  const auto batch = [](std::vector<int32_t> start, std::vector<int32_t> len, std::vector<int32_t> table, int64_t mb,
                        int64_t max_t) {
    PagedKvBatch b;
    const int64_t S = static_cast<int64_t>(len.size());
    b.query_start = Tensor::from_i32(start, {S + 1});
    b.kv_len = Tensor::from_i32(len, {S});
    b.block_table = Tensor::from_i32(table, {S, mb});
    b.max_query_len = max_t;
    return b;
  };
  const auto err = [&](const PagedKvBatch& b) {
    return test::error_of([&] { paged_attention_forward(q, k, v, b, 0.125f, 0, out); });
  };
  EXPECT_EQ(err(batch({0, 2, 3}, {2, 20}, {0, 0, 1, 2}, 2, 2)), "");  // a valid batch
  EXPECT_NE(err(batch({0, 2, 3}, {2, 40}, {0, 0, 1, 2}, 2, 2)).find("kv_len[1] = 40"), std::string::npos);
  EXPECT_NE(err(batch({0, 2, 3}, {2, 20}, {0, 0, 1, 9}, 2, 2)).find("not a block of the pool"), std::string::npos);
  EXPECT_NE(err(batch({0, 3, 3}, {3, 20}, {0, 0, 1, 2}, 2, 3)).find("sequence 1 has 0 query rows"), std::string::npos);
  EXPECT_NE(err(batch({0, 1, 3}, {2, 20}, {0, 0, 1, 2}, 2, 1)).find("sequence 1 has 2 query rows"), std::string::npos);
  EXPECT_NE(err(batch({0, 2, 4}, {2, 20}, {0, 0, 1, 2}, 2, 2)).find("query_start[S]"), std::string::npos);
  EXPECT_NE(err(batch({0, 2, 3}, {1, 20}, {0, 0, 1, 2}, 2, 2)).find("kv_len[0] = 1"), std::string::npos);
  EXPECT_NE(test::error_of([&] {
              paged_attention_forward(q, k, v, batch({0, 2, 3}, {2, 20}, {0, 0, 1, 2}, 2, 2), 0.0f, 0, out);
            }).find("scale"),
            std::string::npos);
  const Tensor k3 = test::randn({4, 16, 3, 64}, rng);
  EXPECT_NE(test::error_of([&] {
              paged_attention_forward(q, k3, k3, batch({0, 2, 3}, {2, 20}, {0, 0, 1, 2}, 2, 2), 0.125f, 0, out);
            }).find("multiple of the kv heads"),
            std::string::npos);
}
