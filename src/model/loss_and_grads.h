// Forward + loss + backward of a CausalLM for LoRA training: the family's layer code (model/layer.h) in
// training mode, then the loss, then the layers' backward. The base weights are frozen: backward produces
// only the adapters' dA, dB (+=). Activations live in buffers sized for the batch shape and reused every
// step; the loss is computed in row chunks so [N, V] logits never exist whole, and only for the rows with a
// target (prompt rows and padding skip lm_head, most of a small model's work). With activation checkpointing
// each layer keeps its input, the adapters' small products and what its slot table marks checkpoint_kept (the
// pre-norm layer's attention results); backward recomputes the rest of the layer's forward into one shared
// set of activations first (the same numbers: the forward is deterministic).
#pragma once
#include <limits>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "model/causal_lm.h"

namespace wick {

// One micro-batch, host tensors. targets[b, t] is the label that logits[b, t] must predict (already
// shifted: the caller puts labels[b, t + 1] there), kIgnoreIndex where nothing is counted.
struct TrainBatch {
  Tensor ids;        // [B, T] i32
  Tensor targets;    // [B, T] i32
  Tensor positions;  // [B, T] i32, or undefined for 0..T-1 in every row
  Tensor segments;   // [B, T] i32 (packing: attention stays inside a segment), or undefined
  int64_t counted() const;  // number of targets != kIgnoreIndex
};

struct LossSum {
  double sum = 0;     // sum of per-token losses over counted targets
  int64_t count = 0;  // counted targets
  // No counted target (every label -100): no loss at all, NaN (as torch's mean over nothing), never 0.
  double mean() const { return count ? sum / count : std::numeric_limits<double>::quiet_NaN(); }
};

// Whether training folds adapters by default (LossAndGrads::set_adapter_fold): on CUDA for models of hidden
// size at most kAdapterFoldMaxHidden; WICK_ADAPTER_FOLD=0 or =1 overrides that on CUDA (never on the CPU, whose
// GEMMs are compute-bound: no gain there). What the fold saves is a pass over each folded projection's output,
// bandwidth next to the GEMM's C * out multiply-adds a row, so it shrinks as 1 / C; what it costs is a copy of
// those projections' weights, which grows as C^2 (Qwen2.5 at r 16 on all projections: 0.5B ~0.5 GB, 1.5B
// ~1.7 GB, 7B ~8.5 GB). Measured on H200s (docs/benchmarks.md 8h, 8i): 0.5B (C 896) +1.7-2.3% tokens/s, 1.5B
// (C 1536) +1.2% and +1.9% for 1.7 GB (18.1 GiB at 8 x 1024); nothing above 1,536 was measured, so the bound is
// there.
constexpr int64_t kAdapterFoldMaxHidden = 1536;
bool adapter_fold_default(Device dev, const ModelConfig& c);

// Rows of logits the loss computes at once: 1024, or WICK_LOSS_CHUNK (a positive number of rows; for sweeps: the
// chunk's [rows, V] logits in the compute dtype are the loss's memory, and a chunk that fits in L2 keeps the loss
// kernel's reads there, while fewer rows make lm_head's GEMMs smaller). Anything else set there is an error.
int64_t loss_chunk_rows();

class LossAndGrads {
 public:
  explicit LossAndGrads(CausalLM& model);
  ~LossAndGrads();
  // Forward and loss; then, when grad_scale != 0, backward with d(loss)/d(per-token loss) = grad_scale
  // (1 / counted tokens of the whole accumulated batch for a mean). Adapters' dA, dB accumulate (+=).
  // dropout_seed (non-zero, training only) seeds the adapters' dropout masks of this micro-batch.
  LossSum step(const TrainBatch& batch, float grad_scale, uint64_t dropout_seed = 0);
  LossSum eval(const TrainBatch& batch) { return step(batch, 0.0f); }
  // step(), queued: the per-row losses go to page-locked host memory and nothing waits for the device, so a
  // trainer can queue the optimizer behind the backward. -> the counted targets. take_loss_sums() waits for
  // the device and returns each queued step's loss sum, in order (step() is queue_step + take_loss_sums).
  // A training step also adds 0 * loss into loss_check() (f32 on the device: zeros, or NaN where some loss
  // was not finite); the trainer adds it to the gradient norm, so that AdamW skips such a step on the device.
  int64_t queue_step(const TrainBatch& batch, float grad_scale, uint64_t dropout_seed = 0);
  std::vector<double> take_loss_sums();
  const Tensor& loss_check() const;  // undefined before the first training step
  void clear_loss_check();            // zeros it (at the start of an optimizer step)
  // Rows of logits computed at once in the loss (memory vs launches); default loss_chunk_rows().
  void set_loss_chunk(int64_t rows) { loss_chunk_ = rows; }
  // Activation checkpointing (off by default); takes effect at the next step.
  void set_checkpointing(bool on) { checkpointing_ = on; }
  // Folds the adapters of the groups fed by an RMSNorm (q k v, gate up) into their base GEMMs (model/linear.h:
  // one GEMM a projection over [x | u], against a folded copy of the adapted weights; not with checkpointing).
  // Default: adapter_fold_default(the model's device and config); takes effect at the next step.
  void set_adapter_fold(bool on) { adapter_fold_ = on; }
  bool adapter_fold() const { return adapter_fold_; }
  // Called in a training step's backward right after layer `layer` has added its adapters' dA, dB (layers
  // run last to first; on CUDA the work is queued, not done): data-parallel training starts that layer's
  // gradient allreduce there, overlapping the layers still to come. Empty: none.
  void set_layer_backward_hook(std::function<void(int64_t layer)> hook) { layer_hook_ = std::move(hook); }
  // Training steps on CUDA as CUDA graphs (off by default; the trainer turns it on unless WICK_CUDA_GRAPHS=0 or
  // WICK_TRAIN_GRAPHS=0): the forward and the backward of a step whose shapes and buffers are those of a recent
  // step are captured once and replayed after, with the same results bit for bit; the loss between them, whose
  // shapes follow the counted rows, and the batch's uploads stay eager. Not with dropout or a layer hook, and not
  // for evaluation; a capture that fails warns once and the run goes on without graphs.
  void set_step_graphs(bool on) { graphs_on_ = on; }
  int64_t graph_replays() const;  // steps run by replaying a captured graph so far

 private:
  struct Buffers;
  struct HostStaging;
  struct StepGraphs;
  std::vector<uint64_t> step_key(int64_t B, int64_t T, bool segments, bool dropout) const;
  CausalLM& m_;
  std::unique_ptr<Buffers> buf_;
  std::unique_ptr<HostStaging> host_;
  std::unique_ptr<StepGraphs> graphs_;
  bool graphs_on_ = false;
  Tensor loss_check_;  // f32 [loss chunk] on the device (see loss_check)
  int64_t loss_chunk_ = loss_chunk_rows();
  bool checkpointing_ = false;
  bool adapter_fold_ = false;
  std::function<void(int64_t)> layer_hook_;
};

}  // namespace wick
