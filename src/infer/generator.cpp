#include "infer/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "infer/decode_loop.h"
#include "infer/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace wick {

Generator::Generator(CausalLM& model, const Tokenizer* tokenizer) : m_(model), tok_(tokenizer) {}

GenerateResult Generator::generate(const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                                   const TokenCallback& on_token) {
  if (prompt.empty()) throw Error("the prompt is empty", "", "give a prompt with at least one token");
  if (!opt.stop_strings.empty() && !tok_) throw Error("stop strings need a tokenizer", "--stop");
  for (const std::string& s : opt.stop_strings)
    if (s.empty()) throw Error("a stop string is empty", "--stop");
  const int64_t V = m_.config().vocab_size;
  for (int32_t id : prompt)
    if (id < 0 || id >= V)
      throw Error("prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
  // The model reads at most max_position_embeddings tokens: a longer prompt is the prompt's problem (no
  // setting of wick's can fit it), and generation stops when the context is full.
  const int64_t max_pos = m_.config().max_position_embeddings;
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt >= max_pos)
    throw Error("the prompt has " + std::to_string(n_prompt) + " tokens; this model reads at most " + std::to_string(max_pos) +
                    " (max_position_embeddings), prompt and generated tokens together",
                "prompt", "shorten the prompt (in wick chat: /reset starts a new conversation)");
  // Saturating: max_new_tokens may be as large as INT64_MAX.
  const int64_t cap = n_prompt + std::min<int64_t>(std::max<int64_t>(opt.max_new_tokens, 0), max_pos - n_prompt);
  KVCache cache(m_, 1, cap);
  Sampler sampler(opt.sampling);
  std::vector<int32_t> history = prompt;
  std::vector<float> logits(V);
  GenerateResult res;
  res.prompt_tokens = static_cast<int64_t>(prompt.size());
  res.stop_reason = "length";
  TextStream stream(tok_, opt);

  auto t0 = std::chrono::steady_clock::now();
  // The prompt in one forward; then one token per step (DecodeLoop: replayed as a CUDA graph on a GPU, and the
  // token sampled there, continuing the host Sampler's draw counter: the same rule, so the same tokens as the
  // host would draw from those logits).
  int32_t next = -1;
  if (opt.max_new_tokens > 0) {
    Tensor out = m_.forward(Tensor::from_i32(prompt, {1, n_prompt}), &cache, /*last_only=*/true);
    device_copy(logits.data(), Device::cpu(), out.raw(), out.device(), V * sizeof(float));
    res.prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t0 = std::chrono::steady_clock::now();
    next = sampler.sample(logits.data(), V, history);
  }
  std::unique_ptr<DecodeLoop> steps;
  for (int64_t i = 0; i < opt.max_new_tokens; i++) {
    if (i > 0) {
      if (!steps) {
        DecodeLoopOptions lo;
        lo.graphs = opt.cuda_graphs;
        lo.ahead = opt.decode_ahead;
        lo.draws = sampler.state().draws;
        lo.max_steps = opt.max_new_tokens - 1;  // the steps of i = 1 .. max_new_tokens - 1
        steps = std::make_unique<DecodeLoop>(m_, cache, opt.sampling, history, lo);
      }
      const int32_t t = steps->step(next);
      next = steps->device_sampling() ? t : sampler.sample(steps->logits(), V, history);
    }
    history.push_back(next);
    res.ids.push_back(next);
    const TextStream::Step st = stream.push(next);
    bool go_on = true;
    if (on_token) go_on = on_token(next, st.piece);
    if (st.eos) {
      res.stop_reason = "eos";
      break;
    }
    if (st.stop_string) {
      res.stop_reason = "stop_string";
      break;
    }
    if (!go_on) {
      res.stop_reason = "callback";
      break;
    }
    if (cache.length() >= cache.capacity()) {
      // The KV cache is full: max_new_tokens reached, or the model's context (max_position_embeddings).
      if (opt.max_new_tokens > max_pos - n_prompt) res.stop_reason = "context";
      break;
    }
  }
  if (res.stop_reason != "stop_string") {
    const std::string rest = stream.flush();
    if (on_token && !rest.empty()) on_token(-1, rest);
  }
  res.text = stream.text();
  steps.reset();  // waits for a step queued ahead that a stop left unread: its time is decode time too
  res.decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace wick
