// wick::train: the public face of the training application layer (api/train_run.h), which `wick train`
// uses too; this file only turns its reports into TrainProgress and TrainSummary, and prints nothing.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "api/train_run.h"
#include "core/error.h"
#include "train/report.h"
#include "wick/wick.h"

namespace fs = std::filesystem;

namespace wick {

TrainSummary train(const TrainSettings& s, const std::function<void(const TrainProgress&)>& on_progress,
                   const std::atomic<bool>* stop) {
  double acc = 0, w = 0;  // bias-corrected EMA of the loss, weight 0.9
  int64_t start = 0;
  TrainRunHooks hooks;
  hooks.where_prefix = "TrainSettings::";
  hooks.on_step = [&](const StepReport& r) {
    if (std::isfinite(r.loss)) acc = 0.9 * acc + 0.1 * r.loss, w = 0.9 * w + 0.1;
    if (!on_progress) return;
    TrainProgress p;
    p.step = r.step;
    p.total_steps = r.total_steps;
    p.tokens = r.tokens;
    p.epoch = r.epoch;
    p.loss = r.loss;
    p.smoothed_loss = w > 0 ? acc / w : r.loss;
    p.grad_norm = r.grad_norm;
    p.lr = r.lr;
    p.tokens_per_s = r.tokens_per_s;
    p.elapsed_s = r.elapsed_s;
    p.eta_s = r.step > start ? r.elapsed_s / static_cast<double>(r.step - start) * (r.total_steps - r.step) : 0;
    on_progress(p);
  };
  TrainRun run(s, hooks);
  start = run.start_step();
  const auto t0 = std::chrono::steady_clock::now();
  const bool done = run.run(stop);
  TrainSummary out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string dir = run.settings().out_dir;
  if (s.write_report) out.report_path = (fs::path(dir) / "report.html").string();
  const RunMetrics m = read_metrics((fs::path(dir) / "metrics.jsonl").string());
  out.completed = done;
  out.steps = run.step();
  out.total_steps = run.total_steps();
  out.tokens = m.tokens;
  out.final_loss = m.loss.empty() ? 0.0 : m.loss.back();
  if (m.best_eval_step >= 0) out.best_eval_loss = m.best_eval_loss, out.best_eval_step = m.best_eval_step;
  out.batch_size = run.batch_size();
  out.batch_reason = run.batch_reason();
  out.out_dir = dir;
  out.settings = settings_rows(run.settings_json());
  out.stopped_early = run.stopped_early();
  out.adapter_step = run.adapter_step();
  out.checkpoints = run.checkpoints();
  run.finalize();  // data-parallel: this process's ranks are done (one job per process)
  return out;
}

}  // namespace wick
