// The training-option table (train_options.h). Aliases are the names people type from TRL / PEFT /
// Hugging Face TrainingArguments, so a command line or config written for those mostly carries over.
#include "train/train_options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "lora/lora.h"

namespace wick {

namespace {

using S = TrainSettings;

std::string fmt_double(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  // Shortest text that reads back to the same double.
  for (int p = 1; p <= 17; p++) {
    char c[40];
    std::snprintf(c, sizeof c, "%.*g", p, v);
    if (std::strtod(c, nullptr) == v) return c;
  }
  return b;
}

std::string betas_get(const S& s) { return fmt_double(s.beta1) + "," + fmt_double(s.beta2); }
void betas_set(S& s, const std::string& v, const std::string& where) {
  const size_t c = v.find(',');
  char* e1 = nullptr;
  char* e2 = nullptr;
  const std::string a = c == std::string::npos ? v : v.substr(0, c), b = c == std::string::npos ? "" : v.substr(c + 1);
  const double b1 = std::strtod(a.c_str(), &e1), b2 = std::strtod(b.c_str(), &e2);
  if (c == std::string::npos || a.empty() || b.empty() || *e1 || *e2)
    throw Error("expected b1,b2 (e.g. 0.9,0.999), got '" + v + "'", where);
  for (double x : {b1, b2})
    if (!(x >= 0 && x < 1)) throw Error("each beta must be in [0, 1), got '" + v + "'", where);
  s.beta1 = b1;
  s.beta2 = b2;
}

OptionRule range(double lo, double hi = std::numeric_limits<double>::infinity(), bool lo_open = false, bool hi_open = false) {
  OptionRule r;
  r.lo = lo;
  r.hi = hi;
  r.lo_open = lo_open;
  r.hi_open = hi_open;
  return r;
}
OptionRule positive() { return range(0, std::numeric_limits<double>::infinity(), true); }
OptionRule words(const char* w, bool empty_ok = false) {
  OptionRule r;
  r.one_of = w;
  r.empty_ok = empty_ok;
  return r;
}
const OptionRule any{};

const char* const kData = "Model and data";
const char* const kEval = "Evaluation and early stopping";
const char* const kOut = "Output, checkpoints and resume";
const char* const kLora = "LoRA";
const char* const kOpt = "Optimizer and learning-rate schedule";
const char* const kLen = "Length and batching";
const char* const kDev = "Device";
const char* const kLog = "Logging and monitoring";

std::vector<OptionRow> make_table() {
  // clang-format off
  return {
    {"model", "model-name-or-path", kData, "Hugging Face model folder, or a Hub id (ORG/NAME) found in the local Hugging Face cache", &S::model_dir, any, false, "DIR|ID"},
    {"revision", "", kData, "with a Hub id: the branch, tag or commit to use (default main)", &S::revision, any, false, "REV"},
    {"data", "", kData, "training data, JSONL: {\"text\"}, {\"prompt\", \"completion\"}, {\"messages\"}, ShareGPT {\"conversations\"}, Alpaca {\"instruction\", \"input\", \"output\"} or {\"input_ids\", \"labels\"} per line", &S::data, any, false, "FILE"},
    {"format", "", kData, "dataset format: auto (from the first line's keys), text, prompt-completion, messages, sharegpt, alpaca or tokens", &S::format, words("auto|text|prompt-completion|messages|sharegpt|alpaca|tokens"), false, "NAME"},
    {"chat_template", "", kData, "force the chat template family for messages: qwen2.5 or qwen3 (default: the model folder's)", &S::chat_template, words("qwen2.5|qwen3", true), false, "NAME"},
    {"max_seq_len", "max-seq-length,max-length", kData, "truncate examples to this many tokens (at least 2: a token and the one it predicts)", &S::max_seq_len, range(2), false, "N"},
    {"packing", "", kData, "pack several examples into each row of max-seq-len tokens (attention stays within an example)", &S::packing, any},
    {"train_on_inputs", "", kData, "count the loss on every token (prompt, system and user turns too), not only the completion / assistant turns", &S::train_on_inputs, any},
    {"skip_bad_lines", "", kData, "skip malformed JSONL lines instead of stopping", &S::skip_bad_lines, any},

    {"eval", "eval-file", kEval, "evaluation data (same formats as --data)", &S::eval_data, any, false, "FILE"},
    {"eval_split", "", kEval, "hold out this fraction of --data for evaluation (chosen by --seed)", &S::eval_split, range(0, 1, false, true), false, "FRACTION"},
    {"eval_every", "eval-steps", kEval, "evaluate every N steps (0: only at the end)", &S::eval_every, range(0), false, "N"},
    {"early_stopping_patience", "", kEval, "stop after N evaluations in a row without improvement (0: never)", &S::early_stopping_patience, range(0), false, "N"},
    {"early_stopping_threshold", "", kEval, "an improvement must lower the eval loss by more than this", &S::early_stopping_threshold, range(0), false, "X"},

    {"out", "output-dir", kOut, "output folder: PEFT adapter, README.md, run.toml, metrics.jsonl, report.html, checkpoints", &S::out_dir, any, false, "DIR"},
    {"save_every", "save-steps", kOut, "also keep a resumable checkpoint-N/ folder every N steps (0: only the final state)", &S::save_every, range(0), false, "N"},
    {"save_total_limit", "", kOut, "keep at most this many checkpoint-N/ folders, deleting the oldest but never the best (0: keep all)", &S::save_total_limit, range(0), false, "K"},
    {"load_best", "load-best-model-at-end", kOut, "at the end, put the adapter with the lowest eval loss at the top of --out", &S::load_best, any},
    {"adapter_init", "", kOut, "start from this PEFT adapter (folder or Hub id) instead of a fresh one", &S::adapter_init, any, false, "DIR|ID"},
    {"resume", "resume-from-checkpoint", kOut, "continue the run saved in this folder (usually --out), from its latest complete checkpoint", &S::resume, any, false, "DIR"},
    {"overwrite", "overwrite-output-dir", kOut, "write into --out even when it holds another run (its checkpoints and metrics are replaced); without it a non-empty --out is refused unless resumed", &S::overwrite, any},

    {"rank", "lora-r,r", kLora, "LoRA rank r", &S::r, range(1), false, "R"},
    {"alpha", "lora-alpha", kLora, "LoRA alpha (scale = alpha / r)", &S::alpha, positive(), false, "X"},
    {"dropout", "lora-dropout", kLora, "LoRA dropout on the adapter input", &S::dropout, range(0, 1, false, true), false, "P"},
    {"rslora", "use-rslora", kLora, "rank-stabilised LoRA: scale = alpha / sqrt(r)", &S::rslora, any},
    {"targets", "target-modules", kLora, "modules to adapt: a comma list (q_proj,v_proj,...) or all", &S::targets, any, false, "LIST"},

    {"lr", "learning-rate", kOpt, "peak learning rate", &S::lr, positive(), false, "X"},
    {"weight_decay", "", kOpt, "AdamW decoupled weight decay", &S::weight_decay, range(0), false, "X"},
    {"betas", "", kOpt, "AdamW betas as b1,b2", OptionCustom{betas_get, betas_set}, any, false, "B1,B2"},
    {"eps", "adam-epsilon", kOpt, "AdamW epsilon", &S::eps, positive(), false, "X"},
    {"max_grad_norm", "", kOpt, "clip the global gradient norm to this (0: no clipping)", &S::max_grad_norm, range(0), false, "X"},
    {"on_nan", "", kOpt, "a non-finite loss or gradient: stop (keep the last good checkpoint, exit 1) or skip the step (nothing updated)", &S::on_nan, words("stop|skip"), false, "WHAT"},
    {"scheduler", "lr-scheduler-type", kOpt, "learning-rate schedule as transformers names it: constant (no warmup), constant_with_warmup, linear or cosine", &S::scheduler, words("constant|constant_with_warmup|linear|cosine"), false, "NAME"},
    {"warmup_steps", "", kOpt, "linear warmup steps (-1: --warmup-ratio of all steps)", &S::warmup_steps, range(-1), false, "N"},
    {"warmup_ratio", "", kOpt, "warmup as a fraction of all steps (when --warmup-steps is -1)", &S::warmup_ratio, range(0, 1), false, "FRACTION"},

    {"epochs", "num-train-epochs", kLen, "passes over the data", &S::epochs, positive(), false, "X"},
    {"max_steps", "", kLen, "optimizer steps to run; > 0 overrides --epochs (-1: from --epochs)", &S::max_steps, range(-1), false, "N"},
    {"batch_size", "per-device-train-batch-size", kLen, "examples per micro-batch on each rank (0: chosen to fit memory, printed at start)", &S::batch_size, range(0), false, "N"},
    {"grad_accum", "gradient-accumulation-steps", kLen, "micro-batches per optimizer step", &S::grad_accum, range(1), false, "N"},
    {"grad_checkpointing", "gradient-checkpointing", kLen, "activation checkpointing: keep each layer's input and attention results, recompute the norms, the attention's output projection and the MLP's gate/up projections in backward (far less memory, about a fifth more compute)", &S::grad_checkpointing, any},
    {"seed", "", kLen, "seed for adapter init, shuffling, the eval split and dropout", &S::seed, any, false, "N"},
    {"shuffle", "", kLen, "shuffle the data every epoch (--no-shuffle keeps the file order)", &S::shuffle, any},

    {"device", "", kDev, "cpu, cuda, cuda:N or auto (cuda when a GPU is usable)", &S::device, any, false, "DEV"},
    {"dtype", "", kDev, "compute dtype of frozen weights and activations: auto (bf16 on CUDA, f32 on CPU), f32 or bf16", &S::dtype, words("auto|f32|bf16"), false, "NAME"},
    {"gpus", "nproc-per-node", kDev, "data-parallel ranks on this host: N > 1 starts N processes under mpirun, one GPU each (--batch-size is per rank: the global batch is batch-size x ranks x grad-accum); 0: as launched (mpirun -np N / srun start the ranks themselves; 1 without a launcher)", &S::gpus, range(0, 1024), false, "N"},

    {"sample_every", "", kLog, "every N steps, generate from each --sample-prompt with the current adapter (0: never)", &S::sample_every, range(0), false, "N"},
    {"sample_prompt", "", kLog, "a prompt for --sample-every, as a user turn, greedy (repeatable); text to metrics.jsonl and report.html", &S::sample_prompts, any, true, "TEXT"},
    {"sample_max_new_tokens", "", kLog, "most tokens generated per sample", &S::sample_max_new_tokens, range(1), false, "N"},
    {"report_to", "", kLog, "also log scalars to: none or tensorboard (--out/tensorboard/events.out.tfevents.*)", &S::report_to, words("none|tensorboard"), false, "NAME"},
    {"log_every", "logging-steps", kLog, "on a pipe, print a progress line every N steps (0: about 20 lines per run)", &S::log_every, range(0), false, "N"},
    {"report", "", kLog, "write report.html (curves, settings, samples) at the end (--no-report: don't)", &S::write_report, any},
  };
  // clang-format on
}

std::string norm(std::string s) {
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string t;
  while (std::getline(ss, t, sep)) {
    const size_t a = t.find_first_not_of(" \t"), b = t.find_last_not_of(" \t");
    if (a != std::string::npos) out.push_back(t.substr(a, b - a + 1));
  }
  return out;
}

std::string dashed(const std::string& s) {
  std::string o = s;
  for (char& c : o)
    if (c == '_') c = '-';
  return o;
}

void check_rule(const OptionRow& row, double v, const std::string& text, const std::string& where) {
  const OptionRule& r = row.rule;
  const bool lo_ok = r.lo_open ? v > r.lo : v >= r.lo, hi_ok = r.hi_open ? v < r.hi : v <= r.hi;
  if (lo_ok && hi_ok && std::isfinite(v)) return;
  std::string want;
  if (std::isinf(r.hi)) want = std::string(r.lo_open ? "> " : ">= ") + fmt_double(r.lo);
  else want = std::string("in ") + (r.lo_open ? "(" : "[") + fmt_double(r.lo) + ", " + fmt_double(r.hi) + (r.hi_open ? ")" : "]");
  throw Error("must be " + want + ", got " + text, where);
}

void check_words(const OptionRow& row, const std::string& v, const std::string& where) {
  if (!row.rule.one_of || (v.empty() && row.rule.empty_ok)) return;
  for (const std::string& w : split(row.rule.one_of, '|'))
    if (v == w) return;
  std::string list = row.rule.one_of;
  std::replace(list.begin(), list.end(), '|', ',');
  throw Error("unknown value '" + v + "'", where, std::string("expected one of ") + list);
}

int64_t parse_int(const std::string& v, const std::string& where) {
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno) throw Error("expected an integer, got '" + v + "'", where);
  return x;
}

double parse_double(const std::string& v, const std::string& where) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end) throw Error("expected a number, got '" + v + "'", where);
  return x;
}

bool parse_bool(const std::string& v, const std::string& where) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw Error("expected true or false, got '" + v + "'", where);
}

}  // namespace

const std::vector<OptionRow>& train_option_table() {
  static const std::vector<OptionRow> t = make_table();
  return t;
}

const OptionRow* find_train_option(const std::string& name) {
  const std::string n = norm(name);
  for (const OptionRow& r : train_option_table()) {
    if (n == r.name) return &r;
    for (const std::string& a : split(r.aliases, ','))
      if (n == norm(a)) return &r;
  }
  return nullptr;
}

bool option_is_flag(const OptionRow& row) { return std::holds_alternative<bool S::*>(row.field); }

std::string option_flags(const OptionRow& row) {
  const bool neg = option_is_flag(row) && TrainSettings{}.*std::get<bool S::*>(row.field);
  std::string f = std::string(neg ? "--no-" : "--") + dashed(row.name);
  if (!neg)  // aliases of a default-true flag would read as the positive flag; it has none
    for (const std::string& a : split(row.aliases, ',')) f += ",--" + dashed(a);
  return f;
}

std::string option_text(const OptionRow& row, const TrainSettings& s) {
  return std::visit(
      [&](auto&& f) -> std::string {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, OptionCustom>) return f.get(s);
        else {
          const auto& v = s.*f;
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::string>) return v;
          else if constexpr (std::is_same_v<V, bool>) return v ? "true" : "false";
          else if constexpr (std::is_same_v<V, double>) return fmt_double(v);
          else if constexpr (std::is_same_v<V, std::vector<std::string>>) {
            std::string o;
            for (const auto& e : v) o += (o.empty() ? "" : ",") + e;
            return o;
          } else return std::to_string(v);
        }
      },
      row.field);
}

std::string option_default_text(const OptionRow& row) { return option_text(row, TrainSettings{}); }

void set_option(const OptionRow& row, TrainSettings& s, const std::vector<std::string>& values, const std::string& where) {
  const bool list = std::holds_alternative<std::vector<std::string> S::*>(row.field);
  if (!list && values.size() != 1)
    throw Error("expected one value, got " + std::to_string(values.size()), where);
  std::visit(
      [&](auto&& f) {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, OptionCustom>) {
          f.set(s, values[0], where);
        } else {
          auto& v = s.*f;
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::string>) {
            check_words(row, values[0], where);
            v = values[0];
          } else if constexpr (std::is_same_v<V, bool>) {
            v = parse_bool(values[0], where);
          } else if constexpr (std::is_same_v<V, double>) {
            const double x = parse_double(values[0], where);
            check_rule(row, x, values[0], where);
            v = x;
          } else if constexpr (std::is_same_v<V, int64_t>) {
            const int64_t x = parse_int(values[0], where);
            check_rule(row, static_cast<double>(x), values[0], where);
            v = x;
          } else if constexpr (std::is_same_v<V, uint64_t>) {
            if (!values[0].empty() && values[0][0] == '-') throw Error("expected a non-negative integer, got '" + values[0] + "'", where);
            errno = 0;
            char* end = nullptr;
            const unsigned long long x = std::strtoull(values[0].c_str(), &end, 10);
            if (values[0].empty() || *end || errno) throw Error("expected a non-negative integer, got '" + values[0] + "'", where);
            v = x;
          } else {  // a list
            std::vector<std::string> out;
            for (const std::string& x : values) {
              if (row.repeatable) out.push_back(x);
              else
                for (const std::string& e : split(x, ',')) out.push_back(e);
            }
            v = out;
          }
        }
      },
      row.field);
}

std::string option_where(const std::string& p, const std::string& name) { return p + (p == "--" ? dashed(name) : name); }

void check_option_rules(const TrainSettings& s, const std::string& p) {
  // Each row's rule, on the value as it is now (the API sets members directly).
  for (const OptionRow& row : train_option_table()) {
    const std::string where = option_where(p, row.name);
    if (std::holds_alternative<std::vector<std::string> S::*>(row.field) || std::holds_alternative<bool S::*>(row.field))
      continue;
    TrainSettings scratch;
    set_option(row, scratch, {option_text(row, s)}, where);
  }
  // max_steps: -1 (from epochs) or a count; 0 would be a run that silently trains nothing.
  if (s.max_steps == 0)
    throw Error("must be >= 1, got 0", option_where(p, "max_steps"), "or -1 to run --epochs");
}

void validate_train_settings(const TrainSettings& s, const std::string& p) {
  check_option_rules(s, p);
  auto name = [&](const char* n) { return option_where(p, n); };
  if (s.model_dir.empty()) throw Error("no model given", name("model"), "a model folder or a Hub id");
  if (s.data.empty()) throw Error("no training data given", name("data"));
  if (s.out_dir.empty()) throw Error("no output folder given", name("out"));
  if (s.targets.empty()) throw Error("no target modules given", name("targets"), "e.g. q_proj,v_proj or all");
  const bool has_eval = !s.eval_data.empty() || s.eval_split > 0;
  if (!s.eval_data.empty() && s.eval_split > 0)
    throw Error("give an evaluation file or a split, not both", name("eval_split"), "drop --eval or --eval-split");
  if (s.eval_every > 0 && !has_eval)
    throw Error("evaluation asked for without evaluation data", name("eval_every"), "pass --eval FILE or --eval-split FRACTION");
  if (s.early_stopping_patience > 0 && !has_eval)
    throw Error("early stopping watches the eval loss: no evaluation data", name("early_stopping_patience"),
                "pass --eval FILE or --eval-split FRACTION, and --eval-every N");
  if (s.load_best) {
    if (!has_eval)
      throw Error("the best adapter is chosen by eval loss: no evaluation data", name("load_best"),
                  "pass --eval FILE or --eval-split FRACTION");
    if (s.save_every > 0 && (s.eval_every <= 0 || s.save_every % s.eval_every != 0))
      throw Error("every checkpoint needs an eval loss to be compared: --save-every must be a multiple of --eval-every",
                  name("load_best"), "e.g. --eval-every 50 --save-every 100");
  }
  if (s.sample_every > 0 && s.sample_prompts.empty())
    throw Error("--sample-every without a prompt", name("sample_prompt"), "pass --sample-prompt \"...\" (repeatable)");
}

std::string train_options_markdown() {
  std::string md;
  std::string group;
  for (const OptionRow& row : train_option_table()) {
    if (group != row.group) {
      group = row.group;
      md += "\n### " + group + "\n\n| option | default | what it does |\n|---|---|---|\n";
    }
    std::string flags;
    for (const std::string& f : split(option_flags(row), ',')) flags += (flags.empty() ? "" : ", ") + ("`" + f + "`");
    std::string def = option_default_text(row);
    if (option_is_flag(row)) def = def == "true" ? "on" : "off";
    else if (def.empty()) def = "-";
    std::string help = row.help;
    for (size_t i = 0; (i = help.find('|', i)) != std::string::npos; i += 2) help.replace(i, 1, "\\|");
    md += "| " + flags + " | " + (def == "-" ? def : "`" + def + "`") + " | " + help + " (TOML key `" + row.name + "`) |\n";
  }
  return md;
}

}  // namespace wick
