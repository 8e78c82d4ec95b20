// `wick selfcheck`'s library half: every small case passes on the CPU, and each result names its case.
#include <gtest/gtest.h>

#include "ops/selfcheck.h"

TEST(SelfCheck, AllCpuChecksPass) {
  const auto results = wick::run_selfcheck(false);
  ASSERT_GT(results.size(), 30u);
  int cpu = 0;
  for (const auto& r : results) {
    EXPECT_TRUE(r.pass) << r.op << " " << r.device << " " << r.check << "\n" << r.detail;
    EXPECT_FALSE(r.op.empty());
    cpu += r.device == "cpu";
  }
  EXPECT_GT(cpu, 30);
}

TEST(SelfCheck, FilterSelectsCases) {
  const auto results = wick::run_selfcheck(false, "attention");
  ASSERT_FALSE(results.empty());
  for (const auto& r : results) EXPECT_EQ(r.op.rfind("attention", 0), 0u) << r.op;
}
