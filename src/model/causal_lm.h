// A decoder-only causal language model of any supported family (model/family.h), built from wick's ops
// exactly as transformers computes it (formats.md §2.4). Weights are frozen and live on one device in the
// compute dtype (f32 on the CPU; bf16 on CUDA unless f32 is asked for). LoRA adapters attach to the Linear
// slots. Training (forward + loss + backward) is model/loss_and_grads.h over the same layer code.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/family.h"
#include "model/layer.h"
#include "model/linear.h"

namespace wick {

class KVCache;
struct ForwardWorkspace;

class CausalLM {
 public:
  // Loads config.json and the safetensors weights of a Hugging Face model folder onto `device`, converting
  // to `dtype` (f32 or bf16). Missing tensors and wrong shapes are errors naming the tensor and file.
  static std::unique_ptr<CausalLM> load(const std::string& dir, Device device, DType dtype);
  // Random weights with the given config (for tests and benchmarks); deterministic in seed.
  static std::unique_ptr<CausalLM> random(const ModelConfig& cfg, Device device, DType dtype, uint64_t seed);

  const ModelConfig& config() const { return cfg_; }
  const Family& family() const { return *family_; }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }
  const std::string& dir() const { return dir_; }

  std::vector<LayerWeights>& layers() { return w_.layers; }
  const Tensor& embed() const { return w_.embed; }
  const Tensor& final_norm() const { return w_.final_norm; }
  const Tensor& lm_head() const { return w_.lm_head; }  // == embed() when tied
  // Every Linear, with its HF module path in Linear::name.
  std::vector<Linear*> all_linears();
  Linear* find_linear(const std::string& module_path);

  // The model-level steps every forward shares (inference, training, serving):
  // ids [N] i32 -> x [N, C] (=): the embedding rows, times sqrt(hidden_size) rounded to the compute dtype
  // when the family scales them (Gemma 3, as transformers' Gemma3TextScaledWordEmbedding).
  void embed_tokens(const Tensor& ids, Tensor& x) const;
  // The final norm: x [N, C] -> y [N, C] (=), rstd [N] f32 (=); backward dy -> dx (=).
  void final_norm_forward(const Tensor& x, Tensor& y, Tensor& rstd) const;
  void final_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, Tensor& dx) const;

  // Inference forward. ids [B, T] i32 on any device. With a cache, the T new tokens follow the cache's
  // current length (which then grows by T); without, positions are 0..T-1.
  // -> logits [B, T, V] f32 on the model's device (the last position only when last_only: [B, 1, V]).
  Tensor forward(const Tensor& ids, KVCache* cache, bool last_only = false, const DebugHook* hook = nullptr);
  // The hidden states after the final norm [B, T, C] (for final_hidden checks and embeddings).
  Tensor forward_hidden(const Tensor& ids, KVCache* cache, const DebugHook* hook = nullptr);
  // One decode step of cache.batch() sequences, capturable as a CUDA graph (core/device.h DeviceGraph): the
  // token ids [B] and their positions [B] (i32, on the model's device) are read on the device, k and v land in
  // the cache at those positions, attention reads up to them; the cache's length() is not advanced (the caller
  // keeps it). -> logits [B, V] f32, in a buffer that stays put while the shapes do (the step after a prefill of
  // at least B rows allocates nothing). adapters_unchanged: nothing wrote the adapters since the previous forward
  // (a decode loop's steps after its first), so their bf16 copies are current and the step leaves out the casts
  // that refresh them (LinearScratch::adapters_current).
  Tensor decode_step(const Tensor& ids, const Tensor& positions, KVCache& cache, bool adapters_unchanged = false);

 private:
  Tensor layers_forward(const Tensor& ids, const Tensor& positions, int64_t B, int64_t T, KVCache* cache, int64_t past,
                        bool positions_on_device, const DebugHook* hook);

  ModelConfig cfg_;
  const Family* family_ = nullptr;
  Device device_;
  DType dtype_ = DType::F32;
  std::string dir_;
  ModelWeights w_;
  std::unique_ptr<ForwardWorkspace> ws_;  // inference buffers, reused across calls

 public:
  CausalLM();
  ~CausalLM();
};

// Keys and values of every layer for incremental decoding: k, v [B, S_cap, Hkv, D] per layer, on the
// model's device, allocated once.
class KVCache {
 public:
  KVCache(const CausalLM& m, int64_t batch, int64_t capacity);
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
