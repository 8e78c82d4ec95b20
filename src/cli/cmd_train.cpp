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
#include "dist/communicator.h"
#include "dist/launcher.h"
#include "lora/lora.h"
#include "lora/merge_folder.h"
#include "api/session_setup.h"
#include "api/train_config_file.h"
#include "train/train_options.h"
#include "api/train_run.h"
#include "train/report.h"
#include "train/trainer.h"

namespace wick::cli {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
std::atomic<int> g_ranks{1};  // data-parallel ranks of this job (the stop message differs)
extern "C" void on_stop_signal(int sig) {
  // SIGINT (Ctrl-C) and SIGTERM (kill, a scheduler's time limit) alike: finish the step, save, exit 128 + sig.
  // A second one: quit now (the last checkpoint stays as it was). SIGUSR1 too: mpirun forwards it to every
  // rank (`wick train --gpus N` turns Ctrl-C into it); the ranks agree on the step they stop at.
  if (g_stop.exchange(true)) _exit(128 + sig);
  g_signal.store(sig == SIGUSR1 ? SIGINT : sig);  // SIGUSR1: the launcher's relay of a Ctrl-C
  if (g_ranks.load() > 1) {
    const char msg[] = "\nwick train: stop signal: the ranks stop at the next step they all reach and rank 0 saves a "
                       "checkpoint (if a rank died, the launcher ends the job instead)\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    return;
  }
  const char msg[] = "\nwick train: stopping after this step and saving a checkpoint (Ctrl-C again to quit without saving)\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
}

}  // namespace

// Every option comes from the table in train/train_options.cpp: one flag per row (plus its aliases), its
// default shown from TrainSettings. Values given on the command line are kept as text and applied over a
// --config file's, so the command line wins; the library validates and runs (api/train_run.h).
void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Fine-tune a LoRA adapter on a JSONL dataset");
  struct Given {
    std::string config;
    std::vector<std::vector<std::string>> values;  // per table row: the command line's text values
    bool markdown = false;
  };
  auto g = std::make_shared<Given>();
  const auto& table = train_option_table();
  g->values.resize(table.size());
  cmd->add_option("--config", g->config,
                  "read options from this TOML file (keys: the option names, e.g. lr = 1e-4; an OUT/run.toml repeats "
                  "that run); flags given here override it")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--options-markdown", g->markdown, "print the option reference as Markdown (docs/guide.md) and exit");
  std::string group;
  for (size_t i = 0; i < table.size(); i++) {
    const OptionRow& row = table[i];
    std::string help = row.help;
    if (!option_is_flag(row) && help.find("default") == std::string::npos) {
      const std::string def = option_default_text(row);
      if (!def.empty()) help += " (default " + def + ")";
    }
    CLI::Option* o;
    if (option_is_flag(row)) {
      o = cmd->add_flag_callback(option_flags(row), [g, i, row] {
        const bool def = TrainSettings{}.*std::get<bool TrainSettings::*>(row.field);
        g->values[i] = {def ? "false" : "true"};
      }, help);
    } else {
      o = cmd->add_option(option_flags(row), g->values[i], help)->allow_extra_args(false);
      if (row.metavar) o->type_name(row.metavar);
      if (!row.repeatable) o->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
    o->group(row.group);
  }
  cmd->callback([g, cmd] {
    if (g->markdown) {
      std::printf("%s", train_options_markdown().c_str());
      return;
    }
    const auto& table = train_option_table();
    TrainSettings s;
    if (!g->config.empty()) apply_train_toml(s, g->config);
    for (size_t i = 0; i < table.size(); i++)
      if (!g->values[i].empty()) set_option(table[i], s, g->values[i], option_flags(table[i]).substr(0, option_flags(table[i]).find(',')));
    // --gpus N without a launcher: this process starts the N ranks (under mpirun) and waits for them.
    if (s.gpus > 1 && dist::launcher_world_size() == 1) std::exit(dist::launch_local_ranks(static_cast<int>(s.gpus)));
    std::unique_ptr<Progress> progress;  // rank 0's only
    TrainRunHooks hooks;
    hooks.log = [](const std::string& l) { std::fprintf(stderr, "wick train: %s\n", l.c_str()); };
    hooks.on_step = [&progress](const StepReport& r) {
      if (progress) progress->update(r);
    };
    hooks.on_eval = [&progress](const EvalReport& r) {
      if (progress) progress->note("eval step " + std::to_string(r.step) + "  loss " + std::to_string(r.loss) + "  ppl " +
                     std::to_string(r.ppl) + "  best " + std::to_string(r.best_loss));
    };
    hooks.on_sample = [&progress](int64_t step, const std::string& prompt, const std::string& text) {
      std::string t = text;
      for (char& c : t)
        if (c == '\n') c = ' ';
      if (progress) progress->note("sample step " + std::to_string(step) + "  " + prompt + " -> " + t);
    };
    hooks.on_skip = [&progress](const std::string& l) {
      if (progress) progress->note("--on-nan skip: " + l + "; step skipped");
    };
    std::signal(SIGUSR1, on_stop_signal);  // early: mpirun may forward one while the ranks load
    TrainRun run(s, hooks);  // validates every option before any work (loading data and the model can take minutes)
    const bool root = run.rank() == 0;
    g_ranks.store(run.world_size());
    if (run.world_size() > 1)
      std::fprintf(stderr, "wick train: rank %d of %d, pid %d\n", run.rank(), run.world_size(), static_cast<int>(getpid()));
    if (root) {
      for (const std::string& l : settings_lines(run.settings_json())) std::fprintf(stderr, "wick train: %s\n", l.c_str());
      progress = std::make_unique<Progress>(stderr, isatty(STDERR_FILENO), run.total_steps(), run.start_step(),
                                            run.settings().log_every);
    }
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    const bool done = run.run(&g_stop);
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    std::signal(SIGUSR1, SIG_DFL);
    run.finalize();  // this rank is done with the job (MPI_Finalize)
    if (!root) {
      if (!done) std::exit(128 + (g_signal.load() ? g_signal.load() : SIGINT));
      return;
    }
    progress->end();
    const std::string out = run.settings().out_dir;
    if (run.stopped_early()) std::fprintf(stderr, "wick train: stopped early (no eval improvement)\n");
    if (done && run.adapter_step() != run.step())
      std::fprintf(stderr, "wick train: the adapter in %s is the best one, of step %lld\n", out.c_str(),
                   static_cast<long long>(run.adapter_step()));
    print_train_summary(stderr, s.model_dir, out, done, run.step(), run.total_steps(), progress->smoothed_loss(),
                        done ? "" : resume_command(*cmd, out));
    // interrupted (checkpoint saved): 130 after SIGINT, 143 after SIGTERM; a script's `wick train && ...` stops here
    if (!done) std::exit(128 + (g_signal.load() ? g_signal.load() : SIGINT));
  });
}

void register_merge(CLI::App& app) {
  auto* cmd = app.add_subcommand("merge", "Fold a LoRA adapter into the base weights (a full Hugging Face model folder)");
  auto model = std::make_shared<std::string>(), adapter = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  auto revision = std::make_shared<std::string>();
  cmd->add_option("--model", *model, "base model folder, or a Hub id in the local Hugging Face cache")->required();
  cmd->add_option("--revision", *revision, "with a Hub id: the branch, tag or commit (default main)");
  cmd->add_option("--adapter", *adapter, "PEFT adapter folder or Hub id")->required();
  cmd->add_option("--out", *out, "output model folder")->required();
  auto overwrite = std::make_shared<bool>(false);
  cmd->add_flag("--overwrite", *overwrite, "replace the model in a non-empty --out (its weights, index, config and tokenizer files)");
  auto shard = std::make_shared<std::string>("5GB");
  cmd->add_option("--max-shard-size", *shard,
                  "largest weights file; above it model-0000i-of-0000N.safetensors with an index, as transformers' "
                  "save_pretrained (units B, KB, MB, GB, KiB, MiB, GiB, or a byte count; default 5GB)")
      ->type_name("SIZE");
  cmd->callback([=] {
    const int64_t max_shard_bytes = parse_shard_size(*shard);  // before any work: a typo fails at once
    merge_adapter_folder(resolve_model(*model, *revision, "config.json", "--model").path,
                         resolve_model(*adapter, "", "adapter_config.json", "--adapter").path, *out, max_shard_bytes,
                         *overwrite);
    std::fprintf(stderr, "wick merge: wrote %s\n", out->c_str());
  });
}

}  // namespace wick::cli
