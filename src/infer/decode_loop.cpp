#include "infer/decode_loop.h"

#include <climits>
#include <string>

#include "core/env.h"
#include "core/error.h"
#include "core/warn.h"
#include "model/causal_lm.h"
#include "ops/sampling.h"

namespace wick {

bool cuda_graphs_enabled(bool wanted) { return wanted && env_default_on("WICK_CUDA_GRAPHS"); }

DecodeLoop::DecodeLoop(CausalLM& model, KVCache& cache, const SamplingParams& sampling,
                       const std::vector<int32_t>& history, bool graphs, uint64_t draws, bool keep_logits)
    : m_(model), cache_(cache), dev_(model.device()), V_(model.config().vocab_size) {
  if (cache.batch() != 1) throw Error("DecodeLoop decodes one sequence; the KV cache holds " + std::to_string(cache.batch()));
  const bool cuda = dev_.is_cuda();
  device_sampling_ = cuda;
  keep_logits_ = cuda && keep_logits;
  graphs_ = cuda && cuda_graphs_enabled(graphs);
  inputs_ = Tensor::empty({2}, DType::I32, dev_);
  pinned_ = static_cast<int32_t*>(keep_logits_ ? host_alloc_pinned(sizeof(int32_t) * 4 + sizeof(float) * V_)
                                               : host_alloc_pinned(sizeof(int32_t) * 4));
  if (device_sampling_) {
    chosen_ = Tensor::empty({1}, DType::I32, dev_);
    params_ = sample_rows_tensor({to_sample_row(sampling, draws)}, dev_);
    if (sampling.repetition_penalty != 1.0f) {
      Tensor mask = Tensor::zeros({1, V_}, DType::I32, Device::cpu());
      for (int32_t id : history)
        if (id >= 0 && id < V_) mask.data<int32_t>()[id] = 1;
      seen_ = mask.to(dev_);
    }
  }
}

DecodeLoop::~DecodeLoop() {
  graph_.reset();
  // The stream may still read the pinned inputs or write the outputs of the last step.
  try {
    device_synchronize(dev_);
  } catch (...) {
  }
  host_free_pinned(pinned_);
}

void DecodeLoop::run() {
  // After the first step (which casts the adapters, if any, to bf16) nothing writes them while the loop lives: the
  // captured graph holds their addresses.
  logits_ = m_.decode_step(inputs_.narrow0(0, 1), inputs_.narrow0(1, 1), cache_, /*adapters_unchanged=*/steps_ > 0);
  if (device_sampling_) sample_tokens(logits_, seen_.defined() ? &seen_ : nullptr, params_, chosen_);
}

int32_t DecodeLoop::step(int32_t token) {
  if (cache_.length() >= cache_.capacity())
    throw Error("the KV cache is full (" + std::to_string(cache_.capacity()) + " positions)", "", "raise the context length");
  if (token < 0 || token >= V_)
    throw Error("token id " + std::to_string(token) + " is outside the vocabulary [0, " + std::to_string(V_) + ")");
  pinned_[0] = token;
  pinned_[1] = static_cast<int32_t>(cache_.length());
  device_copy_async(inputs_.raw(), dev_, pinned_, Device::cpu(), 2 * sizeof(int32_t));
  // A graph holds the scratch block it was captured with; work between steps that grew the block (another thread's
  // op on this device) freed it: capture again.
  if (graph_ && graph_scratch_ != device_scratch_generation(dev_)) graph_.reset();
  if (graph_) {
    graph_->replay();
  } else if (graphs_ && steps_ > 0) {
    // Capture only records: the first replay below is this step's run. A step the graph cannot hold (some
    // op synchronising, say) keeps decoding kernel by kernel, with one warning.
    try {
      graph_ = std::make_unique<DeviceGraph>(dev_, [this] { run(); });
      graph_scratch_ = device_scratch_generation(dev_);
      graph_->replay();
    } catch (const Error& e) {
      warn(std::string("decoding without CUDA graphs: ") + e.what());
      graphs_ = false;
      graph_.reset();
      run();
    }
  } else {
    run();
  }
  steps_++;
  cache_.advance(1);
  if (device_sampling_) {
    device_copy_async(pinned_ + 2, Device::cpu(), chosen_.raw(), dev_, sizeof(int32_t));
    if (keep_logits_) {
      float* host = reinterpret_cast<float*>(pinned_ + 4);
      device_copy_async(host, Device::cpu(), logits_.raw(), dev_, sizeof(float) * V_);
      host_logits_ = host;
    }
    device_synchronize(dev_);
    const int32_t t = pinned_[2];
    if (t == INT32_MIN)
      throw Error("every logit is -inf: no token can be sampled", "sampler logits",
                  "check the logits mask; at least one token must stay allowed");
    if (t < 0) {  // a NaN or +inf logit at index -(t + 1)
      float v = 0.0f;
      device_copy(&v, Device::cpu(), logits_.data<float>() + (-1 - static_cast<int64_t>(t)), dev_, sizeof v);
      throw_bad_logit(-1 - static_cast<int64_t>(t), v);
    }
    return t;
  }
  host_logits_ = logits_.data<float>();
  return -1;
}

}  // namespace wick
