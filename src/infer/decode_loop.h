// The decode steps of one sequence after its prefill. Each step feeds one token at the cache's current length
// and gives the next token: on a GPU chosen there by sample_tokens (ops/sampling.h: greedy or sampled with every
// setting; the draw counter and the history mask live on the device, so the logits never leave it), on the CPU
// as logits for the host's Sampler (the same rule: the same token from the same logits, seed and draw number).
// On CUDA the step is captured once as a CUDA graph (after one plain step, which sizes every buffer and warms
// every plan and table) and replayed: one launch per token instead of hundreds, so decode speed is the GPU's,
// not the host's. And the step after is queued before the host reads a token (ahead): the sampler writes the
// token where the next step's embedding reads it, so the GPU does not wait for the host between tokens.
#pragma once
#include <climits>
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

struct DecodeLoopOptions {
  // Capture and replay on CUDA (off: the same kernels, launched one by one; for checks and debugging).
  bool graphs = true;
  // The draws the host's Sampler made before (its state().draws), so the device continues its counter.
  uint64_t draws = 0;
  // Also copy each step's logits to the host on CUDA (for checks: logits() then holds what the device sampled
  // from). No step is queued ahead then.
  bool keep_logits = false;
  // Queue the next step before waiting for this one's token (on CUDA; unless WICK_DECODE_AHEAD=0). Each step
  // must then feed the token the step before returned (an Error otherwise). A loop left before the steps run out
  // (a stop) leaves one queued step unread: its cache row lies past cache.length(), and its draw is counted
  // nowhere.
  bool ahead = true;
  // The most steps the caller will ask for: none is queued ahead beyond it.
  int64_t max_steps = INT64_MAX;
};

class DecodeLoop {
 public:
  // history: every id so far (prompt and generated), for the repetition penalty on the device.
  // The model, its adapters included, must not change while the loop lives: the graph holds their addresses,
  // and the steps after the first read the adapters' bf16 copies that the first step cast.
  DecodeLoop(CausalLM& model, KVCache& cache, const SamplingParams& sampling, const std::vector<int32_t>& history,
             const DecodeLoopOptions& options = {});
  ~DecodeLoop();  // waits for a step still queued
  DecodeLoop(const DecodeLoop&) = delete;
  DecodeLoop& operator=(const DecodeLoop&) = delete;

  // Feeds `token` at position cache.length() (which then grows by one). Returns the next token when
  // device_sampling(); else -1, with the logits in logits().
  int32_t step(int32_t token);
  bool device_sampling() const { return device_sampling_; }
  // [V] on the host, valid until the next step: on the CPU always, on CUDA with keep_logits (else null)
  const float* logits() const { return host_logits_; }
  bool replaying() const { return graph_ != nullptr; }  // a captured graph runs the steps
  bool ahead() const { return ahead_; }                 // steps are queued ahead (options.ahead on CUDA)

 private:
  void run();      // the step's device work (what the graph holds)
  void enqueue();  // run() or its graph at position cache.length(), then the copy of its report to the host

  CausalLM& m_;
  KVCache& cache_;
  Device dev_;
  int64_t V_ = 0;
  bool device_sampling_ = false;
  bool keep_logits_ = false;
  bool graphs_ = false;
  bool ahead_ = false;
  int64_t max_steps_ = INT64_MAX;
  int64_t steps_ = 0;    // steps returned
  int64_t queued_ = 0;   // steps queued (their parity picks the pinned slots)
  bool pending_ = false; // a step at position cache.length() is queued (ahead), fed last_
  int32_t last_ = -1;    // the token the last step returned
  Tensor inputs_;  // [2] i32 on the device: the token id, its position (the sampler writes the next token there)
  Tensor seen_;    // [1, V] i32: the history mask (device sampling with a penalty)
  Tensor params_;  // [1, kSampleRowWords] i32: the settings and the draw counter (ops/sampling.h)
  Tensor report_;  // [1, 2] i32: sample_tokens' report (the token or code, the bad logit's bits)
  Tensor logits_;  // [1, V] f32, decode_step's buffer
  // Page-locked host words the stream copies to and from (then V floats of logits, with keep_logits). Reports and
  // queued positions alternate between two slots by the parity of the queued step, so a step queued ahead never
  // writes the slot the host is about to read.
  struct PinnedWords {
    int32_t input[2];          // the token and position of a step not queued ahead
    int32_t report[2][2];      // sample_tokens' report of an even / odd queued step
    int32_t next_position[2];  // the position of an even / odd step queued ahead
  };
  PinnedWords* pinned_ = nullptr;
  std::unique_ptr<StreamPoint> reported_[2];  // the report of an even / odd queued step has landed in pinned_
  const float* host_logits_ = nullptr;
  std::unique_ptr<DeviceGraph> graph_;
  uint64_t graph_scratch_ = 0;  // device_scratch_generation when graph_ was captured
};

}  // namespace wick
