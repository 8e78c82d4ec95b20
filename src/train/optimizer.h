// AdamW over the LoRA parameters (torch.optim.AdamW semantics, see ops/optim.h), with global grad-norm
// clipping; f32 moments on the parameters' device; state saved and restored exactly.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lora/lora.h"
#include "ops/optim.h"

namespace wick {

class AdamW {
 public:
  AdamW(std::vector<LoraParam> params, AdamWConfig cfg);
  // Global grad norm (before clipping), clip when max_grad_norm > 0, one AdamW update at learning rate lr.
  // Returns the norm and increments steps(). A non-finite norm (a NaN or inf gradient) updates nothing and
  // leaves steps() as it was: the norm the step computes anyway is the check, so it costs nothing on CUDA.
  double step(double lr, double max_grad_norm);
  // The same step, queued: the norm and the clip coefficient are computed on the device and the update reads
  // them there (ops/optim.h clip_state), so nothing waits between backward and the update. extra_terms join
  // the norm's sum of squares (the trainer's loss check: zeros, or NaN where a loss was not finite, which makes
  // the norm NaN and the step skipped). finish_step() waits for the device and returns the norm, counting the
  // step when it was applied: step() is queue_step() + finish_step().
  void queue_step(double lr, double max_grad_norm, const std::vector<Tensor>& extra_terms = {});
  double finish_step();
  int64_t steps() const { return steps_; }
  // After a non-finite norm: the first parameter (in lora_params order) whose gradient holds a NaN or inf,
  // and how many do; copies the gradients to the host, so only called then.
  std::pair<std::string, int64_t> first_nonfinite_grad() const;
  // Whether every parameter value is finite (host copies; called before a checkpoint replaces a good one).
  bool values_finite() const;
  const AdamWConfig& config() const { return cfg_; }
  // "<param name>.exp_avg" / ".exp_avg_sq" -> host copies.
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  // Restores moments from tensors named as state_tensors() writes them; every one must be present.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& tensors, int64_t steps, const std::string& where);
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  std::vector<LoraParam> params_;
  std::vector<Tensor> m_, v_;
  AdamWConfig cfg_;
  int64_t steps_ = 0;
  Tensor clip_;             // f32 [kClipStateFloats] on the parameters' device: the queued step's ClipState
  bool queued_ = false;     // a queue_step awaits its finish_step
  struct PinnedDeleter {
    void operator()(void* p) const;
  };
  std::unique_ptr<void, PinnedDeleter> clip_host_;  // the ClipState copied back, page-locked
};

}  // namespace wick
