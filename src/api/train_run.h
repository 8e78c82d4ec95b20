// The application layer of a training run, shared by `wick train` (src/cli/cmd_train.cpp, which only parses
// and prints) and wick::train (include/wick/wick.h): from TrainSettings to a finished output folder.
//
//   setup   validate (train_options.h), resolve the model (folder or Hub id, hub_cache.h), pick the
//           checkpoint a --resume continues, read the data, load the model, choose the batch size, build the
//           Trainer, write OUT/run.toml (the effective settings);
//   run     train with checkpoint-N folders and retention (train/checkpoint_policy.h), early stopping,
//           samples from prompts, TensorBoard scalars (train/tensorboard.h);
//   finish  the best adapter at the top (load_best), README.md (a PEFT-style model card), report.html.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/hub_cache.h"
#include "train/trainer.h"
#include "wick/wick.h"

namespace wick {

struct TrainRunHooks {
  std::string where_prefix = "--";  // how errors name options: "--" (the CLI) or "TrainSettings::" (the API)
  std::function<void(const std::string&)> log;  // setup and checkpoint lines, for people
  std::function<void(const StepReport&)> on_step;
  std::function<void(const EvalReport&)> on_eval;
  std::function<void(int64_t step, const std::string& prompt, const std::string& text)> on_sample;
  std::function<void(const std::string&)> on_skip;  // --on-nan skip: what was not finite in a skipped step
};

class TrainRun {
 public:
  explicit TrainRun(const TrainSettings& settings, TrainRunHooks hooks = {});
  ~TrainRun();

  const TrainSettings& settings() const;      // effective: batch size chosen, paths absolute
  const nlohmann::json& settings_json() const;  // the printout's and report's settings (derived values too)
  const ResolvedModel& model() const;         // where the weights came from
  int64_t total_steps() const;
  int64_t start_step() const;                 // > 0 when resumed
  int64_t batch_size() const;
  const std::string& batch_reason() const;

  // Trains until done, early-stopped or *stop (then a checkpoint is saved and false returned), then
  // finishes the folder. Call once.
  bool run(const std::atomic<bool>* stop = nullptr);
  int64_t step() const;
  bool stopped_early() const;
  int64_t adapter_step() const;                   // the step of OUT's adapter (the best with load_best)
  std::vector<std::string> checkpoints() const;   // checkpoint-N folders kept, oldest first

  // Data-parallel (mpirun / srun / wick train --gpus): this process's rank and the job's ranks (0 and 1
  // for a plain run). Rank 0 alone logs, writes the output folder and calls the hooks' log.
  int rank() const;
  int world_size() const;
  // This process is done with its job's ranks (MPI_Finalize); call after run(), also after a stopped one.
  // A process that exits without it while other ranks run (an error) ends the whole job instead.
  void finalize();

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
};

// OUT/README.md as PEFT writes a model card: YAML front matter (base_model when the base is a Hub id,
// library_name: peft, tags), then what was trained and how to use it. An existing README.md that wick did
// not write is left alone.
void write_model_card(const std::string& out_dir, const std::string& base_hub_id, const std::string& base_path,
                      const nlohmann::json& settings);

}  // namespace wick
