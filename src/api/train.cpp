// wick::train: the public face of train/trainer.h, doing what `wick train` does (load, batch size, run,
// report) without printing anything.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "infer/session.h"
#include "lora/lora.h"
#include "train/auto_batch.h"
#include "train/dataset.h"
#include "train/train_data.h"
#include "train/report.h"
#include "train/trainer.h"
#include "wick/wick.h"

namespace fs = std::filesystem;

namespace wick {

namespace {

TrainOptions to_options(const TrainSettings& s) {
  TrainOptions t;
  t.out_dir = s.out_dir;
  t.lora.r = s.r;
  t.lora.alpha = s.alpha;
  t.lora.dropout = s.dropout;
  t.lora.use_rslora = s.rslora;
  t.lora.target_modules = s.targets;
  if (s.targets.size() == 1 && (s.targets[0] == "all" || s.targets[0] == "all-linear")) t.lora.target_modules = all_lora_targets();
  if (t.lora.target_modules.empty()) throw Error("no target modules given", "TrainSettings::targets", "e.g. {\"q_proj\", \"v_proj\"}");
  t.lora.base_model_name_or_path = s.model_dir;
  t.adapter_init = s.adapter_init;
  t.resume = s.resume;
  t.lr = s.lr;
  t.weight_decay = s.weight_decay;
  t.beta1 = s.beta1;
  t.beta2 = s.beta2;
  t.eps = s.eps;
  t.scheduler = s.scheduler;
  t.warmup_steps = s.warmup_steps;
  t.warmup_ratio = s.warmup_ratio;
  t.max_steps = s.max_steps;
  t.epochs = s.epochs;
  t.batch_size = s.batch_size;
  t.grad_accum = s.grad_accum;
  t.max_grad_norm = s.max_grad_norm;
  t.seed = s.seed;
  t.shuffle = s.shuffle;
  t.save_every = s.save_every;
  t.overwrite = s.overwrite;
  t.on_nan = s.on_nan;
  return t;
}

}  // namespace

TrainSummary train(const TrainSettings& s, const std::function<void(const TrainProgress&)>& on_progress,
                   const std::atomic<bool>* stop) {
  if (s.model_dir.empty()) throw Error("no model folder given", "TrainSettings::model_dir");
  if (s.data.empty()) throw Error("no training data given", "TrainSettings::data");
  if (s.out_dir.empty()) throw Error("no output folder given", "TrainSettings::out_dir");
  TrainOptions t = to_options(s);
  TrainDataOptions dopt;
  dopt.data = s.data;
  dopt.format = s.format;
  dopt.chat_template = s.chat_template;
  dopt.eval_file = s.eval_data;
  dopt.eval_split = s.eval_split;
  dopt.max_seq_len = s.max_seq_len;
  dopt.skip_bad = s.skip_bad_lines;
  dopt.packing = s.packing;
  t.packing = s.packing;
  t.max_seq_len = s.max_seq_len;
  t.eval_every = s.eval_every;
  validate_train_options(t);  // every option before any work
  check_train_output(t);
  const TrainData td = load_train_data(dopt, s.model_dir, t.seed, nullptr);
  const Dataset& data = td.train;
  const Device dev = resolve_device(s.device);
  auto model = Qwen2Model::load(s.model_dir, dev, resolve_dtype(s.dtype, dev));
  const BatchChoice bc = resolve_batch_size(t, *model, data);
  t.batch_size = bc.batch_size;
  Trainer trainer(*model, data, t, td.eval ? &*td.eval : nullptr);
  const nlohmann::json settings = train_settings_json(
      t, {s.model_dir, s.data, dev.str(), dtype_name(model->dtype()), bc.reason,
          static_cast<int64_t>(data.examples.size()), s.max_seq_len, trainer.total_steps()});

  const int64_t start = trainer.step();
  double acc = 0, w = 0;  // bias-corrected EMA of the loss, weight 0.9
  const auto t0 = std::chrono::steady_clock::now();
  const bool done = trainer.run(
      [&](const StepReport& r) {
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
      },
      stop);
  TrainSummary out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (s.write_report) {
    write_report(s.out_dir, settings);
    out.report_path = (fs::path(s.out_dir) / "report.html").string();
  }
  const RunMetrics m = read_metrics((fs::path(s.out_dir) / "metrics.jsonl").string());
  out.completed = done;
  out.steps = trainer.step();
  out.total_steps = trainer.total_steps();
  out.tokens = m.tokens;
  out.final_loss = m.loss.empty() ? 0.0 : m.loss.back();
  if (m.best_eval_step >= 0) out.best_eval_loss = m.best_eval_loss, out.best_eval_step = m.best_eval_step;
  out.batch_size = bc.batch_size;
  out.batch_reason = bc.reason;
  out.out_dir = s.out_dir;
  out.settings = settings_rows(settings);
  return out;
}

}  // namespace wick
