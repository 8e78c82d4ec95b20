// The checkpoint folders of a run, in the Hugging Face Trainer's layout: OUT/checkpoint-N/ every save_every
// steps, each a loadable PEFT adapter plus the optimizer and trainer state (resumable), at most
// save_total_limit of them (the oldest deleted first, never the best by eval loss nor the newest). The
// writing is the Trainer's (Trainer::save_checkpoint(dir)); this file decides which steps save, which
// folders stay, which one is best, and which one --resume continues.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wick {

struct CheckpointEntry {
  int64_t step = 0;
  std::string dir;
  std::optional<double> eval_loss;  // the evaluation made at this step, if any
};

// "checkpoint-N" folder name of step N.
std::string checkpoint_dir_name(int64_t step);

// The complete checkpoint-N folders of out_dir (trainer_state.json present: it is written last), by step.
std::vector<CheckpointEntry> list_checkpoints(const std::string& out_dir);

// The folder a resumed run continues: among run_dir itself and its checkpoint-N folders, the complete one
// with the highest step (trainer_state.json's "step"). wick::Error when there is none.
std::string latest_checkpoint(const std::string& run_dir);

class CheckpointPolicy {
 public:
  // Picks up the checkpoint-N folders already in out_dir (a resumed run) and the eval losses recorded for
  // their steps in out_dir/metrics.jsonl.
  CheckpointPolicy(std::string out_dir, int64_t save_every, int64_t total_limit);

  bool due(int64_t step, int64_t total_steps) const;  // a periodic checkpoint at this step?
  std::string dir_for(int64_t step) const;            // out_dir/checkpoint-<step>
  void evaluated(int64_t step, double loss);          // an eval loss at this step (best tracking)
  // After checkpoint-<step> was written: records it, then deletes the oldest folders beyond the limit (never
  // the best, never this one). Returns the folders deleted.
  std::vector<std::string> saved(int64_t step);
  // The kept checkpoint with the lowest eval loss (ties: the earlier), if any has one.
  std::optional<CheckpointEntry> best() const;
  const std::vector<CheckpointEntry>& kept() const { return kept_; }

 private:
  std::string out_;
  int64_t every_, limit_;
  std::vector<CheckpointEntry> kept_;  // by step
  std::map<int64_t, double> eval_;     // step -> eval loss
};

}  // namespace wick
