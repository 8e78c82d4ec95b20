// What `wick train` shows while it runs: the effective settings at start, then a progress bar redrawn in
// place on a terminal (stderr) or plain lines every N steps on a pipe, then a summary.
#pragma once
#include <limits>
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace wick::cli {

// Lines describing the run (model, data, LoRA, optimizer, steps and batch), from train_settings_json.
std::vector<std::string> settings_lines(const nlohmann::json& settings);

// Default --log-every for a pipe: about 20 lines per run, every step for short runs.
int64_t default_log_every(int64_t total_steps);

class Progress {
 public:
  // tty: redraw one line in place (throttled to ~10 per second); else one line per log_every steps.
  // start_step: the step a resumed run starts from (ETA counts only the steps of this process).
  Progress(FILE* out, bool tty, int64_t total_steps, int64_t start_step, int64_t log_every);
  void update(const StepReport& r);
  void end();  // ends the bar's line (terminal)
  void note(const std::string& line);  // a line of its own (an eval result), the bar redrawn below it
  double smoothed_loss() const { return w_ > 0 ? acc_ / w_ : std::numeric_limits<double>::quiet_NaN(); }  // NaN: no step yet

 private:
  std::string line(const StepReport& r, bool bar) const;
  FILE* out_;
  bool tty_;
  int64_t total_, start_, every_;
  double acc_ = 0, w_ = 0;          // bias-corrected EMA of the loss (weight 0.9)
  double last_draw_ = -1;
  bool drawn_ = false;
};

// The end of a run: steps, tokens, time, final and best eval loss (from metrics.jsonl), where the adapter
// and report are; when interrupted, the command that resumes it.
void print_train_summary(FILE* out, const std::string& model_dir, const std::string& out_dir, bool done,
                         int64_t step, int64_t total_steps, double smoothed_loss, const std::string& resume_cmd);

// "wick train ... --resume OUT": the command line that continues this run, rebuilt from the options given.
std::string resume_command(const CLI::App& cmd, const std::string& out_dir);

// h:mm:ss or m:ss
std::string clock_str(double seconds);

}  // namespace wick::cli
