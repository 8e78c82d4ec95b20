// What a training run leaves for people: the effective settings (printed at start, kept in the report),
// a summary of metrics.jsonl, and report.html (loss, eval-loss and lr curves as inline SVG, a settings
// table, a summary; no JavaScript, nothing fetched).
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "train/trainer.h"

namespace wick {

// metrics.jsonl, parsed: train records have "loss", eval records "eval_loss" (both have "step").
struct RunMetrics {
  std::vector<double> step, loss, lr, grad_norm;  // one entry per train record, in file order
  std::vector<double> eval_step, eval_loss;       // one entry per eval record
  int64_t last_step = 0;   // largest step seen
  int64_t tokens = 0;      // sum of "tokens" over train records
  double step_seconds = 0; // sum of tokens / tokens_per_s: time spent in steps
  double best_eval_loss = std::numeric_limits<double>::quiet_NaN();
  int64_t best_eval_step = -1;
  int64_t bad_lines = 0;   // lines that were not a JSON object with a numeric "step" (e.g. torn by a crash)
  struct Sample {
    int64_t step = 0;
    std::string prompt, text;
  };
  std::vector<Sample> samples;  // records with "sample" (--sample-every), in file order
};

// A missing file gives empty metrics; unreadable lines are counted, not fatal (the report is a view).
RunMetrics read_metrics(const std::string& metrics_path);

// What the run really uses, for the start-of-run printout and the report.
struct RunInfo {
  std::string model_dir, data_path, device, dtype, batch_reason;
  int64_t examples = 0, max_seq_len = 0, total_steps = 0;
};
// Settings as a flat JSON object (strings, numbers, booleans). With resume / adapter_init the LoRA shape
// comes from that folder's adapter_config.json, as the Trainer does.
nlohmann::json train_settings_json(const TrainOptions& t, const RunInfo& info);
// Settings as (name, value) rows: the well-known keys in a fixed, readable order, then the rest sorted.
std::vector<std::pair<std::string, std::string>> settings_rows(const nlohmann::json& settings);

// The HTML document (title is escaped).
std::string render_report_html(const RunMetrics& m, const nlohmann::json& settings, const std::string& title);
// Reads out_dir/metrics.jsonl and writes out_dir/report.html atomically.
void write_report(const std::string& out_dir, const nlohmann::json& settings);

}  // namespace wick
