// wick::TrainSettings: every option of a fine-tuning run, with its default. Part of the public API (wick.h
// includes it); a header of its own, with nothing but the standard library, because the training layer's
// option table (src/train/train_options.h) is bound to these members and may not include the API above it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick {

// Every field is one row of wick's training-option table (src/train/train_options.cpp): `wick train --NAME`,
// the key NAME in a --config file and in the run.toml written into every output folder. These member
// initializers are the defaults of all three; docs/guide.md lists the rows by purpose.
struct TrainSettings {
  // Model and data
  std::string model_dir;     // Hugging Face model folder, or a Hub id found in the local Hub cache
  std::string revision;      // with a Hub id: branch, tag or commit ("" = main)
  std::string data;          // JSONL: {"text"}, {"prompt", "completion"}, {"messages": [...]} or {"input_ids", "labels"}
  std::string format = "auto";      // or "text", "prompt-completion", "messages", "sharegpt", "alpaca", "tokens"
  std::string chat_template;        // "" = the model folder's; "qwen2.5" or "qwen3" to force one
  int64_t max_seq_len = 2048;        // longer examples are truncated
  bool packing = false;             // several examples per row of max_seq_len (attention stays inside each)
  bool train_on_inputs = false;      // loss on every token, not only the completion / assistant turns
  bool skip_bad_lines = false;       // skip malformed JSONL lines instead of stopping
  // Evaluation
  std::string eval_data;            // evaluation JSONL ("" = none)
  double eval_split = 0;            // or hold out this fraction of data (chosen by seed)
  int64_t eval_every = 0;           // evaluate every N steps (0 = only at the end)
  int64_t early_stopping_patience = 0;   // stop after N evaluations without improvement (0 = never)
  double early_stopping_threshold = 0;   // an improvement must lower the eval loss by more than this
  // Output and checkpoints
  std::string out_dir;       // receives the PEFT adapter, README.md, run.toml, metrics.jsonl, report.html
  int64_t save_every = 0;            // also keep out_dir/checkpoint-N every N steps (0 = only the final state)
  int64_t save_total_limit = 0;      // keep at most this many checkpoint-N folders (0 = all; never deletes the best)
  bool load_best = false;            // at the end, out_dir's adapter is the checkpoint with the lowest eval loss
  std::string adapter_init;          // start from this PEFT adapter instead of a fresh one
  std::string resume;                // continue the run in this folder (its latest complete checkpoint)
  bool overwrite = false;            // write into a non-empty out_dir that is not being resumed
  // LoRA
  int64_t r = 16;
  double alpha = 32, dropout = 0;
  bool rslora = false;       // scale alpha / sqrt(r) instead of alpha / r
  std::vector<std::string> targets = {"all"};  // every projection (q/k/v/o, gate/up/down), or names like "q_proj"
  // AdamW and the learning-rate schedule
  double lr = 2e-4, weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double max_grad_norm = 1.0;       // 0 = no clipping
  std::string on_nan = "stop";       // non-finite loss or gradient: "stop" (throws; last good checkpoint kept) or "skip"
  std::string scheduler = "cosine";  // "constant" (no warmup), "constant_with_warmup", "linear" or "cosine"
  int64_t warmup_steps = -1;         // -1: warmup_ratio of all steps
  double warmup_ratio = 0.03;
  // How long, and how much per step
  double epochs = 3;
  int64_t max_steps = -1;            // > 0 overrides epochs
  int64_t batch_size = 0;            // 0 = chosen to fit the device (see TrainSummary::batch_reason)
  int64_t grad_accum = 1;
  uint64_t seed = 42;
  bool shuffle = true;
  // Device
  std::string device = "auto", dtype = "auto";
  bool grad_checkpointing = false;  // keep only each layer's input; recompute the layer in backward (less memory, ~1/3 more compute)
  int64_t gpus = 0;  // data-parallel ranks: 0 = as the launcher started them (mpirun, srun; 1 without one);
                     // N > 1: `wick train` starts N ranks on this host (the API only joins a launched job)
  // Logging
  int64_t sample_every = 0;                 // generate from sample_prompts every N steps (0 = never)
  std::vector<std::string> sample_prompts;  // each as a user turn (greedy); text to metrics.jsonl and report.html
  int64_t sample_max_new_tokens = 48;
  std::string report_to = "none";           // "tensorboard": also out_dir/tensorboard/events.out.tfevents.*
  int64_t log_every = 0;                    // wick train's progress lines on a pipe (0 = ~20 per run)
  bool write_report = true;                 // out_dir/report.html at the end (and when stopped)
};

}  // namespace wick
