// The run folder's checkpoint layout, crash-safe at every point (docs/reliability.md):
//   <run>/checkpoint-<step>/   a complete checkpoint: adapter_config.json, adapter_model.safetensors,
//                              optimizer.safetensors, trainer_state.json, and base_model.json when the run
//                              has one (<run>/base_model.json, copied in by commit(); train/base_model_record.h).
//                              It is written as
//                              <run>/.checkpoint-<step>.tmp/ (every file fsynced) and gets its final name by
//                              one rename, so a folder named checkpoint-<step> is always complete.
//   <run>/adapter_config.json, adapter_model.safetensors
//                              hard links (copies where links fail) to the latest checkpoint's adapter, so
//                              `--adapter <run>` loads the newest weights, as a PEFT output folder does.
// The latest complete checkpoint is the checkpoint-<step> folder with the highest step (Hugging Face's
// get_last_checkpoint rule); nothing else needs switching. Folders starting with '.' are never read and
// are cleaned up by the next save. A folder with trainer_state.json directly inside (wick's older flat
// layout, or a checkpoint-<step> folder given by the user) is a checkpoint itself.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace wick {

// The folder name of the checkpoint of this step: "checkpoint-<step>".
std::string checkpoint_name(int64_t step);
// The step a folder name "checkpoint-<step>" names, else nullopt.
std::optional<int64_t> checkpoint_step(const std::string& folder_name);

// The complete checkpoint with the highest step under run_dir, or nullopt.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// What --resume DIR means: DIR's latest checkpoint-<step>, or DIR itself when it holds trainer_state.json;
// otherwise a wick::Error naming DIR.
std::string resolve_resume_dir(const std::string& dir);

// One save, in the order that keeps a complete checkpoint on disk at every instant:
//   begin()  -> a fresh, empty <run>/.checkpoint-<step>.tmp/ (stale dot-folders of earlier crashes removed)
//   ... the caller writes the four files into tmp() ...
//   commit() -> <run>/base_model.json, if there is one, is copied into tmp; checkpoints with a step >= this
//               one (a run resumed from an older checkpoint abandons them) are moved aside, tmp is renamed to
//               checkpoint-<step>, the run folder is fsynced, the top-level adapter links are switched, and
//               all but the newest `keep` checkpoints are removed (keep 0: none; the caller's retention
//               decides, as train/checkpoint_policy.h does for wick train).
// If commit() is never reached (an exception), the destructor removes tmp: a failed save (disk full) leaves
// the previous checkpoint as it was and no temp folder behind.
class CheckpointWriter {
 public:
  CheckpointWriter(std::string run_dir, int64_t step);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  const std::string& tmp() const { return tmp_; }
  // keep >= 1: how many checkpoints to keep, newest first; 0: remove none.
  void commit(int64_t keep = 1);

 private:
  std::string run_, tmp_;
  int64_t step_;
  bool done_ = false;
};

// Test hook: when the environment variable WICK_TEST_KILL_AT equals "<point>@<step>", the process kills
// itself with SIGKILL here (a real kill -9 at that instant; the CLI tests use it). Costs one getenv.
void checkpoint_kill_point(const char* point, int64_t step);

}  // namespace wick
