// Qwen2 inference forward (optionally with a KV cache), as modeling_qwen2.py computes it.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/forward_workspace.h"
#include "model/qwen2.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"

namespace wick {

Tensor rows_view(const Tensor& buf, int64_t rows, int64_t cols) {
  WICK_CHECK(buf.defined() && buf.numel() >= rows * cols, "buffer too small for [" << rows << ", " << cols << "]");
  return buf.view({buf.numel()}).narrow0(0, rows * cols).view({rows, cols});
}

void ForwardWorkspace::reserve(const ModelConfig& c, Device dev, DType dt, int64_t n, int64_t rows, bool lora) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim(), V = c.vocab_size;
  if (n > cap_n) {
    cap_n = std::max(n, cap_n * 2);
    const int64_t N = cap_n;
    x = Tensor::empty({N * C}, dt, dev);
    a = Tensor::empty({N * C}, dt, dev);
    q = Tensor::empty({N * Q}, dt, dev);
    k = Tensor::empty({N * KV}, dt, dev);
    v = Tensor::empty({N * KV}, dt, dev);
    att = Tensor::empty({N * Q}, dt, dev);
    tmp = Tensor::empty({N * C}, dt, dev);
    g = Tensor::empty({N * I}, dt, dev);
    u = Tensor::empty({N * I}, dt, dev);
    s = Tensor::empty({N * I}, dt, dev);
    rstd = Tensor::empty({N}, DType::F32, dev);
    positions = Tensor::empty({N}, DType::I32, dev);
    ids = Tensor::empty({N}, DType::I32, dev);
    last = Tensor::empty({N * C}, dt, dev);
    a32 = Tensor();
    lin = LinearScratch{};
  }
  if (rows > cap_rows) {
    cap_rows = std::max(rows, cap_rows * 2);
    logits = Tensor::empty({cap_rows * V}, DType::F32, dev);
  }
  if (lora && !lin.r32.defined()) {
    const int64_t N = cap_n;  // bf16 adapters read x itself; their scratch grows in linear.cpp
    lin.r32 = Tensor::empty({N * 1024}, DType::F32, dev);  // ranks up to 1024
  }
}

namespace {

bool any_lora(DecoderLayer& L) {
  for (Linear* l : L.linears())
    if (l->lora.active()) return true;
  return false;
}

// x32 for the adapters: x itself (bf16 adapters read the bf16 x; model/linear.h).
Tensor adapter_input(const Tensor& x, ForwardWorkspace&) { return x; }

void run_linear(Linear& l, const Tensor& x, const Tensor& x32, Tensor& y, ForwardWorkspace& ws) {
  linear_forward(l, x, x32, y, nullptr, ws.lin);
}

}  // namespace

Tensor Qwen2Model::forward_hidden(const Tensor& ids_in, KVCache* cache, const DebugHook* hook) {
  const ModelConfig& c = cfg_;
  if (ids_in.ndim() != 2) throw Error("input ids must be [batch, tokens], got " + ids_in.str());
  const int64_t B = ids_in.dim(0), T = ids_in.dim(1), N = B * T;
  const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
  const int64_t H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
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

  bool lora = false;
  for (auto& L : layers_) lora = lora || any_lora(L);
  if (!ws_) ws_ = std::make_unique<ForwardWorkspace>();
  ForwardWorkspace& ws = *ws_;
  ws.reserve(c, device_, dtype_, N, 0, lora);

  // ids and positions to the device.
  Tensor ids = ws.ids.narrow0(0, N);
  if (ids_in.dtype() == DType::I32) ids.copy_from(ids_in.view({N}));
  else ids.copy_from(ids_in.to(Device::cpu()).to(DType::I32).view({N}));
  ws.host_positions.resize(N);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++) ws.host_positions[b * T + t] = static_cast<int32_t>(past + t);
  Tensor pos = ws.positions.narrow0(0, N);
  device_copy(pos.raw(), device_, ws.host_positions.data(), Device::cpu(), N * sizeof(int32_t));
  pos = pos.view({B, T});

  Tensor x = rows_view(ws.x, N, C), a = rows_view(ws.a, N, C), tmp = rows_view(ws.tmp, N, C);
  Tensor q = rows_view(ws.q, N, Q), k = rows_view(ws.k, N, KV), v = rows_view(ws.v, N, KV);
  Tensor att = rows_view(ws.att, N, Q), g = rows_view(ws.g, N, I), u = rows_view(ws.u, N, I), s = rows_view(ws.s, N, I);
  Tensor rstd = ws.rstd.narrow0(0, N);
  const float eps = static_cast<float>(c.rms_norm_eps), theta = static_cast<float>(c.rope_theta);
  auto emit = [&](const std::string& name, const Tensor& t) {
    if (hook) (*hook)(name, t);
  };

  embedding_forward(ids, embed_, x);
  emit("model.embed_tokens", x);
  for (size_t li = 0; li < layers_.size(); li++) {
    DecoderLayer& L = layers_[li];
    const bool lo = any_lora(L);
    rms_norm_forward(x, L.input_norm, eps, a, rstd);
    emit(L.q.name.substr(0, L.q.name.find("self_attn")) + "input_layernorm", a);
    Tensor a32 = lo ? adapter_input(a, ws) : a;
    run_linear(L.q, a, a32, q, ws);
    run_linear(L.k, a, a32, k, ws);
    run_linear(L.v, a, a32, v, ws);
    emit(L.q.name, q);
    emit(L.k.name, k);
    emit(L.v.name, v);
    Tensor q4 = q.view({B, T, H, D}), k4 = k.view({B, T, Hkv, D}), v4 = v.view({B, T, Hkv, D});
    rope_forward(q4, pos, theta, q4);
    rope_forward(k4, pos, theta, k4);
    AttentionArgs args;
    args.scale = 1.0f / std::sqrt(static_cast<float>(D));
    Tensor att4 = att.view({B, T, H, D});
    if (cache) {
      // Append this step's k, v at [past, past + T) of every batch row.
      Tensor& kc = cache->k(li);
      Tensor& vc = cache->v(li);
      const int64_t row = cache->capacity() * KV;
      for (int64_t b = 0; b < B; b++) {
        Tensor kdst = kc.view({B, row}).narrow0(b, 1).view({cache->capacity(), KV}).narrow0(past, T);
        Tensor vdst = vc.view({B, row}).narrow0(b, 1).view({cache->capacity(), KV}).narrow0(past, T);
        kdst.copy_from(k.narrow0(b * T, T));
        vdst.copy_from(v.narrow0(b * T, T));
      }
      args.kv_len = past + T;
      attention_forward(q4, kc, vc, args, att4, nullptr);
    } else {
      args.kv_len = T;
      attention_forward(q4, k4, v4, args, att4, nullptr);
    }
    Tensor att32 = L.o.lora.active() ? adapter_input(att, ws) : att;
    run_linear(L.o, att, att32, tmp, ws);
    emit(L.o.name, tmp);
    add(x, tmp, x);
    rms_norm_forward(x, L.post_norm, eps, a, rstd);
    emit(L.q.name.substr(0, L.q.name.find("self_attn")) + "post_attention_layernorm", a);
    Tensor b32 = (L.gate.lora.active() || L.up.lora.active()) ? adapter_input(a, ws) : a;
    run_linear(L.gate, a, b32, g, ws);
    run_linear(L.up, a, b32, u, ws);
    swiglu_forward(g, u, s);
    Tensor s32 = L.down.lora.active() ? adapter_input(s, ws) : s;
    run_linear(L.down, s, s32, tmp, ws);
    emit(L.down.name, tmp);
    add(x, tmp, x);
    emit(L.q.name.substr(0, L.q.name.find(".self_attn")), x);
  }
  if (cache) cache->advance(T);
  rms_norm_forward(x, final_norm_, eps, a, rstd);
  emit("model.norm", a);
  return a.view({B, T, C});
}

Tensor Qwen2Model::forward(const Tensor& ids, KVCache* cache, bool last_only, const DebugHook* hook) {
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
  ws.reserve(cfg_, device_, dtype_, 0, R, false);
  Tensor logits = rows_view(ws.logits, R, V);
  matmul(rows, lm_head_, logits, false, true);
  if (hook) (*hook)("lm_head", logits);
  return logits.view({B, last_only ? 1 : T, V});
}

}  // namespace wick
