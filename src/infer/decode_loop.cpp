#include "infer/decode_loop.h"

#include <cstring>
#include <string>

#include "core/env.h"
#include "core/error.h"
#include "core/warn.h"
#include "model/causal_lm.h"
#include "ops/sampling.h"

namespace wick {

bool cuda_graphs_enabled(bool wanted) { return wanted && env_default_on("WICK_CUDA_GRAPHS"); }

DecodeLoop::DecodeLoop(CausalLM& model, KVCache& cache, const SamplingParams& sampling,
                       const std::vector<int32_t>& history, const DecodeLoopOptions& options)
    : m_(model), cache_(cache), dev_(model.device()), V_(model.config().vocab_size), max_steps_(options.max_steps) {
  if (cache.batch() != 1) throw Error("DecodeLoop decodes one sequence; the KV cache holds " + std::to_string(cache.batch()));
  const bool cuda = dev_.is_cuda();
  device_sampling_ = cuda;
  keep_logits_ = cuda && options.keep_logits;
  graphs_ = cuda && cuda_graphs_enabled(options.graphs);
  ahead_ = device_sampling_ && !keep_logits_ && options.ahead && env_default_on("WICK_DECODE_AHEAD");
  inputs_ = Tensor::empty({2}, DType::I32, dev_);
  const size_t logit_bytes = keep_logits_ ? sizeof(float) * V_ : 0;
  pinned_ = static_cast<PinnedWords*>(host_alloc_pinned(sizeof(PinnedWords) + logit_bytes));
  if (device_sampling_) {
    report_ = Tensor::empty({1, 2}, DType::I32, dev_);
    params_ = sample_rows_tensor({to_sample_row(sampling, options.draws)}, dev_);
    if (sampling.repetition_penalty != 1.0f) {
      Tensor mask = Tensor::zeros({1, V_}, DType::I32, Device::cpu());
      for (int32_t id : history)
        if (id >= 0 && id < V_) mask.data<int32_t>()[id] = 1;
      seen_ = mask.to(dev_);
    }
    for (auto& p : reported_) p = std::make_unique<StreamPoint>(dev_);
  }
}

DecodeLoop::~DecodeLoop() {
  graph_.reset();
  // The stream may still run a step queued ahead, read the pinned inputs or write the reports.
  try {
    device_synchronize(dev_);
  } catch (...) {
  }
  host_free_pinned(pinned_);
}

void DecodeLoop::run() {
  // After the first step (which casts the adapters, if any, to bf16) nothing writes them while the loop lives: the
  // captured graph holds their addresses.
  Tensor token = inputs_.narrow0(0, 1);
  logits_ = m_.decode_step(token, inputs_.narrow0(1, 1), cache_, /*adapters_unchanged=*/steps_ > 0);
  // The token goes where the next step reads its input (a code as 0, so that a step queued ahead stays in the
  // embedding table); the report says what it was.
  if (device_sampling_) sample_tokens(logits_, seen_.defined() ? &seen_ : nullptr, params_, token, &report_);
}

void DecodeLoop::enqueue() {
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
  const int slot = static_cast<int>(queued_++ & 1);
  if (!device_sampling_) return;
  device_copy_async(pinned_->report[slot], Device::cpu(), report_.raw(), dev_, sizeof pinned_->report[slot]);
  if (keep_logits_) {
    float* host = reinterpret_cast<float*>(pinned_ + 1);
    device_copy_async(host, Device::cpu(), logits_.raw(), dev_, sizeof(float) * V_);
    host_logits_ = host;
  }
  reported_[slot]->record();
}

int32_t DecodeLoop::step(int32_t token) {
  if (cache_.length() >= cache_.capacity())
    throw Error("the KV cache is full (" + std::to_string(cache_.capacity()) + " positions)", "", "raise the context length");
  if (token < 0 || token >= V_)
    throw Error("token id " + std::to_string(token) + " is outside the vocabulary [0, " + std::to_string(V_) + ")");
  if (pending_) {
    if (token != last_)
      throw Error("this decode step feeds token " + std::to_string(token) + ", but the step queued ahead feeds " +
                      std::to_string(last_) + ", the token the step before returned",
                  "DecodeLoop::step", "feed the returned token, or make the loop with DecodeLoopOptions::ahead off");
  } else {
    pinned_->input[0] = token;
    pinned_->input[1] = static_cast<int32_t>(cache_.length());
    device_copy_async(inputs_.raw(), dev_, pinned_->input, Device::cpu(), sizeof pinned_->input);
    enqueue();
  }
  const int slot = static_cast<int>((queued_ - 1) & 1);  // this step's
  pending_ = false;
  steps_++;
  cache_.advance(1);
  if (!device_sampling_) {
    host_logits_ = logits_.data<float>();
    return -1;
  }
  if (ahead_ && steps_ < max_steps_ && cache_.length() < cache_.capacity()) {
    // The next step, fed the token this one's sampler writes into inputs_[0], at the next position. Its position
    // slot was last read by the step two before, whose report this loop has waited for.
    const int next = static_cast<int>(queued_ & 1);
    pinned_->next_position[next] = static_cast<int32_t>(cache_.length());
    device_copy_async(inputs_.narrow0(1, 1).raw(), dev_, &pinned_->next_position[next], Device::cpu(), sizeof(int32_t));
    enqueue();
    pending_ = true;
  }
  reported_[slot]->wait();
  const int32_t t = pinned_->report[slot][0];
  if (t == INT32_MIN)
    throw Error("every logit is -inf: no token can be sampled", "sampler logits",
                "check the logits mask; at least one token must stay allowed");
  if (t < 0) {  // a NaN or +inf logit at index -(t + 1), its bits beside it
    float v = 0.0f;
    std::memcpy(&v, &pinned_->report[slot][1], sizeof v);
    throw_bad_logit(-1 - static_cast<int64_t>(t), v);
  }
  last_ = t;
  return t;
}

}  // namespace wick
