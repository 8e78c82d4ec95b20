// wick train: LoRA fine-tuning of a Hugging Face model folder on a JSONL dataset.
#include <atomic>
#include <cmath>
#include <optional>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <unistd.h>

#include <filesystem>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "infer/session.h"
#include "lora/lora.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/auto_batch.h"
#include "train/dataset.h"
#include "train/train_data.h"
#include "train/report.h"
#include "train/trainer.h"

namespace wick::cli {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
extern "C" void on_stop_signal(int sig) {
  // SIGINT (Ctrl-C) and SIGTERM (kill, a scheduler's time limit) alike: finish the step, save, exit 128 + sig.
  // A second one: quit now (the last checkpoint stays as it was).
  if (g_stop.exchange(true)) _exit(128 + sig);
  g_signal.store(sig);
  const char msg[] = "\nwick train: stopping after this step and saving a checkpoint (Ctrl-C again to quit without saving)\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
}

std::vector<std::string> split_targets(const std::string& s) {
  if (s == "all" || s == "all-linear") return all_lora_targets();
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string t;
  while (std::getline(ss, t, ','))
    if (!t.empty()) out.push_back(t);
  if (out.empty()) throw Error("no target modules given", "--targets", "e.g. q_proj,v_proj or all");
  return out;
}

}  // namespace

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Fine-tune a LoRA adapter on a JSONL dataset");
  struct Flags {
    std::string model, out, device = "auto", dtype = "auto", targets = "all", betas = "0.9,0.999";
    TrainDataOptions d;
    bool rslora = false, no_shuffle = false;
    TrainOptions t;
  };
  auto f = std::make_shared<Flags>();
  f->t.lora.r = 16;
  f->t.lora.alpha = 32;
  f->t.batch_size = 0;  // 0: chosen to fit (train/auto_batch.h)
  auto log_every = std::make_shared<int64_t>(0);
  cmd->add_option("--model", f->model, "Hugging Face model folder")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--data", f->d.data, "training data, JSONL: {\"text\"}, {\"prompt\", \"completion\"}, {\"messages\"} or {\"input_ids\", \"labels\"} per line")->required()->check(CLI::ExistingFile);
  cmd->add_option("--format", f->d.format, "dataset format: auto (default: from the first line's keys), text, prompt-completion, messages or tokens");
  cmd->add_option("--chat-template", f->d.chat_template, "force the chat template family for messages: qwen2.5 or qwen3");
  cmd->add_flag("--packing", f->d.packing, "pack several examples into each row of --max-seq-len tokens (attention stays within an example)");
  auto* ev = cmd->add_option("--eval", f->d.eval_file, "evaluation data (same formats as --data)")->check(CLI::ExistingFile);
  auto* es = cmd->add_option("--eval-split", f->d.eval_split, "hold out this fraction of --data for evaluation (chosen by --seed)");
  ev->excludes(es);
  cmd->add_option("--eval-every", f->t.eval_every, "evaluate every N steps (default 0: only at the end)");
  cmd->add_option("--out", f->t.out_dir, "output folder: PEFT adapter, checkpoint-<step>/ folders, metrics.jsonl")->required();
  cmd->add_flag("--overwrite", f->t.overwrite, "write into --out even when it holds another run (its checkpoints and metrics are replaced)");
  cmd->add_option("--on-nan", f->t.on_nan, "a non-finite loss or gradient: stop (default: keep the last good checkpoint, exit 1) or skip the step");
  cmd->add_option("--adapter-init", f->t.adapter_init, "start from this PEFT adapter instead of a fresh one")->check(CLI::ExistingDirectory);
  cmd->add_option("--resume", f->t.resume, "continue the run saved in this folder (usually --out)")->check(CLI::ExistingDirectory);
  cmd->add_option("--rank", f->t.lora.r, "LoRA rank r (default 16)");
  cmd->add_option("--alpha", f->t.lora.alpha, "LoRA alpha (default 32; scale = alpha / r)");
  cmd->add_option("--dropout", f->t.lora.dropout, "LoRA dropout on the adapter input (default 0)");
  cmd->add_flag("--rslora", f->rslora, "rank-stabilised LoRA: scale = alpha / sqrt(r)");
  cmd->add_option("--targets", f->targets, "modules to adapt: comma list (q_proj,v_proj,...) or all (default)");
  cmd->add_option("--lr", f->t.lr, "peak learning rate (default 2e-4)");
  cmd->add_option("--weight-decay", f->t.weight_decay, "AdamW decoupled weight decay (default 0.01)");
  cmd->add_option("--betas", f->betas, "AdamW betas as b1,b2 (default 0.9,0.999)");
  cmd->add_option("--eps", f->t.eps, "AdamW epsilon (default 1e-8)");
  cmd->add_option("--scheduler", f->t.scheduler, "learning-rate schedule as transformers names it: constant (no warmup), constant_with_warmup, linear or cosine (default)");
  auto* ws = cmd->add_option("--warmup-steps", f->t.warmup_steps, "linear warmup steps");
  auto* wr = cmd->add_option("--warmup-ratio", f->t.warmup_ratio, "warmup as a fraction of all steps (default 0.03)");
  ws->excludes(wr);
  auto* ms = cmd->add_option("--max-steps", f->t.max_steps, "optimizer steps to run (overrides --epochs)");
  auto* ep = cmd->add_option("--epochs", f->t.epochs, "passes over the data (default 3)");
  ms->excludes(ep);
  cmd->add_option("--batch-size", f->t.batch_size, "examples per micro-batch (default: chosen to fit memory, printed at start)");
  cmd->add_option("--grad-accum", f->t.grad_accum, "micro-batches per optimizer step (default 1)");
  cmd->add_option("--max-grad-norm", f->t.max_grad_norm, "clip the global gradient norm (0 = off; default 1)");
  cmd->add_option("--max-seq-len", f->d.max_seq_len, "truncate examples to this many tokens (default 2048)");
  cmd->add_option("--seed", f->t.seed, "seed for adapter init, shuffling and dropout (default 42)");
  cmd->add_flag("--no-shuffle", f->no_shuffle, "keep the data order");
  cmd->add_flag("--skip-bad-lines", f->d.skip_bad, "skip malformed JSONL lines instead of stopping");
  cmd->add_option("--save-every", f->t.save_every, "also save a checkpoint every N steps (0 = only at the end)");
  cmd->add_option("--device", f->device, "cpu, cuda, cuda:N or auto (default: cuda when a GPU is usable)");
  cmd->add_option("--dtype", f->dtype, "compute dtype for frozen weights and activations: f32 or bf16 (default: bf16 on CUDA, f32 on CPU)");
  cmd->add_option("--log-every", *log_every, "on a pipe, print a progress line every N steps (default: ~20 lines per run)");
  cmd->callback([f, cmd, log_every] {
    TrainOptions t = f->t;
    t.lora.use_rslora = f->rslora;
    t.lora.target_modules = split_targets(f->targets);
    t.lora.base_model_name_or_path = f->model;
    t.shuffle = !f->no_shuffle;
    {
      std::stringstream ss(f->betas);
      char comma = 0;
      if (!(ss >> t.beta1 >> comma >> t.beta2) || comma != ',') throw Error("expected b1,b2", "--betas");
    }
    const Device dev = resolve_device(f->device);
    t.packing = f->d.packing;
    t.max_seq_len = f->d.max_seq_len;
    validate_train_options(t);  // every option before any work (loading data and the model can take minutes)
    check_train_output(t);
    const TrainData data = load_train_data(f->d, f->model, t.seed, [](const std::string& l) {
      std::fprintf(stderr, "wick train: %s\n", l.c_str());
    });
    auto model = Qwen2Model::load(f->model, dev, resolve_dtype(f->dtype, dev));
    const BatchChoice bc = resolve_batch_size(t, *model, data.train);
    t.batch_size = bc.batch_size;
    Trainer trainer(*model, data.train, t, data.eval ? &*data.eval : nullptr);
    const nlohmann::json settings = train_settings_json(
        t, {f->model, f->d.data, dev.str(), dtype_name(model->dtype()), bc.reason,
            static_cast<int64_t>(data.train.examples.size()), f->d.max_seq_len, trainer.total_steps()});
    for (const std::string& l : settings_lines(settings)) std::fprintf(stderr, "wick train: %s\n", l.c_str());
    Progress progress(stderr, isatty(STDERR_FILENO), trainer.total_steps(), trainer.step(), *log_every);
    trainer.set_eval_callback([&progress](const EvalReport& r) {
      progress.note("eval step " + std::to_string(r.step) + "  loss " + std::to_string(r.loss) + "  ppl " +
                    std::to_string(r.ppl) + "  best " + std::to_string(r.best_loss));
    });
    trainer.set_skip_callback([&progress](const std::string& l) { progress.note("--on-nan skip: " + l + "; step skipped"); });
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    const bool done = trainer.run([&](const StepReport& r) { progress.update(r); }, &g_stop);
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    progress.end();
    write_report(t.out_dir, settings);
    print_train_summary(stderr, f->model, t.out_dir, done, trainer.step(), trainer.total_steps(), progress.smoothed_loss(),
                        done ? "" : resume_command(*cmd, t.out_dir));
    // interrupted (checkpoint saved): 130 after SIGINT, 143 after SIGTERM; a script's `wick train && ...` stops here
    if (!done) std::exit(128 + (g_signal.load() ? g_signal.load() : SIGINT));
  });
}

void register_merge(CLI::App& app) {
  auto* cmd = app.add_subcommand("merge", "Fold a LoRA adapter into the base weights (a full Hugging Face model folder)");
  auto model = std::make_shared<std::string>(), adapter = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  cmd->add_option("--model", *model, "base model folder")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--adapter", *adapter, "PEFT adapter folder")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", *out, "output model folder")->required();
  auto overwrite = std::make_shared<bool>(false);
  cmd->add_flag("--overwrite", *overwrite, "replace the model in a non-empty --out (its weights, index, config and tokenizer files)");
  cmd->callback([=] {
    merge_adapter_folder(*model, *adapter, *out, *overwrite);
    std::fprintf(stderr, "wick merge: wrote %s\n", out->c_str());
  });
}

}  // namespace wick::cli
