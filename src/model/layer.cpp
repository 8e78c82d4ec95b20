// The shared blocks and the pre-norm decoder layer (model/layer.h), as transformers' modeling_qwen2.py,
// modeling_qwen3.py, modeling_llama.py (and, for the blocks, modeling_gemma3.py) compute them.
#include "model/layer.h"

#include <algorithm>
#include <cmath>

#include "core/env.h"
#include "core/error.h"
#include "model/causal_lm.h"
#include "ops/elementwise.h"
#include "ops/small_m_linear.h"

namespace wick {

std::vector<ActSlot> layer_act_slots(const ModelConfig& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
  using L = LayerActs;
  std::vector<ActSlot> s = {
      {&L::x, C, ActKind::Act},   {&L::a, C, ActKind::Act},  {&L::rstd1, 1, ActKind::F32},
      {&L::q, Q, ActKind::Act},   {&L::k, KV, ActKind::Act}, {&L::v, KV, ActKind::Act},
      {&L::att, Q, ActKind::Act}, {&L::lse, c.num_heads, ActKind::PerHeadF32, /*training_only*/ true},
      {&L::h, C, ActKind::Act},   {&L::b, C, ActKind::Act},  {&L::rstd2, 1, ActKind::F32},
      {&L::g, I, ActKind::Act},   {&L::u, I, ActKind::Act},
      {&L::s, I, ActKind::Act, false, /*recomputed: mlp_block_backward*/ true},
  };
  if (c.qk_norm) {
    s.push_back({&L::qp, Q, ActKind::Act});
    s.push_back({&L::kp, KV, ActKind::Act});
    s.push_back({&L::rq, c.num_heads, ActKind::F32});
    s.push_back({&L::rk, c.num_kv_heads, ActKind::F32});
  }
  if (c.sandwich_norms) {
    s.push_back({&L::attn_out, C, ActKind::Act});
    s.push_back({&L::rstd3, 1, ActKind::F32});
    s.push_back({&L::mlp_out, C, ActKind::Act});
    s.push_back({&L::rstd4, 1, ActKind::F32});
  } else {  // the pre-norm layer (kPreNormLayer) reads these in its recompute: ActSlot::checkpoint_kept
    for (ActSlot& a : s)
      for (Tensor L::*m : {&L::q, &L::k, &L::v, &L::att, &L::lse, &L::qp, &L::kp, &L::rq, &L::rk})
        if (a.member == m) a.checkpoint_kept = true;
  }
  return s;
}

std::vector<GradSlot> layer_grad_slots(const ModelConfig& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
  using G = LayerGrads;
  std::vector<GradSlot> s = {{&G::dx, C}, {&G::dx2, C}, {&G::da, C},   {&G::dq, Q}, {&G::dk, KV},
                             {&G::dv, KV}, {&G::datt, Q}, {&G::dg, I}, {&G::du, I}, {&G::ds, I}};
  if (c.qk_norm) {
    s.push_back({&G::dqp, Q});
    s.push_back({&G::dkp, KV});
  }
  return s;
}

namespace {
Tensor alloc_slot(const ActSlot& s, int64_t B, int64_t T, DType dt, Device dev) {
  const int64_t N = B * T;
  if (s.kind == ActKind::Act) return Tensor::empty({N, s.cols}, dt, dev);
  if (s.kind == ActKind::F32) return Tensor::empty({N * s.cols}, DType::F32, dev);
  return Tensor::empty({B, s.cols, T}, DType::F32, dev);
}
}  // namespace

void alloc_layer_acts(LayerActs& A, const ModelConfig& c, int64_t B, int64_t T, DType dt, Device dev,
                      const LayerActs* share_recomputed, bool skip_kept) {
  for (const ActSlot& s : layer_act_slots(c)) {
    Tensor& t = A.*s.member;
    if (s.recomputed && share_recomputed) t = share_recomputed->*s.member;
    else if (skip_kept && s.checkpoint_kept) t = Tensor();
    else t = alloc_slot(s, B, T, dt, dev);
  }
}

void alloc_checkpointed_layer_acts(LayerActs& kept, const ModelConfig& c, int64_t B, int64_t T, DType dt, Device dev) {
  kept.x = Tensor::empty({B * T, c.hidden_size}, dt, dev);
  for (const ActSlot& s : layer_act_slots(c))
    if (s.checkpoint_kept) kept.*s.member = alloc_slot(s, B, T, dt, dev);
}

void use_checkpointed_layer_acts(LayerActs& work, const LayerActs& kept, const ModelConfig& c) {
  work.x = kept.x;
  for (int g = 0; g < kLoraGroups; g++) {
    work.adapter_u[g] = kept.adapter_u[g];
    work.xu[g] = kept.xu[g];
  }
  for (const ActSlot& s : layer_act_slots(c))
    if (s.checkpoint_kept) work.*s.member = kept.*s.member;
}

void alloc_layer_grads(LayerGrads& G, const ModelConfig& c, int64_t N, DType dt, Device dev) {
  for (const GradSlot& s : layer_grad_slots(c)) G.*s.member = Tensor::empty({N, s.cols}, dt, dev);
}

namespace {
enum { kQKV = 0, kO = 1, kGateUp = 2, kDown = 3 };  // LayerWeights::lora_groups

// The groups a layer may fold: those fed by an RMSNorm, with the slot holding their input when unfolded.
struct NormFedGroup {
  int group;
  Tensor LayerActs::*input;
};
constexpr NormFedGroup kNormFedGroups[] = {{kQKV, &LayerActs::a}, {kGateUp, &LayerActs::b}};

Tensor LayerActs::*norm_fed_input(int g) {
  for (const NormFedGroup& f : kNormFedGroups)
    if (f.group == g) return f.input;
  return nullptr;
}

// Whether t is [rows, cols] of dt on dev.
bool is(const Tensor& t, int64_t rows, int64_t cols, DType dt, Device dev) {
  return t.defined() && t.shape() == Shape{rows, cols} && t.dtype() == dt && t.device() == dev;
}
}  // namespace

bool is_norm_fed_group(int g) { return norm_fed_input(g) != nullptr; }

void alloc_adapter_products(LayerActs& A, LayerWeights& W, const LayerCode& code, const ModelConfig& c, int64_t N,
                            DType dt, Device dev, bool fold) {
  const auto groups = W.lora_groups();
  const int64_t C = c.hidden_size;
  for (int g = 0; g < kLoraGroups; g++) {
    const int64_t R = lora_group_rank(groups[g]);
    Tensor LayerActs::*input = norm_fed_input(g);
    Tensor& u = A.adapter_u[g];
    Tensor& xu = A.xu[g];
    if (fold && code.folds_norm_fed_groups && R > 0 && input) {
      if (!is(xu, N, C + R, dt, dev)) xu = Tensor::empty({N, C + R}, dt, dev);
      u = Tensor();
      A.*input = Tensor();
      continue;
    }
    if (xu.defined()) {  // folded before: the input slot comes back
      xu = Tensor();
      A.*input = Tensor::empty({N, C}, dt, dev);
    }
    if (R == 0) u = Tensor();
    else if (!is(u, N, R, dt, dev)) u = Tensor::empty({N, R}, dt, dev);
  }
}

RmsWeight rms_weight(const ModelConfig& c) { return c.norm_plus_one ? RmsWeight::OneOffset : RmsWeight::Scale; }

GluAct mlp_act(const ModelConfig& c) { return c.gelu_mlp ? GluAct::GeluTanh : GluAct::Silu; }

RopeFreqs layer_rope(const ModelConfig& c, int64_t layer) {
  if (c.is_sliding(layer)) return RopeFreqs(static_cast<float>(c.rope_local_theta));
  RopeFreqs f(static_cast<float>(c.rope_theta));
  const RopeScaling& s = c.rope_scaling;
  if (s.factor != 0) {
    f.factor = static_cast<float>(s.factor);
    f.linear = s.linear;
    f.low_freq_factor = static_cast<float>(s.low_freq_factor);
    f.high_freq_factor = static_cast<float>(s.high_freq_factor);
    f.original_max_position = static_cast<float>(s.original_max_position_embeddings);
  }
  return f;
}

AttentionArgs layer_attention_args(const ModelConfig& c, int64_t layer) {
  AttentionArgs a;
  a.scale = c.attention_scale();
  a.window = c.attention_window(layer);
  return a;
}

uint64_t LayerRun::dropout_mix(int j) const {
  return dropout ? static_cast<uint64_t>(layer * 7 + j + 1) : 0;
}

namespace {

// Group g of the layer (LayerWeights::lora_groups order) with its dropout mixes (none: no dropout; ops/dropout.h).
struct Group {
  std::vector<Linear*> linears;
  uint64_t mixes[3] = {0, 0, 0};
  bool dropout = false;
};

Group group(LayerWeights& W, int g, const LayerRun& run) {
  Group out;
  out.linears = W.lora_groups()[g];
  for (size_t i = 0; i < out.linears.size(); i++) {
    out.mixes[i] = run.dropout_mix(kLoraGroupFirst[g] + static_cast<int>(i));
    out.dropout = out.dropout || out.mixes[i] != 0;
  }
  return out;
}

// ys (=) the group's projections of x; the adapters' products into A.adapter_u[g] (training) or scratch.
// Over independent sequences (run.rows), each row's own adapter delta is added after.
// A folded group (A.xu[g] defined: alloc_adapter_products) reads its input from there, not x.
// input_norm: x is that RMSNorm's input, done in the small_m launch (BlockFusion).
void group_forward(LayerWeights& W, int g, LayerActs& A, const Tensor& x, const std::vector<Tensor*>& ys, LayerRun& run,
                   const SmallMNorm* input_norm = nullptr) {
  Group gr = group(W, g, run);
  if (A.xu[g].defined()) {
    WICK_CHECK(!input_norm, "group_forward: a folded group reads its normalised input from xu");
    folded_group_forward(gr.linears, A.xu[g], ys, *run.lin, gr.dropout ? gr.mixes : nullptr);
    return;
  }
  linear_group_forward(gr.linears, x, ys, A.adapter_u[g], *run.lin, gr.dropout ? gr.mixes : nullptr, run.inference,
                       input_norm);
  if (run.rows)
    for (size_t i = 0; i < ys.size(); i++) run.rows->add_adapters(run.layer, kLoraGroupFirst[g] + static_cast<int>(i), x, *ys[i]);
}

// dys -> dx (= or +=) and the adapters' dA, dB (+=), from x (or x given late: model/linear.h) and the saved
// products.
void group_backward(LayerWeights& W, int g, LayerActs& A, const std::vector<const Tensor*>& dys, const LateInput& x,
                    Tensor& dx, bool accumulate, LayerRun& run) {
  Group gr = group(W, g, run);
  if (A.xu[g].defined()) {
    folded_group_backward(gr.linears, dys, A.xu[g], dx, accumulate, *run.lin, gr.dropout ? gr.mixes : nullptr);
    return;
  }
  linear_group_backward(gr.linears, dys, x, A.adapter_u[g], dx, accumulate, *run.lin, gr.dropout ? gr.mixes : nullptr);
}
void group_backward(LayerWeights& W, int g, LayerActs& A, const std::vector<const Tensor*>& dys, const Tensor& x,
                    Tensor& dx, bool accumulate, LayerRun& run) {
  group_backward(W, g, A, dys, [&]() -> const Tensor& { return x; }, dx, accumulate, run);
}

// Inference over a few rows on CUDA (decode) through the small-row kernels called directly: no per-row adapters
// (run.rows adds them to the outputs), no debug hook, no recompute, and small_m_group's conditions (with
// adapters, `lr` then holds their terms and u is already queued, normalised by input_norm if given).
bool small_m_direct(LayerWeights& W, int g, const std::vector<Linear*>& ls, const Tensor& x, const Tensor& saved,
                    LayerRun& run, SmallMAdapters& lr, const SmallMNorm* input_norm = nullptr) {
  if (run.rows || run.hook || run.recompute) return false;
  const Group gr = group(W, g, run);
  return small_m_group(ls, x, saved, gr.dropout ? gr.mixes : nullptr, run.inference, *run.lin, lr, input_norm);
}

// out = l(x) (=) for the one-member group g, or with a residual out = residual + l(x), the decoder layer's add
// (rounded as ops/elementwise.h's add): on the small-row path (small_m_direct) the add is inside the projection's
// launch, else the group's forward, then the add.
void projection_with_residual(LayerWeights& W, int g, Linear& l, LayerActs& A, const Tensor& x, Tensor& out,
                              LayerRun& run, const Tensor* residual) {
  SmallMAdapters terms;
  if (residual && small_m_direct(W, g, {&l}, x, A.adapter_u[g], run, terms)) {
    SmallMOptions opt;
    opt.weights_settled = true;  // inference: the model's weights
    opt.residual = residual;
    // The layer's residual stream: o_proj's (the layer input) and down_proj's (h) were written two or more launches
    // before this one (attention, or gate/up, and any adapter launch sit between).
    opt.residual_settled = true;
    opt.low_rank = terms.terms.u ? &terms.terms : nullptr;
    small_m_linear(x, {&l.w}, {l.b.defined() ? &l.b : nullptr}, {&out}, opt);
    return;
  }
  group_forward(W, g, A, x, {&out}, run);
  run.emit(l.name, out);
  if (residual) add(out, *residual, out);
}

AttentionArgs attention_args(const LayerRun& run) {
  AttentionArgs a = layer_attention_args(*run.cfg, run.layer);
  a.segments = run.args.segments;
  a.kv_len = run.T;
  return a;
}

}  // namespace

void attention_block_forward(LayerWeights& W, LayerActs& A, const Tensor& in, Tensor& out, LayerRun& run,
                             const BlockFusion& fuse) {
  const ModelConfig& c = *run.cfg;
  const int64_t B = run.B, T = run.T, N = B * T, H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim, KV = c.kv_dim();
  const bool qk_norm = W.q_norm.defined();
  Tensor& q_raw = qk_norm ? A.qp : A.q;
  Tensor& k_raw = qk_norm ? A.kp : A.k;
  group_forward(W, kQKV, A, in, {&q_raw, &k_raw, &A.v}, run, fuse.input_norm);
  run.emit(W.q.name, q_raw);
  run.emit(W.k.name, k_raw);
  run.emit(W.v.name, A.v);
  if (qk_norm) {  // RMSNorm over each head's D values (Qwen3, Gemma 3), before RoPE
    const float eps = static_cast<float>(c.rms_norm_eps);
    Tensor qn = A.q.view({N * H, D}), kn = A.k.view({N * Hkv, D});
    rms_norm_forward(A.qp.view({N * H, D}), W.q_norm, eps, qn, A.rq, rms_weight(c));
    rms_norm_forward(A.kp.view({N * Hkv, D}), W.k_norm, eps, kn, A.rk, rms_weight(c));
  }
  Tensor q4 = A.q.view({B, T, H, D}), k4 = A.k.view({B, T, Hkv, D}), v4 = A.v.view({B, T, Hkv, D});
  const RopeFreqs rope = layer_rope(c, run.layer);
  KVCache* cache = run.rows ? nullptr : run.cache;
  AttentionArgs args = attention_args(run);
  Tensor att4 = A.att.view({B, T, H, D});
  Tensor* lse = A.lse.defined() ? &A.lse : nullptr;
  if (run.rows) {
    rope_forward_qk(q4, k4, run.positions, rope);
    run.rows->attend(run.layer, A.q, A.k, A.v, A.att);
  } else if (cache) {
    // Rotate q and k, append this step's k, v at their positions ([past, past + T) of every batch row), attend to
    // the cache: one launch for a decode step on CUDA (rope_cache_attention).
    const int64_t cap = cache->capacity();
    Tensor kc3 = cache->k(run.layer).view({B, cap, KV}), vc3 = cache->v(run.layer).view({B, cap, KV});
    if (run.positions_on_device) {
      args.kv_len = cap;
      args.positions = &run.positions;
    } else {
      args.kv_len = run.past + T;
    }
    rope_cache_attention(q4, k4, v4, run.positions, rope, kc3, vc3, args, att4, lse);
  } else {
    rope_forward_qk(q4, k4, run.positions, rope);
    attention_forward(q4, k4, v4, args, att4, lse);
  }
  projection_with_residual(W, kO, W.o, A, A.att, out, run, fuse.residual);
}

void attention_block_backward(LayerWeights& W, LayerActs& A, const Tensor& in, const Tensor& dout, Tensor& din,
                              LayerGrads& G, LayerRun& run) {
  const ModelConfig& c = *run.cfg;
  const int64_t B = run.B, T = run.T, N = B * T, H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  const bool qk_norm = W.q_norm.defined();
  group_backward(W, kO, A, {&dout}, A.att, G.datt, false, run);
  Tensor dq4 = G.dq.view({B, T, H, D}), dk4 = G.dk.view({B, T, Hkv, D}), dv4 = G.dv.view({B, T, Hkv, D});
  attention_backward(G.datt.view({B, T, H, D}), A.q.view({B, T, H, D}), A.k.view({B, T, Hkv, D}),
                     A.v.view({B, T, Hkv, D}), A.att.view({B, T, H, D}), A.lse, attention_args(run), dq4, dk4, dv4);
  const RopeFreqs rope = layer_rope(c, run.layer);
  rope_backward_qk(dq4, dk4, run.positions, rope);
  Tensor dq_raw = G.dq, dk_raw = G.dk;
  if (qk_norm) {
    Tensor dqp = G.dqp.view({N * H, D}), dkp = G.dkp.view({N * Hkv, D});
    rms_norm_backward(G.dq.view({N * H, D}), A.qp.view({N * H, D}), W.q_norm, A.rq, dqp, nullptr, rms_weight(c));
    rms_norm_backward(G.dk.view({N * Hkv, D}), A.kp.view({N * Hkv, D}), W.k_norm, A.rk, dkp, nullptr, rms_weight(c));
    dq_raw = G.dqp;
    dk_raw = G.dkp;
  }
  group_backward(W, kQKV, A, {&dq_raw, &dk_raw, &G.dv}, in, din, false, run);
}

void mlp_block_gate_up_forward(LayerWeights& W, LayerActs& A, const Tensor& in, LayerRun& run) {
  group_forward(W, kGateUp, A, in, {&A.g, &A.u}, run);
}

void mlp_block_forward(LayerWeights& W, LayerActs& A, const Tensor& in, Tensor& out, LayerRun& run,
                       const Tensor* residual, const SmallMNorm* input_norm) {
  // Decode on CUDA: gate, up and the GLU as one small_m_glu, which rounds g and u as A.g, A.u hold them, then
  // the GLU of glu_forward; A.g and A.u are not written (inference reads them nowhere else).
  SmallMAdapters gate_up;
  if (A.s.dtype() == in.dtype() &&
      small_m_direct(W, kGateUp, {&W.gate, &W.up}, in, A.adapter_u[kGateUp], run, gate_up, input_norm)) {
    SmallMOptions opt;
    opt.weights_settled = true;  // inference: the model's weights
    opt.low_rank = gate_up.terms.u ? &gate_up.terms : nullptr;
    opt.input_norm = input_norm;
    small_m_glu(in, W.gate.w, W.up.w, W.gate.b.defined() ? &W.gate.b : nullptr, W.up.b.defined() ? &W.up.b : nullptr,
                mlp_act(*run.cfg), A.s, opt);
  } else {
    WICK_CHECK(!input_norm, "mlp_block_forward: an input norm needs gate/up on the small_m path");
    mlp_block_gate_up_forward(W, A, in, run);
    glu_forward(A.g, A.u, mlp_act(*run.cfg), A.s);
  }
  projection_with_residual(W, kDown, W.down, A, A.s, out, run, residual);  // decode on CUDA: the add in its launch
}

// The GLU output s, the down projection's input, is not kept per layer (layer_act_slots marks it recomputed):
// the GLU backward writes it again, bit for bit, over its own input ds once the down projection's dx (= ds)
// is done, and the down adapter's dA reads it there (linear_group_backward's late x).
void mlp_block_backward(LayerWeights& W, LayerActs& A, const Tensor& in, const Tensor& dout, Tensor& din,
                        LayerGrads& G, LayerRun& run) {
  bool glu_done = false;
  const LateInput glu_back = [&]() -> const Tensor& {
    glu_backward(G.ds, A.g, A.u, mlp_act(*run.cfg), G.dg, G.du, &G.ds);
    glu_done = true;
    return G.ds;
  };
  group_backward(W, kDown, A, {&dout}, glu_back, G.ds, false, run);
  if (!glu_done) glu_back();  // no adapter on down_proj: nothing asked for s
  group_backward(W, kGateUp, A, {&G.dg, &G.du}, in, din, false, run);
}

namespace {
KernelSwitch g_norm_fusion("WICK_DECODE_NORM_FUSION", /*default_on*/ true);
}  // namespace
bool decode_norm_fusion() { return g_norm_fusion.on(); }
void set_decode_norm_fusion(bool on) { g_norm_fusion.set(on); }

namespace {

// Where the RMSNorm feeding group g writes: the first C columns of the group's K-concatenated buffer when the
// group is folded (its input slot is then undefined: the group reads xu), else the slot itself.
MatrixView norm_output(LayerActs& A, int g, Tensor& slot, int64_t C) {
  return A.xu[g].defined() ? MatrixView::columns(A.xu[g], 0, C) : MatrixView::whole(slot);
}

// Whether a decode step's layer runs its two RMSNorms inside the projection launches after them (q|k|v, gate/up)
// and the residual add after attention inside o_proj's launch (BlockFusion): 7 launches a layer become 5 (not the
// same bits: SmallMNorm). Needs every group it touches on the small_m path, unfolded, and no hook.
bool decode_fuses_norms(LayerWeights& W, LayerActs& A, const Tensor& x, LayerRun& run) {
  if (!decode_norm_fusion() || !run.inference || run.rows || run.hook || run.recompute || !x.device().is_cuda() ||
      x.ndim() != 2 || !small_m_rows(x.dim(0)) || A.xu[kQKV].defined() || A.xu[kGateUp].defined() ||
      A.s.dtype() != x.dtype() || W.input_norm.dtype() != x.dtype() || W.post_norm.dtype() != x.dtype())
    return false;
  for (int g : {kQKV, kO, kGateUp}) {
    const Group gr = group(W, g, run);
    const Tensor& in = g == kO ? A.att : x;  // o_proj reads the attention output (gate/up: h, x's shape and dtype)
    if (!small_m_takes(gr.linears, in, A.adapter_u[g], gr.dropout ? gr.mixes : nullptr, run.inference)) return false;
  }
  return true;
}

// h = x + attn(rms(x)); out = h + mlp(rms(h)).
void pre_norm_forward(LayerWeights& W, LayerActs& A, const Tensor& x, Tensor& out, LayerRun& run) {
  const float eps = static_cast<float>(run.cfg->rms_norm_eps);
  const RmsWeight kind = rms_weight(*run.cfg);
  const int64_t C = run.cfg->hidden_size;
  if (decode_fuses_norms(W, A, x, run)) {
    const SmallMNorm input_norm{&W.input_norm, eps, kind}, post_norm{&W.post_norm, eps, kind};
    attention_block_forward(W, A, x, A.h, run, {&input_norm, &x});   // h = x + attn(rms(x))
    mlp_block_forward(W, A, A.h, out, run, &A.h, &post_norm);        // out = h + mlp(rms(h))
    return;
  }
  const std::string p = run.hook ? run.prefix() : std::string();
  if (run.recompute) {
    // Checkpointing kept this layer's attention results (ActSlot::checkpoint_kept: q, k, v, att, lse): the
    // backward still reads the two norms' outputs and rstd, the residual h and the gate/up projections, so
    // those run again: h = x + o_proj(att) as the forward made it (the o projection, its adapter product
    // rewritten with the same bits, and add_rms_norm_forward), bit for bit.
    rms_norm_forward(x, W.input_norm, eps, norm_output(A, kQKV, A.a, C), A.rstd1, kind);
    group_forward(W, kO, A, A.att, {&A.h}, run);
    add_rms_norm_forward(A.h, x, W.post_norm, eps, A.h, norm_output(A, kGateUp, A.b, C), A.rstd2, kind);
    mlp_block_gate_up_forward(W, A, A.b, run);
    return;
  }
  rms_norm_forward(x, W.input_norm, eps, norm_output(A, kQKV, A.a, C), A.rstd1, kind);
  run.emit(p + "input_layernorm", A.a);
  attention_block_forward(W, A, A.a, A.h, run);
  add_rms_norm_forward(A.h, x, W.post_norm, eps, A.h, norm_output(A, kGateUp, A.b, C), A.rstd2, kind);
  run.emit(p + "post_attention_layernorm", A.b);
  mlp_block_forward(W, A, A.b, out, run, &A.h);  // out = h + mlp(b); out may be x: x is not read again
  if (run.hook) run.emit(p.substr(0, p.size() - 1), out);
}

void pre_norm_backward(LayerWeights& W, LayerActs& A, LayerGrads& G, LayerRun& run) {
  const RmsWeight kind = rms_weight(*run.cfg);
  mlp_block_backward(W, A, A.b, G.dx, G.da, G, run);
  rms_norm_backward(G.da, A.h, W.post_norm, A.rstd2, G.dx, nullptr, kind, /*accumulate*/ true);  // d loss / d h
  attention_block_backward(W, A, A.a, G.dx, G.da, G, run);
  rms_norm_backward(G.da, A.x, W.input_norm, A.rstd1, G.dx, nullptr, kind, /*accumulate*/ true);  // d loss / d x
}

}  // namespace

const LayerCode kPreNormLayer = {pre_norm_forward, pre_norm_backward, /*folds_norm_fed_groups*/ true};

}  // namespace wick
