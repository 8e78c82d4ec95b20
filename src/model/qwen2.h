// The Qwen2 family (Qwen2, Qwen2.5, Qwen2.5-Coder) built from wick's ops, exactly as transformers'
// modeling_qwen2.py computes it (formats.md §2.4). Weights are frozen and live on one device in the compute
// dtype (f32 on the CPU; bf16 on CUDA unless f32 is asked for). LoRA adapters attach to the Linear slots.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/linear.h"

namespace wick {

struct DecoderLayer {
  Tensor input_norm;  // [C]
  Tensor post_norm;   // [C]
  Linear q, k, v, o, gate, up, down;
  // The seven projections in PEFT's order of target names.
  std::vector<Linear*> linears() { return {&q, &k, &v, &o, &gate, &up, &down}; }
};

// Called with Hugging Face module paths ("model.layers.3.mlp.down_proj", "model.norm", "lm_head") and the
// module's output; for debugging a model against transformers' forward hooks.
using DebugHook = std::function<void(const std::string& name, const Tensor& out)>;

class KVCache;
struct ForwardWorkspace;

class Qwen2Model {
 public:
  // Loads config.json and the safetensors weights of a Hugging Face model folder onto `device`, converting
  // to `dtype` (f32 or bf16). Missing tensors and wrong shapes are errors naming the tensor and file.
  static std::unique_ptr<Qwen2Model> load(const std::string& dir, Device device, DType dtype);
  // Random weights with the given config (for tests and benchmarks); deterministic in seed.
  static std::unique_ptr<Qwen2Model> random(const ModelConfig& cfg, Device device, DType dtype, uint64_t seed);

  const ModelConfig& config() const { return cfg_; }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }
  const std::string& dir() const { return dir_; }

  std::vector<DecoderLayer>& layers() { return layers_; }
  const Tensor& embed() const { return embed_; }
  const Tensor& final_norm() const { return final_norm_; }
  const Tensor& lm_head() const { return lm_head_; }  // == embed() when tied
  // Every Linear, with its HF module path in Linear::name.
  std::vector<Linear*> all_linears();
  Linear* find_linear(const std::string& module_path);

  // Inference forward. ids [B, T] i32 on any device. With a cache, the T new tokens follow the cache's
  // current length (which then grows by T); without, positions are 0..T-1.
  // -> logits [B, T, V] f32 on the model's device (the last position only when last_only: [B, 1, V]).
  Tensor forward(const Tensor& ids, KVCache* cache, bool last_only = false, const DebugHook* hook = nullptr);
  // The hidden states after the final norm [B, T, C] (for final_hidden checks and embeddings).
  Tensor forward_hidden(const Tensor& ids, KVCache* cache, const DebugHook* hook = nullptr);

  // Writes the weights (merged or not) as a Hugging Face model folder: config.json + model.safetensors in
  // `dtype` (atomic writes).
  void save(const std::string& out_dir, DType dtype) const;

 private:
  friend class Qwen2Trainer;
  ModelConfig cfg_;
  Device device_;
  DType dtype_ = DType::F32;
  std::string dir_;
  Tensor embed_, final_norm_, lm_head_;
  std::vector<DecoderLayer> layers_;
  std::unique_ptr<ForwardWorkspace> ws_;  // inference buffers, reused across calls

 public:
  Qwen2Model();
  ~Qwen2Model();
};

// Keys and values of every layer for incremental decoding: k, v [B, S_cap, Hkv, D] per layer, on the
// model's device, allocated once.
class KVCache {
 public:
  KVCache(const Qwen2Model& m, int64_t batch, int64_t capacity);
  int64_t length() const { return len_; }
  int64_t capacity() const { return cap_; }
  int64_t batch() const { return batch_; }
  void reset() { len_ = 0; }
  Tensor& k(size_t layer) { return k_[layer]; }
  Tensor& v(size_t layer) { return v_[layer]; }
  void advance(int64_t t) { len_ += t; }

 private:
  int64_t batch_, cap_, len_ = 0;
  std::vector<Tensor> k_, v_;
};

}  // namespace wick
