// CausalLM's inference forward (optionally with a KV cache): embeddings, the family's layer in inference
// mode over one shared set of buffers, the final norm, lm_head.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/causal_lm.h"
#include "model/forward_workspace.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/small_m_linear.h"

namespace wick {

namespace {

// logits [R, V] f32 (=) rows [R, C] lm_head^T: at most kSmallMMaxRows rows on CUDA (decode) as one
// small_m_linear (bf16 rows and weights, f32 logits: f32 sums rounded once to f32, as the GEMM), else the GEMM.
void lm_head_forward(const Tensor& rows, const Tensor& w, Tensor& logits) {
  if (small_m_enabled() && rows.device().is_cuda() && small_m_rows(rows.dim(0)) && w.dtype() == rows.dtype()) {
    SmallMOptions opt;
    opt.weights_settled = true;  // the model's lm_head (the final norm ran just before)
    small_m_linear(rows, {&w}, {}, {&logits}, opt);
  } else {
    matmul(rows, w, logits, false, true);
  }
}

}  // namespace

Tensor rows_view(const Tensor& buf, int64_t rows, int64_t cols) {
  WICK_CHECK(buf.defined() && buf.numel() >= rows * cols, "buffer too small for [" << rows << ", " << cols << "]");
  return buf.view({buf.numel()}).narrow0(0, rows * cols).view({rows, cols});
}

void ForwardWorkspace::reserve(const ModelConfig& c, Device dev, DType dt, int64_t n, int64_t rows) {
  const int64_t C = c.hidden_size, V = c.vocab_size;
  if (n > cap_n) {
    cap_n = std::max(n, cap_n * 2);
    const int64_t N = cap_n;
    slots.clear();
    flat.clear();
    for (const ActSlot& s : layer_act_slots(c)) {
      if (s.training_only) continue;
      slots.push_back(s);
      flat.push_back(Tensor::empty({N * s.cols}, s.kind == ActKind::Act ? dt : DType::F32, dev));
    }
    positions = Tensor::empty({N}, DType::I32, dev);
    ids = Tensor::empty({N}, DType::I32, dev);
    last = Tensor::empty({N * C}, dt, dev);
    lin = LinearScratch{};
  }
  if (rows > cap_rows) {
    cap_rows = std::max(rows, cap_rows * 2);
    logits = Tensor::empty({cap_rows * V}, DType::F32, dev);
  }
}

LayerActs ForwardWorkspace::acts(int64_t N) const {
  LayerActs A;
  for (size_t i = 0; i < slots.size(); i++)
    A.*slots[i].member = slots[i].kind == ActKind::Act ? rows_view(flat[i], N, slots[i].cols) : flat[i].narrow0(0, N * slots[i].cols);
  return A;
}

Tensor CausalLM::forward_hidden(const Tensor& ids_in, KVCache* cache, const DebugHook* hook) {
  const ModelConfig& c = cfg_;
  if (ids_in.ndim() != 2) throw Error("input ids must be [batch, tokens], got " + ids_in.str());
  const int64_t B = ids_in.dim(0), T = ids_in.dim(1), N = B * T;
  if (T == 0) throw Error("no input tokens");
  const int64_t past = cache ? cache->length() : 0;
  if (cache) {
    if (cache->batch() != B) throw Error("KV cache batch " + std::to_string(cache->batch()) + " != input batch " + std::to_string(B));
    if (past + T > cache->capacity())
      throw Error("sequence of " + std::to_string(past + T) + " tokens exceeds the KV cache capacity " +
                  std::to_string(cache->capacity()), "", "raise the context length (max new tokens + prompt)");
  }
  if (past + T > c.max_position_embeddings)
    throw Error("sequence of " + std::to_string(past + T) + " tokens exceeds max_position_embeddings " +
                std::to_string(c.max_position_embeddings));

  if (!ws_) ws_ = std::make_unique<ForwardWorkspace>();
  ForwardWorkspace& ws = *ws_;
  ws.reserve(c, device_, dtype_, N, 0);

  // ids and positions to the device.
  Tensor ids = ws.ids.narrow0(0, N);
  if (ids_in.dtype() == DType::I32) ids.copy_from(ids_in.view({N}));
  else ids.copy_from(ids_in.to(Device::cpu()).to(DType::I32).view({N}));
  ws.host_positions.resize(N);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) ws.host_positions[b * T + t] = static_cast<int32_t>(past + t);
  Tensor pos = ws.positions.narrow0(0, N);
  device_copy(pos.raw(), device_, ws.host_positions.data(), Device::cpu(), N * sizeof(int32_t));

  Tensor h = layers_forward(ids, pos.view({B, T}), B, T, cache, past, false, hook);
  if (cache) cache->advance(T);
  return h;
}

// Embeddings, every layer in inference mode over ws's shared activations, the final norm -> [B, T, C] (a view of
// ws). positions [B, T] i32 on the device; positions_on_device: LayerRun::positions_on_device (past unused).
Tensor CausalLM::layers_forward(const Tensor& ids, const Tensor& positions, int64_t B, int64_t T, KVCache* cache,
                                int64_t past, bool positions_on_device, const DebugHook* hook) {
  ForwardWorkspace& ws = *ws_;
  LayerRun run;
  run.cfg = &cfg_;
  run.B = B;
  run.T = T;
  run.positions = positions;
  run.cache = cache;
  run.past = past;
  run.positions_on_device = positions_on_device;
  run.lin = &ws.lin;
  run.hook = hook;
  run.inference = true;

  LayerActs A = ws.acts(B * T);
  Tensor& x = A.x;  // the residual stream: every layer reads and writes it in place
  embed_tokens(ids, x);
  run.emit("model.embed_tokens", x);
  for (size_t li = 0; li < w_.layers.size(); li++) {
    run.layer = static_cast<int64_t>(li);
    family_->layer->forward(w_.layers[li], A, x, x, run);
  }
  final_norm_forward(x, A.a, A.rstd1);
  run.emit("model.norm", A.a);
  return A.a.view({B, T, cfg_.hidden_size});
}

Tensor CausalLM::decode_step(const Tensor& ids, const Tensor& positions, KVCache& cache, bool adapters_unchanged) {
  const int64_t B = cache.batch(), C = cfg_.hidden_size, V = cfg_.vocab_size;
  for (const Tensor* t : {&ids, &positions})
    if (t->dtype() != DType::I32 || t->ndim() != 1 || t->dim(0) != B || t->device() != device_)
      throw Error("decode_step: ids and positions must be [" + std::to_string(B) + "] i32 on " + device_.str() + ", got " +
                  t->str());
  if (!ws_) ws_ = std::make_unique<ForwardWorkspace>();
  ForwardWorkspace& ws = *ws_;
  ws.reserve(cfg_, device_, dtype_, B, B);
  // For this step only: a forward after it (a prefill after the adapters changed, say) casts them again.
  struct AdaptersCurrent {
    bool& flag;
    ~AdaptersCurrent() { flag = false; }
  } current{ws.lin.adapters_current};
  ws.lin.adapters_current = adapters_unchanged;
  Tensor h = layers_forward(ids, positions.view({B, 1}), B, 1, &cache, 0, true, nullptr);
  Tensor logits = rows_view(ws.logits, B, V);
  lm_head_forward(h.view({B, C}), w_.lm_head, logits);
  return logits;
}

Tensor CausalLM::forward(const Tensor& ids, KVCache* cache, bool last_only, const DebugHook* hook) {
  Tensor h = forward_hidden(ids, cache, hook);
  const int64_t B = h.dim(0), T = h.dim(1), C = h.dim(2), V = cfg_.vocab_size;
  ForwardWorkspace& ws = *ws_;
  Tensor rows = h.view({B * T, C});
  int64_t R = B * T;
  if (last_only && T > 1) {
    R = B;
    Tensor last = rows_view(ws.last, B, C);
    for (int64_t b = 0; b < B; b++) last.narrow0(b, 1).copy_from(rows.narrow0(b * T + T - 1, 1));
    rows = last;
  }
  ws.reserve(cfg_, device_, dtype_, 0, R);
  Tensor logits = rows_view(ws.logits, R, V);
  lm_head_forward(rows, w_.lm_head, logits);
  if (hook) (*hook)("lm_head", logits);
  return logits.view({B, last_only ? 1 : T, V});
}

}  // namespace wick
