// wick train: LoRA fine-tuning of a Hugging Face model folder on a JSONL dataset.
#include <atomic>
#include <cmath>
#include <optional>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <set>
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

// Every spelling of a row (its name and each alias) is an option of its own, so the callback knows which
// spelling gave which value: two of them with different values (--rank 8 --lora-r 16, or --rank 8 --rank 16) used
// to resolve silently to the last one; now that is refused, naming both flags and values. The help still shows one
// line per row ("--rank,--lora-r,--r R"): the formatter below prints the row's spellings on its first option and
// leaves out the others.
class TrainHelpFormatter : public CLI::Formatter {
 public:
  std::map<const CLI::Option*, std::string> row_names;  // a row's first option -> all its flags
  std::set<const CLI::Option*> more_spellings;          // the other options of a row: not listed
  std::string make_option(const CLI::Option* opt, bool is_positional) const override {
    return more_spellings.count(opt) ? std::string() : CLI::Formatter::make_option(opt, is_positional);
  }
  std::string make_option_name(const CLI::Option* opt, bool is_positional) const override {
    const auto it = row_names.find(opt);
    return it != row_names.end() ? it->second : CLI::Formatter::make_option_name(opt, is_positional);
  }
};

// What the command line gave one row: each occurrence's flag and value, in command-line order.
struct GivenFlag {
  std::string flag, value;
};

// Applies a row's occurrences onto s. A repeatable row takes every value in order. Any other row must be given one
// value: the same value twice, under one spelling or two, is accepted (compared as the option reads it: 1e-4 and
// 0.0001, as a config file's keys are); another value is an error naming both flags and values. Flags (bool rows)
// read "--x" as true and "--x=false" as false; "--no-x" sets the row false.
void apply_given(const OptionRow& row, TrainSettings& s, const std::vector<GivenFlag>& given) {
  if (given.empty()) return;
  if (row.repeatable) {
    std::vector<std::string> values;
    for (const GivenFlag& g : given) values.push_back(g.value);
    set_option(row, s, values, given[0].flag);
    return;
  }
  const bool flag = option_is_flag(row);
  const bool def = flag && TrainSettings{}.*std::get<bool TrainSettings::*>(row.field);
  auto read = [&](const GivenFlag& g) {  // the row's value as text, checked by the row's rule
    TrainSettings scratch;
    set_option(row, scratch, {g.value}, g.flag);
    if (!flag) return option_text(row, scratch);
    const bool v = scratch.*std::get<bool TrainSettings::*>(row.field);
    return std::string(v != def ? "true" : "false");  // "--no-x" (the row's default true): true sets it false
  };
  const std::string first = read(given[0]);
  for (size_t k = 1; k < given.size(); k++) {
    if (read(given[k]) == first) continue;
    const GivenFlag &a = given[0], &b = given[k];
    if (a.flag == b.flag) throw option_given_twice(a.flag, a.value, b.value);
    throw Error("'" + a.flag + "' (" + a.value + ") and '" + b.flag + "' (" + b.value + ") name one option, " + row.name +
                    ", with different values",
                "", "give one of the two flags");
  }
  set_option(row, s, {first}, given[0].flag);
}

}  // namespace

// Every option comes from the table in train/train_options.cpp: one flag per row (plus its aliases, each a CLI11
// option of its own; the help shows the row as one line), its default shown from TrainSettings. Values given on
// the command line are kept as text and applied over a --config file's, so the command line wins; the library
// validates and runs (api/train_run.h).
void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Fine-tune a LoRA adapter on a JSONL dataset");
  struct Given {
    std::string config;
    std::deque<std::vector<std::string>> store;  // what CLI11 binds each option to (the callback reads results());
                                                  // a deque: growing it keeps the elements CLI11 points to
    std::map<const CLI::Option*, std::pair<size_t, std::string>> rows;  // option -> its table row and flag
    bool markdown = false;
  };
  auto g = std::make_shared<Given>();
  auto help = std::make_shared<TrainHelpFormatter>();
  const auto& table = train_option_table();
  cmd->add_option("--config", g->config,
                  "read options from this TOML file (keys: the option names, e.g. lr = 1e-4; an OUT/run.toml repeats "
                  "that run); flags given here override it")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--options-markdown", g->markdown, "print the option reference as Markdown (docs/guide.md) and exit");
  for (size_t i = 0; i < table.size(); i++) {
    const OptionRow& row = table[i];
    std::string text = row.help;
    if (!option_is_flag(row) && text.find("default") == std::string::npos) {
      const std::string def = option_default_text(row);
      if (!def.empty()) text += " (default " + def + ")";
    }
    const std::string flags = option_flags(row);
    std::stringstream names(flags);
    bool first = true;
    for (std::string flag; std::getline(names, flag, ',');) {
      CLI::Option* o;
      if (option_is_flag(row)) {
        o = cmd->add_flag(flag);  // each occurrence's result: "true", or the value of --flag=VALUE
      } else {
        o = cmd->add_option(flag, g->store.emplace_back())->allow_extra_args(false);
        if (row.metavar) o->type_name(row.metavar);
        if (!row.repeatable) o->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
      }
      o->group(row.group);
      g->rows[o] = {i, flag};
      if (first) {
        o->description(text);
        help->row_names[o] = flags;
      } else {
        help->more_spellings.insert(o);
      }
      first = false;
    }
  }
  cmd->formatter(help);
  cmd->callback([g, cmd] {
    if (g->markdown) {
      std::printf("%s", train_options_markdown().c_str());
      return;
    }
    const auto& table = train_option_table();
    // Each row's occurrences in command-line order (CLI11's parse order lists an option once per value).
    std::vector<std::vector<GivenFlag>> given(table.size());
    std::map<const CLI::Option*, size_t> taken;
    for (const CLI::Option* o : cmd->parse_order()) {
      const auto it = g->rows.find(o);
      if (it == g->rows.end()) continue;
      const size_t k = taken[o]++;
      if (k < o->results().size()) given[it->second.first].push_back({it->second.second, o->results()[k]});
    }
    TrainSettings s;
    if (!g->config.empty()) apply_train_toml(s, g->config);
    for (size_t i = 0; i < table.size(); i++) apply_given(table[i], s, given[i]);
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
