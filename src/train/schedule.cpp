#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace wick {

ScheduleKind parse_schedule_kind(const std::string& s) {
  if (s == "constant") return ScheduleKind::Constant;
  if (s == "constant_with_warmup") return ScheduleKind::ConstantWithWarmup;
  if (s == "linear") return ScheduleKind::Linear;
  if (s == "cosine") return ScheduleKind::Cosine;
  throw Error("unknown learning-rate schedule '" + s + "'", "lr schedule", "expected one of: constant, constant_with_warmup, linear, cosine");
}

const char* schedule_kind_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::Constant: return "constant";
    case ScheduleKind::ConstantWithWarmup: return "constant_with_warmup";
    case ScheduleKind::Linear: return "linear";
    case ScheduleKind::Cosine: return "cosine";
  }
  return "?";
}

int64_t warmup_steps_from_ratio(double ratio, int64_t total_steps) {
  if (!(ratio >= 0.0 && ratio <= 1.0))
    throw Error("warmup ratio " + std::to_string(ratio) + " is out of range", "warmup_ratio", "expected a value in [0, 1]");
  if (total_steps < 0)
    throw Error("total steps " + std::to_string(total_steps) + " is negative", "total_steps", "expected >= 0");
  // math.ceil(num_training_steps * warmup_ratio), the product in f64 as Python computes it
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * ratio));
}

int64_t effective_warmup_steps(ScheduleKind kind, int64_t warmup_steps, double warmup_ratio, int64_t total_steps) {
  if (kind == ScheduleKind::Constant) return 0;
  return warmup_steps >= 0 ? warmup_steps : warmup_steps_from_ratio(warmup_ratio, total_steps);
}

void Schedule::validate() const {
  if (warmup_steps < 0)
    throw Error("warmup steps " + std::to_string(warmup_steps) + " is negative", "lr schedule warmup_steps", "expected >= 0");
  if (total_steps < 0)
    throw Error("total steps " + std::to_string(total_steps) + " is negative", "lr schedule total_steps", "expected >= 0");
}

double Schedule::multiplier(int64_t step) const {
  validate();
  if (step < 0) throw Error("step " + std::to_string(step) + " is negative", "lr schedule", "steps count from 0");
  const double s = static_cast<double>(step);
  if (kind == ScheduleKind::Constant) return 1.0;
  if (step < warmup_steps) return s / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  const double decay_len = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  switch (kind) {
    case ScheduleKind::Constant:
    case ScheduleKind::ConstantWithWarmup:
      return 1.0;
    case ScheduleKind::Linear:
      return std::max(0.0, static_cast<double>(total_steps - step) / decay_len);
    case ScheduleKind::Cosine: {
      const double progress = static_cast<double>(step - warmup_steps) / decay_len;
      // num_cycles = 0.5: cos(pi * 0.5 * 2 * progress)
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * 0.5 * 2.0 * progress)));
    }
  }
  return 1.0;
}

}  // namespace wick
