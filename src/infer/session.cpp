#include "infer/session.h"

#include <filesystem>

#include "core/error.h"
#include "io/peft_adapter.h"
#include "lora/lora.h"

namespace fs = std::filesystem;

namespace wick {

Device resolve_device(const std::string& spec) {
  if (spec == "auto" || spec.empty()) return cuda_available() ? Device::cuda(0) : Device::cpu();
  Device d = Device::parse(spec);
  if (d.is_cuda() && !cuda_available())
    throw Error("--device " + spec + " asked for, but no usable CUDA GPU is present", "--device",
                cuda_compiled() ? "check nvidia-smi, or use --device cpu" : "this wick was built without CUDA; use --device cpu");
  return d;
}

DType resolve_dtype(const std::string& spec, Device dev) {
  if (spec == "auto" || spec.empty()) return dev.is_cpu() ? DType::F32 : DType::BF16;
  const DType t = dtype_from_name(spec);
  if (t != DType::F32 && t != DType::BF16) throw Error("compute dtype must be f32 or bf16", "--dtype");
  if (dev.is_cpu() && t != DType::F32) throw Error("the CPU computes in f32", "--dtype", "use --dtype f32 with --device cpu");
  return t;
}

std::optional<ChatTemplateKind> parse_chat_template_flag(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return parse_chat_template_kind(s);
}

Session::Session(const SessionOptions& opt) {
  const Device dev = resolve_device(opt.device);
  model_ = CausalLM::load(opt.model_dir, dev, resolve_dtype(opt.dtype, dev));
  if (!opt.adapter_dir.empty()) attach_adapters(*model_, io::load_peft_adapter(opt.adapter_dir), opt.adapter_dir);
  if (fs::exists(fs::path(opt.model_dir) / "tokenizer.json")) tok_ = Tokenizer::from_model_dir(opt.model_dir);
  // A folder without a (recognised) template still generates from raw prompts; chat_template() says why not.
  const fs::path tc = fs::path(opt.model_dir) / "tokenizer_config.json";
  if (fs::exists(tc) || !opt.chat_template) tmpl_ = ChatTemplate::from_tokenizer_config(opt.model_dir, opt.chat_template);
  else tmpl_ = ChatTemplate::of_kind(*opt.chat_template);
  gen_ = load_generation_config(opt.model_dir, model_->config());
}

const ChatTemplate& Session::chat_template() const {
  tmpl_->kind();  // throws the reason when the folder has no usable template
  return *tmpl_;
}

SamplingParams Session::default_sampling() const {
  SamplingParams p;
  p.temperature = 0.0f;  // greedy, as HF does without do_sample
  if (gen_.do_sample.value_or(false)) {
    p.temperature = static_cast<float>(gen_.temperature.value_or(1.0));
    p.top_k = static_cast<int>(gen_.top_k.value_or(50));  // HF's GenerationConfig default
    p.top_p = static_cast<float>(gen_.top_p.value_or(1.0));
    p.min_p = static_cast<float>(gen_.min_p.value_or(0.0));
  }
  p.repetition_penalty = static_cast<float>(gen_.repetition_penalty.value_or(1.0));
  return p;
}

std::vector<int32_t> Session::encode(const std::string& text) const {
  if (!tok_)
    throw Error("the model folder has no tokenizer.json", model_->dir(), "pass token ids with --prompt-ids instead");
  return tok_->encode(text);
}

GenerateResult Session::generate(const std::vector<int32_t>& prompt, const GenerateOptions& opt, const TokenCallback& cb) {
  Generator g(*model_, tokenizer());
  return g.generate(prompt, opt, cb);
}

}  // namespace wick
