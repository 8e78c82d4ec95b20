#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "train/schedule.h"
#include "train/svg_chart.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wick {

RunMetrics read_metrics(const std::string& metrics_path) {
  RunMetrics m;
  std::ifstream in(metrics_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json r = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!r.is_object() || !r.contains("step") || !r["step"].is_number()) {
      m.bad_lines++;
      continue;
    }
    const double step = r["step"].get<double>();
    auto num = [&](const char* k) {
      return r.contains(k) && r[k].is_number() ? r[k].get<double>() : std::numeric_limits<double>::quiet_NaN();
    };
    m.last_step = std::max(m.last_step, static_cast<int64_t>(step));
    if (r.contains("loss")) {
      m.step.push_back(step);
      m.loss.push_back(num("loss"));
      m.lr.push_back(num("lr"));
      m.grad_norm.push_back(num("grad_norm"));
      const double tok = num("tokens"), tps = num("tokens_per_s");
      if (std::isfinite(tok)) m.tokens += static_cast<int64_t>(tok);
      if (std::isfinite(tok) && std::isfinite(tps) && tps > 0) m.step_seconds += tok / tps;
    }
    if (r.contains("sample") && r["sample"].is_string())
      m.samples.push_back({static_cast<int64_t>(step), r.value("sample_prompt", std::string()), r["sample"].get<std::string>()});
    if (r.contains("eval_loss")) {
      const double e = num("eval_loss");
      m.eval_step.push_back(step);
      m.eval_loss.push_back(e);
      if (std::isfinite(e) && !(e >= m.best_eval_loss)) m.best_eval_loss = e, m.best_eval_step = static_cast<int64_t>(step);
    }
  }
  return m;
}

json train_settings_json(const TrainOptions& t, const RunInfo& info) {
  io::LoraConfig lora = t.lora;
  const std::string from = !t.resume.empty() ? t.resume : t.adapter_init;
  if (!from.empty()) {
    const std::string p = (fs::path(from) / "adapter_config.json").string();
    lora = io::LoraConfig::from_json_string(io::read_file(p), p);
  }
  std::string targets;
  for (const auto& s : lora.target_modules) {
    if (!targets.empty()) targets += ',';
    targets += s;
  }
  if (lora.target_regex) targets = *lora.target_regex;
  if (lora.all_linear) targets = "all-linear";
  const int64_t warmup = effective_warmup_steps(parse_schedule_kind(t.scheduler), t.warmup_steps, t.warmup_ratio, info.total_steps);
  char betas[64];
  std::snprintf(betas, sizeof betas, "%g,%g", t.beta1, t.beta2);
  json s = {{"model", info.model_dir}, {"data", info.data_path}, {"out", t.out_dir}, {"examples", info.examples},
            {"device", info.device}, {"dtype", info.dtype}, {"r", lora.r}, {"alpha", lora.alpha},
            {"lora_scale", lora.scale()}, {"lora_dropout", lora.dropout}, {"rslora", lora.use_rslora},
            {"targets", targets}, {"lr", t.lr}, {"scheduler", t.scheduler}, {"warmup_steps", warmup},
            {"weight_decay", t.weight_decay}, {"betas", betas}, {"eps", t.eps}, {"max_grad_norm", t.max_grad_norm},
            {"total_steps", info.total_steps}, {"batch_size", t.batch_size}, {"grad_accum", t.grad_accum},
            {"effective_batch", t.batch_size * t.grad_accum}, {"max_seq_len", info.max_seq_len}, {"seed", t.seed},
            {"shuffle", t.shuffle}, {"save_every", t.save_every}};
  if (t.max_steps > 0) s["max_steps"] = t.max_steps;
  else s["epochs"] = t.epochs;
  if (!info.batch_reason.empty()) s["batch_reason"] = info.batch_reason;
  if (!t.adapter_init.empty()) s["adapter_init"] = t.adapter_init;
  if (!t.resume.empty()) s["resume"] = t.resume;
  return s;
}

namespace {

const char* const kOrder[] = {"model", "data", "out", "examples", "device", "dtype", "r", "alpha", "lora_scale",
                              "lora_dropout", "rslora", "targets", "lr", "scheduler", "warmup_steps", "weight_decay",
                              "betas", "eps", "max_grad_norm", "epochs", "max_steps", "total_steps", "batch_size",
                              "batch_reason", "grad_accum", "effective_batch", "max_seq_len", "seed", "shuffle",
                              "save_every", "adapter_init", "resume"};

std::string value_str(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) {
      if (!s.empty()) s += ',';
      s += value_str(e);
    }
    return s;
  }
  if (v.is_number_float()) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v.get<double>());
    return b;
  }
  return v.dump();
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string duration(double s) {
  char b[48];
  const long long t = static_cast<long long>(std::llround(s));
  if (t >= 3600) std::snprintf(b, sizeof b, "%lldh %02lldm %02llds", t / 3600, t / 60 % 60, t % 60);
  else if (t >= 60) std::snprintf(b, sizeof b, "%lldm %02llds", t / 60, t % 60);
  else std::snprintf(b, sizeof b, "%.1fs", s);
  return b;
}

// Exponential moving average with bias correction (as TensorBoard's smoothing), weight 0.9.
std::vector<double> smooth(const std::vector<double>& y) {
  std::vector<double> o;
  double acc = 0, w = 0;
  for (double v : y) {
    if (!std::isfinite(v)) {
      o.push_back(v);
      continue;
    }
    acc = 0.9 * acc + 0.1 * v;
    w = 0.9 * w + 0.1;
    o.push_back(acc / w);
  }
  return o;
}

std::string row(const std::string& k, const std::string& v) {
  return "<tr><th>" + html_escape(k) + "</th><td>" + html_escape(v) + "</td></tr>\n";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> settings_rows(const json& settings) {
  std::vector<std::pair<std::string, std::string>> rows;
  if (!settings.is_object()) return rows;
  for (const char* k : kOrder)
    if (settings.contains(k)) rows.emplace_back(k, value_str(settings[k]));
  for (const auto& item : settings.items()) {  // json objects iterate in sorted key order
    const std::string& k = item.key();  // a named variable: clang 14 cannot capture structured bindings
    if (std::find_if(std::begin(kOrder), std::end(kOrder), [&](const char* o) { return k == o; }) == std::end(kOrder))
      rows.emplace_back(k, value_str(item.value()));
  }
  return rows;
}

std::string render_report_html(const RunMetrics& m, const json& settings, const std::string& title) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>" + html_escape(title) +
                  "</title>\n<style>\nbody{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:60em}\n"
                  "table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #ccc;padding:3px 8px;"
                  "text-align:left;font-size:13px;vertical-align:top}th{background:#f4f4f4;font-weight:600}\n"
                  "svg{display:block;margin-bottom:1.5em}svg .title{font-size:13px;font-weight:600}\n</style>\n"
                  "</head>\n<body>\n<h1>" + html_escape(title) + "</h1>\n";
  // Summary.
  h += "<h2>Summary</h2>\n<table class=\"summary\">\n";
  std::string steps = std::to_string(m.last_step);
  if (settings.is_object() && settings.contains("total_steps")) steps += " of " + value_str(settings["total_steps"]);
  h += row("steps", steps);
  h += row("tokens", std::to_string(m.tokens));
  h += row("time in steps", duration(m.step_seconds));
  if (m.step_seconds > 0) h += row("tokens/s (mean)", fmt("%.0f", m.tokens / m.step_seconds));
  if (!m.loss.empty()) {
    h += row("first loss", fmt("%.4f", m.loss.front()));
    h += row("final loss", fmt("%.4f", m.loss.back()));
    double lo = std::numeric_limits<double>::infinity();
    for (double v : m.loss)
      if (std::isfinite(v)) lo = std::min(lo, v);
    if (std::isfinite(lo)) h += row("lowest loss", fmt("%.4f", lo));
  }
  if (m.best_eval_step >= 0)
    h += row("best eval loss", fmt("%.4f", m.best_eval_loss) + " at step " + std::to_string(m.best_eval_step) +
                                   " (ppl " + fmt("%.2f", std::exp(m.best_eval_loss)) + ")");
  if (m.bad_lines > 0) h += row("unreadable metrics lines", std::to_string(m.bad_lines));
  h += "</table>\n";

  // Curves.
  ChartSeries raw{"train loss", "loss", "#9ecae1", m.step, m.loss, false, 1.0};
  ChartSeries sm{"train loss (smoothed)", "loss-smooth", "#08519c", m.step, smooth(m.loss), false, 2.0};
  ChartSeries ev{"eval loss", "eval-loss", "#d62728", m.eval_step, m.eval_loss, true, 2.0};
  std::vector<ChartSeries> loss_series = {raw, sm};
  if (!m.eval_step.empty()) loss_series.push_back(ev);
  h += "<h2>Loss</h2>\n" + svg_line_chart(loss_series, {"loss per optimizer step", "step", "loss"});
  ChartSeries lr{"learning rate", "lr", "#2ca02c", m.step, m.lr, false, 2.0};
  h += "<h2>Learning rate</h2>\n" + svg_line_chart({lr}, {"learning rate schedule", "step", "lr"});
  ChartSeries gn{"grad norm (before clipping)", "grad-norm", "#ff7f0e", m.step, m.grad_norm, false, 1.0};
  h += "<h2>Gradient norm</h2>\n" + svg_line_chart({gn}, {"global gradient norm", "step", "norm"});

  // Samples (--sample-every): what the adapter says as it trains.
  if (!m.samples.empty()) {
    h += "<h2>Samples</h2>\n<table class=\"samples\">\n<tr><th>step</th><th>prompt</th><th>generated</th></tr>\n";
    for (const auto& x : m.samples)
      h += "<tr><td>" + std::to_string(x.step) + "</td><td>" + html_escape(x.prompt) +
           "</td><td style=\"white-space:pre-wrap\">" + html_escape(x.text) + "</td></tr>\n";
    h += "</table>\n";
  }

  // Settings.
  h += "<h2>Settings</h2>\n<table class=\"settings\">\n";
  for (const auto& [k, v] : settings_rows(settings)) h += row(k, v);
  h += "</table>\n<p>Written by wick from metrics.jsonl.</p>\n</body>\n</html>\n";
  return h;
}

void write_report(const std::string& out_dir, const json& settings) {
  const RunMetrics m = read_metrics((fs::path(out_dir) / "metrics.jsonl").string());
  fs::path name = fs::path(out_dir).lexically_normal();
  if (name.filename().empty()) name = name.parent_path();  // "out/" -> "out"
  const std::string title = "wick train: " + name.filename().string();
  io::write_file_atomic((fs::path(out_dir) / "report.html").string(), render_report_html(m, settings, title));
}

}  // namespace wick
