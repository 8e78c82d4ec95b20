#include "train/trainer.h"

#include <chrono>
#include <memory>
#include <cstdlib>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/env.h"
#include "core/error.h"
#include "core/warn.h"
#include "dist/shard.h"
#include "io/safetensors.h"
#include "lora/lora.h"
#include "model/loss_and_grads.h"
#include "train/flops.h"
#include "train/batcher.h"
#include "train/checkpoint_dir.h"
#include "train/optimizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wick {

struct Trainer::Impl {
  CausalLM& m;
  const Dataset& data;
  TrainOptions opt;
  Batcher batcher;
  LossAndGrads grad;
  std::unique_ptr<AdamW> adam;
  Schedule sched;
  int64_t step = 0;
  int64_t total = 0;
  const Dataset* eval = nullptr;
  std::optional<Batcher> eval_batcher;  // no shuffle; restarted for every evaluation
  std::function<void(const EvalReport&)> on_eval;
  std::optional<double> best_eval;
  int64_t last_eval_step = -1;
  double peak_flops = 0;  // the device's bf16 rate for MFU (0: unknown, no MFU)
  std::function<bool(int64_t)> on_step_end;
  int64_t skipped_steps = 0;                        // --on-nan skip
  std::function<void(const std::string&)> on_skip;  // told about each skipped step
  dist::SingleCommunicator single;
  dist::Communicator* comm;  // the job's ranks (&single for one)

  Impl(CausalLM& model, const Dataset& d, TrainOptions o, const Dataset* ev, dist::Communicator* c)
      : m(model), data(d), opt(std::move(o)),
        batcher(d, opt.batch_size, opt.shuffle, opt.seed, opt.pad_id, opt.packing ? opt.max_seq_len : 0), grad(model),
        eval(ev), comm(c ? c : &single) {
    if (eval) eval_batcher.emplace(*eval, opt.batch_size, false, opt.seed, opt.pad_id, opt.packing ? opt.max_seq_len : 0);
    grad.set_checkpointing(opt.grad_checkpointing);
    // Training steps as CUDA graphs (LossAndGrads::set_step_graphs; WICK_TRAIN_GRAPHS=0 turns them off alone).
    grad.set_step_graphs(env_default_on("WICK_CUDA_GRAPHS") && env_default_on("WICK_TRAIN_GRAPHS"));
  }
};

static json options_json(const TrainOptions& o) {
  return json{{"lr", o.lr}, {"weight_decay", o.weight_decay}, {"betas", {o.beta1, o.beta2}}, {"eps", o.eps},
              {"scheduler", o.scheduler}, {"warmup_steps", o.warmup_steps}, {"warmup_ratio", o.warmup_ratio},
              {"max_steps", o.max_steps}, {"epochs", o.epochs}, {"batch_size", o.batch_size},
              {"grad_accum", o.grad_accum}, {"max_grad_norm", o.max_grad_norm}, {"seed", o.seed},
              {"shuffle", o.shuffle}, {"r", o.lora.r}, {"lora_alpha", o.lora.alpha}, {"lora_dropout", o.lora.dropout},
              {"use_rslora", o.lora.use_rslora}, {"target_modules", o.lora.target_modules},
              {"packing", o.packing}, {"max_seq_len", o.max_seq_len}, {"eval_every", o.eval_every}};
}

static TrainOptions validated(TrainOptions o) {
  validate_train_options(o);
  return o;
}

// Whether every rank holds the same adapter values (FNV-1a of the bytes, rank 0's against each rank's).
static bool replicas_agree(dist::Communicator& comm, CausalLM& m) {
  uint64_t h = 1469598103934665603ULL;
  for (const LoraParam& lp : lora_params(m)) {
    const Tensor t = lp.value->to(Device::cpu());
    const auto* b = static_cast<const unsigned char*>(static_cast<const void*>(t.data<float>()));
    for (size_t i = 0; i < t.nbytes(); i++) h = (h ^ b[i]) * 1099511628211ULL;
  }
  uint64_t root = h;
  comm.broadcast(&root, sizeof root, 0);
  int64_t differ = root != h;
  comm.allreduce_sum(&differ, 1);
  return differ == 0;
}

Trainer::Trainer(CausalLM& model, const Dataset& data, TrainOptions opt, const Dataset* eval, dist::Communicator* comm)
    : p_(std::make_unique<Impl>(model, data, validated(std::move(opt)), eval, comm)) {
  Impl& p = *p_;
  if (p.opt.eval_every > 0 && !eval)
    throw Error("--eval-every without an evaluation set", "--eval-every", "pass --eval FILE or --eval-split FRACTION");
  // Steps: max_steps, else ceil(epochs * batches per epoch / (grad_accum * ranks)).
  const int64_t per_epoch = dist::steps_per_epoch(p.batcher.batches_per_epoch(), p.opt.grad_accum, p.comm->size());
  p.total = p.opt.max_steps > 0 ? p.opt.max_steps
                                 : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(p.opt.epochs * per_epoch)));
  const ScheduleKind kind = parse_schedule_kind(p.opt.scheduler);
  p.sched = Schedule{kind, effective_warmup_steps(kind, p.opt.warmup_steps, p.opt.warmup_ratio, p.total), p.total};
  // A warmup as long as the run never reaches the learning rate asked for (its last step is at warmup / total of it).
  if (p.sched.warmup_steps >= p.total && p.sched.warmup_steps > 1 && p.comm->is_root())
    warn("the warmup (" + std::to_string(p.sched.warmup_steps) + " steps) is as long as the run (" +
         std::to_string(p.total) + " steps): the learning rate never reaches --lr; lower --warmup-steps or --warmup-ratio");

  // Adapters: resume > adapter_init > fresh. --resume DIR means DIR's latest complete checkpoint.
  const std::string resume_dir = p.opt.resume.empty() ? std::string() : resolve_resume_dir(p.opt.resume);
  std::string adapter_src = !resume_dir.empty() ? resume_dir : p.opt.adapter_init;
  if (!adapter_src.empty()) {
    io::AdapterFiles files = io::load_peft_adapter(adapter_src);
    attach_adapters(model, files, adapter_src);
    // The config saved with this run's checkpoints is the adapter's (attach_adapters checked that it selects exactly
    // the modules the file holds), naming the base this run trains on (an --adapter-init adapter may come from
    // another base).
    const std::string base = p.opt.lora.base_model_name_or_path;
    p.opt.lora = files.cfg;
    if (!base.empty()) p.opt.lora.base_model_name_or_path = base;
  } else {
    check_targets(p.opt.lora, model.config(), "--targets");
    // Not for --targets all, which lists every family's names (a family may lack some of another's).
    if (p.opt.lora.target_modules != all_lora_targets())
      for (const std::string& t : unmatched_targets(p.opt.lora, model.config()))
        warn("--targets: '" + t + "' matches no module of this model and is ignored (the others are trained)");
    attach_new_adapters(model, p.opt.lora, p.opt.seed);
  }
  alloc_lora_grads(model);
  AdamWConfig ac;
  ac.lr = p.opt.lr;
  ac.beta1 = p.opt.beta1;
  ac.beta2 = p.opt.beta2;
  ac.eps = p.opt.eps;
  ac.weight_decay = p.opt.weight_decay;
  p.adam = std::make_unique<AdamW>(lora_params(model), ac);

  if (!resume_dir.empty()) {
    const fs::path dir = resume_dir;
    const std::string state_path = (dir / "trainer_state.json").string();
    json st;
    try {
      st = json::parse(io::read_file(state_path));
      p.step = st.at("step").get<int64_t>();
      // The global batch, and so which examples each step saw, depends on the number of ranks.
      const int64_t ranks = st.value("world_size", int64_t{1});
      if (ranks != p.comm->size())
        throw Error("the checkpoint was trained on " + std::to_string(ranks) + " rank(s), this run has " +
                        std::to_string(p.comm->size()),
                    state_path,
                    "resume with the same number of ranks (mpirun -np " + std::to_string(ranks) + " or --gpus " +
                        std::to_string(ranks) + "): the global batch is batch-size x ranks x grad-accum");
      // The batcher's index counts packed rows with packing, examples without: the two do not mix.
      const json& so = st.at("options");
      const bool packed = so.value("packing", false);
      const int64_t pack_len = so.value("max_seq_len", int64_t{0});
      if (packed != p.opt.packing || (packed && pack_len != p.opt.max_seq_len))
        throw Error(std::string("the checkpoint was trained ") +
                    (packed ? "with --packing --max-seq-len " + std::to_string(pack_len) : "without --packing"),
                    state_path, "resume with the same --packing and --max-seq-len");
      p.batcher.restore(BatcherState{st.at("epoch").get<int64_t>(), st.at("index").get<int64_t>()});
    } catch (const json::exception& e) {
      throw Error(std::string("bad trainer state: ") + e.what(), state_path, "resume from a folder wick train wrote");
    }
    // The three state files must name one step: the folder's name, trainer_state.json, the optimizer's metadata.
    const auto named = checkpoint_step(dir.filename().string());
    if (named && *named != p.step)
      throw Error("trainer_state.json says step " + std::to_string(p.step) + " but the folder is " + checkpoint_name(*named),
                  state_path, "the checkpoint folder was mixed by hand; resume from a folder wick train wrote");
    const auto opt_file = io::SafeTensorsFile::open((dir / "optimizer.safetensors").string());
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& info : opt_file->tensors()) t.emplace_back(info.name, opt_file->get(info.name));
    p.adam->load_state(t, p.step, opt_file->path());
    if (st.contains("optimizer_steps") && st["optimizer_steps"].is_number_integer())
      p.adam->set_steps(st["optimizer_steps"].get<int64_t>());  // fewer than step after --on-nan skip
    if (auto it = opt_file->metadata().find("step"); it != opt_file->metadata().end() && it->second != std::to_string(p.step))
      throw Error("optimizer state of step " + it->second + " beside trainer_state.json of step " + std::to_string(p.step),
                  opt_file->path(), "the checkpoint folder was mixed by hand; resume from a folder wick train wrote");
  }
}

Trainer::~Trainer() = default;
int64_t Trainer::total_steps() const { return p_->total; }
int64_t Trainer::step() const { return p_->step; }
std::optional<double> Trainer::best_eval_loss() const { return p_->best_eval; }
void Trainer::set_eval_callback(std::function<void(const EvalReport&)> on_eval) { p_->on_eval = std::move(on_eval); }
void Trainer::set_step_end_hook(std::function<bool(int64_t)> hook) { p_->on_step_end = std::move(hook); }

void Trainer::set_skip_callback(std::function<void(const std::string&)> on_skip) { p_->on_skip = std::move(on_skip); }
int64_t Trainer::skipped_steps() const { return p_->skipped_steps; }

EvalReport Trainer::evaluate() {
  Impl& p = *p_;
  if (!p.eval) throw Error("no evaluation set", "--eval", "pass --eval FILE or --eval-split FRACTION");
  const auto t0 = std::chrono::steady_clock::now();
  Batcher& b = *p.eval_batcher;
  b.restore(BatcherState{});
  LossSum tot;
  const int ranks = p.comm->size(), rank = p.comm->rank();
  for (int64_t i = 0; i < b.batches_per_epoch(); i++) {
    const TrainBatch batch = b.next();  // every rank walks the whole set; batch i is rank i % ranks's
    if (batch.counted() == 0 || !dist::owns_micro_batch(i, rank, ranks)) continue;
    const LossSum l = p.grad.eval(batch);
    tot.sum += l.sum;
    tot.count += l.count;
  }
  device_synchronize(p.m.device());
  if (p.comm->collective()) {
    double totals[2] = {tot.sum, static_cast<double>(tot.count)};
    p.comm->allreduce_sum(totals, 2);
    tot.sum = totals[0];
    tot.count = static_cast<int64_t>(totals[1]);
  }
  EvalReport r;
  r.step = p.step;
  r.loss = tot.mean();
  r.ppl = std::exp(r.loss);
  r.tokens = tot.count;
  if (!p.best_eval || r.loss < *p.best_eval) p.best_eval = r.loss;
  r.best_loss = *p.best_eval;
  r.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::string Trainer::save_checkpoint() {
  Impl& p = *p_;
  const fs::path out = p.opt.out_dir;
  if (p.comm->collective()) {
    if (!replicas_agree(*p.comm, p.m))
      throw Error("the ranks' adapters differ at step " + std::to_string(p.step) + "; not saved", out.string(),
                  "the collectives did not give every rank the same sums; report this with the launcher's output");
    if (!p.comm->is_root()) return (out / checkpoint_name(p.step)).string();  // rank 0 writes
  }
  // Never let a non-finite adapter replace a good checkpoint.
  if (!p.adam->values_finite())
    throw Error("the adapter holds NaN or inf values at step " + std::to_string(p.step) + "; not saved", out.string(),
                "the last good checkpoint is kept; lower --lr or check the data");
  try {
    // Every file into <out>/.checkpoint-<step>.tmp, then one rename to checkpoint-<step> (train/checkpoint_dir.h):
    // a crash or a failed write at any point leaves the previous checkpoint complete and in charge.
    CheckpointWriter w(out.string(), p.step);
    const fs::path tmp_dir = w.tmp();
    io::save_peft_adapter(tmp_dir.string(), p.opt.lora, export_adapters(p.m));
    checkpoint_kill_point("tmp-adapter", p.step);
    // The step in the optimizer file's metadata: resume cross-checks it against trainer_state.json.
    io::save_safetensors((tmp_dir / "optimizer.safetensors").string(), p.adam->state_tensors(),
                         {{"format", "pt"}, {"step", std::to_string(p.step)}});
    checkpoint_kill_point("tmp-optimizer", p.step);
    const BatcherState& bs = p.batcher.state();
    json st = {{"step", p.step}, {"epoch", bs.epoch}, {"index", bs.index}, {"total_steps", p.total},
               {"options", options_json(p.opt)}, {"format", "wick-trainer-state-1"},
               {"optimizer_steps", p.adam->steps()}, {"world_size", p.comm->size()}};
    io::write_file_atomic((tmp_dir / "trainer_state.json").string(), st.dump(2));
    w.commit(p.opt.keep_checkpoints);
    return (out / checkpoint_name(p.step)).string();
  } catch (const fs::filesystem_error& e) {  // a failed write is the folder's problem, not an internal error
    throw Error(std::string("cannot write the checkpoint: ") + e.what(), out.string(),
                "check free space and permissions; the previous checkpoint-<step> folder is kept as it was");
  } catch (const Error& e) {
    throw Error("cannot write the checkpoint: " + e.what_msg(), e.where().empty() ? out.string() : e.where(),
                "check free space and permissions; the previous checkpoint-<step> folder is kept as it was");
  }
}

bool Trainer::run(const std::function<void(const StepReport&)>& on_step, const std::atomic<bool>* stop) {
  Impl& p = *p_;
  dist::Communicator& comm = *p.comm;
  const int ranks = comm.size(), rank = comm.rank();
  const bool root = comm.is_root();  // writes metrics.jsonl and checkpoints
  if (root) fs::create_directories(p.opt.out_dir);
  const fs::path metrics = fs::path(p.opt.out_dir) / "metrics.jsonl";
  // On resume keep only the records of steps already done.
  {
    std::vector<std::string> keep;
    std::ifstream in(metrics);
    std::string line;
    while (std::getline(in, line)) {
      try {
        const json rec = json::parse(line);
        if (rec.value("step", int64_t{0}) > p.step) continue;
        keep.push_back(line);
        if (p.opt.resume.empty() || !rec.contains("eval_loss")) continue;
        const double l = rec.at("eval_loss").get<double>();
        if (!p.best_eval || l < *p.best_eval) p.best_eval = l;
        p.last_eval_step = rec.value("step", int64_t{0});
      } catch (const json::exception&) {
      }
    }
    std::string all;
    for (const auto& l : keep) all += l + "\n";
    if (comm.collective()) comm.barrier();  // every rank has read the kept records before rank 0 rewrites the file
    if (root) io::write_file_atomic(metrics.string(), p.opt.resume.empty() ? "" : all);
  }
  std::ofstream mf;
  if (root) mf.open(metrics, std::ios::app);
  auto record = [&](const json& rec) {
    if (!root) return;
    mf << rec.dump() << "\n";
    mf.flush();
  };
  auto run_eval = [&] {
    const EvalReport r = evaluate();
    p.last_eval_step = p.step;
    record(json{{"step", r.step}, {"eval_loss", r.loss}, {"eval_ppl", r.ppl}, {"eval_tokens", r.tokens}});
    if (p.on_eval) p.on_eval(r);
  };
  // The LoRA gradients by decoder layer ("layers.<l>." in the name; `rest`: any others), summed over the
  // ranks per layer as soon as the last backward of the step has produced them (the layer hook below), so
  // the reduction of layer l overlaps the backward of layers l-1 .. 0.
  const int64_t num_layers = p.m.config().num_layers;
  std::vector<std::vector<Tensor*>> layer_grads(static_cast<size_t>(num_layers));
  std::vector<Tensor*> rest;
  for (const LoraParam& lp : lora_params(p.m)) {
    const size_t at = lp.name.find(".layers.");
    const int64_t l = at == std::string::npos ? -1 : std::atoll(lp.name.c_str() + at + 8);
    (l >= 0 && l < num_layers ? layer_grads[static_cast<size_t>(l)] : rest).push_back(lp.grad);
  }
  bool overlapping = false;  // set during the backward whose layers start their reductions
  std::vector<char> started(static_cast<size_t>(num_layers), 0);
  if (comm.collective())  // one rank: no hook, which leaves its steps free to run as CUDA graphs
    p.grad.set_layer_backward_hook([&](int64_t l) {
      if (!overlapping || layer_grads[static_cast<size_t>(l)].empty()) return;
      comm.start_allreduce_sum(layer_grads[static_cast<size_t>(l)]);
      started[static_cast<size_t>(l)] = 1;
    });
  struct HookReset {  // the hook refers to this frame
    LossAndGrads& g;
    ~HookReset() { g.set_layer_backward_hook(nullptr); }
  } hook_reset{p.grad};
  const auto t0 = std::chrono::steady_clock::now();
  // MFU needs the adapters' shape: the largest rank and how many projections per layer carry one.
  int64_t lora_rank = 0, lora_linears = 0;
  for (Linear* l : p.m.all_linears())
    if (l->lora.active()) lora_rank = std::max(lora_rank, l->lora.rank()), lora_linears++;
  const int lora_per_layer = static_cast<int>(lora_linears / std::max<int64_t>(1, p.m.config().num_layers));
  p.peak_flops = peak_bf16_flops(device_name(p.m.device()));
  const std::string kill_point = "rank" + std::to_string(rank) + "-step";  // tests: WICK_TEST_KILL_AT=rank1-step@3
  // WICK_STEP_PROFILE=1: each step's device time in its phases on stderr (where a step's time goes: the host
  // making the batch while the device waits, forward + loss + backward, the optimizer), and how long the host
  // took to queue it: when that is close to the wall time, the device waits for launches.
  std::unique_ptr<StreamMarks> marks;
  if (env_flag("WICK_STEP_PROFILE")) marks = std::make_unique<StreamMarks>(p.m.device());
  while (p.step < p.total) {
    checkpoint_kill_point(kill_point.c_str(), p.step);
    bool stop_now = stop && stop->load();
    if (comm.collective()) {  // a signal reaches the ranks at different steps: they agree on the step to stop at
      int64_t stopping = stop_now ? 1 : 0;
      comm.allreduce_sum(&stopping, 1);
      stop_now = stopping > 0;
    }
    if (stop_now) {
      save_checkpoint();
      return false;
    }
    const auto ts = std::chrono::steady_clock::now();
    if (marks) marks->clear(), marks->mark();
    // The global batch: every rank makes all of its micro-batches (cheap, host-side: the counted tokens of
    // the whole batch normalise the loss) and computes its own (dist/shard.h).
    std::vector<std::pair<int64_t, TrainBatch>> micro;
    std::vector<int64_t> counted_of;  // per micro-batch of the global batch
    int64_t counted = 0, tokens = 0;
    double flops = 0;
    for (int64_t j = 0; j < p.opt.grad_accum * ranks; j++) {
      TrainBatch b = p.batcher.next();
      counted_of.push_back(b.counted());
      counted += b.counted();
      tokens += b.ids.numel();
      flops += train_flops_per_token(p.m.config(), b.ids.dim(1), lora_rank, lora_per_layer) * static_cast<double>(b.ids.numel());
      if (dist::owns_micro_batch(j, rank, ranks)) micro.emplace_back(j, std::move(b));
    }
    // Overlap when every rank's last micro-batch runs a backward: then all ranks start the same reductions
    // in the same order (layer by layer); else every rank reduces after backward.
    bool overlap_step = comm.collective();
    for (int r = 0; r < ranks && overlap_step; r++) {
      const std::vector<int64_t> mine = dist::micro_batches_of_rank(r, ranks, p.opt.grad_accum);
      overlap_step = counted_of[static_cast<size_t>(mine.back())] > 0;
    }
    std::fill(started.begin(), started.end(), 0);
    if (marks) marks->mark();
    zero_lora_grads(p.m);
    p.grad.clear_loss_check();
    LossSum loss;
    const float scale = counted > 0 ? 1.0f / static_cast<float>(counted) : 0.0f;
    for (const auto& [j, b] : micro) {
      if (b.counted() == 0) continue;  // nothing to learn from this micro-batch; its gradient is zero
      // Dropout masks are a function of (seed, step, micro-batch of the global batch): a resumed run, and a
      // run on another number of ranks, draws the same ones.
      const uint64_t dseed = (p.opt.seed + 1) * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(p.step) * 1024 +
                             static_cast<uint64_t>(j) + 1;
      overlapping = overlap_step && &b == &micro.back().second;
      loss.count += p.grad.queue_step(b, scale, dseed);
      overlapping = false;
    }
    const auto add_loss_sums = [&] {
      for (double s : p.grad.take_loss_sums()) loss.sum += s;
    };
    const double lr = p.sched.lr_at(p.step, p.opt.lr);
    bool loss_bad = false;
    double norm = 0;
    auto tq = ts;  // when the host had queued the step's device work (the profile prints it)
    if (comm.collective()) {  // the global gradient (f32, bucketed) and the global loss
      tq = std::chrono::steady_clock::now();  // the backward is queued; what follows waits on the ranks
      add_loss_sums();
      comm.finish_allreduces();
      std::vector<Tensor*> left = rest;  // what the layer hook did not start (all of it without overlap)
      for (int64_t l = 0; l < num_layers; l++)
        if (!started[static_cast<size_t>(l)])
          left.insert(left.end(), layer_grads[static_cast<size_t>(l)].begin(), layer_grads[static_cast<size_t>(l)].end());
      if (!left.empty()) comm.allreduce_sum(left);
      double totals[2] = {loss.sum, static_cast<double>(loss.count)};
      comm.allreduce_sum(totals, 2);
      loss.sum = totals[0];
      loss.count = static_cast<int64_t>(totals[1]);
      if (marks) marks->mark();
      // A non-finite loss or gradient: AdamW updates nothing (its norm is the check), then stop or skip.
      loss_bad = counted > 0 && !std::isfinite(loss.sum);
      norm = loss_bad ? std::numeric_limits<double>::quiet_NaN() : p.adam->step(lr, p.opt.max_grad_norm);
    } else {
      // One rank: the update is queued right behind the backward; the device decides the clipping and skips
      // the update when the norm, which the loss check joins, is not finite. The host reads the losses and
      // the norm once the whole step is queued.
      if (marks) marks->mark();
      std::vector<Tensor> checks;
      if (p.grad.loss_check().defined()) checks.push_back(p.grad.loss_check());
      p.adam->queue_step(lr, p.opt.max_grad_norm, checks);
      tq = std::chrono::steady_clock::now();
      add_loss_sums();
      norm = p.adam->finish_step();
      loss_bad = counted > 0 && !std::isfinite(loss.sum);
      if (loss_bad) norm = std::numeric_limits<double>::quiet_NaN();
    }
    const bool skipped = loss_bad || !std::isfinite(norm);
    if (skipped) {
      const auto [tensor, n_bad] = p.adam->first_nonfinite_grad();
      std::string what = "step " + std::to_string(p.step + 1) + ": " +
                         (loss_bad ? "the loss is " + std::to_string(loss.sum) : "the gradient norm is " + std::to_string(norm));
      if (!tensor.empty())
        what += "; first non-finite gradient: " + tensor + " (" + std::to_string(n_bad) + " of " +
                std::to_string(lora_params(p.m).size()) + " tensors)";
      if (p.opt.on_nan != "skip") {
        const auto last = latest_checkpoint(p.opt.out_dir);
        throw Error(what, p.opt.out_dir,
                    (last ? "the last good checkpoint is kept: " + *last : std::string("no checkpoint was written")) +
                        "; lower --lr, check the data, or pass --on-nan skip");
      }
      p.skipped_steps++;
      if (p.on_skip) p.on_skip(what);
    }
    p.step++;
    if (marks) marks->mark();
    device_synchronize(p.m.device());
    const auto te = std::chrono::steady_clock::now();
    if (marks)
      std::fprintf(stderr,
                   "wick train: step %lld profile (device ms): batch %.2f | forward + loss + backward %.2f | "
                   "optimizer %.2f | wall %.2f | host queued the step in %.2f\n",
                   static_cast<long long>(p.step), marks->ms_between(0, 1), marks->ms_between(1, 2),
                   marks->ms_between(2, 3), std::chrono::duration<double, std::milli>(te - ts).count(),
                   std::chrono::duration<double, std::milli>(tq - ts).count());
    StepReport r;
    r.step = p.step;
    r.total_steps = p.total;
    r.epoch = p.batcher.epoch_progress();
    r.loss = loss.mean();  // NaN when no token of the step counts (every label -100): there is no loss
    r.grad_norm = norm;
    r.skipped = skipped;
    r.lr = lr;
    r.tokens = tokens;
    const double step_s = std::max(1e-9, std::chrono::duration<double>(te - ts).count());
    r.tokens_per_s = tokens / step_s;
    r.mfu = p.peak_flops > 0 ? flops / step_s / (p.peak_flops * ranks) : 0.0;  // tokens, flops: all ranks
    r.elapsed_s = std::chrono::duration<double>(te - t0).count();
    r.peak_device_bytes = device_peak_memory(p.m.device());
    json rec{{"step", r.step}, {"epoch", r.epoch}, {"loss", r.loss}, {"grad_norm", r.grad_norm}, {"lr", r.lr},
             {"tokens", r.tokens}, {"tokens_per_s", r.tokens_per_s}, {"counted_tokens", counted},
             {"peak_device_gib", r.peak_device_bytes / 1073741824.0}, {"mfu", r.mfu}};
    if (skipped) rec["skipped"] = true;  // --on-nan skip: non-finite, nothing updated
    record(rec);
    if (on_step) on_step(r);
    if (p.eval && p.opt.eval_every > 0 && p.step % p.opt.eval_every == 0) run_eval();
    if (p.opt.save_every > 0 && p.step % p.opt.save_every == 0 && p.step < p.total) save_checkpoint();
    if (p.on_step_end && !p.on_step_end(p.step)) break;  // early stopping: finish as completed
  }
  if (p.eval && p.last_eval_step != p.step) run_eval();
  save_checkpoint();
  return true;
}

}  // namespace wick
