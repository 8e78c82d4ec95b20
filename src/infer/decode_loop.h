// The decode steps of one sequence after its prefill. Each step feeds one token at the cache's current length
// and gives the next token: on a GPU chosen there by sample_tokens (ops/sampling.h: greedy or sampled with every
// setting; the draw counter and the history mask live on the device, so the logits never leave it), on the CPU
// as logits for the host's Sampler (the same rule: the same token from the same logits, seed and draw number). On CUDA the step is captured once as a CUDA graph (after
// one plain step, which sizes every buffer and warms every plan and table) and replayed: one launch per token
// instead of hundreds, so decode speed is the GPU's, not the host's.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "infer/sampler.h"

namespace wick {

class CausalLM;
class KVCache;

// Whether decode steps may replay CUDA graphs: `wanted`, unless WICK_CUDA_GRAPHS=0 says no for the process.
bool cuda_graphs_enabled(bool wanted);

class DecodeLoop {
 public:
  // history: every id so far (prompt and generated), for the repetition penalty on the device. draws: the draws
  // the host's Sampler made before (its state().draws), so the device continues its counter. graphs: capture on
  // CUDA (off: the same kernels, launched one by one; for checks and debugging). keep_logits: also copy each
  // step's logits to the host on CUDA (for checks: logits() then holds what the device sampled from).
  // The model, its adapters included, must not change while the loop lives: the graph holds their addresses,
  // and the steps after the first read the adapters' bf16 copies that the first step cast.
  DecodeLoop(CausalLM& model, KVCache& cache, const SamplingParams& sampling, const std::vector<int32_t>& history,
             bool graphs, uint64_t draws = 0, bool keep_logits = false);
  ~DecodeLoop();
  DecodeLoop(const DecodeLoop&) = delete;
  DecodeLoop& operator=(const DecodeLoop&) = delete;

  // Feeds `token` at position cache.length() (which then grows by one). Returns the next token when
  // device_sampling(); else -1, with the logits in logits().
  int32_t step(int32_t token);
  bool device_sampling() const { return device_sampling_; }
  // [V] on the host, valid until the next step: on the CPU always, on CUDA with keep_logits (else null)
  const float* logits() const { return host_logits_; }
  bool replaying() const { return graph_ != nullptr; }  // a captured graph runs the steps

 private:
  void run();  // the step's device work (what the graph holds)

  CausalLM& m_;
  KVCache& cache_;
  Device dev_;
  int64_t V_ = 0;
  bool device_sampling_ = false;
  bool keep_logits_ = false;
  bool graphs_ = false;
  int64_t steps_ = 0;
  Tensor inputs_;  // [2] i32 on the device: the token id, its position
  Tensor seen_;    // [1, V] i32: the history mask (device sampling with a penalty)
  Tensor params_;  // [1, kSampleRowWords] i32: the settings and the draw counter (ops/sampling.h)
  Tensor chosen_;  // [1] i32: the token
  Tensor logits_;  // [1, V] f32, decode_step's buffer
  int32_t* pinned_ = nullptr;  // host: [0] id, [1] position, [2] chosen, then V floats of logits (CUDA)
  const float* host_logits_ = nullptr;
  std::unique_ptr<DeviceGraph> graph_;
  uint64_t graph_scratch_ = 0;  // device_scratch_generation when graph_ was captured
};

}  // namespace wick
