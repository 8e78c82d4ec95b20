#include "api/train_run.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "train/settings_map.h"
#include "train/train_options.h"
#include "core/error.h"
#include "dist/communicator.h"
#include "infer/generator.h"
#include "infer/session.h"
#include "core/input_file.h"
#include "io/output_folder.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "lora/lora.h"
#include "model/generation_config.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/auto_batch.h"
#include "train/base_model_record.h"
#include "train/checkpoint_dir.h"
#include "train/checkpoint_policy.h"
#include "train/report.h"
#include "train/tensorboard.h"
#include "train/train_data.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wick {

namespace {

std::string absolute(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

TrainOptions to_options(const TrainSettings& s, const std::string& base_name) {
  TrainOptions t = options_from_settings(s);
  if (s.targets.size() == 1 && (s.targets[0] == "all" || s.targets[0] == "all-linear")) t.lora.target_modules = all_lora_targets();
  t.lora.base_model_name_or_path = base_name;
  t.save_every = 0;        // periodic checkpoints: decided here (CheckpointPolicy), written by the Trainer
  t.keep_checkpoints = 0;  // and pruned here (save_total_limit, never the best)
  return t;
}

// A run that starts from an adapter (--resume, --adapter-init) trains that adapter: its adapter_config.json fixes
// the LoRA shape (r, alpha, dropout, rsLoRA, the targeted modules) and the Trainer takes it from there. A shape
// option set to something other than its default that differs from the adapter's is refused here rather than
// ignored; then every shape option takes the adapter's value, so that run.toml (a fresh run: no resume) and the
// model card repeat the shape that ran. source: "resume" or "adapter_init" (an option's name).
void adopt_adapter_shape(TrainSettings& s, const std::string& adapter_dir, const ModelConfig& mc,
                         const std::string& prefix, const std::string& source) {
  const std::string path = (fs::path(adapter_dir) / "adapter_config.json").string();
  const io::LoraConfig a = io::LoraConfig::from_json_string(io::read_file(path), path);
  const TrainSettings def;
  const std::string what = source == "resume" ? "the checkpoint" : "the adapter of " + option_where(prefix, "adapter_init");
  const std::string hint = source == "resume" ? "a resumed run keeps its LoRA shape: drop the option, or start a new run"
                                              : "the adapter fixes its LoRA shape: drop the option, or start from a fresh adapter";
  auto refuse = [&](const char* name, const std::string& given, const std::string& theirs) {
    throw Error(what + " has " + theirs + (given.empty() ? "" : ", not " + given) + " (" + path + ")",
                option_where(prefix, name), hint);
  };
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (s.r != def.r && s.r != a.r) refuse("rank", std::to_string(s.r), "r " + std::to_string(a.r));
  if (s.alpha != def.alpha && s.alpha != a.alpha) refuse("alpha", num(s.alpha), "lora_alpha " + num(a.alpha));
  if (s.dropout != def.dropout && s.dropout != a.dropout) refuse("dropout", num(s.dropout), "lora_dropout " + num(a.dropout));
  if (s.rslora != def.rslora && s.rslora != a.use_rslora) refuse("rslora", "", "use_rslora false");
  // The targets: compared as the modules each selects in this model.
  const std::vector<std::string> paths = lora_module_paths(mc);
  std::vector<std::string> chosen;
  for (const std::string& m : paths)
    if (a.targets(m)) chosen.push_back(m);
  if (s.targets != def.targets) {
    const io::LoraConfig u = to_options(s, "").lora;  // the selection as a fresh run would make it ("all" expanded)
    for (const std::string& m : paths)
      if (u.targets(m) != a.targets(m)) {
        std::string list;
        for (const std::string& t : s.targets) list += (list.empty() ? "" : ",") + t;
        refuse("targets", list, std::string("other targets (") + m + (a.targets(m) ? " is" : " is not") + " adapted there)");
      }
  }
  s.r = a.r;
  s.alpha = a.alpha;
  s.dropout = a.dropout;
  s.rslora = a.use_rslora;
  if (chosen.size() == paths.size()) {
    s.targets = {"all"};
  } else {
    // Its own list when that selects the same modules; else the module paths (PEFT's rule matches a path exactly).
    io::LoraConfig listed;
    listed.target_modules = a.target_modules;
    bool same = !a.target_modules.empty();
    for (const std::string& m : paths) same = same && listed.targets(m) == a.targets(m);
    s.targets = same ? a.target_modules : chosen;
  }
}

// Copies src to dst through a temporary file and a rename.
void copy_atomic(const fs::path& src, const fs::path& dst) {
  const fs::path tmp = dst.string() + ".tmp";
  fs::copy_file(src, tmp, fs::copy_options::overwrite_existing);
  fs::rename(tmp, dst);
}

}  // namespace

struct TrainRun::Impl {
  // First member, so destroyed last: held (rank 0) from before the output check until the run object is gone.
  std::unique_ptr<io::OutputLock> lock;
  TrainSettings s;
  TrainRunHooks hooks;
  ResolvedModel model_src;
  std::optional<TrainData> data;
  std::unique_ptr<CausalLM> model;
  std::unique_ptr<Trainer> trainer;
  TrainOptions opt;
  BatchChoice batch;
  json settings;
  json base_record;  // base_model.json: what this run trains on
  int64_t start = 0;
  bool stopped_early = false;
  int64_t adapter_step = 0;
  std::unique_ptr<CheckpointPolicy> policy;
  // Samples: the tokenizer and template of the model folder.
  std::optional<Tokenizer> tok;
  std::optional<ChatTemplate> tmpl;
  dist::Communicator* comm = nullptr;  // the job's ranks; rank 0 alone logs and writes files

  bool root() const { return comm->is_root(); }
  void log(const std::string& l) const {
    if (hooks.log && root()) hooks.log(l);
  }
};

TrainRun::TrainRun(const TrainSettings& settings, TrainRunHooks hooks) : p_(std::make_unique<Impl>()) {
  Impl& p = *p_;
  p.s = settings;
  p.hooks = std::move(hooks);
  TrainSettings& s = p.s;
  validate_train_settings(s, p.hooks.where_prefix);
  // Data-parallel: the ranks a launcher started (mpirun, srun, wick train --gpus); one without.
  p.comm = &dist::world();
  const int ranks = p.comm->size();
  const std::string gpus_flag = p.hooks.where_prefix + "gpus";
  if (s.gpus > 1 && ranks == 1)
    throw Error("--gpus " + std::to_string(s.gpus) + " asks for " + std::to_string(s.gpus) +
                    " ranks, but this process was not started as one of them",
                gpus_flag, "`wick train --gpus N` starts them itself; through the API, start the process with mpirun -np N");
  if (s.gpus > 0 && ranks > 1 && s.gpus != ranks)
    throw Error("--gpus " + std::to_string(s.gpus) + " but the launcher started " + std::to_string(ranks) + " ranks",
                gpus_flag, "drop --gpus under mpirun / srun (the launcher decides), or make them agree");
  if (ranks > 1) s.gpus = ranks;  // run.toml repeats the run on as many ranks
  p.model_src = resolve_model(s.model_dir, s.revision, "config.json", "--model");
  if (!p.model_src.hub_id.empty()) p.log("model " + p.model_src.hub_id + " from the Hugging Face cache: " + p.model_src.path);
  else s.model_dir = p.model_src.path;
  if (!s.adapter_init.empty()) s.adapter_init = resolve_model(s.adapter_init, "", "adapter_config.json", "--adapter-init").path;
  s.data = absolute(s.data);
  s.eval_data = absolute(s.eval_data);
  s.out_dir = absolute(s.out_dir);

  const std::string base_name = p.model_src.hub_id.empty() ? p.model_src.path : p.model_src.hub_id;
  p.opt = to_options(s, base_name);
  // What this run trains on (train/base_model_record.h): a resume must be onto the base its checkpoint was
  // trained on, and every checkpoint of this run records it.
  p.base_record = base_model_record(p.model_src.path, base_name, s.revision);
  if (!s.resume.empty()) {
    p.opt.resume = resolve_resume_dir(absolute(s.resume));
    if (p.opt.resume != absolute(s.resume)) p.log("resume from " + p.opt.resume + " (the latest complete checkpoint)");
    check_resume_base(p.opt.resume, p.base_record, option_where(p.hooks.where_prefix, "model"));
  }
  if (const std::string from = !p.opt.resume.empty() ? p.opt.resume : s.adapter_init; !from.empty()) {
    adopt_adapter_shape(s, from, ModelConfig::from_model_dir(p.model_src.path), p.hooks.where_prefix,
                        !p.opt.resume.empty() ? "resume" : "adapter_init");
    const std::string resume = p.opt.resume;
    p.opt = to_options(s, p.model_src.hub_id.empty() ? p.model_src.path : p.model_src.hub_id);
    p.opt.resume = resume;
  }
  validate_train_options(p.opt);  // the Trainer's own rules (LoRA targets, ...) before any work
  check_train_output(p.opt);      // a non-empty --out: resumed, or --overwrite
  if (p.root()) {
    // One run at a time in --out: the check above happens once, at the start, so two runs started together
    // into one new folder would both pass it and overwrite each other's files. The lock is held until the run
    // object goes (the process's exit releases it too); the check is repeated under it, since a run that
    // finished between the check and the lock has filled the folder.
    p.lock = std::make_unique<io::OutputLock>(s.out_dir, option_where(p.hooks.where_prefix, "out"));
    check_train_output(p.opt);
  }

  TrainDataOptions d;
  d.data = s.data;
  d.format = s.format;
  d.chat_template = s.chat_template;
  d.eval_file = s.eval_data;
  d.eval_split = s.eval_split;
  d.max_seq_len = s.max_seq_len;
  d.skip_bad = s.skip_bad_lines;
  d.train_on_inputs = s.train_on_inputs;
  d.packing = s.packing;
  p.data = load_train_data(d, p.model_src.path, s.seed, p.hooks.log);

  if (s.sample_every > 0) {
    if (!fs::exists(fs::path(p.model_src.path) / "tokenizer.json"))
      throw Error("--sample-prompt needs the model's tokenizer.json", p.model_src.path, "drop --sample-every");
    p.tok = Tokenizer::from_model_dir(p.model_src.path);
    const std::optional<ChatTemplateKind> force = parse_chat_template_flag(s.chat_template);
    p.tmpl = fs::exists(fs::path(p.model_src.path) / "tokenizer_config.json") || !force
                 ? ChatTemplate::from_tokenizer_config(p.model_src.path, force)
                 : ChatTemplate::of_kind(*force);
  }

  Device dev = resolve_device(s.device);
  if (ranks > 1 && dev.is_cuda() && (s.device == "auto" || s.device == "cuda" || s.device.empty())) {
    // One GPU per rank: the rank's index among the ranks of its host.
    const int local = p.comm->local_rank(), count = cuda_device_count();
    if (local >= count)
      throw Error("rank " + std::to_string(p.comm->rank()) + " is rank " + std::to_string(local) + " of its host, which has " +
                      std::to_string(count) + " visible GPU(s)",
                  gpus_flag, "start at most as many ranks per host as it has GPUs (CUDA_VISIBLE_DEVICES)");
    dev = Device::cuda(local);
  }
  p.model = CausalLM::load(p.model_src.path, dev, resolve_dtype(s.dtype, dev));
  p.batch = resolve_batch_size(p.opt, *p.model, p.data->train);
  if (p.comm->collective()) p.comm->broadcast(&p.batch.batch_size, sizeof p.batch.batch_size, 0);  // rank 0's choice for all
  p.opt.batch_size = p.batch.batch_size;
  s.batch_size = p.batch.batch_size;
  p.trainer = std::make_unique<Trainer>(*p.model, p.data->train, p.opt, p.data->eval ? &*p.data->eval : nullptr, p.comm);
  p.start = p.trainer->step();
  p.policy = std::make_unique<CheckpointPolicy>(s.out_dir, s.save_every, s.save_total_limit);

  const std::string shown_model = p.model_src.hub_id.empty() ? p.model_src.path : p.model_src.hub_id;
  p.settings = train_settings_json(
      p.opt, {shown_model, s.data, dev.str(), dtype_name(p.model->dtype()), p.batch.reason,
              static_cast<int64_t>(p.data->train.examples.size()), s.max_seq_len, p.trainer->total_steps()});
  if (!s.revision.empty()) p.settings["revision"] = s.revision;
  if (s.save_every > 0) p.settings["save_total_limit"] = s.save_total_limit;
  if (s.load_best) p.settings["load_best"] = true;
  if (s.early_stopping_patience > 0) {
    p.settings["early_stopping_patience"] = s.early_stopping_patience;
    p.settings["early_stopping_threshold"] = s.early_stopping_threshold;
  }
  if (s.sample_every > 0) p.settings["sample_every"] = s.sample_every;
  if (s.report_to != "none") p.settings["report_to"] = s.report_to;
  if (ranks > 1) {
    p.settings["ranks"] = ranks;
    p.settings["communicator"] = p.comm->backend();
    p.settings["effective_batch"] = p.batch.batch_size * ranks * s.grad_accum;  // the global batch
  }
  // Every rank has checked the output folder and read what it resumes before rank 0 writes there.
  if (p.comm->collective()) p.comm->barrier();
  if (!p.root()) return;

  // The effective settings, as a file that repeats the run (a fresh run: resume is not carried over).
  fs::create_directories(s.out_dir);
  TrainSettings repeat = s;
  repeat.resume.clear();
  repeat.overwrite = false;  // a repeat never replaces a folder unasked
  if (!p.model_src.hub_id.empty()) repeat.model_dir = p.model_src.hub_id;
  io::write_file_atomic((fs::path(s.out_dir) / "run.toml").string(), train_settings_toml(repeat));
  // Copied into each checkpoint by its writer (train/checkpoint_dir.h).
  io::write_file_atomic((fs::path(s.out_dir) / kBaseModelRecord).string(), p.base_record.dump(2) + "\n");
}

TrainRun::~TrainRun() = default;
const TrainSettings& TrainRun::settings() const { return p_->s; }
const json& TrainRun::settings_json() const { return p_->settings; }
const ResolvedModel& TrainRun::model() const { return p_->model_src; }
int64_t TrainRun::total_steps() const { return p_->trainer->total_steps(); }
int64_t TrainRun::start_step() const { return p_->start; }
int64_t TrainRun::batch_size() const { return p_->batch.batch_size; }
const std::string& TrainRun::batch_reason() const { return p_->batch.reason; }
int64_t TrainRun::step() const { return p_->trainer->step(); }
bool TrainRun::stopped_early() const { return p_->stopped_early; }
int64_t TrainRun::adapter_step() const { return p_->adapter_step; }
std::vector<std::string> TrainRun::checkpoints() const {
  std::vector<std::string> out;
  for (const CheckpointEntry& c : p_->policy->kept()) out.push_back(c.dir);
  return out;
}

bool TrainRun::run(const std::atomic<bool>* stop) {
  Impl& p = *p_;
  const TrainSettings& s = p.s;
  Trainer& tr = *p.trainer;
  CheckpointPolicy& policy = *p.policy;
  const fs::path out = s.out_dir;
  const bool root = p.root();  // files, samples and logs: rank 0
  std::optional<TensorBoardWriter> tb;
  if (s.report_to == "tensorboard" && root) {
    tb.emplace((out / "tensorboard").string());
    p.log("TensorBoard scalars in " + tb->path() + " (tensorboard --logdir " + out.string() + ")");
  }

  std::optional<EvalReport> last_eval;
  std::optional<double> es_best;
  int64_t es_bad = 0;
  bool es_stop = false;
  tr.set_eval_callback([&](const EvalReport& r) {
    last_eval = r;
    policy.evaluated(r.step, r.loss);
    if (tb) tb->scalar("eval/loss", r.loss, r.step), tb->scalar("eval/perplexity", r.ppl, r.step);
    if (s.early_stopping_patience > 0) {
      // An improvement lowers the best loss by more than the threshold (as transformers' EarlyStoppingCallback).
      if (!es_best || (r.loss < *es_best && *es_best - r.loss > s.early_stopping_threshold)) {
        es_best = r.loss;
        es_bad = 0;
      } else if (++es_bad >= s.early_stopping_patience) {
        es_stop = true;
      }
    }
    if (p.hooks.on_eval) p.hooks.on_eval(r);
  });

  auto sample = [&](int64_t step) {
    if (!root) return;
    std::ofstream mf(out / "metrics.jsonl", std::ios::app);
    GenerateOptions g;
    g.max_new_tokens = s.sample_max_new_tokens;
    g.sampling.temperature = 0.0f;  // greedy: samples of one step compare across runs
    g.eos_ids = load_generation_config(p.model_src.path, p.model->config()).eos_token_ids;
    for (const std::string& prompt : s.sample_prompts) {
      const std::string text = p.tmpl && p.tmpl->available()
                                   ? p.tmpl->render({{"user", prompt}}, true, std::nullopt)
                                   : prompt;
      Generator gen(*p.model, &*p.tok);
      const GenerateResult r = gen.generate(p.tok->encode(text), g);
      mf << json{{"step", step}, {"sample_prompt", prompt}, {"sample", r.text}}.dump() << "\n";
      mf.flush();
      if (p.hooks.on_sample) p.hooks.on_sample(step, prompt, r.text);
    }
  };

  auto saved = [&](int64_t step) {
    if (!root) return;
    for (const std::string& d : policy.saved(step)) p.log("removed " + d + " (--save-total-limit)");
  };
  if (p.hooks.on_skip) tr.set_skip_callback(p.hooks.on_skip);
  tr.set_step_end_hook([&](int64_t step) {
    if (policy.due(step, tr.total_steps())) {
      tr.save_checkpoint();
      saved(step);
    }
    if (s.sample_every > 0 && step % s.sample_every == 0) sample(step);
    if (es_stop) {
      p.stopped_early = true;
      p.log("early stopping at step " + std::to_string(step) + ": no eval-loss improvement in " +
            std::to_string(s.early_stopping_patience) + " evaluations");
    }
    return !es_stop;
  });

  const bool done = tr.run(
      [&](const StepReport& r) {
        if (tb) {
          tb->scalar("train/loss", r.loss, r.step);
          tb->scalar("train/learning_rate", r.lr, r.step);
          tb->scalar("train/grad_norm", r.grad_norm, r.step);
          tb->scalar("train/epoch", r.epoch, r.step);
          tb->scalar("train/tokens_per_s", r.tokens_per_s, r.step);
        }
        if (p.hooks.on_step) p.hooks.on_step(r);
      },
      stop);
  p.adapter_step = tr.step();
  saved(tr.step());  // the final (or interrupted) checkpoint-<step> counts toward the limit too

  // load_best: the final state stays resumable as checkpoint-<final>, and the best adapter goes to the top.
  if (done && root && s.load_best && last_eval && last_eval->step == tr.step()) {
    const std::optional<CheckpointEntry> best = policy.best();
    if (best && best->step != tr.step() && *best->eval_loss < last_eval->loss) {
      try {
        // The top-level adapter links to checkpoint-<final>; each file is replaced by one rename.
        for (const char* f : {"adapter_config.json", "adapter_model.safetensors"})
          copy_atomic(fs::path(best->dir) / f, out / f);
      } catch (const fs::filesystem_error& e) {
        throw Error(std::string("cannot put the best adapter in place: ") + e.what(), out.string());
      }
      p.adapter_step = best->step;
      p.log("best adapter: step " + std::to_string(best->step) + " (eval loss " + std::to_string(*best->eval_loss) +
            ", from " + best->dir + ") is in " + out.string());
    }
  }

  if (!root) return done;
  json card = p.settings;
  card["adapter_step"] = p.adapter_step;
  if (last_eval) card["final_eval_loss"] = last_eval->loss;
  write_model_card(out.string(), p.model_src.hub_id, p.model_src.path, card);
  if (s.write_report) write_report(out.string(), p.settings);
  return done;
}

int TrainRun::rank() const { return p_->comm->rank(); }
int TrainRun::world_size() const { return p_->comm->size(); }
void TrainRun::finalize() { p_->comm->finalize(); }

}  // namespace wick
