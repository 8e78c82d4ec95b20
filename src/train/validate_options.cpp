// validate_train_options / check_train_output (train/trainer.h): every TrainOptions field checked before any
// work starts, against the same rules the loaders apply, so a run never trains for hours and then refuses
// (or writes) something wick cannot read back.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "io/fs_util.h"
#include "io/output_folder.h"
#include "train/checkpoint_dir.h"
#include "train/schedule.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace wick {

static std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

void validate_train_options(const TrainOptions& o) {
  auto bad = [](const std::string& opt, const std::string& what, const std::string& hint = "") {
    throw Error(opt + " " + what, opt, hint);
  };
  if (o.out_dir.empty()) bad("--out", "is required (the output folder)");
  o.lora.check("the LoRA options");
  if (!std::isfinite(o.lr) || o.lr < 0) bad("--lr", "must be a finite number >= 0, got " + num(o.lr));
  if (!std::isfinite(o.weight_decay) || o.weight_decay < 0)
    bad("--weight-decay", "must be a finite number >= 0, got " + num(o.weight_decay));
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1))
    bad("--betas", "must both be in [0, 1), got " + num(o.beta1) + "," + num(o.beta2), "e.g. 0.9,0.999");
  if (!std::isfinite(o.eps) || o.eps <= 0) bad("--eps", "must be a finite number > 0, got " + num(o.eps));
  parse_schedule_kind(o.scheduler);
  if (o.warmup_steps < -1) bad("--warmup-steps", "must be >= 0, got " + std::to_string(o.warmup_steps));
  if (!(o.warmup_ratio >= 0 && o.warmup_ratio <= 1)) bad("--warmup-ratio", "must be in [0, 1], got " + num(o.warmup_ratio));
  if (o.max_steps == 0 || o.max_steps < -1)
    bad("--max-steps", "must be >= 1, got " + std::to_string(o.max_steps), "or leave it out and give --epochs");
  if (o.max_steps < 0 && !(std::isfinite(o.epochs) && o.epochs > 0)) bad("--epochs", "must be > 0, got " + num(o.epochs));
  if (o.batch_size < 0) bad("--batch-size", "must be >= 1 (or 0 to choose one), got " + std::to_string(o.batch_size));
  if (o.grad_accum < 1) bad("--grad-accum", "must be >= 1, got " + std::to_string(o.grad_accum));
  if (!std::isfinite(o.max_grad_norm) || o.max_grad_norm < 0)
    bad("--max-grad-norm", "must be a finite number >= 0 (0 = no clipping), got " + num(o.max_grad_norm));
  if (o.save_every < 0) bad("--save-every", "must be >= 0 (0 = only at the end), got " + std::to_string(o.save_every));
  if (o.eval_every < 0) bad("--eval-every", "must be >= 0 (0 = only at the end), got " + std::to_string(o.eval_every));
  if (o.max_seq_len < 2) bad("--max-seq-len", "must be >= 2 (a token and the one it predicts), got " + std::to_string(o.max_seq_len));
  if (o.pad_id < 0) bad("pad id", "must be >= 0, got " + std::to_string(o.pad_id));
  if (o.on_nan != "stop" && o.on_nan != "skip") bad("--on-nan", "must be stop or skip, got '" + o.on_nan + "'");
}

void check_train_output(const TrainOptions& o) {
  if (!o.resume.empty() && io::is_dir(o.out_dir)) {
    // Resuming into the run's own folder (or from one of its checkpoint-<step> folders) is the normal case.
    std::error_code ec;
    const fs::path r = fs::weakly_canonical(o.resume, ec), out = fs::weakly_canonical(o.out_dir, ec);
    if (r == out || (checkpoint_step(r.filename().string()) && r.parent_path() == out)) return;
  }
  io::check_output_folder(o.out_dir, o.overwrite,
                          o.resume.empty() ? "it holds another run: pass --resume " + o.out_dir +
                                                 " to continue it, --overwrite to replace it, or choose another --out"
                                           : "pass --overwrite to write this run into it, or choose another --out");
}

}  // namespace wick
