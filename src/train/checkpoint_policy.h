// Which checkpoints of a run are written and kept, in the Hugging Face Trainer's layout: OUT/checkpoint-N/
// every save_every steps (and the final or interrupted step), each a loadable PEFT adapter plus the optimizer
// and trainer state (resumable), at most save_total_limit of them (the oldest deleted first, never the best
// by eval loss nor the newest). The writing is the Trainer's (Trainer::save_checkpoint, crash-safe through
// CheckpointWriter, train/checkpoint_dir.h, which also names the folders and finds the latest complete one
// for --resume); this file decides which steps save, which folders stay and which one is best.
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

// The complete checkpoint-N folders of out_dir (trainer_state.json present), by step.
std::vector<CheckpointEntry> list_checkpoints(const std::string& out_dir);

class CheckpointPolicy {
 public:
  // Picks up the checkpoint-N folders already in out_dir (a resumed run) and the eval losses recorded for
  // their steps in out_dir/metrics.jsonl.
  CheckpointPolicy(std::string out_dir, int64_t save_every, int64_t total_limit);

  bool due(int64_t step, int64_t total_steps) const;  // a periodic checkpoint at this step?
  std::string dir_for(int64_t step) const;            // out_dir/checkpoint-<step>
  void evaluated(int64_t step, double loss);          // an eval loss at this step (best tracking)
  // After checkpoint-<step> was written: records it (forgetting later steps: a resumed run abandoned them),
  // then deletes the oldest folders beyond the limit (never the best, never this one; each renamed to a
  // dot-folder first, so none is half-removed under its checkpoint name). Returns the folders deleted.
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
