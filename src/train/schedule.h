// Learning-rate schedules exactly as transformers' get_scheduler names them: "constant" (get_constant_schedule:
// no warmup, whatever the warmup settings), "constant_with_warmup", "linear", "cosine" (num_cycles = 0.5), as a multiplier of the base lr per optimizer step. `step` is 0-based:
// the first optimizer step uses lambda(0), as torch's LambdaLR does (so with warmup the first step's lr is 0).
//   warmup (step < W):  step / max(1, W)
//   constant(_with_warmup): 1
//   linear:             max(0, (N - step) / max(1, N - W))
//   cosine:             max(0, 0.5 * (1 + cos(pi * (step - W) / max(1, N - W))))
// with W = warmup_steps and N = total_steps. Past N the formulas run on unclamped, as transformers' do.
#pragma once
#include <cstdint>
#include <string>

namespace wick {

enum class ScheduleKind { Constant, ConstantWithWarmup, Linear, Cosine };

// "constant" | "constant_with_warmup" | "linear" | "cosine" (exact, lower case, as transformers spells them);
// anything else throws wick::Error listing these.
ScheduleKind parse_schedule_kind(const std::string& s);
const char* schedule_kind_name(ScheduleKind k);

// transformers' TrainingArguments.get_warmup_steps for a ratio: ceil(total_steps * ratio).
// ratio must be in [0, 1] and total_steps >= 0 (else wick::Error).
int64_t warmup_steps_from_ratio(double ratio, int64_t total_steps);

// The warmup a run uses: warmup_steps when >= 0, else warmup_steps_from_ratio; always 0 for "constant"
// (transformers' get_scheduler("constant") takes no warmup).
int64_t effective_warmup_steps(ScheduleKind kind, int64_t warmup_steps, double warmup_ratio, int64_t total_steps);

struct Schedule {
  ScheduleKind kind = ScheduleKind::Constant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;

  double multiplier(int64_t step) const;                        // lambda(step); step >= 0
  double lr_at(int64_t step, double base_lr) const { return base_lr * multiplier(step); }
  void validate() const;  // warmup_steps >= 0, total_steps >= 0; throws wick::Error naming the field
};

}  // namespace wick
