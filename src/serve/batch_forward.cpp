#include "serve/batch_forward.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace wick::serve {

namespace {

// A [rows, cols] f32 view at the front of buf, growing it when needed.
Tensor scratch(Tensor& buf, int64_t rows, int64_t cols, Device dev) {
  if (!buf.defined() || buf.numel() < rows * cols) buf = Tensor::empty({rows * cols}, DType::F32, dev);
  return rows_view(buf, rows, cols);
}

struct Group {
  int64_t row0, rows;
  const ServeAdapter* adapter;
};

}  // namespace

class RowBatchImpl : public RowBatch {
 public:
  RowBatchImpl(BatchForward& bf, std::vector<SeqChunk>& chunks) : bf_(bf), chunks_(chunks) {
    int64_t r = 0;
    for (const SeqChunk& c : chunks) {
      row0_.push_back(r);
      const int64_t n = static_cast<int64_t>(c.ids.size());
      if (c.adapter && !groups_.empty() && groups_.back().adapter == c.adapter && groups_.back().row0 + groups_.back().rows == r)
        groups_.back().rows += n;
      else if (c.adapter)
        groups_.push_back({r, n, c.adapter});
      r += n;
    }
  }

  void attend(int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& att) override {
    const ModelConfig& c = bf_.m_.config();
    const int64_t H = c.num_heads, D = c.head_dim, KV = c.kv_dim();
    AttentionArgs args = layer_attention_args(c, layer);  // the layer's scale and sliding window
    for (size_t i = 0; i < chunks_.size(); i++) {
      KVCache& cache = *chunks_[i].cache;
      const int64_t T = static_cast<int64_t>(chunks_[i].ids.size()), r0 = row0_[i], past = cache.length();
      const int64_t cap = cache.capacity();
      Tensor& kc = cache.k(static_cast<size_t>(layer));
      Tensor& vc = cache.v(static_cast<size_t>(layer));
      kc.view({cap, KV}).narrow0(past, T).copy_from(k.narrow0(r0, T));
      vc.view({cap, KV}).narrow0(past, T).copy_from(v.narrow0(r0, T));
      args.kv_len = past + T;
      Tensor out = att.narrow0(r0, T).view({1, T, H, D});
      attention_forward(q.narrow0(r0, T).view({1, T, H, D}), kc, vc, args, out, nullptr);
    }
  }

  // Each group's rows: y += scale * (x A^T) B^T in f32, as linear_forward computes an attached adapter
  // (bf16: on f32 copies, rounded once back into y).
  void add_adapters(int64_t layer, int j, const Tensor& x, Tensor& y) override {
    const Device dev = bf_.m_.device();
    for (const Group& g : groups_) {
      const AdapterPair& p = g.adapter->pairs[static_cast<size_t>(layer)][static_cast<size_t>(j)];
      if (!p.active()) continue;
      Tensor xg = x.narrow0(g.row0, g.rows), yg = y.narrow0(g.row0, g.rows);
      Tensor u = scratch(bf_.f32_u_, g.rows, p.A.dim(0), dev);
      if (x.dtype() == DType::F32) {
        matmul(xg, p.A, u, false, true);
      } else {
        Tensor x32 = scratch(bf_.f32_x_, g.rows, x.dim(1), dev);
        cast(xg, x32);
        matmul(x32, p.A, u, false, true);
      }
      if (y.dtype() == DType::F32) {
        matmul(u, p.B, yg, false, true, p.scale, 1.0f);
      } else {
        Tensor y32 = scratch(bf_.f32_y_, g.rows, y.dim(1), dev);
        cast(yg, y32);
        matmul(u, p.B, y32, false, true, p.scale, 1.0f);
        cast(y32, yg);
      }
    }
  }

  const std::vector<int64_t>& row0() const { return row0_; }

 private:
  BatchForward& bf_;
  std::vector<SeqChunk>& chunks_;
  std::vector<int64_t> row0_;
  std::vector<Group> groups_;
};

BatchForward::BatchForward(CausalLM& m) : m_(m) {}

void BatchForward::run(std::vector<SeqChunk>& chunks, std::vector<float>& logits) {
  const ModelConfig& c = m_.config();
  const Device dev = m_.device();
  const int64_t C = c.hidden_size, V = c.vocab_size, S = static_cast<int64_t>(chunks.size());
  if (S == 0) throw Error("no sequences in the batch");
  for (Linear* l : m_.all_linears())
    WICK_CHECK(!l->lora.active(), "the served model must carry no attached adapter (" << l->name << ")");
  int64_t N = 0;
  std::vector<int32_t> ids, pos;
  for (const SeqChunk& ch : chunks) {
    const int64_t T = static_cast<int64_t>(ch.ids.size()), past = ch.cache->length();
    if (T == 0) throw Error("a sequence in the batch has no new tokens");
    if (ch.cache->batch() != 1) throw Error("a batched sequence needs a KV cache of batch 1");
    if (past + T > ch.cache->capacity())
      throw Error("sequence of " + std::to_string(past + T) + " tokens exceeds its KV cache capacity " +
                  std::to_string(ch.cache->capacity()));
    if (past + T > c.max_position_embeddings)
      throw Error("sequence of " + std::to_string(past + T) + " tokens exceeds max_position_embeddings " +
                  std::to_string(c.max_position_embeddings));
    for (int64_t t = 0; t < T; t++) {
      const int32_t id = ch.ids[static_cast<size_t>(t)];
      if (id < 0 || id >= V) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
      ids.push_back(id);
      pos.push_back(static_cast<int32_t>(past + t));
    }
    N += T;
  }
  ws_.reserve(c, dev, m_.dtype(), N, 0);
  Tensor ids_d = ws_.ids.narrow0(0, N), pos_d = ws_.positions.narrow0(0, N);
  ids_d.copy_from(Tensor::from_i32(ids, {N}));
  pos_d.copy_from(Tensor::from_i32(pos, {N}));

  RowBatchImpl rows(*this, chunks);
  LayerRun run;
  run.cfg = &c;
  run.B = 1;
  run.T = N;
  run.positions = pos_d.view({1, N});
  run.lin = &ws_.lin;
  run.rows = &rows;
  run.inference = true;
  LayerActs A = ws_.acts(N);
  Tensor& x = A.x;
  m_.embed_tokens(ids_d, x);
  auto& layers = m_.layers();
  for (size_t li = 0; li < layers.size(); li++) {
    run.layer = static_cast<int64_t>(li);
    m_.family().layer->forward(layers[li], A, x, x, run);
  }
  for (SeqChunk& ch : chunks) ch.cache->advance(static_cast<int64_t>(ch.ids.size()));
  m_.final_norm_forward(x, A.a, A.rstd1);

  // lm_head on each chunk's last row only.
  if (!last_.defined() || last_.numel() < S * C) last_ = Tensor::empty({S * C}, m_.dtype(), dev);
  Tensor last = rows_view(last_, S, C);
  for (int64_t s = 0; s < S; s++) {
    const int64_t r = rows.row0()[static_cast<size_t>(s)] + static_cast<int64_t>(chunks[static_cast<size_t>(s)].ids.size()) - 1;
    last.narrow0(s, 1).copy_from(A.a.narrow0(r, 1));
  }
  Tensor lg = scratch(logits_, S, V, dev);
  matmul(last, m_.lm_head(), lg, false, true);
  logits.resize(static_cast<size_t>(S * V));
  device_copy(logits.data(), Device::cpu(), lg.raw(), dev, static_cast<size_t>(S * V) * sizeof(float));
}

}  // namespace wick::serve
