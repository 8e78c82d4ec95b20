// TrainSettings (every option, as the CLI, run.toml and the public API name them: include/wick/
// train_settings.h) and TrainOptions (what the Trainer runs with: train/trainer.h) share most fields. The
// pairs are listed once, here; both directions use the list: TrainRun makes its TrainOptions from the
// settings, and validate_train_options applies the option table's rules to a TrainOptions seen as settings.
#pragma once
#include "train/trainer.h"
#include "wick/train_settings.h"

namespace wick {

// Calls f(settings member, options member) for every pair (S, O: the two structs, const or not). Not listed:
// resume (TrainRun resolves the folder to its latest checkpoint), keep_checkpoints and pad_id (the Trainer's
// alone), and the settings the Trainer never sees (data, evaluation, device, logging, ...).
template <class S, class O, class F>
void for_each_shared_train_field(S& s, O& o, F&& f) {
  f(s.out_dir, o.out_dir);
  f(s.r, o.lora.r);
  f(s.alpha, o.lora.alpha);
  f(s.dropout, o.lora.dropout);
  f(s.rslora, o.lora.use_rslora);
  f(s.targets, o.lora.target_modules);
  f(s.adapter_init, o.adapter_init);
  f(s.lr, o.lr);
  f(s.weight_decay, o.weight_decay);
  f(s.beta1, o.beta1);
  f(s.beta2, o.beta2);
  f(s.eps, o.eps);
  f(s.scheduler, o.scheduler);
  f(s.warmup_steps, o.warmup_steps);
  f(s.warmup_ratio, o.warmup_ratio);
  f(s.max_steps, o.max_steps);
  f(s.epochs, o.epochs);
  f(s.batch_size, o.batch_size);
  f(s.grad_accum, o.grad_accum);
  f(s.max_grad_norm, o.max_grad_norm);
  f(s.seed, o.seed);
  f(s.shuffle, o.shuffle);
  f(s.save_every, o.save_every);
  f(s.overwrite, o.overwrite);
  f(s.on_nan, o.on_nan);
  f(s.packing, o.packing);
  f(s.grad_checkpointing, o.grad_checkpointing);
  f(s.max_seq_len, o.max_seq_len);
  f(s.eval_every, o.eval_every);
}

// The shared fields copied across; every other field keeps its default.
TrainOptions options_from_settings(const TrainSettings& s);
TrainSettings settings_from_options(const TrainOptions& o);

}  // namespace wick
