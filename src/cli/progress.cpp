#include "cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "train/report.h"

namespace wick::cli {

namespace {

std::string str(const nlohmann::json& s, const char* k) {
  if (!s.contains(k)) return "-";
  const auto& v = s[k];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "on" : "off";
  if (v.is_number_float()) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v.get<double>());
    return b;
  }
  return v.dump();
}

std::string printf_str(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int term_width(FILE* f) {
  winsize ws{};
  if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 80;
}

std::string rate_str(double tps) {
  if (tps >= 1e6) return printf_str("%.1fM", tps / 1e6);
  if (tps >= 1e4) return printf_str("%.1fk", tps / 1e3);
  return printf_str("%.0f", tps);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=,+-@%") ==
                        std::string::npos)
    return s;
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

}  // namespace

std::string clock_str(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long long t = static_cast<long long>(std::llround(s));
  char b[32];
  if (t >= 3600) std::snprintf(b, sizeof b, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(b, sizeof b, "%lld:%02lld", t / 60, t % 60);
  return b;
}

std::vector<std::string> settings_lines(const nlohmann::json& s) {
  std::vector<std::string> l;
  l.push_back("model  " + str(s, "model") + " on " + str(s, "device") + ", " + str(s, "dtype"));
  l.push_back("data   " + str(s, "data") + ": " + str(s, "examples") + " examples, max-seq-len " + str(s, "max_seq_len"));
  if (s.contains("resume")) l.push_back("resume " + str(s, "resume") + " (LoRA shape from its adapter_config.json)");
  if (s.contains("adapter_init")) l.push_back("init   " + str(s, "adapter_init"));
  l.push_back("LoRA   r " + str(s, "r") + ", alpha " + str(s, "alpha") + " (scale " + str(s, "lora_scale") +
              (s.value("rslora", false) ? ", rsLoRA" : "") + "), dropout " + str(s, "lora_dropout") + ", targets " +
              str(s, "targets"));
  l.push_back("AdamW  lr " + str(s, "lr") + ", " + str(s, "scheduler") + " schedule, warmup " + str(s, "warmup_steps") +
              " steps, weight decay " + str(s, "weight_decay") + ", betas " + str(s, "betas") + ", eps " + str(s, "eps") +
              ", max grad norm " + str(s, "max_grad_norm"));
  const std::string len = s.contains("max_steps") ? "max-steps " + str(s, "max_steps") : str(s, "epochs") + " epochs";
  const std::string ranks = s.contains("ranks") ? " x " + str(s, "ranks") + " ranks" : "";  // data-parallel
  l.push_back("steps  " + str(s, "total_steps") + " (" + len + "), batch " + str(s, "batch_size") + ranks + " x grad-accum " +
              str(s, "grad_accum") + " = " + str(s, "effective_batch") + " sequences per step, seed " + str(s, "seed") +
              ", shuffle " + str(s, "shuffle"));
  if (s.contains("batch_reason")) l.push_back("batch  " + str(s, "batch_size") + ": " + str(s, "batch_reason"));
  const int64_t se = s.value("save_every", int64_t{0});
  l.push_back("out    " + str(s, "out") + " (adapter, checkpoint" + (se > 0 ? " every " + std::to_string(se) + " steps" : "") +
              ", metrics.jsonl, report.html)");
  return l;
}

int64_t default_log_every(int64_t total_steps) { return std::max<int64_t>(1, total_steps / 20); }

Progress::Progress(FILE* out, bool tty, int64_t total_steps, int64_t start_step, int64_t log_every)
    : out_(out), tty_(tty), total_(total_steps), start_(start_step),
      every_(log_every > 0 ? log_every : default_log_every(total_steps)) {}

// "  MFU 41%" beside tok/s where the device's peak is known (train/flops.h), nothing otherwise.
static std::string mfu_str(double mfu) { return mfu > 0 ? printf_str("  MFU %.0f%%", 100 * mfu) : std::string(); }

std::string Progress::line(const StepReport& r, bool bar) const {
  const int64_t done = r.step - start_;
  const double eta = done > 0 ? r.elapsed_s / done * static_cast<double>(r.total_steps - r.step) : NAN;
  if (!bar) {
    char b[320];
    std::snprintf(b, sizeof b,
                  "step %lld/%lld  epoch %.2f  loss %.4f (smoothed %.4f)  grad_norm %.4f  lr %.3g  %.0f tok/s%s  "
                  "elapsed %s  eta %s",
                  static_cast<long long>(r.step), static_cast<long long>(r.total_steps), r.epoch, r.loss,
                  smoothed_loss(), r.grad_norm, r.lr, r.tokens_per_s, mfu_str(r.mfu).c_str(),
                  clock_str(r.elapsed_s).c_str(), clock_str(eta).c_str());
    return b;
  }
  char tail[240];
  std::snprintf(tail, sizeof tail, " %lld/%lld  ep %.2f  loss %.4f  lr %.2e  %s tok/s%s  %s<%s",
                static_cast<long long>(r.step), static_cast<long long>(r.total_steps), r.epoch, smoothed_loss(), r.lr,
                rate_str(r.tokens_per_s).c_str(), mfu_str(r.mfu).c_str(), clock_str(r.elapsed_s).c_str(),
                clock_str(eta).c_str());
  const double frac = r.total_steps > 0 ? std::clamp(static_cast<double>(r.step) / r.total_steps, 0.0, 1.0) : 0.0;
  const int width = term_width(out_) - 1;  // never wrap: a wrapped line cannot be redrawn with \r
  std::string head = printf_str("%3.0f%% ", 100 * frac);
  const int bar_w = width - static_cast<int>(head.size() + std::strlen(tail)) - 2;
  std::string s = head;
  if (bar_w >= 10) {
    const int fill = static_cast<int>(frac * bar_w);
    s += "[" + std::string(fill, '#') + std::string(bar_w - fill, ' ') + "]";
  }
  s += tail;
  if (static_cast<int>(s.size()) > width) s.resize(width);
  return s;
}

void Progress::update(const StepReport& r) {
  if (std::isfinite(r.loss)) {
    acc_ = 0.9 * acc_ + 0.1 * r.loss;
    w_ = 0.9 * w_ + 0.1;
  }
  if (tty_) {
    const double t = now_s();
    if (r.step < r.total_steps && drawn_ && t - last_draw_ < 0.1) return;
    last_draw_ = t;
    drawn_ = true;
    std::fprintf(out_, "\r\x1b[2K%s", line(r, true).c_str());
  } else {
    if (r.step % every_ != 0 && r.step != r.total_steps && r.step != start_ + 1) return;
    std::fprintf(out_, "%s\n", line(r, false).c_str());
  }
  std::fflush(out_);
}

void Progress::end() {
  if (tty_ && drawn_) std::fprintf(out_, "\n");
  drawn_ = false;
  std::fflush(out_);
}

void Progress::note(const std::string& line) {
  if (tty_ && drawn_) std::fprintf(out_, "\r\033[K");  // clear the bar; the next update redraws it
  drawn_ = false;
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void print_train_summary(FILE* out, const std::string& model_dir, const std::string& out_dir, bool done,
                         int64_t step, int64_t total_steps, double smoothed_loss, const std::string& resume_cmd) {
  const RunMetrics m = read_metrics((std::filesystem::path(out_dir) / "metrics.jsonl").string());
  std::string l = done ? "done: " : "interrupted: ";
  l += std::to_string(step) + " of " + std::to_string(total_steps) + " steps, " + std::to_string(m.tokens) + " tokens in " +
       clock_str(m.step_seconds);
  if (m.step_seconds > 0) l += " (" + rate_str(m.tokens / m.step_seconds) + " tok/s)";
  // No smoothed value when this invocation ran no step (a resume of a finished run): never a made-up 0.
  if (!m.loss.empty())
    l += printf_str(", final loss %.4f", m.loss.back()) +
         (std::isfinite(smoothed_loss) ? printf_str(" (smoothed %.4f)", smoothed_loss) : std::string());
  std::fprintf(out, "wick train: %s\n", l.c_str());
  if (m.best_eval_step >= 0)
    std::fprintf(out, "wick train: best eval loss %.4f (ppl %.2f) at step %lld\n", m.best_eval_loss,
                 std::exp(m.best_eval_loss), static_cast<long long>(m.best_eval_step));
  if (done) {
    std::fprintf(out, "wick train: adapter in %s (adapter_config.json, adapter_model.safetensors; PEFT format)\n", out_dir.c_str());
    std::fprintf(out, "wick train: try it: wick generate --model %s --adapter %s --prompt ...\n",
                 shell_quote(model_dir).c_str(), shell_quote(out_dir).c_str());
  } else {
    std::fprintf(out, "wick train: checkpoint of step %lld saved in %s\n", static_cast<long long>(step), out_dir.c_str());
    std::fprintf(out, "wick train: resume with: %s\n", resume_cmd.c_str());
  }
  std::fprintf(out, "wick train: report %s\n", (std::filesystem::path(out_dir) / "report.html").string().c_str());
}

std::string resume_command(const CLI::App& cmd, const std::string& out_dir) {
  std::string s = "wick " + cmd.get_name();
  for (const CLI::Option* o : cmd.get_options()) {
    if (o->count() == 0) continue;
    const std::string name = o->get_name();
    // Each spelling of an option is an option of its own (cmd_train.cpp): --resume's alias is left out too.
    if (name == "--help" || name == "-h" || name == "--resume" || name == "--resume-from-checkpoint") continue;
    if (o->get_expected_min() == 0) {  // a flag: "true" per plain occurrence, else its --flag=VALUE
      for (const std::string& v : o->results()) s += " " + name + (v == "true" ? "" : "=" + shell_quote(v));
      continue;
    }
    for (const std::string& v : o->results()) s += " " + name + " " + shell_quote(v);
  }
  return s + " --resume " + shell_quote(out_dir);
}

}  // namespace wick::cli
