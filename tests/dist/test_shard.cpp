// Shard assignment (dist/shard.h): every micro-batch of a step's global batch belongs to exactly one rank,
// each rank gets grad_accum of them, world 1 takes them all in order, and the steps of an epoch count the
// whole global batch.
#include <gtest/gtest.h>

#include <set>

#include "dist/shard.h"

namespace wick::dist {
namespace {

TEST(Shard, EveryMicroBatchOfAStepHasExactlyOneRank) {
  for (int world : {1, 2, 3, 4, 8}) {
    for (int64_t accum : {1, 2, 5}) {
      std::multiset<int64_t> seen;
      for (int r = 0; r < world; r++) {
        const std::vector<int64_t> mine = micro_batches_of_rank(r, world, accum);
        ASSERT_EQ(static_cast<int64_t>(mine.size()), accum) << "world " << world << " rank " << r;
        for (size_t k = 0; k < mine.size(); k++) {
          EXPECT_TRUE(owns_micro_batch(mine[k], r, world));
          for (int other = 0; other < world; other++)
            if (other != r) EXPECT_FALSE(owns_micro_batch(mine[k], other, world));
          if (k > 0) EXPECT_LT(mine[k - 1], mine[k]);
          seen.insert(mine[k]);
        }
      }
      ASSERT_EQ(static_cast<int64_t>(seen.size()), world * accum);
      int64_t want = 0;
      for (int64_t j : seen) EXPECT_EQ(j, want++) << "world " << world << " accum " << accum;
    }
  }
}

TEST(Shard, OneRankTakesEveryMicroBatchInOrder) {
  EXPECT_EQ(micro_batches_of_rank(0, 1, 4), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(micro_batches_of_rank(1, 2, 3), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(micro_batches_of_rank(2, 4, 2), (std::vector<int64_t>{2, 6}));
}

TEST(Shard, StepsPerEpochCountTheGlobalBatch) {
  EXPECT_EQ(steps_per_epoch(10, 1, 1), 10);
  EXPECT_EQ(steps_per_epoch(10, 2, 1), 5);
  EXPECT_EQ(steps_per_epoch(10, 2, 2), 3);  // 4 micro-batches a step: 4 + 4 + 2
  EXPECT_EQ(steps_per_epoch(10, 1, 4), 3);
  EXPECT_EQ(steps_per_epoch(8, 2, 4), 1);
  EXPECT_EQ(steps_per_epoch(0, 3, 2), 0);
  // Same global batch, same steps: 2 ranks x accum 2 == 1 rank x accum 4.
  for (int64_t b = 1; b < 40; b++) EXPECT_EQ(steps_per_epoch(b, 2, 2), steps_per_epoch(b, 4, 1));
}

TEST(Shard, BadArgumentsAreInternalErrors) {
  EXPECT_ANY_THROW(micro_batches_of_rank(2, 2, 1));
  EXPECT_ANY_THROW(micro_batches_of_rank(0, 0, 1));
  EXPECT_ANY_THROW(steps_per_epoch(4, 0, 1));
}

}  // namespace
}  // namespace wick::dist
