#include "serve/batch_forward.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/paged_attention.h"
#include "ops/segmented_lora.h"

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
  // fresh: the trailing chunks that start their sequence (rows [fresh_row0, N)), with their chunk number in
  // fresh_seg [1, N - fresh_row0] and the paged batch of the chunks before them in cached_batch.
  RowBatchImpl(BatchForward& bf, std::vector<SeqChunk>& chunks, PagedKvBatch batch, Tensor slots, int64_t fresh_row0,
               PagedKvBatch cached_batch, Tensor fresh_seg)
      : bf_(bf), chunks_(chunks), batch_(std::move(batch)), slots_(std::move(slots)), fresh_row0_(fresh_row0),
        cached_batch_(std::move(cached_batch)), fresh_seg_(std::move(fresh_seg)) {
    int64_t r = 0;
    for (const SeqChunk& c : chunks) {
      const int64_t n = static_cast<int64_t>(c.ids.size());
      if (c.adapter && !groups_.empty() && groups_.back().adapter == c.adapter && groups_.back().row0 + groups_.back().rows == r)
        groups_.back().rows += n;
      else if (c.adapter)
        groups_.push_back({r, n, c.adapter});
      r += n;
    }
  }

  // Every chunk's new K and V into its blocks, then every chunk's queries over its cache: two launches. Prompts
  // that start this step (the trailing fresh chunks) see only their own keys, which are this step's k and v
  // rows: they take the dense attention over those rows, packed with one segment id a prompt (tensor-core
  // kernels on CUDA; on the CPU the same floats as the paged twin), and the paged kernel the chunks before them.
  // A sliding-window layer keeps the paged kernel for every chunk.
  void attend(int64_t layer, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& att) override {
    const ModelConfig& c = bf_.m_.config();
    const int64_t N = q.dim(0), H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
    const AttentionArgs args = layer_attention_args(c, layer);  // the layer's scale and sliding window
    Tensor& kp = bf_.pool_.k(static_cast<size_t>(layer));
    Tensor& vp = bf_.pool_.v(static_cast<size_t>(layer));
    paged_kv_write(k, v, slots_, kp, vp);
    if (fresh_row0_ >= N || args.window > 0) {
      Tensor out = att.view({N, H, D});
      paged_attention_forward(q.view({N, H, D}), kp, vp, batch_, args.scale, args.window, out);
      return;
    }
    const int64_t P = fresh_row0_, F = N - P;
    if (P > 0) {
      Tensor out = att.narrow0(0, P).view({P, H, D});
      paged_attention_forward(q.narrow0(0, P).view({P, H, D}), kp, vp, cached_batch_, args.scale, 0, out);
    }
    AttentionArgs dense;
    dense.scale = args.scale;
    dense.kv_len = F;
    dense.segments = &fresh_seg_;
    Tensor out = att.narrow0(P, F).view({1, F, H, D});
    attention_forward(q.narrow0(P, F).view({1, F, H, D}), k.narrow0(P, F).view({1, F, Hkv, D}),
                      v.narrow0(P, F).view({1, F, Hkv, D}), dense, out, nullptr);
  }

  // Each group's rows: y += scale * (x A^T) B^T, u in f32 and y rounded once, as linear_forward computes an
  // attached adapter: every group of the step in one segmented_lora_add (two launches on CUDA).
  void add_adapters(int64_t layer, int j, const Tensor& x, Tensor& y) override {
    std::vector<LoraSegment> segs;
    for (const Group& g : groups_) {
      const AdapterPair& p = g.adapter->pairs[static_cast<size_t>(layer)][static_cast<size_t>(j)];
      if (p.active()) segs.push_back({g.row0, g.rows, &p.A, &p.B, p.scale});
    }
    if (!segs.empty()) segmented_lora_add(x, segs, y);
  }

 private:
  BatchForward& bf_;
  std::vector<SeqChunk>& chunks_;
  PagedKvBatch batch_;
  Tensor slots_;  // [N] i32: pool row of each new token
  int64_t fresh_row0_;
  PagedKvBatch cached_batch_;
  Tensor fresh_seg_;
  std::vector<Group> groups_;
};

BatchForward::BatchForward(CausalLM& m, KvPool& pool) : m_(m), pool_(pool) {}

void BatchForward::run(std::vector<SeqChunk>& chunks, std::vector<float>& logits) {
  const Tensor& lg = run_device(chunks);
  logits.resize(static_cast<size_t>(lg.numel()));
  device_copy(logits.data(), Device::cpu(), lg.raw(), lg.device(), static_cast<size_t>(lg.numel()) * sizeof(float));
}

Tensor& BatchForward::run_device(std::vector<SeqChunk>& chunks) {
  const ModelConfig& c = m_.config();
  const Device dev = m_.device();
  const int64_t C = c.hidden_size, V = c.vocab_size, S = static_cast<int64_t>(chunks.size());
  const int64_t BS = pool_.block_tokens();
  if (S == 0) throw Error("no sequences in the batch");
  for (Linear* l : m_.all_linears())
    WICK_CHECK(!l->lora.active(), "the served model must carry no attached adapter (" << l->name << ")");
  int64_t N = 0, MB = 1, max_t = 0, max_len = 0;
  for (const SeqChunk& ch : chunks) {
    const int64_t T = static_cast<int64_t>(ch.ids.size()), past = ch.kv->length;
    if (T == 0) throw Error("a sequence in the batch has no new tokens");
    if (past + T > static_cast<int64_t>(ch.kv->table.size()) * BS)
      throw Error("sequence of " + std::to_string(past + T) + " tokens exceeds its " + std::to_string(ch.kv->table.size()) +
                  " KV cache blocks of " + std::to_string(BS) + " tokens");
    if (past + T > c.max_position_embeddings)
      throw Error("sequence of " + std::to_string(past + T) + " tokens exceeds max_position_embeddings " +
                  std::to_string(c.max_position_embeddings));
    for (const int32_t id : ch.ids)
      if (id < 0 || id >= V) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
    N += T;
    max_t = std::max(max_t, T);
    max_len = std::max(max_len, past + T);
    MB = std::max<int64_t>(MB, pool_.blocks_for(past + T));
  }
  // The trailing chunks that start their sequence (nothing cached: the scheduler puts them last), from chunk
  // S0 and row N0 on; the paged kernel's bounds for the chunks before them.
  int64_t S0 = S, N0 = N, cached_t = 0, cached_len = 0;
  while (S0 > 0 && chunks[static_cast<size_t>(S0 - 1)].kv->length == 0) {
    S0--;
    N0 -= static_cast<int64_t>(chunks[static_cast<size_t>(S0)].ids.size());
  }
  for (int64_t s = 0; s < S0; s++) {
    const SeqChunk& ch = chunks[static_cast<size_t>(s)];
    cached_t = std::max<int64_t>(cached_t, static_cast<int64_t>(ch.ids.size()));
    cached_len = std::max<int64_t>(cached_len, ch.kv->length + static_cast<int64_t>(ch.ids.size()));
  }
  // The step's index data, one host vector and one copy to the device:
  //   ids [N] | positions [N] | slots [N] | last rows [S] | query_start [S + 1] | kv_len [S] | block tables [S, MB]
  //   | the fresh rows' chunk numbers [N - N0]
  const int64_t o_pos = N, o_slot = 2 * N, o_last = 3 * N, o_start = o_last + S, o_len = o_start + S + 1, o_tab = o_len + S;
  const int64_t o_seg = o_tab + S * MB, total = o_seg + (N - N0);
  std::vector<int32_t> meta(static_cast<size_t>(total), 0);
  int64_t r = 0;
  for (int64_t s = 0; s < S; s++) {
    const SeqChunk& ch = chunks[static_cast<size_t>(s)];
    const int64_t T = static_cast<int64_t>(ch.ids.size()), past = ch.kv->length;
    meta[static_cast<size_t>(o_start + s)] = static_cast<int32_t>(r);
    meta[static_cast<size_t>(o_len + s)] = static_cast<int32_t>(past + T);
    for (int64_t t = 0; t < T; t++, r++) {
      const int64_t p = past + t;
      if (s >= S0) meta[static_cast<size_t>(o_seg + r - N0)] = static_cast<int32_t>(s - S0);
      meta[static_cast<size_t>(r)] = ch.ids[static_cast<size_t>(t)];
      meta[static_cast<size_t>(o_pos + r)] = static_cast<int32_t>(p);
      meta[static_cast<size_t>(o_slot + r)] = static_cast<int32_t>(ch.kv->table[static_cast<size_t>(p / BS)] * BS + p % BS);
    }
    meta[static_cast<size_t>(o_last + s)] = static_cast<int32_t>(r - 1);
    const int64_t used = pool_.blocks_for(past + T);
    for (int64_t j = 0; j < used; j++) meta[static_cast<size_t>(o_tab + s * MB + j)] = ch.kv->table[static_cast<size_t>(j)];
  }
  meta[static_cast<size_t>(o_start + S)] = static_cast<int32_t>(N);
  if (!meta_.defined() || meta_.numel() < total) meta_ = Tensor::empty({std::max<int64_t>(total, 2 * meta_.numel())}, DType::I32, dev);
  Tensor meta_d = meta_.narrow0(0, total);
  meta_d.copy_from(Tensor::from_i32(meta, {total}));
  const Tensor ids_d = meta_d.narrow0(0, N), pos_d = meta_d.narrow0(o_pos, N), last_d = meta_d.narrow0(o_last, S);
  PagedKvBatch batch;
  batch.query_start = meta_d.narrow0(o_start, S + 1);
  batch.kv_len = meta_d.narrow0(o_len, S);
  batch.block_table = meta_d.narrow0(o_tab, S * MB).view({S, MB});
  batch.max_query_len = max_t;
  batch.max_kv_len = max_len;  // lets CUDA split the keys of a few long decodes

  PagedKvBatch cached;
  cached.query_start = meta_d.narrow0(o_start, S0 + 1);
  cached.kv_len = meta_d.narrow0(o_len, S0);
  cached.block_table = meta_d.narrow0(o_tab, S0 * MB).view({S0, MB});
  cached.max_query_len = cached_t;
  cached.max_kv_len = cached_len;
  const Tensor fresh_seg = N0 < N ? meta_d.narrow0(o_seg, N - N0).view({1, N - N0}) : Tensor();

  ws_.reserve(c, dev, m_.dtype(), N, 0);
  RowBatchImpl rows(*this, chunks, batch, meta_d.narrow0(o_slot, N), N0, cached, fresh_seg);
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
  for (SeqChunk& ch : chunks) ch.kv->length += static_cast<int64_t>(ch.ids.size());
  m_.final_norm_forward(x, A.a, A.rstd1);

  // lm_head on each chunk's last row only: one gather of those rows, one GEMM.
  if (!last_.defined() || last_.numel() < S * C) last_ = Tensor::empty({S * C}, m_.dtype(), dev);
  Tensor last = rows_view(last_, S, C);
  embedding_forward(last_d, A.a, last);
  logits_view_ = scratch(logits_, S, V, dev);
  matmul(last, m_.lm_head(), logits_view_, false, true);
  return logits_view_;
}

}  // namespace wick::serve
