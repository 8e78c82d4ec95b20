// The LoRA fine-tuning loop: micro-batches with gradient accumulation (loss normalised over the counted
// tokens of the whole accumulated batch), global grad-norm clipping, AdamW, a learning-rate schedule,
// a log line and a metrics.jsonl record per step, and checkpoints that resume bit-exactly. With an
// evaluation set: its loss (mean over every counted token of the set) every eval_every steps and at the end,
// appended to metrics.jsonl as {"step", "eval_loss", "eval_ppl", "eval_tokens"}.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "dist/communicator.h"
#include "io/peft_adapter.h"
#include "model/causal_lm.h"
#include "train/dataset.h"
#include "train/schedule.h"

namespace wick {

struct TrainOptions {
  std::string out_dir;
  io::LoraConfig lora;             // r, alpha, dropout, rslora, targets
  std::string adapter_init;        // PEFT folder to start from ("" = fresh PEFT init)
  std::string resume;              // checkpoint folder to resume ("" = fresh run)
  double lr = 2e-4, weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string scheduler = "cosine";
  int64_t warmup_steps = -1;       // -1: use warmup_ratio
  double warmup_ratio = 0.03;
  int64_t max_steps = -1;          // -1: epochs decide
  double epochs = 3;
  int64_t batch_size = 1, grad_accum = 1;
  double max_grad_norm = 1.0;      // 0 = off
  uint64_t seed = 42;
  bool shuffle = true;
  int64_t save_every = 0;          // 0 = only at the end
  int64_t keep_checkpoints = 1;    // checkpoint-<step> folders a save keeps, newest first (0: all; the
                                   // caller prunes, as TrainRun does with train/checkpoint_policy.h)
  int32_t pad_id = 0;
  bool packing = false;            // pack several examples into rows of max_seq_len tokens (train/batcher.h)
  bool grad_checkpointing = false; // recompute each layer in backward from its saved input (LossAndGrads)
  int64_t max_seq_len = 2048;      // the packing row length
  int64_t eval_every = 0;          // evaluate every N steps (0 = only at the end); needs an evaluation set
  bool overwrite = false;          // write into a non-empty out_dir of another run (else refused)
  std::string on_nan = "stop";     // a non-finite loss or gradient: "stop" (keep the last good checkpoint, fail) or "skip" the step
};

// Every option against the rules the loaders apply (LoraConfig::check for the adapter fields), one line
// naming the option as `wick train` spells it; wick::Error on the first bad one. `wick train` and
// wick::train call it before any work starts; the Trainer again.
void validate_train_options(const TrainOptions& o);
// out_dir must be absent, empty, the folder being resumed, or o.overwrite must be set (else wick::Error).
void check_train_output(const TrainOptions& o);

struct StepReport {
  int64_t step = 0, total_steps = 0;
  double epoch = 0, loss = 0, grad_norm = 0, lr = 0, tokens_per_s = 0, elapsed_s = 0;
  int64_t tokens = 0;  // input tokens processed this step
  size_t peak_device_bytes = 0;  // CUDA: the pool's high-water mark since the run started; 0 on the CPU
  double mfu = 0;  // model FLOPs utilisation (train/flops.h); 0 where the device's peak is unknown (the CPU)
  bool skipped = false;          // --on-nan skip: the loss or a gradient was not finite; nothing was updated
};

struct EvalReport {
  int64_t step = 0;
  double loss = 0, ppl = 0;  // mean over the counted tokens of the whole set; exp(loss)
  int64_t tokens = 0;        // counted tokens
  double best_loss = 0;      // lowest eval loss so far (this one included)
  double elapsed_s = 0;      // time the evaluation took
};

// Data-parallel (comm with size() > 1, dist/communicator.h): every rank runs this same loop on its own
// model replica. A step's global batch is size() x grad_accum micro-batches of batch_size units; each rank
// computes its share (dist/shard.h), the LoRA gradients are summed in f32 over the ranks, each layer's
// started as soon as the step's last backward has produced them (LossAndGrads' layer hook: the sums overlap
// the backward of the layers below; after backward when a rank's last micro-batch has no counted token),
// the loss is normalised over the counted
// tokens of the whole global batch, and AdamW then runs identically on every rank. Rank 0 alone writes
// checkpoints and metrics.jsonl; the world size is kept in trainer_state.json and a resume with another
// one is refused. Evaluation batches are split over the ranks and their sums added.
class Trainer {
 public:
  // eval (optional, must outlive the trainer): the evaluation set. comm (optional, must outlive the
  // trainer): the job's ranks; null is one rank.
  Trainer(CausalLM& model, const Dataset& data, TrainOptions opt, const Dataset* eval = nullptr,
          dist::Communicator* comm = nullptr);
  ~Trainer();
  int64_t total_steps() const;
  // Runs until total_steps or until *stop becomes true (then saves a checkpoint and returns false).
  bool run(const std::function<void(const StepReport&)>& on_step, const std::atomic<bool>* stop = nullptr);
  // Writes a checkpoint of the current state as opt.out_dir/checkpoint-<step>/ (adapter + optimizer +
  // trainer state), crash-safe through CheckpointWriter (train/checkpoint_dir.h), and links the top-level
  // adapter to it. Returns the folder. With several ranks every rank calls it (a collective: the replicas
  // are checked to hold the same adapter, wick::Error if not) and rank 0 alone writes.
  std::string save_checkpoint();
  int64_t step() const;
  // The evaluation loss of the current adapters (updates best_eval_loss; writes no record); wick::Error
  // without an evaluation set.
  EvalReport evaluate();
  // Called after each evaluation run() makes.
  void set_eval_callback(std::function<void(const EvalReport&)> on_eval);
  // Called at the end of every step, after its evaluation and periodic checkpoint (if any). Returning false
  // ends the run there as completed (early stopping): the final evaluation and checkpoint follow.
  void set_step_end_hook(std::function<bool(int64_t step)> hook);
  // A non-finite loss or gradient norm at a step: with on_nan "stop" (default) run() throws wick::Error
  // naming the step and the first bad gradient tensor, and writes no checkpoint (the last good one stays);
  // with "skip" the step updates nothing, is logged with "skipped": true, and this callback gets the line.
  void set_skip_callback(std::function<void(const std::string&)> on_skip);
  int64_t skipped_steps() const;
  // The lowest evaluation loss recorded in this run (a resumed run includes the records it kept).
  std::optional<double> best_eval_loss() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
};

}  // namespace wick
