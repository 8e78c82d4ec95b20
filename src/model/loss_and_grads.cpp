#include "model/loss_and_grads.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/env.h"
#include "core/error.h"
#include "core/warn.h"
#include "model/forward_workspace.h"
#include "model/layer.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace wick {

int64_t TrainBatch::counted() const {
  const int32_t* t = targets.data<int32_t>();
  int64_t n = 0;
  for (int64_t i = 0; i < targets.numel(); i++) n += t[i] != kIgnoreIndex;
  return n;
}

struct LossAndGrads::Buffers {
  int64_t B = 0, T = 0;
  uint64_t generation = 0;  // which allocation of the set this is (a captured step's key holds it)
  bool checkpointing = false;
  std::vector<LayerActs> layers;             // saved activations per layer (checkpointing: x, adapter_u, the kept slots)
  LayerActs work;                            // checkpointing: the rest of one layer's set, refilled by recomputation
  Tensor recomputed_out;                     // checkpointing: [N, C] the recomputed layer's output (unused)
  LayerGrads grads;                          // one layer's gradient buffers
  Tensor x_final, f, rstd_f;                 // [N, C], [N, C], [N]
  Tensor ids, positions, segments;           // device copies ([N], [B, T], [B, T] i32)
  bool plain_positions = false;               // positions holds 0..T-1 per row (no batch positions given)
  Tensor losses, lse_rows;                   // [N] f32
  Tensor logits;  // [chunk, V] compute dtype, as transformers' lm_head outputs (the loss reads rows in f32); then dlogits
  Tensor f_counted, df_counted;               // [N, C] capacity: f's counted rows, their gradient
  Tensor counted_rows, counted_targets;        // [N] capacity, i32: which rows of f have a target, and it
  LinearScratch lin;
};

// Page-locked host memory for a step's traffic with the device, so that nothing in a step waits for the host:
// the batch's inputs go up and the per-row losses come down through it with asynchronous copies. Regions
// are handed out one after another and all released together once the device has finished them
// (take_loss_sums, after its synchronize).
struct LossAndGrads::HostStaging {
  char* buf = nullptr;
  size_t cap = 0, used = 0;
  std::vector<std::pair<size_t, int64_t>> queued;  // per queued step: the byte offset of its losses, their count
  Device dev = Device::cpu();
  ~HostStaging() {
    try {
      if (used > 0) device_synchronize(dev);  // copies in flight still read or write buf
    } catch (...) {
    }
    host_free_pinned(buf);
  }
  // A region of nbytes (4-byte aligned); growing waits for the copies in flight (they use the old buffer).
  void* take(size_t nbytes) {
    nbytes = (nbytes + 3) & ~size_t(3);
    if (used + nbytes > cap) {
      if (used > 0) device_synchronize(dev);
      const size_t want = std::max(2 * cap, std::max<size_t>(used + nbytes, 1 << 16));
      char* b = static_cast<char*>(host_alloc_pinned(want));
      if (used > 0) std::copy(buf, buf + used, b);
      host_free_pinned(buf);
      buf = b;
      cap = want;
    }
    void* p = buf + used;
    used += nbytes;
    return p;
  }
  // A region for dst (device; n 32-bit words: an i32 tensor, or an i64 as two words) filled with the host data
  // now; the copy up is queued by issue_uploads, once the step has taken all its regions. Offsets, not pointers:
  // a later take() may move the buffer.
  struct Upload {
    size_t off;
    void* dst;
    size_t bytes;
  };
  std::vector<Upload> uploads;
  void upload(const int32_t* host, int64_t n, Tensor& dst) {
    const size_t bytes = sizeof(int32_t) * static_cast<size_t>(n);
    const size_t off = static_cast<size_t>(static_cast<char*>(take(bytes)) - buf);
    std::copy(host, host + n, reinterpret_cast<int32_t*>(buf + off));
    if (n > 0) uploads.push_back({off, dst.raw(), bytes});
  }
  void issue_uploads() {
    for (const Upload& u : uploads) device_copy_async(u.dst, dev, buf + u.off, Device::cpu(), u.bytes);
  }
};

// Training steps as CUDA graphs (set_step_graphs). A step's forward and backward read their batch from fixed
// places (the activation buffers, where the eager uploads put it) and launch the same kernels with the same
// arguments whenever the step's key is the same: the shapes and the address of every buffer they touch that a step
// could replace. The loss between them (its shapes follow the counted rows, its scale the batch) runs eagerly. A
// key already run eagerly on a recent step (so that every buffer, scratch block and GEMM tuning it needs already
// exists) is captured once and replayed from then on, bit for bit the eager launches. Every micro-batch of one
// shape shares its graphs; a few keys are kept (e.g. a shorter last batch, or an evaluation between steps that
// made the buffers again).
struct LossAndGrads::StepGraphs {
  static constexpr size_t kMaxGraphs = 4;
  struct Entry {
    std::vector<uint64_t> key;
    std::unique_ptr<DeviceGraph> forward, backward;
    uint64_t last_used = 0;
  };
  std::vector<Entry> entries;
  std::vector<std::vector<uint64_t>> eager;  // the keys of the last steps run without a graph (kMaxGraphs)
  uint64_t clock = 0;
  int64_t replays = 0;
  bool failed = false;  // a capture failed: the rest of the run is eager (warned once)
  Entry* find(const std::vector<uint64_t>& key) {
    for (Entry& e : entries)
      if (e.key == key) return &e;
    return nullptr;
  }
  Entry& add(std::vector<uint64_t> key, std::unique_ptr<DeviceGraph> forward, std::unique_ptr<DeviceGraph> backward) {
    if (entries.size() >= kMaxGraphs)
      entries.erase(std::min_element(entries.begin(), entries.end(),
                                     [](const Entry& a, const Entry& b) { return a.last_used < b.last_used; }));
    entries.push_back(Entry{std::move(key), std::move(forward), std::move(backward), 0});
    return entries.back();
  }
};

int64_t loss_chunk_rows() {
  return env_int("WICK_LOSS_CHUNK", 1, int64_t(1) << 24, "a number of rows").value_or(1024);
}

bool adapter_fold_default(Device dev, const ModelConfig& c) {
  if (!dev.is_cuda()) return false;
  return env_override("WICK_ADAPTER_FOLD").value_or(c.hidden_size <= kAdapterFoldMaxHidden);
}

LossAndGrads::LossAndGrads(CausalLM& model)
    : m_(model), buf_(std::make_unique<Buffers>()), host_(std::make_unique<HostStaging>()),
      graphs_(std::make_unique<StepGraphs>()), adapter_fold_(adapter_fold_default(model.device(), model.config())) {
  host_->dev = model.device();
}
LossAndGrads::~LossAndGrads() = default;

namespace {

// The i32 elements of a batch tensor (host, i32, [B, T] like ids: checked by the caller for ids).
const int32_t* host_i32(const Tensor& t, const char* what, int64_t numel) {
  if (t.dtype() != DType::I32 || !t.device().is_cpu() || t.numel() != numel)
    throw Error(std::string("train batch: ") + what + " must be an i32 host tensor of " + std::to_string(numel) +
                " elements (ids' shape), got " + t.str());
  return t.data<int32_t>();
}

}  // namespace

LossSum LossAndGrads::step(const TrainBatch& batch, float grad_scale, uint64_t dropout_seed) {
  WICK_CHECK(host_->queued.empty(), "LossAndGrads::step with queued steps not taken");
  LossSum out;
  out.count = queue_step(batch, grad_scale, dropout_seed);
  out.sum = take_loss_sums().at(0);
  return out;
}

std::vector<double> LossAndGrads::take_loss_sums() {
  HostStaging& h = *host_;
  if (h.used > 0) device_synchronize(h.dev);
  std::vector<double> sums;
  for (const auto& [off, n] : h.queued) {
    const float* l = reinterpret_cast<const float*>(h.buf + off);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += l[i];
    sums.push_back(s);
  }
  h.queued.clear();
  h.uploads.clear();
  h.used = 0;
  return sums;
}

const Tensor& LossAndGrads::loss_check() const { return loss_check_; }
int64_t LossAndGrads::graph_replays() const { return graphs_->replays; }

void LossAndGrads::clear_loss_check() {
  if (loss_check_.defined()) loss_check_.zero_();
}

int64_t LossAndGrads::queue_step(const TrainBatch& batch, float grad_scale, uint64_t dropout_seed) {
  // A step repeats one set of GEMM shapes: they may be tuned (ops/matmul.h).
  const MatmulTuningScope tuning;
  const ModelConfig& c = m_.config();
  const Device dev = m_.device();
  const DType dt = m_.dtype();
  if (batch.ids.ndim() != 2 || batch.targets.shape() != batch.ids.shape())
    throw Error("train batch: ids " + batch.ids.str() + " and targets " + batch.targets.str() + " must both be [B, T]");
  const int64_t B = batch.ids.dim(0), T = batch.ids.dim(1), N = B * T;
  const int64_t C = c.hidden_size, V = c.vocab_size;
  if (T > c.max_position_embeddings)
    throw Error("sequence length " + std::to_string(T) + " exceeds max_position_embeddings " +
                std::to_string(c.max_position_embeddings), "", "lower --max-seq-len");
  const bool training = grad_scale != 0.0f;
  Buffers& bf = *buf_;
  const std::vector<Linear*> linears = m_.all_linears();

  if (bf.B != B || bf.T != T || bf.checkpointing != checkpointing_) {
    const uint64_t generation = bf.generation + 1;
    bf = Buffers{};  // the old set goes first, so its memory serves the new one
    bf.generation = generation;
    auto E = [&](const Shape& s, DType t = DType::F32) { return Tensor::empty(s, t, dev); };
    bf.layers.resize(static_cast<size_t>(c.num_layers));
    if (checkpointing_) {
      // The pre-norm layer's recompute reads the kept attention results (model/layer.h ActSlot::checkpoint_kept).
      WICK_CHECK(!c.sandwich_norms || m_.family().layer != &kPreNormLayer,
                 "checkpointing: the pre-norm layer needs the attention results its slot table keeps");
      for (LayerActs& A : bf.layers) alloc_checkpointed_layer_acts(A, c, B, T, dt, dev);
      alloc_layer_acts(bf.work, c, B, T, dt, dev, nullptr, /*skip_kept*/ true);
      bf.recomputed_out = E({N, C}, dt);
    } else {
      // The recomputed slots (the GLU output) are layer 0's for every layer.
      for (size_t i = 0; i < bf.layers.size(); i++)
        alloc_layer_acts(bf.layers[i], c, B, T, dt, dev, i == 0 ? nullptr : &bf.layers[0]);
    }
    alloc_layer_grads(bf.grads, c, N, dt, dev);
    bf.x_final = E({N, C}, dt);
    bf.f = E({N, C}, dt);
    bf.rstd_f = E({N});
    bf.losses = E({N});
    bf.lse_rows = E({N});
    bf.logits = E({std::min(N, loss_chunk_), V}, dt);
    bf.f_counted = E({N, C}, dt);
    bf.df_counted = E({N, C}, dt);
    bf.counted_rows = E({N}, DType::I32);
    bf.counted_targets = E({N}, DType::I32);
    bf.ids = E({N}, DType::I32);
    // Only now: an allocation that failed (out of memory) leaves the set marked empty, so the next step
    // allocates again instead of running on missing buffers.
    bf.B = B;
    bf.T = T;
    bf.checkpointing = checkpointing_;
  }
  // The adapter path's scratch (bf.lin) grows on demand; dropout runs only when training.
  bool dropout = false;
  for (Linear* l : linears) dropout = dropout || (l->lora.active() && l->lora.dropout > 0.0f);
  if (!training || dropout_seed == 0) dropout = false;
  // The saved adapter products follow the ranks, which can change between steps (attach/detach); the groups
  // fed by an RMSNorm fold their adapters into their base GEMMs (model/linear.h) unless checkpointing, or dropout:
  // an adapter then reads its own dropped copy of x, so its product cannot share the base GEMM's input, and the
  // dropout kernel would read x out of the folded buffer through a copy (0.5B, --dropout 0.05, H100: 116,509 tok/s
  // folded, 121,870 not; docs/benchmarks.md 8p).
  const LayerCode& code = *m_.family().layer;
  for (int64_t l = 0; l < c.num_layers; l++)
    alloc_adapter_products(bf.layers[l], m_.layers()[l], code, c, N, dt, dev,
                           adapter_fold_ && !bf.checkpointing && !dropout);

  // The inputs, and the rows that have a target (only they go through lm_head, below), go up without waiting:
  // their host regions are filled here, the copies are the first of the step's device work.
  HostStaging& stage = *host_;
  stage.uploads.clear();
  const int32_t* tgt = host_i32(batch.targets, "targets", N);
  stage.upload(host_i32(batch.ids, "ids", N), N, bf.ids);
  if (batch.positions.defined()) {
    if (!bf.positions.defined() || bf.plain_positions || bf.positions.shape() != Shape{B, T})
      bf.positions = Tensor::empty({B, T}, DType::I32, dev);
    stage.upload(host_i32(batch.positions, "positions", N), N, bf.positions);
    bf.plain_positions = false;
  } else if (!bf.plain_positions || bf.positions.shape() != Shape{B, T}) {  // 0..T-1 per row: kept while B, T hold
    std::vector<int32_t> p(N);
    for (int64_t i = 0; i < N; i++) p[i] = static_cast<int32_t>(i % T);
    bf.positions = Tensor::empty({B, T}, DType::I32, dev);
    stage.upload(p.data(), N, bf.positions);
    bf.plain_positions = true;
  }
  if (batch.segments.defined()) {
    if (!bf.segments.defined() || bf.segments.shape() != Shape{B, T}) bf.segments = Tensor::empty({B, T}, DType::I32, dev);
    stage.upload(host_i32(batch.segments, "segments", N), N, bf.segments);
  }
  std::vector<int32_t> rows, row_targets;
  for (int64_t i = 0; i < N; i++)
    if (tgt[i] != kIgnoreIndex) {
      rows.push_back(static_cast<int32_t>(i));
      row_targets.push_back(tgt[i]);
    }
  const int64_t K = static_cast<int64_t>(rows.size());
  stage.upload(rows.data(), K, bf.counted_rows);
  stage.upload(row_targets.data(), K, bf.counted_targets);
  // The per-row losses come down into the next region without waiting (take_loss_sums reads them): a read in
  // the step would drain the stream between forward and backward, and the host would start the backward's
  // launches with no lead.
  // The micro-batch's dropout seed goes up with the inputs: the dropout kernels read it on the device, so a replayed
  // step draws this step's masks (ops/dropout.h).
  if (dropout) {
    if (!bf.lin.dropout_seed.defined()) bf.lin.dropout_seed = Tensor::empty({1}, DType::I64, dev);
    int32_t words[2];
    std::memcpy(words, &dropout_seed, sizeof words);
    stage.upload(words, 2, bf.lin.dropout_seed);
  }
  const size_t losses_off = static_cast<size_t>(static_cast<char*>(stage.take(sizeof(float) * static_cast<size_t>(K))) - stage.buf);
  stage.queued.emplace_back(losses_off, K);
  if (training && !loss_check_.defined()) loss_check_ = Tensor::zeros({loss_chunk_}, DType::F32, dev);

  LayerRun run;
  run.cfg = &c;
  run.B = B;
  run.T = T;
  run.positions = bf.positions;
  run.args.segments = batch.segments.defined() ? &bf.segments : nullptr;
  run.dropout = dropout;
  run.lin = &bf.lin;

  // The activations layer li runs with: its own set, or (checkpointing) the shared set over its saved
  // input, adapter products and kept slots.
  auto acts = [&](int64_t li) -> LayerActs& {
    LayerActs& A = bf.layers[li];
    if (!bf.checkpointing) return A;
    use_checkpointed_layer_acts(bf.work, A, c);
    return bf.work;
  };

  // The device work of this step, in order: the uploads of the staging regions filled above, the forward, the
  // loss, the backward, the losses' copy down. Only the forward and the backward may be graphs (below): they
  // depend on the batch shape and the buffers alone. The loss part depends on the counted rows K (its GEMM
  // shapes) and the loss scale (a kernel argument), which change from step to step on real data (chat rows with
  // their prompts ignored), and it is a few launches of long GEMMs: it stays eager, and so do the uploads.
  //
  // The adapters' bf16 copies and folded weights for this step come first, in a few launches; the forward then
  // skips its own refreshes (LinearScratch::adapters_current, for this step only).
  struct AdaptersCurrent {
    bool& flag;
    ~AdaptersCurrent() { flag = false; }
  } current{bf.lin.adapters_current};
  auto forward_work = [&] {
    refresh_adapters(linears);
    bf.lin.adapters_current = true;
    Tensor x = bf.layers.empty() ? bf.x_final : bf.layers[0].x;
    m_.embed_tokens(bf.ids, x);
    for (int64_t li = 0; li < c.num_layers; li++) {
      run.layer = li;
      LayerActs& A = acts(li);
      Tensor& next = li + 1 < c.num_layers ? bf.layers[li + 1].x : bf.x_final;
      code.forward(m_.layers()[li], A, A.x, next, run);
    }
    m_.final_norm_forward(bf.x_final, bf.f, bf.rstd_f);
  };

  // The loss (and its gradient into the final hidden state), in row chunks. Only rows with a target go through
  // lm_head: on chat data most rows are prompt (label -100), and lm_head ([V, C], V ~ 150k) is most of a small
  // model's work. The counted rows of f (counted_rows, uploaded above) are gathered into f_counted, their
  // gradient is scattered back into df (zero elsewhere, as the ignored rows' loss is constant).
  Tensor df = bf.grads.da;  // [N, C] gradient wrt f
  auto loss_work = [&] {
    if (K > 0) {
      Tensor idx = bf.counted_rows.narrow0(0, K), tgk = bf.counted_targets.narrow0(0, K);
      Tensor fk = bf.f_counted.narrow0(0, K), dfk = bf.df_counted.narrow0(0, K);
      embedding_forward(idx, bf.f, fk);  // fk[i] = f[rows[i]]
      for (int64_t r0 = 0; r0 < K; r0 += loss_chunk_) {
        const int64_t R = std::min(loss_chunk_, K - r0);
        Tensor logits = bf.logits.narrow0(0, R);
        matmul(fk.narrow0(r0, R), m_.lm_head(), logits, false, true);
        Tensor tg = tgk.narrow0(r0, R), ls = bf.losses.narrow0(r0, R), lse = bf.lse_rows.narrow0(r0, R);
        if (!training) {
          cross_entropy_forward(logits, tg, ls, lse);
        } else {
          cross_entropy_forward_backward(logits, tg, ls, lse, grad_scale, logits);  // in place: dlogits
          for (int64_t o = 0; o < R; o += loss_check_.numel()) {  // NaN where a loss is not finite (loss_check)
            const int64_t n = std::min(R - o, loss_check_.numel());
            Tensor check = loss_check_.narrow0(0, n);
            axpy(0.0f, ls.narrow0(o, n), check);
          }
          Tensor dfr = dfk.narrow0(r0, R);
          matmul(logits, m_.lm_head(), dfr, false, false);  // [R, V] x [V, C]
        }
      }
    }
    if (training) {
      df.zero_();
      if (K > 0) embedding_backward(bf.counted_rows.narrow0(0, K), bf.df_counted.narrow0(0, K), df);  // += into rows
    }
    if (K > 0) device_copy_async(stage.buf + losses_off, Device::cpu(), bf.losses.raw(), dev, sizeof(float) * static_cast<size_t>(K));
  };

  auto backward_work = [&] {
    m_.final_norm_backward(df, bf.x_final, bf.rstd_f, bf.grads.dx);
    for (int64_t li = c.num_layers - 1; li >= 0; li--) {
      run.layer = li;
      LayerActs& A = acts(li);
      if (bf.checkpointing) {  // the same activations again (the layer may skip what only its output needs)
        run.recompute = true;
        code.forward(m_.layers()[li], A, A.x, bf.recomputed_out, run);
        run.recompute = false;
      }
      code.backward(m_.layers()[li], A, bf.grads, run);
      if (layer_hook_) layer_hook_(li);
    }
  };

  // CUDA graphs only for training steps of one device without a layer hook (data-parallel training overlaps
  // host-driven reductions with the backward).
  const bool graphable = graphs_on_ && training && dev.is_cuda() && !layer_hook_ && !graphs_->failed;
  stage.issue_uploads();
  if (!graphable) {
    forward_work();
    loss_work();
    if (training) backward_work();
    return K;
  }
  StepGraphs& sg = *graphs_;
  const std::vector<uint64_t> key = step_key(B, T, batch.segments.defined(), dropout);
  StepGraphs::Entry* e = sg.find(key);
  if (!e && std::find(sg.eager.begin(), sg.eager.end(), key) != sg.eager.end()) {
    try {
      auto fw = std::make_unique<DeviceGraph>(dev, forward_work);
      auto bw = std::make_unique<DeviceGraph>(dev, backward_work);
      e = &sg.add(key, std::move(fw), std::move(bw));
    } catch (const Error& err) {
      sg.failed = true;
      warn(std::string("training without CUDA graphs: ") + err.what());
    }
  }
  if (e) {
    e->last_used = ++sg.clock;
    e->forward->replay();
    const uint64_t scratch = device_scratch_generation(dev);
    loss_work();
    if (device_scratch_generation(dev) == scratch) {
      e->backward->replay();
      sg.replays++;
    } else {  // the loss grew the scratch block the backward graph points into (the key now differs: it ages out)
      backward_work();
    }
    return K;
  }
  // Eager. A key whose forward and backward tuned no GEMM shape, nor brought one closer to its tuning, may be
  // captured when it comes again: a graph would keep an untuned choice (the loss part's GEMMs, eager, tune on).
  const int64_t tuning_before_forward = matmul_tuning_progress();
  forward_work();
  const int64_t tuning_after_forward = matmul_tuning_progress();
  loss_work();
  const int64_t tuning_before_backward = matmul_tuning_progress();
  backward_work();
  const bool settled = tuning_after_forward == tuning_before_forward && matmul_tuning_progress() == tuning_before_backward;
  if (settled && std::find(sg.eager.begin(), sg.eager.end(), key) == sg.eager.end()) {
    if (sg.eager.size() >= StepGraphs::kMaxGraphs) sg.eager.erase(sg.eager.begin());
    sg.eager.push_back(key);
  }
  return K;
}

// Everything a captured forward or backward depends on besides the contents of device memory: the shapes, how the
// step is run (checkpointing, the fold, packed rows or not), and the address of every buffer a step may replace
// (activations, adapter products and scratch, the adapters and their copies). Not the counted rows, the loss
// scale, nor the staging regions: the loss part and the uploads between them stay eager.
std::vector<uint64_t> LossAndGrads::step_key(int64_t B, int64_t T, bool segments, bool dropout) const {
  const Buffers& bf = *buf_;
  std::vector<uint64_t> k;
  auto add = [&](const Tensor& t) { k.push_back(reinterpret_cast<uintptr_t>(t.defined() ? t.raw() : nullptr)); };
  // The buffer set's generation: a set made again (another batch shape came between, e.g. an evaluation) may get
  // some of the addresses of the set a graph was captured with and not others (the key holds only some).
  k.push_back(bf.generation);
  k.push_back(device_scratch_generation(m_.device()));  // a graph keeps the scratch block it was captured with
  k.insert(k.end(), {static_cast<uint64_t>(B), static_cast<uint64_t>(T), static_cast<uint64_t>(segments),
                     static_cast<uint64_t>(bf.checkpointing), static_cast<uint64_t>(adapter_fold_),
                     static_cast<uint64_t>(dropout)});
  for (const Tensor* t : {&bf.ids, &bf.positions, &bf.segments, &bf.x_final, &bf.f, &bf.rstd_f, &bf.lin.a32,
                          &bf.lin.r32, &bf.lin.xc, &bf.lin.dxu, &bf.lin.d32, &bf.lin.u16, &bf.lin.d16,
                          &bf.lin.dropout_seed, &bf.grads.dx, &bf.grads.da})
    add(*t);
  for (const LayerActs& A : bf.layers) {
    add(A.x);
    add(A.a), add(A.b);  // the folded groups' inputs: replaced when the fold is turned on or off
    for (int g = 0; g < kLoraGroups; g++) add(A.adapter_u[g]), add(A.xu[g]);
  }
  for (const Linear* l : m_.all_linears()) {
    const LoraSlot& a = l->lora;
    for (const Tensor* t : std::initializer_list<const Tensor*>{&a.A, &a.B, &a.dA, &a.dB, &a.A16, &a.B16, &a.folded}) add(*t);
    uint32_t sb = 0, pb = 0;  // the scale and the dropout probability are kernel arguments
    std::memcpy(&sb, &a.scale, sizeof sb);
    std::memcpy(&pb, &a.dropout, sizeof pb);
    k.push_back(sb);
    k.push_back(pb);
    k.push_back(static_cast<uint64_t>(a.folded_at));
  }
  return k;
}

}  // namespace wick
