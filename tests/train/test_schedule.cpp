// Formula checks: every expected value below is worked out by hand from transformers'
// get_*_schedule_with_warmup lambdas (written out in src/train/schedule.h), not produced by our code.
#include <gtest/gtest.h>

#include "core/error.h"
#include "train/schedule.h"

using namespace wick;

namespace {
Schedule make(ScheduleKind k, int64_t w, int64_t n) { return Schedule{k, w, n}; }
}  // namespace

TEST(Schedule, WarmupIsLinearFromZero) {
  // W = 4: step / 4 for steps 0..3, identical for every kind
  for (ScheduleKind k : {ScheduleKind::ConstantWithWarmup, ScheduleKind::Linear, ScheduleKind::Cosine}) {
    const Schedule s = make(k, 4, 20);
    EXPECT_DOUBLE_EQ(s.multiplier(0), 0.0);
    EXPECT_DOUBLE_EQ(s.multiplier(1), 0.25);
    EXPECT_DOUBLE_EQ(s.multiplier(3), 0.75);
    EXPECT_DOUBLE_EQ(s.lr_at(2, 1e-3), 0.5e-3);
  }
}

TEST(Schedule, ConstantWithWarmup) {
  const Schedule s = make(ScheduleKind::ConstantWithWarmup, 4, 20);
  EXPECT_DOUBLE_EQ(s.multiplier(4), 1.0);      // warmup ends: 1
  EXPECT_DOUBLE_EQ(s.multiplier(19), 1.0);
  EXPECT_DOUBLE_EQ(s.multiplier(1000), 1.0);   // no end
  EXPECT_DOUBLE_EQ(make(ScheduleKind::ConstantWithWarmup, 0, 20).multiplier(0), 1.0);  // no warmup: full lr at once
}

TEST(Schedule, ConstantHasNoWarmup) {
  // transformers: get_scheduler("constant") is get_constant_schedule, which takes no warmup at all (issue 10 #9:
  // wick applied the default 3% warmup to it).
  EXPECT_DOUBLE_EQ(make(ScheduleKind::Constant, 4, 20).multiplier(0), 1.0);
  EXPECT_DOUBLE_EQ(make(ScheduleKind::Constant, 4, 20).multiplier(3), 1.0);
  EXPECT_EQ(effective_warmup_steps(ScheduleKind::Constant, -1, 0.03, 100), 0);
  EXPECT_EQ(effective_warmup_steps(ScheduleKind::Constant, 7, 0.03, 100), 0);
  EXPECT_EQ(effective_warmup_steps(ScheduleKind::ConstantWithWarmup, -1, 0.03, 100), 3);
  EXPECT_EQ(effective_warmup_steps(ScheduleKind::Cosine, 7, 0.03, 100), 7);
  EXPECT_EQ(parse_schedule_kind("constant_with_warmup"), ScheduleKind::ConstantWithWarmup);
  EXPECT_STREQ(schedule_kind_name(ScheduleKind::ConstantWithWarmup), "constant_with_warmup");
}

TEST(Schedule, Linear) {
  // W = 10, N = 110: after warmup (110 - step) / 100
  const Schedule s = make(ScheduleKind::Linear, 10, 110);
  EXPECT_DOUBLE_EQ(s.multiplier(9), 0.9);
  EXPECT_DOUBLE_EQ(s.multiplier(10), 1.0);     // (110 - 10) / 100
  EXPECT_DOUBLE_EQ(s.multiplier(60), 0.5);     // 50 / 100
  EXPECT_DOUBLE_EQ(s.multiplier(109), 0.01);   // 1 / 100
  EXPECT_DOUBLE_EQ(s.multiplier(110), 0.0);
  EXPECT_DOUBLE_EQ(s.multiplier(130), 0.0);    // max(0, -20 / 100)
  // no warmup: N / N at step 0
  EXPECT_DOUBLE_EQ(make(ScheduleKind::Linear, 0, 8).multiplier(0), 1.0);
  EXPECT_DOUBLE_EQ(make(ScheduleKind::Linear, 0, 8).multiplier(6), 0.25);  // 2 / 8
}

TEST(Schedule, Cosine) {
  // W = 10, N = 110: progress = (step - 10) / 100; 0.5 * (1 + cos(pi * progress))
  const Schedule s = make(ScheduleKind::Cosine, 10, 110);
  EXPECT_DOUBLE_EQ(s.multiplier(10), 1.0);                    // progress 0
  EXPECT_NEAR(s.multiplier(35), 0.8535533905932737, 1e-15);   // progress 1/4: (1 + sqrt(2)/2) / 2
  EXPECT_NEAR(s.multiplier(60), 0.5, 1e-15);                  // progress 1/2: cos = 0
  EXPECT_NEAR(s.multiplier(85), 0.14644660940672627, 1e-15);  // progress 3/4: (1 - sqrt(2)/2) / 2
  EXPECT_NEAR(s.multiplier(110), 0.0, 1e-15);                 // progress 1: cos = -1
  // transformers does not clamp the step: past N the half-cosine rises again (progress 1.2:
  // (1 + cos(1.2 pi)) / 2 = (1 - 0.80901699437) / 2)
  EXPECT_NEAR(s.multiplier(130), 0.09549150281252622, 1e-15);
}

TEST(Schedule, WarmupAsLongAsTraining) {
  // N == W: the decay length is max(1, 0) = 1, so at step N linear gives 0 / 1 and cosine progress 0 -> 1
  EXPECT_DOUBLE_EQ(make(ScheduleKind::Linear, 5, 5).multiplier(5), 0.0);
  EXPECT_DOUBLE_EQ(make(ScheduleKind::Cosine, 5, 5).multiplier(5), 1.0);
  EXPECT_DOUBLE_EQ(make(ScheduleKind::Linear, 5, 5).multiplier(4), 0.8);  // still warming up: 4 / 5
}

TEST(Schedule, WarmupRatioRoundsUp) {
  EXPECT_EQ(warmup_steps_from_ratio(0.1, 100), 10);   // 10.0 exactly
  EXPECT_EQ(warmup_steps_from_ratio(0.05, 10), 1);    // ceil(0.5)
  EXPECT_EQ(warmup_steps_from_ratio(0.0, 100), 0);
  EXPECT_EQ(warmup_steps_from_ratio(1.0, 37), 37);
  // f64 as in Python: 100 * 0.07 = 7.000000000000001, so math.ceil gives 8
  EXPECT_EQ(warmup_steps_from_ratio(0.07, 100), 8);
  EXPECT_THROW(warmup_steps_from_ratio(1.5, 100), Error);
  EXPECT_THROW(warmup_steps_from_ratio(-0.1, 100), Error);
}

TEST(Schedule, ParseAndErrors) {
  EXPECT_EQ(parse_schedule_kind("constant"), ScheduleKind::Constant);
  EXPECT_EQ(parse_schedule_kind("linear"), ScheduleKind::Linear);
  EXPECT_EQ(parse_schedule_kind("cosine"), ScheduleKind::Cosine);
  EXPECT_STREQ(schedule_kind_name(ScheduleKind::Cosine), "cosine");
  try {
    parse_schedule_kind("cosine_with_restarts");
    ADD_FAILURE() << "accepted an unknown schedule";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cosine_with_restarts"), std::string::npos) << m;
    EXPECT_NE(m.find("constant, constant_with_warmup, linear, cosine"), std::string::npos) << m;
  }
  EXPECT_THROW(parse_schedule_kind("Linear"), Error);
  EXPECT_THROW(make(ScheduleKind::Linear, 10, 100).multiplier(-1), Error);
  EXPECT_THROW(make(ScheduleKind::Linear, -1, 100).multiplier(0), Error);
  EXPECT_THROW(make(ScheduleKind::Linear, 0, -5).multiplier(0), Error);
}
