// validate_train_options / check_train_output (train/trainer.h): every TrainOptions field checked before any
// work starts, against the same rules the loaders apply, so a run never trains for hours and then refuses
// (or writes) something wick cannot read back. The per-option rules are the option table's
// (train/train_options.cpp, one source); here they are applied to the fields a TrainOptions carries.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "train/train_options.h"
#include "core/error.h"
#include "io/fs_util.h"
#include "io/output_folder.h"
#include "train/checkpoint_dir.h"
#include "train/schedule.h"
#include "train/settings_map.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace wick {

void validate_train_options(const TrainOptions& o) {
  if (o.out_dir.empty()) throw Error("--out is required (the output folder)", "--out");
  o.lora.check("the LoRA options");
  // The option table's rule of every field a TrainOptions shares with TrainSettings (train/settings_map.h).
  check_option_rules(settings_from_options(o), "--");
  if (o.keep_checkpoints < 0) throw Error("must be >= 0, got " + std::to_string(o.keep_checkpoints), "keep_checkpoints");
  if (o.pad_id < 0) throw Error("pad id must be >= 0, got " + std::to_string(o.pad_id), "pad id");
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
