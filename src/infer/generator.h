// Text generation: prefill the prompt, then decode token by token through the KV cache, sampling with
// Hugging Face's processors (infer/sampler.h). Stops at an eos id, at a stop string, or at the token limit.
// Streams: the callback receives each token id and the text it completes (never half a UTF-8 character;
// text that might be the start of a stop string is held back until it is known not to be).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "infer/sampler.h"
#include "model/causal_lm.h"

namespace wick {

class Tokenizer;

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingParams sampling;
  std::vector<int64_t> eos_ids;
  std::vector<std::string> stop_strings;  // need a tokenizer
  bool ignore_eos = false;                 // benchmarks: always generate max_new_tokens
  // On a GPU, decode steps replay one captured CUDA graph (infer/decode_loop.h); off, or WICK_CUDA_GRAPHS=0:
  // the same kernels launched one by one.
  bool cuda_graphs = true;
  // On a GPU, each decode step is queued before the host reads the token of the one before (DecodeLoopOptions::
  // ahead); off, or WICK_DECODE_AHEAD=0: the host waits for each token first. The same tokens either way.
  bool decode_ahead = true;
};

struct GenerateResult {
  std::vector<int32_t> ids;  // generated ids (prompt excluded; a final eos id included)
  std::string text;          // decoded, cut before a stop string; special tokens skipped
  std::string stop_reason;   // "eos", "stop_string", "length", "context" (max_position_embeddings reached)
  double prefill_s = 0, decode_s = 0;
  int64_t prompt_tokens = 0;
};

// Return false from the callback to stop early.
using TokenCallback = std::function<bool(int32_t id, const std::string& text)>;

class Generator {
 public:
  Generator(CausalLM& model, const Tokenizer* tokenizer);
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                          const TokenCallback& on_token = nullptr);

 private:
  CausalLM& m_;
  const Tokenizer* tok_;
};

}  // namespace wick
