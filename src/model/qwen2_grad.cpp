#include "model/qwen2_grad.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"
#include "model/forward_workspace.h"
#include "ops/attention.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"

namespace wick {

int64_t TrainBatch::counted() const {
  const int32_t* t = targets.data<int32_t>();
  int64_t n = 0;
  for (int64_t i = 0; i < targets.numel(); i++) n += t[i] != kIgnoreIndex;
  return n;
}

// Saved activations of one decoder layer (compute dtype unless noted). Shapes for N = B*T rows.
struct LayerActs {
  Tensor x;              // [N, C]  layer input (residual stream)
  Tensor a, rstd1;       // [N, C], [N] f32: input_layernorm out
  Tensor q, k, v;        // [N, Q], [N, KV], [N, KV]: q, k after RoPE
  Tensor att, lse;       // [N, Q], [B, H, T] f32
  Tensor h;              // [N, C]  after the attention residual
  Tensor b, rstd2;       // [N, C], [N] f32: post_attention_layernorm out
  Tensor g, u, s;        // [N, I]: gate, up, silu(gate) * up
  Tensor lu[4];          // adapter products per input group (q k v | o | gate up | down): [sum r, N] (linear.h)
};

struct Qwen2Grad::Buffers {
  int64_t B = 0, T = 0;
  std::vector<LayerActs> layers;
  Tensor x_final, f, rstd_f;            // [N, C], [N, C], [N]
  Tensor ids, targets, positions, segments;  // device copies
  Tensor losses, lse_rows;              // [N] f32
  Tensor logits;                        // [chunk, V] f32
  Tensor logits16;                      // [chunk, V] bf16: dlogits for the bf16 GEMM
  // Gradient buffers [N, *] in the compute dtype.
  Tensor dx, dx2, da, dq, dk, dv, datt, dg, du, ds;
  LinearScratch lin;
};

Qwen2Grad::Qwen2Grad(Qwen2Model& model) : m_(model), buf_(std::make_unique<Buffers>()) {}
Qwen2Grad::~Qwen2Grad() = default;

namespace {

Tensor dev_i32(const Tensor& host, Device dev) {
  WICK_CHECK(host.dtype() == DType::I32, "train batch tensors must be i32, got " << host.str());
  return host.to(dev);
}

}  // namespace

LossSum Qwen2Grad::step(const TrainBatch& batch, float grad_scale, uint64_t dropout_seed) {
  const ModelConfig& c = m_.config();
  const Device dev = m_.device();
  const DType dt = m_.dtype();
  if (batch.ids.ndim() != 2 || batch.targets.shape() != batch.ids.shape())
    throw Error("train batch: ids " + batch.ids.str() + " and targets " + batch.targets.str() + " must both be [B, T]");
  const int64_t B = batch.ids.dim(0), T = batch.ids.dim(1), N = B * T;
  const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim(), V = c.vocab_size;
  const int64_t H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  if (T > c.max_position_embeddings)
    throw Error("sequence length " + std::to_string(T) + " exceeds max_position_embeddings " +
                std::to_string(c.max_position_embeddings), "", "lower --max-seq-len");
  const bool training = grad_scale != 0.0f;
  Buffers& bf = *buf_;

  if (bf.B != B || bf.T != T) {
    bf = Buffers{};
    bf.B = B;
    bf.T = T;
    auto E = [&](const Shape& s, DType t = DType::F32) { return Tensor::empty(s, t, dev); };
    for (int64_t l = 0; l < c.num_layers; l++) {
      LayerActs L;
      L.x = E({N, C}, dt);
      L.a = E({N, C}, dt);
      L.rstd1 = E({N});
      L.q = E({N, Q}, dt);
      L.k = E({N, KV}, dt);
      L.v = E({N, KV}, dt);
      L.att = E({N, Q}, dt);
      L.lse = E({B, H, T});
      L.h = E({N, C}, dt);
      L.b = E({N, C}, dt);
      L.rstd2 = E({N});
      L.g = E({N, I}, dt);
      L.u = E({N, I}, dt);
      L.s = E({N, I}, dt);
      bf.layers.push_back(std::move(L));
    }
    bf.x_final = E({N, C}, dt);
    bf.f = E({N, C}, dt);
    bf.rstd_f = E({N});
    bf.losses = E({N});
    bf.lse_rows = E({N});
    bf.logits = E({std::min(N, loss_chunk_), V});
    if (dt != DType::F32) bf.logits16 = E({std::min(N, loss_chunk_), V}, dt);
    bf.dx = E({N, C}, dt);
    bf.dx2 = E({N, C}, dt);
    bf.da = E({N, C}, dt);
    bf.dq = E({N, Q}, dt);
    bf.dk = E({N, KV}, dt);
    bf.dv = E({N, KV}, dt);
    bf.datt = E({N, Q}, dt);
    bf.dg = E({N, I}, dt);
    bf.du = E({N, I}, dt);
    bf.ds = E({N, I}, dt);
  }
  // The adapter path's scratch (bf.lin) grows on demand.
  bool dropout = false;
  for (Linear* l : m_.all_linears()) dropout = dropout || (l->lora.active() && l->lora.dropout > 0.0f);
  if (!training) dropout = false;
  // Per-linear dropout seeds: a pure function of the micro-batch seed, the layer and the projection.
  auto seed_of = [&](int64_t layer, int j) -> uint64_t {
    if (!dropout || dropout_seed == 0) return 0;
    return dropout_seed * 0x100000001b3ULL + static_cast<uint64_t>(layer * 7 + j + 1);
  };
  // Adapter buffers depend on ranks, which can change between steps (attach/detach).
  for (int64_t l = 0; l < c.num_layers; l++) {
    DecoderLayer& W = m_.layers()[l];
    const std::vector<Linear*> groups[4] = {{&W.q, &W.k, &W.v}, {&W.o}, {&W.gate, &W.up}, {&W.down}};
    for (int j = 0; j < 4; j++) {
      const int64_t R = lora_group_rank(groups[j]);
      Tensor& u = bf.layers[l].lu[j];
      if (R == 0) u = Tensor();
      else if (!u.defined() || u.shape() != Shape{R, N} || u.dtype() != dt) u = Tensor::empty({R, N}, dt, dev);
    }
  }

  bf.ids = dev_i32(batch.ids, dev).view({N});
  bf.targets = dev_i32(batch.targets, dev).view({N});
  if (batch.positions.defined()) {
    bf.positions = dev_i32(batch.positions, dev);
  } else {
    std::vector<int32_t> p(N);
    for (int64_t i = 0; i < N; i++) p[i] = static_cast<int32_t>(i % T);
    bf.positions = Tensor::from_i32(p, {B, T}, dev);
  }
  bf.segments = batch.segments.defined() ? dev_i32(batch.segments, dev) : Tensor();

  const float eps = static_cast<float>(c.rms_norm_eps), theta = static_cast<float>(c.rope_theta);
  AttentionArgs args;
  args.scale = 1.0f / std::sqrt(static_cast<float>(D));
  args.kv_len = T;
  args.segments = bf.segments.defined() ? &bf.segments : nullptr;

  // Dropout seeds of the linears j0, j0 + 1, ... of the current layer (q k v o gate up down = 0..6).
  int64_t cur_layer = 0;
  auto seeds = [&](int j0) {
    std::array<uint64_t, 3> s{};
    for (int i = 0; i < 3 && j0 + i < 7; i++) s[i] = seed_of(cur_layer, j0 + i);
    return s;
  };

  // ---- forward ----
  Tensor x = bf.layers.empty() ? bf.x_final : bf.layers[0].x;
  embedding_forward(bf.ids, m_.embed(), x);
  for (int64_t li = 0; li < c.num_layers; li++) {
    DecoderLayer& W = m_.layers()[li];
    LayerActs& A = bf.layers[li];
    cur_layer = li;
    rms_norm_forward(A.x, W.input_norm, eps, A.a, A.rstd1);
    linear_group_forward({&W.q, &W.k, &W.v}, A.a, {&A.q, &A.k, &A.v}, A.lu[0], bf.lin, seeds(0).data());
    Tensor q4 = A.q.view({B, T, H, D}), k4 = A.k.view({B, T, Hkv, D});
    rope_forward(q4, bf.positions, theta, q4);
    rope_forward(k4, bf.positions, theta, k4);
    Tensor att4 = A.att.view({B, T, H, D});
    attention_forward(q4, k4, A.v.view({B, T, Hkv, D}), args, att4, &A.lse);
    linear_group_forward({&W.o}, A.att, {&A.h}, A.lu[1], bf.lin, seeds(3).data());
    add(A.h, A.x, A.h);
    rms_norm_forward(A.h, W.post_norm, eps, A.b, A.rstd2);
    linear_group_forward({&W.gate, &W.up}, A.b, {&A.g, &A.u}, A.lu[2], bf.lin, seeds(4).data());
    swiglu_forward(A.g, A.u, A.s);
    Tensor& next = li + 1 < c.num_layers ? bf.layers[li + 1].x : bf.x_final;
    linear_group_forward({&W.down}, A.s, {&next}, A.lu[3], bf.lin, seeds(6).data());
    add(next, A.h, next);
  }
  rms_norm_forward(bf.x_final, m_.final_norm(), eps, bf.f, bf.rstd_f);

  // ---- loss (and its gradient into the final hidden state), in row chunks ----
  Tensor df = bf.da;  // [N, C] gradient wrt f
  for (int64_t r0 = 0; r0 < N; r0 += loss_chunk_) {
    const int64_t R = std::min(loss_chunk_, N - r0);
    Tensor logits = bf.logits.narrow0(0, R);
    matmul(bf.f.narrow0(r0, R), m_.lm_head(), logits, false, true);
    Tensor tg = bf.targets.narrow0(r0, R), ls = bf.losses.narrow0(r0, R), lse = bf.lse_rows.narrow0(r0, R);
    cross_entropy_forward(logits, tg, ls, lse);
    if (training) {
      cross_entropy_backward(logits, tg, lse, grad_scale, logits);
      Tensor dfr = df.narrow0(r0, R);
      Tensor dl = logits;
      if (dt != DType::F32) {  // bf16 GEMM: the gradient of the logits in bf16, as torch's bf16 lm_head sees it
        dl = bf.logits16.narrow0(0, R);
        cast(logits, dl);
      }
      matmul(dl, m_.lm_head(), dfr, false, false);  // [R, V] x [V, C]
    }
  }
  LossSum out;
  {
    const std::vector<float> l = bf.losses.to_f32_vector();
    const std::vector<int64_t> t = bf.targets.to_i64_vector();
    for (int64_t i = 0; i < N; i++)
      if (t[i] != kIgnoreIndex) {
        out.sum += l[i];
        out.count++;
      }
  }
  if (!training) return out;

  // ---- backward ----
  Tensor& dx = bf.dx;  // gradient wrt the residual stream at the current depth
  rms_norm_backward(df, bf.x_final, m_.final_norm(), bf.rstd_f, dx, nullptr);
  for (int64_t li = c.num_layers - 1; li >= 0; li--) {
    DecoderLayer& W = m_.layers()[li];
    LayerActs& A = bf.layers[li];
    cur_layer = li;
    // MLP: next = h + down(swiglu(gate(b), up(b))), b = rms(h)
    linear_group_backward({&W.down}, {&dx}, A.s, A.lu[3], bf.ds, false, bf.lin, seeds(6).data());
    swiglu_backward(bf.ds, A.g, A.u, bf.dg, bf.du);
    linear_group_backward({&W.gate, &W.up}, {&bf.dg, &bf.du}, A.b, A.lu[2], bf.da, false, bf.lin, seeds(4).data());
    rms_norm_backward(bf.da, A.h, W.post_norm, A.rstd2, bf.dx2, nullptr);
    add(dx, bf.dx2, dx);  // dx is now d loss / d h
    // Attention: h = x + o(attn(rope(q(a)), rope(k(a)), v(a))), a = rms(x)
    linear_group_backward({&W.o}, {&dx}, A.att, A.lu[1], bf.datt, false, bf.lin, seeds(3).data());
    Tensor dq4 = bf.dq.view({B, T, H, D}), dk4 = bf.dk.view({B, T, Hkv, D}), dv4 = bf.dv.view({B, T, Hkv, D});
    attention_backward(bf.datt.view({B, T, H, D}), A.q.view({B, T, H, D}), A.k.view({B, T, Hkv, D}),
                       A.v.view({B, T, Hkv, D}), A.att.view({B, T, H, D}), A.lse, args, dq4, dk4, dv4);
    rope_backward(dq4, bf.positions, theta, dq4);
    rope_backward(dk4, bf.positions, theta, dk4);
    linear_group_backward({&W.q, &W.k, &W.v}, {&bf.dq, &bf.dk, &bf.dv}, A.a, A.lu[0], bf.da, false, bf.lin,
                          seeds(0).data());
    rms_norm_backward(bf.da, A.x, W.input_norm, A.rstd1, bf.dx2, nullptr);
    add(dx, bf.dx2, dx);  // d loss / d x (layer input)
  }
  return out;
}

}  // namespace wick
