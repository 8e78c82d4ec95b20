#include "model/loss_and_grads.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
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
  std::vector<LayerActs> layers;             // saved activations, one set per layer
  LayerGrads grads;                          // one layer's gradient buffers
  Tensor x_final, f, rstd_f;                 // [N, C], [N, C], [N]
  Tensor ids, targets, positions, segments;  // device copies
  Tensor losses, lse_rows;                   // [N] f32
  Tensor logits;                             // [chunk, V] f32
  Tensor logits16;                           // [chunk, V] bf16: dlogits for the bf16 GEMM
  Tensor x32;                                // [N, max(C, Q, I)] f32 (bf16 mode: adapter inputs)
  LinearScratch lin;
};

LossAndGrads::LossAndGrads(CausalLM& model) : m_(model), buf_(std::make_unique<Buffers>()) {}
LossAndGrads::~LossAndGrads() = default;

namespace {

Tensor dev_i32(const Tensor& host, Device dev) {
  WICK_CHECK(host.dtype() == DType::I32, "train batch tensors must be i32, got " << host.str());
  return host.to(dev);
}

}  // namespace

LossSum LossAndGrads::step(const TrainBatch& batch, float grad_scale, uint64_t dropout_seed) {
  const ModelConfig& c = m_.config();
  const Device dev = m_.device();
  const DType dt = m_.dtype();
  if (batch.ids.ndim() != 2 || batch.targets.shape() != batch.ids.shape())
    throw Error("train batch: ids " + batch.ids.str() + " and targets " + batch.targets.str() + " must both be [B, T]");
  const int64_t B = batch.ids.dim(0), T = batch.ids.dim(1), N = B * T;
  const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), V = c.vocab_size;
  if (T > c.max_position_embeddings)
    throw Error("sequence length " + std::to_string(T) + " exceeds max_position_embeddings " +
                std::to_string(c.max_position_embeddings), "", "lower --max-seq-len");
  const bool training = grad_scale != 0.0f;
  Buffers& bf = *buf_;
  const std::vector<Linear*> linears = m_.all_linears();

  // Rank of every adapter, to size the saved u's.
  int64_t max_rank = 0;
  for (Linear* l : linears) max_rank = std::max(max_rank, l->lora.rank());

  if (bf.B != B || bf.T != T) {
    bf = Buffers{};
    bf.B = B;
    bf.T = T;
    auto E = [&](const Shape& s, DType t = DType::F32) { return Tensor::empty(s, t, dev); };
    bf.layers.resize(static_cast<size_t>(c.num_layers));
    for (LayerActs& A : bf.layers) alloc_layer_acts(A, c, B, T, dt, dev);
    alloc_layer_grads(bf.grads, c, N, dt, dev);
    bf.x_final = E({N, C}, dt);
    bf.f = E({N, C}, dt);
    bf.rstd_f = E({N});
    bf.losses = E({N});
    bf.lse_rows = E({N});
    bf.logits = E({std::min(N, loss_chunk_), V});
    if (dt != DType::F32) bf.logits16 = E({std::min(N, loss_chunk_), V}, dt);
    if (dt != DType::F32) bf.x32 = E({N * std::max({C, Q, I})});
  }
  // f32 scratch of the adapter path: needed in bf16 mode, and for dropout in any mode.
  bool dropout = false;
  for (Linear* l : linears) dropout = dropout || (l->lora.active() && l->lora.dropout > 0.0f);
  if (!training) dropout = false;
  {
    const int64_t W = N * std::max({C, Q, I});
    if ((dt != DType::F32 || dropout) && !bf.lin.a32.defined()) {
      bf.lin.a32 = Tensor::empty({W}, DType::F32, dev);
      bf.lin.b32 = Tensor::empty({W}, DType::F32, dev);
    }
    if (dropout && !bf.lin.d32.defined()) bf.lin.d32 = Tensor::empty({W}, DType::F32, dev);
  }
  // Adapter buffers depend on ranks, which can change between steps (attach/detach).
  if (max_rank > 0 && (!bf.lin.r32.defined() || bf.lin.r32.numel() < N * max_rank)) bf.lin.r32 = Tensor::empty({N * max_rank}, DType::F32, dev);
  for (int64_t l = 0; l < c.num_layers; l++) {
    auto lin = m_.layers()[l].linears();
    for (int j = 0; j < 7; j++) {
      const int64_t r = lin[j]->lora.rank();
      Tensor& u = bf.layers[l].lu[j];
      if (r == 0) u = Tensor();
      else if (!u.defined() || u.dim(1) != r) u = Tensor::empty({N, r}, DType::F32, dev);
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

  const float eps = static_cast<float>(c.rms_norm_eps);
  LayerRun run;
  run.cfg = &c;
  run.B = B;
  run.T = T;
  run.positions = bf.positions;
  run.rope = m_.rope();
  run.args.segments = bf.segments.defined() ? &bf.segments : nullptr;
  run.dropout = dropout;
  run.dropout_seed = dropout_seed;
  run.x32 = bf.x32;
  run.lin = &bf.lin;
  const LayerCode& code = *m_.family().layer;

  // ---- forward ----
  Tensor x = bf.layers.empty() ? bf.x_final : bf.layers[0].x;
  embedding_forward(bf.ids, m_.embed(), x);
  for (int64_t li = 0; li < c.num_layers; li++) {
    run.layer = li;
    LayerActs& A = bf.layers[li];
    Tensor& next = li + 1 < c.num_layers ? bf.layers[li + 1].x : bf.x_final;
    code.forward(m_.layers()[li], A, A.x, next, run);
  }
  rms_norm_forward(bf.x_final, m_.final_norm(), eps, bf.f, bf.rstd_f);

  // ---- loss (and its gradient into the final hidden state), in row chunks ----
  Tensor df = bf.grads.da;  // [N, C] gradient wrt f
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
  rms_norm_backward(df, bf.x_final, m_.final_norm(), bf.rstd_f, bf.grads.dx, nullptr);
  for (int64_t li = c.num_layers - 1; li >= 0; li--) {
    run.layer = li;
    code.backward(m_.layers()[li], bf.layers[li], bf.grads, run);
    if (layer_hook_) layer_hook_(li);
  }
  return out;
}

}  // namespace wick
