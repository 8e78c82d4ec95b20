// The decoder layer, written once for both modes over the same code:
//  - inference: one set of activation buffers shared by every layer, an optional KV cache;
//  - training: a set per layer kept for backward (with the adapters' products and the attention lse),
//    LoRA dropout, then backward producing the adapters' dA, dB (+=) and the input gradient.
// Built from reusable blocks (attention with RoPE, GQA, optional per-head q/k norms and sliding window;
// SwiGLU / GeGLU MLP; RMSNorm). A family picks its layer code in its Family descriptor (model/family.h); the
// pre-norm layer below serves Qwen2, Qwen3, Llama and Mistral (what differs among them is which weights
// exist); Gemma 3's sandwich-norm layer is in model/families/gemma3.cpp. What the blocks read of the config
// (the norm's weight form, the attention scale and window, the RoPE of the layer, the MLP activation) comes
// from the helpers below, so every caller computes the same model.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/family.h"
#include "model/linear.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"

namespace wick {

class KVCache;

// Called with Hugging Face module paths ("model.layers.3.mlp.down_proj", "model.norm", "lm_head") and the
// module's output; for debugging a model against transformers' forward hooks.
using DebugHook = std::function<void(const std::string& name, const Tensor& out)>;

// Activations of one layer for N = B*T rows (compute dtype unless noted). Training: one set per layer,
// kept for backward. Inference: one set for all layers; lse and lu stay undefined.
struct LayerActs {
  Tensor x;          // [N, C] layer input (the residual stream)
  Tensor a, rstd1;   // [N, C], [N] f32: input norm
  Tensor qp, kp;     // [N, Q], [N, KV]: q, k before their head norms (qk_norm only)
  Tensor rq, rk;     // [N*H], [N*Hkv] f32: the head norms' rstd (qk_norm only)
  Tensor q, k, v;    // [N, Q], [N, KV], [N, KV]: q, k after RoPE
  Tensor att, lse;   // [N, Q], [B, H, T] f32
  Tensor h;          // [N, C] after the attention residual
  Tensor b, rstd2;   // [N, C], [N] f32: post-attention norm
  Tensor g, u, s;    // [N, I]: gate, up, act(gate) * up
  // Sandwich norms (Gemma 3): the attention / MLP outputs before their norms, and the norms' rstd.
  Tensor attn_out, rstd3;  // [N, C], [N] f32
  Tensor mlp_out, rstd4;   // [N, C], [N] f32
  // Training: the adapters' products x A^T of each input group (LayerWeights::lora_groups: q k v | o |
  // gate up | down), saved for backward as model/linear.h lays them out: [N, sum of the group's ranks] in the
  // compute dtype. Undefined for a group without adapters, for a folded group, and in inference (scratch).
  Tensor adapter_u[kLoraGroups];
  // Training, folded groups (alloc_adapter_products): [N, C + R], the group's input (the RMSNorm writes its first
  // C columns) beside its adapters' products (the last R), one GEMM operand (model/linear.h folded_group_*).
  // The group's own input slot (a for q k v, b for gate up) is then undefined. Undefined otherwise.
  Tensor xu[kLoraGroups];
};

// Gradient buffers of one layer's backward, shared by all layers.
struct LayerGrads {
  Tensor dx, dx2, da;  // [N, C]: dx the residual stream's gradient
  Tensor dq, dk, dv;   // [N, Q], [N, KV], [N, KV]
  Tensor dqp, dkp;     // [N, Q], [N, KV] (qk_norm only)
  Tensor datt;         // [N, Q]
  Tensor dg, du, ds;   // [N, I]
};

// The activation columns a layer keeps per row: one table for the training buffers, the inference
// workspace and the memory estimate (train/auto_batch.cpp), so the three cannot disagree.
enum class ActKind { Act, F32, PerHeadF32 };  // compute dtype / f32 [N] / f32 [B, H, T] (lse)
struct ActSlot {
  Tensor LayerActs::*member;
  int64_t cols;  // per row (Act), 1 per row (F32 rstd: [N]) or per row and head
  ActKind kind;
  bool training_only = false;  // lse: inference passes none
  // Backward rebuilds it instead of reading what forward wrote (the GLU output: mlp_block_backward), so the
  // layers of a training step share one buffer for it.
  bool recomputed = false;
  // Activation checkpointing keeps it per layer, beside the layer input and the adapters' products: the
  // attention's results (q, k, v after RoPE, its output and lse, the head norms' inputs and rstd). The
  // pre-norm layer's recompute then redoes the two norms, the o projection (the residual h: [N, C] a layer
  // kept cost 0.77 GiB of 7B's 4 x 1024 step, where issue 8's goal is 20 GiB) and the gate/up projections,
  // the attention itself not (selective recomputation: ~a third of the memory of keeping everything, most of
  // the time saved). Set only for the layer code that reads them so (kPreNormLayer); other families'
  // recompute runs their whole forward.
  bool checkpoint_kept = false;
};
std::vector<ActSlot> layer_act_slots(const ModelConfig& c);
struct GradSlot {
  Tensor LayerGrads::*member;
  int64_t cols;
};
std::vector<GradSlot> layer_grad_slots(const ModelConfig& c);
// Allocates every slot exactly for [B, T] (training); the recomputed slots are share_recomputed's (when given).
// skip_kept: not the checkpoint_kept slots (checkpointing's shared set, which borrows them per layer).
void alloc_layer_acts(LayerActs& A, const ModelConfig& c, int64_t B, int64_t T, DType dt, Device dev,
                      const LayerActs* share_recomputed = nullptr, bool skip_kept = false);
// Activation checkpointing: what one layer keeps between its forward and its backward (x and the
// checkpoint_kept slots; the adapters' products are the caller's), and the shared set `work` pointed at a
// layer's kept tensors for that layer's forward, recompute and backward.
void alloc_checkpointed_layer_acts(LayerActs& kept, const ModelConfig& c, int64_t B, int64_t T, DType dt, Device dev);
void use_checkpointed_layer_acts(LayerActs& work, const LayerActs& kept, const ModelConfig& c);
void alloc_layer_grads(LayerGrads& G, const ModelConfig& c, int64_t N, DType dt, Device dev);
struct LayerCode;
// Whether group g (LayerWeights::lora_groups order) is fed by an RMSNorm (q k v, gate up): what a layer code
// that folds (LayerCode::folds_norm_fed_groups) folds.
bool is_norm_fed_group(int g);
// Training: the adapters' product buffers of one layer's set for N rows, following the layer's current ranks
// (attach / detach may change them between steps): adapter_u [N, R] per group with adapters, or, with fold and
// a layer code that folds (LayerCode::folds_norm_fed_groups), xu [N, C + R] for the groups fed by an RMSNorm
// (q k v, gate up) in place of their input slot and adapter_u. Not with checkpointing's sets (the kept set has
// no input slots to give up; checkpointing keeps the unfolded path).
void alloc_adapter_products(LayerActs& A, LayerWeights& W, const LayerCode& code, const ModelConfig& c, int64_t N,
                            DType dt, Device dev, bool fold);

// Inference over rows of independent sequences (serve/batch_forward.h: continuous batching). The N rows of
// one forward belong to different requests, each with its own KV cache, positions and adapter. When
// LayerRun::rows is set, the attention block hands q, k, v to it instead of attending over run.cache, and
// each projection's output gets the rows' own adapter deltas from it (the model's Linears carry none).
struct RowBatch {
  virtual ~RowBatch() = default;
  // q [N, Q], k, v [N, KV] after RoPE (compute dtype) -> att [N, Q] (=).
  virtual void attend(int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& att) = 0;
  // y [N, out] += each row's adapter delta of projection j (LayerWeights::linears order) from x [N, in].
  virtual void add_adapters(int64_t layer, int j, const Tensor& x, Tensor& y) = 0;
};

// What a layer runs in. The model's forward (inference) and LossAndGrads (training) fill it.
struct LayerRun {
  const ModelConfig* cfg = nullptr;
  int64_t B = 0, T = 0;
  Tensor positions;          // [B, T] i32 on the device
  AttentionArgs args;        // segments (the attention block sets scale, window and kv_len per layer)
  KVCache* cache = nullptr;  // inference: append k, v and attend to the cache
  int64_t past = 0;          // tokens already in the cache
  // The cache length is known only on the device (a decode step captured once as a CUDA graph and replayed at
  // every length): the step's k, v land where `positions` say and attention reads its keys' bounds there,
  // planned over the whole capacity. past is then unused.
  bool positions_on_device = false;
  // Training keeps lse and the adapters' u where the LayerActs has them allocated; dropout applies the
  // adapters' dropout with masks drawn from the micro-batch's seed, lin->dropout_seed (on the device).
  bool dropout = false;
  // Inference (CausalLM's forward and decode step, serve's batch forward): nothing is kept for a backward, so
  // projections of at most kSmallMMaxRows rows without adapters run as small_m_linear, and the MLP's gate/up
  // with the GLU as one small_m_glu (ops/small_m_linear.h) on CUDA. Training and evaluation (LossAndGrads)
  // leave it false: their numerics never change.
  bool inference = false;
  LinearScratch* lin = nullptr;  // the adapter path's scratch (grows on demand)
  const DebugHook* hook = nullptr;
  int64_t layer = 0;         // set by the caller for each layer
  RowBatch* rows = nullptr;  // inference over independent sequences (B = 1, T = N rows); see RowBatch
  // Activation checkpointing's second forward, right before the layer's backward: only what backward reads is
  // needed, not the layer's output (a family layer may stop early; the output buffer is then left as is).
  bool recompute = false;

  // Dropout mix of projection j of the current layer (0 without dropout): with the micro-batch's seed, the mask's
  // seed (ops/dropout.h), so a mask is a pure function of (micro-batch, layer, j).
  uint64_t dropout_mix(int j) const;
  void emit(const std::string& name, const Tensor& t) const {
    if (hook) (*hook)(name, t);
  }
  std::string prefix() const { return "model.layers." + std::to_string(layer) + "."; }
};

// What the blocks read of the config, for layer `layer`:
RmsWeight rms_weight(const ModelConfig& c);                        // w or (1 + w) (Gemma)
GluAct mlp_act(const ModelConfig& c);                              // silu or gelu_tanh (Gemma)
RopeFreqs layer_rope(const ModelConfig& c, int64_t layer);         // rope_theta (+ rescaling) or the local base
AttentionArgs layer_attention_args(const ModelConfig& c, int64_t layer);  // scale and window (kv_len unset)

// Decode (pre_norm_forward, where decode_fuses_norms): the RMSNorm before a block done by its first projection's
// small_m launch (`in` is then the norm's input), and the residual add after it by its last one.
struct BlockFusion {
  const SmallMNorm* input_norm = nullptr;
  const Tensor* residual = nullptr;  // attention: out = residual + o_proj(...), rounded as ops/elementwise.h's add
};

// Whether decode may fuse a pre-norm layer's norms and its attention residual into the small_m launches
// (BlockFusion): on by default (H100: 1.5B decode +4.4%, 0.5B +0.4%, docs/benchmarks.md section 10, session 32);
// WICK_DECODE_NORM_FUSION=0 (read once) turns it off. Not the same bits: the fused launch scales each row's
// results by the norm's rstd instead of projecting the rounded normalised x (ops/small_m_linear.h SmallMNorm).
// set_decode_norm_fusion is the tests' switch (it applies to steps and graph captures after it).
bool decode_norm_fusion();
void set_decode_norm_fusion(bool on);

// Shared blocks. in/out are [N, *] in the compute dtype.
// Attention: q, k, v projections of in, optional head norms, RoPE, the cache, attention, o -> out (=).
void attention_block_forward(LayerWeights& W, LayerActs& A, const Tensor& in, Tensor& out, LayerRun& run,
                             const BlockFusion& fuse = {});
// dout -> din (=) the gradient wrt the block input; adapters' dA, dB (+=).
void attention_block_backward(LayerWeights& W, LayerActs& A, const Tensor& in, const Tensor& dout, Tensor& din,
                              LayerGrads& G, LayerRun& run);
// Gated MLP: out = down(act(gate(in)) * up(in)) (=), act silu or gelu_tanh (mlp_act); with a residual,
// out = residual + that (the decoder layer's add, rounded as ops/elementwise.h's add; residual is not out).
// With input_norm, `in` is that RMSNorm's input (BlockFusion; the caller checked the gate/up group takes small_m).
void mlp_block_forward(LayerWeights& W, LayerActs& A, const Tensor& in, Tensor& out, LayerRun& run,
                       const Tensor* residual = nullptr, const SmallMNorm* input_norm = nullptr);
// Only what mlp_block_backward reads: the gate and up projections (A.g, A.u, their adapters' products).
void mlp_block_gate_up_forward(LayerWeights& W, LayerActs& A, const Tensor& in, LayerRun& run);
void mlp_block_backward(LayerWeights& W, LayerActs& A, const Tensor& in, const Tensor& dout, Tensor& din,
                        LayerGrads& G, LayerRun& run);

// A family's decoder layer.
struct LayerCode {
  // x [N, C] -> out [N, C] (=). out may be x itself (inference keeps one residual buffer).
  void (*forward)(LayerWeights& W, LayerActs& A, const Tensor& x, Tensor& out, LayerRun& run);
  // G.dx: d loss / d out on entry, d loss / d x on return (training activations in A).
  void (*backward)(LayerWeights& W, LayerActs& A, LayerGrads& G, LayerRun& run);
  // Its RMSNorms write into LayerActs::xu of a folded group (alloc_adapter_products) when it is defined.
  bool folds_norm_fed_groups = false;
};

// x + attn(norm(x)) then + mlp(norm(.)): Qwen2, Qwen3, Llama, Mistral.
extern const LayerCode kPreNormLayer;

}  // namespace wick
