// A loaded model ready to generate: weights on a device, optional PEFT adapter, tokenizer and chat
// template when the folder has them. What `wick generate` and `wick chat` (and library users) hold.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infer/generator.h"
#include "model/generation_config.h"
#include "model/causal_lm.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace wick {

struct SessionOptions {
  std::string model_dir;
  std::string adapter_dir;       // "" = none
  std::string device = "auto";   // auto = cuda when a GPU is usable, else cpu
  std::string dtype = "auto";    // auto = bf16 on CUDA, f32 on the CPU
  std::optional<ChatTemplateKind> chat_template;  // force a template family
};

class Session {
 public:
  explicit Session(const SessionOptions& opt);
  CausalLM& model() { return *model_; }
  const Tokenizer* tokenizer() const { return tok_ ? &*tok_ : nullptr; }
  const ChatTemplate& chat_template() const;  // wick::Error when the folder has no usable one
  const GenerationConfig& generation_config() const { return gen_; }
  // Sampling defaults from generation_config.json (greedy unless it says do_sample).
  SamplingParams default_sampling() const;
  std::vector<int32_t> encode(const std::string& text) const;  // wick::Error without a tokenizer
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& opt, const TokenCallback& cb);

 private:
  std::unique_ptr<CausalLM> model_;
  std::optional<Tokenizer> tok_;
  std::optional<ChatTemplate> tmpl_;
  GenerationConfig gen_;
};

Device resolve_device(const std::string& spec);            // "auto", "cpu", "cuda", "cuda:N"
DType resolve_dtype(const std::string& spec, Device dev);  // "auto", "f32", "bf16"
std::optional<ChatTemplateKind> parse_chat_template_flag(const std::string& s);  // "" -> nullopt

}  // namespace wick
