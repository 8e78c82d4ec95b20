// wick::Model: the public face of infer/session.h.
#include <filesystem>

#include "api/model_impl.h"
#include "api/session_setup.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "lora/lora.h"

namespace wick {

Model::Model(const std::string& dir, const LoadSettings& s) : p_(std::make_unique<Impl>()) {
  SessionSpec spec;
  spec.model = dir;
  spec.revision = s.revision;
  spec.adapter = s.adapter;
  spec.device = s.device;
  spec.dtype = s.dtype;
  spec.chat_template = s.chat_template;
  OpenedSession o = open_session(spec);
  p_->session = std::move(o.session);
  if (!s.adapter.empty()) {
    const std::string cfg = (std::filesystem::path(o.adapter.path) / "adapter_config.json").string();
    p_->lora = io::LoraConfig::from_json_string(io::read_file(cfg), cfg);
    p_->adapter = s.adapter;
  }
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

void Model::attach_adapter(const std::string& name) {
  const std::string dir = resolve_model(name, "", "adapter_config.json", "attach_adapter").path;
  io::AdapterFiles files = io::load_peft_adapter(dir);  // read and checked before the old one goes
  CausalLM& m = p_->session->model();
  if (!p_->adapter.empty()) detach_adapters(m);
  p_->adapter.clear();
  attach_adapters(m, files, dir);
  p_->adapter = name;
  p_->lora = files.cfg;
}

void Model::detach_adapter() {
  if (p_->adapter.empty()) return;
  detach_adapters(p_->session->model());
  p_->adapter.clear();
}

ModelInfo Model::info() const {
  const Session& s = *p_->session;
  CausalLM& m = p_->session->model();
  const ModelConfig& c = m.config();
  ModelInfo i;
  i.dir = m.dir();
  i.model_type = c.model_type;
  i.device = m.device().str();
  i.dtype = dtype_name(m.dtype());
  i.parameters = c.num_parameters();
  i.layers = c.num_layers;
  i.hidden_size = c.hidden_size;
  i.intermediate_size = c.intermediate_size;
  i.heads = c.num_heads;
  i.kv_heads = c.num_kv_heads;
  i.vocab_size = c.vocab_size;
  i.max_position_embeddings = c.max_position_embeddings;
  i.eos_token_ids = s.generation_config().eos_token_ids;
  i.has_tokenizer = s.tokenizer() != nullptr;
  try {
    i.chat_template = chat_template_kind_name(s.chat_template().kind());
  } catch (const Error&) {
    i.chat_template.clear();  // the folder has none wick recognises; generate() from raw text still works
  }
  i.adapter = p_->adapter;
  if (!i.adapter.empty()) {
    const io::LoraConfig& cfg = p_->lora;
    i.lora_r = cfg.r;
    i.lora_alpha = cfg.alpha;
    i.lora_targets = cfg.target_modules;
    if (cfg.target_regex) i.lora_targets = {*cfg.target_regex};
    if (cfg.all_linear) i.lora_targets = {"all-linear"};
  }
  return i;
}

bool Model::has_tokenizer() const { return p_->session->tokenizer() != nullptr; }

std::vector<int32_t> Model::encode(const std::string& text) const { return p_->session->encode(text); }

std::string Model::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Tokenizer* t = p_->session->tokenizer();
  if (!t) throw Error("the model folder has no tokenizer.json", p_->session->model().dir(), "work with token ids instead");
  return t->decode(ids, skip_special);
}

std::string Model::chat_prompt(const std::vector<Message>& messages, bool add_generation_prompt) const {
  std::vector<ChatMessage> msgs;
  for (const Message& m : messages) msgs.push_back({m.role, m.content});
  return p_->session->chat_template().render(msgs, add_generation_prompt, std::nullopt);
}

}  // namespace wick
