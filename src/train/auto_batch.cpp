#include "train/auto_batch.h"
#include "train/checkpoint_dir.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "io/json_util.h"
#include "io/peft_adapter.h"
#include "model/layer.h"
#include "model/loss_and_grads.h"

#ifdef WICK_CUDA
#include "ops/cuda/runtime.h"
#endif

namespace wick {

int64_t activation_bytes_per_token(const ModelConfig& c, DType dtype, int64_t r, int64_t targets, bool checkpointing) {
  const int64_t e = static_cast<int64_t>(dtype_size(dtype));
  const int64_t C = c.hidden_size, Q = c.q_dim(), I = c.intermediate_size;
  // Kept per layer: the family layer's activation table (model/layer.h; the same table allocates them),
  // in the compute dtype or f32, plus x A^T [r] per adapter in the compute dtype (model/linear.h).
  int64_t per_layer = targets * r * e, full_layer = 0, recomputed = 0, kept = 0;
  for (const ActSlot& s : layer_act_slots(c)) {
    const int64_t bytes = s.cols * (s.kind == ActKind::Act ? e : 4);
    full_layer += bytes;
    if (s.recomputed) recomputed += bytes;
    if (s.checkpoint_kept) kept += bytes;
  }
  // Checkpointing keeps the layer input [C] and the checkpoint_kept slots per layer, and the rest of one full
  // set plus the recomputed output once. Without checkpointing the recomputed slots (the GLU output) are one
  // buffer for all layers.
  per_layer += checkpointing ? C * e + kept : full_layer - recomputed;
  // Once: the final norm's in/out [C] and the loss's gathered copy of it and its gradient [C] (the rows with
  // a target), the gradient buffers of one layer (its table), the adapter path's scratch (a dropped-out copy
  // of an input, [max(C, Q, I)]); ids, targets, losses, the loss's row indices and targets.
  int64_t once = 4 * C * e + std::max({C, Q, I}) * e + 6 * 4 + (checkpointing ? full_layer - kept + C * e : recomputed);
  for (const GradSlot& s : layer_grad_slots(c)) once += s.cols * e;
  return c.num_layers * per_layer + once;
}

int64_t fixed_training_bytes(const ModelConfig& c, DType dtype, int64_t loss_chunk_rows) {
  return loss_chunk_rows * c.vocab_size * static_cast<int64_t>(dtype_size(dtype));  // the logits of one loss chunk
}

int64_t folded_weight_bytes(CausalLM& m, const io::LoraConfig& lora, bool fold) {
  if (!fold || m.layers().empty() || !m.family().layer->folds_norm_fed_groups) return 0;
  const int64_t C = m.config().hidden_size, e = static_cast<int64_t>(dtype_size(m.dtype()));
  int64_t per_layer = 0;
  const auto groups = m.layers()[0].lora_groups();
  for (int g = 0; g < kLoraGroups; g++) {
    if (!is_norm_fed_group(g)) continue;
    int64_t R = 0;
    for (const Linear* l : groups[g]) R += lora.targets(l->name) ? lora.r : 0;
    for (const Linear* l : groups[g])
      if (lora.targets(l->name)) per_layer += l->out() * (C + R) * e;
  }
  return per_layer * m.config().num_layers;
}

BatchChoice choose_batch_size(const ModelConfig& c, Device dev, DType dtype, int64_t seq_len, int64_t r,
                              int64_t targets, int64_t free_bytes, int64_t examples, bool checkpointing,
                              int64_t folded_bytes) {
  WICK_CHECK(seq_len > 0 && examples > 0);
  char buf[384];
  BatchChoice ch;
  if (dev.is_cpu()) {
    // The CPU gains from larger GEMMs only while the rows still fit the caches; long sequences already fill them.
    const int64_t rule = seq_len <= 256 ? 4 : seq_len <= 1024 ? 2 : 1;
    ch.batch_size = std::min(rule, examples);
    std::snprintf(buf, sizeof buf, "CPU rule for sequences of up to %lld tokens (4 up to 256, 2 up to 1024, else 1)%s",
                  static_cast<long long>(seq_len), rule > examples ? ", capped at the dataset size" : "");
    ch.reason = buf;
    return ch;
  }
  const int64_t per_token = activation_bytes_per_token(c, dtype, r, targets, checkpointing);
  const int64_t fixed = fixed_training_bytes(c, dtype, loss_chunk_rows()) + folded_bytes;
  // Keep 10% of what is free and 1 GiB besides for cuBLASLt workspaces, the allocator's slack and the
  // optimizer state (small next to this for LoRA).
  const int64_t budget = free_bytes - free_bytes / 10 - (int64_t{1} << 30) - fixed;
  const int64_t per_row = per_token * seq_len;
  int64_t fit = budget > 0 ? budget / per_row : 0;
  // A power of two, at most 64 and at most the dataset size.
  int64_t b = 1;
  while (b * 2 <= std::min<int64_t>(fit, 64)) b *= 2;
  ch.batch_size = std::min(b, examples);
  const bool capped = b > examples;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::snprintf(buf, sizeof buf,
                "%.1f GiB free on %s, ~%.2f GiB of activations per %lld-token sequence: %lld fit (taking a power of two, at most 64)%s%s",
                free_bytes / gib, dev.str().c_str(), per_row / gib,
                static_cast<long long>(seq_len), static_cast<long long>(std::max<int64_t>(fit, 0)),
                capped ? ", capped at the dataset size" : "", fit < 1 ? " (may not fit: lower --max-seq-len)" : "");
  ch.reason = buf;
  return ch;
}

BatchChoice resolve_batch_size(const TrainOptions& t, CausalLM& m, const Dataset& d) {
  if (t.batch_size < 0) throw Error("batch size must be >= 1 (or 0 to choose one)", "--batch-size");
  if (t.batch_size > 0) return {t.batch_size, "given"};
  if (!t.resume.empty()) {
    const std::string p = resolve_resume_dir(t.resume) + "/trainer_state.json";
    const nlohmann::json st = io::read_json_file(p);
    const auto& o = st.contains("options") ? st["options"] : nlohmann::json();
    if (!o.is_object() || !o.contains("batch_size") || !o["batch_size"].is_number_integer() || o["batch_size"].get<int64_t>() < 1)
      throw Error("no options.batch_size in the checkpoint", p, "pass --batch-size as in the original run");
    const int64_t b = o["batch_size"].get<int64_t>();
    return {b, "as in the run being resumed"};
  }
  int64_t seq = 1;
  for (const auto& e : d.examples) seq = std::max<int64_t>(seq, static_cast<int64_t>(e.ids.size()));
  // The adapters' shape: what the Trainer will attach (an init folder overrides t.lora).
  io::LoraConfig lora = t.lora;
  if (!t.adapter_init.empty()) lora = io::load_peft_adapter(t.adapter_init).cfg;
  int64_t targets = 0;
  if (!m.layers().empty())
    for (Linear* l : m.layers()[0].linears()) targets += lora.targets(l->name) ? 1 : 0;
  return choose_batch_size(m.config(), m.device(), m.dtype(), seq, lora.r, std::max<int64_t>(targets, 1),
                           device_free_bytes(m.device()), static_cast<int64_t>(d.examples.size()),
                           t.grad_checkpointing,
                           folded_weight_bytes(m, lora, adapter_fold_default(m.device(), m.config()) && !t.grad_checkpointing));
}

int64_t device_free_bytes(Device dev) {
#ifdef WICK_CUDA
  if (dev.is_cuda()) {
    cuda::set_device(dev.index);
    size_t free_b = 0, total_b = 0;
    WICK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return static_cast<int64_t>(free_b);
  }
#endif
  return -1;
}

}  // namespace wick
