// The family registry, the Llama-style weight table most families share, and what is computed from a
// family's table (LoRA shapes and names, the parameter count).
#include "model/family.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"

namespace wick {

// One line per family (model/families/<family>.cpp).
extern const Family kQwen2Family, kQwen3Family, kLlamaFamily, kMistralFamily, kGemma3Family;

const std::vector<const Family*>& families() {
  static const std::vector<const Family*> all = {&kQwen2Family, &kQwen3Family, &kLlamaFamily, &kMistralFamily,
                                                 &kGemma3Family};
  return all;
}

const Family* find_family(const std::string& model_type) {
  for (const Family* f : families())
    if (model_type == f->model_type) return f;
  return nullptr;
}

std::string supported_families() {
  std::string s;
  for (const Family* f : families()) s += (s.empty() ? "" : ", ") + std::string(f->model_type) + " (" + f->models + ")";
  return s;
}

std::string WeightSpec::module() const {
  for (const char* suf : {".weight", ".bias"}) {
    const std::string x = suf;
    if (name.size() > x.size() && name.compare(name.size() - x.size(), x.size(), x) == 0) return name.substr(0, name.size() - x.size());
  }
  return name;
}

Tensor& slot_of(ModelWeights& w, const WeightSpec& s) {
  if (s.model_slot) return w.*s.model_slot;
  WICK_CHECK(s.layer >= 0 && s.layer < static_cast<int64_t>(w.layers.size()), "weight " << s.name << ": no layer " << s.layer);
  LayerWeights& L = w.layers[s.layer];
  if (s.tensor_slot) return L.*s.tensor_slot;
  WICK_CHECK(s.linear_slot, "weight " << s.name << " has no slot");
  Linear& l = L.*s.linear_slot;
  return s.role == WeightRole::Bias ? l.b : l.w;
}

void head_dim_from_hidden(const nlohmann::json& j, ModelConfig& c, const std::string& where, bool explicit_ok) {
  const auto hd = io::get_int(j, "head_dim", where);
  if (explicit_ok && hd) {
    if (*hd <= 0) throw Error("field 'head_dim' must be positive, got " + std::to_string(*hd), where);
    c.head_dim = *hd;
    return;
  }
  if (c.hidden_size % c.num_heads != 0)
    throw Error("hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                    std::to_string(c.num_heads),
                where);
  c.head_dim = c.hidden_size / c.num_heads;
  if (hd && *hd != c.head_dim)
    throw Error("field 'head_dim' is " + std::to_string(*hd) + " but hidden_size / num_attention_heads is " +
                    std::to_string(c.head_dim),
                where, std::string(c.model_type) + " derives head_dim from hidden_size; a separate head_dim is not supported");
}

std::vector<WeightSpec> llama_style_weights(const ModelConfig& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim(), V = c.vocab_size;
  std::vector<WeightSpec> t;
  auto model = [&](const std::string& name, Shape shape, WeightRole role, Tensor ModelWeights::*slot) {
    WeightSpec s;
    s.name = name;
    s.shape = std::move(shape);
    s.role = role;
    s.model_slot = slot;
    t.push_back(std::move(s));
  };
  model("model.embed_tokens.weight", {V, C}, WeightRole::Embedding, &ModelWeights::embed);
  for (int64_t l = 0; l < c.num_layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto norm = [&](const char* module, int64_t dim, Tensor LayerWeights::*slot) {
      WeightSpec s;
      s.name = p + module + ".weight";
      s.shape = {dim};
      s.role = WeightRole::Norm;
      s.layer = l;
      s.tensor_slot = slot;
      t.push_back(std::move(s));
    };
    auto linear = [&](const char* module, int64_t out, int64_t in, bool bias, Linear LayerWeights::*slot) {
      WeightSpec w;
      w.name = p + module + ".weight";
      w.shape = {out, in};
      w.layer = l;
      w.lora = true;
      w.linear_slot = slot;
      t.push_back(w);
      if (!bias) return;
      w.name = p + module + ".bias";
      w.shape = {out};
      w.role = WeightRole::Bias;
      w.lora = false;
      t.push_back(std::move(w));
    };
    norm("input_layernorm", C, &LayerWeights::input_norm);
    norm("post_attention_layernorm", C, &LayerWeights::post_norm);
    if (c.qk_norm) {
      norm("self_attn.q_norm", c.head_dim, &LayerWeights::q_norm);
      norm("self_attn.k_norm", c.head_dim, &LayerWeights::k_norm);
    }
    linear("self_attn.q_proj", Q, C, c.attention_bias, &LayerWeights::q);
    linear("self_attn.k_proj", KV, C, c.attention_bias, &LayerWeights::k);
    linear("self_attn.v_proj", KV, C, c.attention_bias, &LayerWeights::v);
    linear("self_attn.o_proj", C, Q, c.o_bias, &LayerWeights::o);
    linear("mlp.gate_proj", I, C, c.mlp_bias, &LayerWeights::gate);
    linear("mlp.up_proj", I, C, c.mlp_bias, &LayerWeights::up);
    linear("mlp.down_proj", C, I, c.mlp_bias, &LayerWeights::down);
  }
  model("model.norm.weight", {C}, WeightRole::Norm, &ModelWeights::final_norm);
  if (!c.tie_word_embeddings) model("lm_head.weight", {V, C}, WeightRole::LmHead, &ModelWeights::lm_head);
  return t;
}

// The table of a one-layer model: enough for names and per-layer shapes.
static std::vector<WeightSpec> one_layer_table(const ModelConfig& c) {
  ModelConfig one = c;
  one.num_layers = 1;
  return c.family().weights(one);
}

std::optional<std::pair<int64_t, int64_t>> lora_linear_shape(const ModelConfig& c, const std::string& module) {
  // model.layers.<i>.<rest>: i must be a layer of this config, written as PEFT writes it.
  const std::string pre = "model.layers.";
  if (module.rfind(pre, 0) != 0) return std::nullopt;
  const size_t dot = module.find('.', pre.size());
  if (dot == std::string::npos) return std::nullopt;
  const std::string num = module.substr(pre.size(), dot - pre.size());
  if (num.empty() || num.size() > 9 || num.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  if (num.size() > 1 && num[0] == '0') return std::nullopt;
  if (std::stoll(num) >= c.num_layers) return std::nullopt;
  const std::string want = "model.layers.0." + module.substr(dot + 1);
  for (const WeightSpec& s : one_layer_table(c))
    if (s.lora && s.module() == want) return std::pair(s.shape[0], s.shape[1]);
  return std::nullopt;
}

static void add_short_names(const std::vector<WeightSpec>& table, std::vector<std::string>& out) {
  for (const WeightSpec& s : table) {
    if (!s.lora) continue;
    const std::string m = s.module();
    const std::string short_name = m.substr(m.rfind('.') + 1);
    if (std::find(out.begin(), out.end(), short_name) == out.end()) out.push_back(short_name);
  }
}

std::vector<std::string> lora_target_names(const ModelConfig& c) {
  std::vector<std::string> out;
  add_short_names(one_layer_table(c), out);
  return out;
}

std::vector<std::string> lora_target_names_all_families() {
  std::vector<std::string> out;
  for (const Family* f : families()) {
    ModelConfig c;  // a small geometry: only the names matter
    c.model_type = f->model_type;
    c.hidden_size = c.intermediate_size = c.head_dim = 8;
    c.num_layers = c.num_heads = c.num_kv_heads = 1;
    c.vocab_size = 8;
    add_short_names(f->weights(c), out);
  }
  return out;
}

int64_t count_parameters(const ModelConfig& c) {
  int64_t n = 0;
  for (const WeightSpec& s : c.family().weights(c)) {
    int64_t k = 1;
    for (int64_t d : s.shape)
      if (__builtin_mul_overflow(k, d, &k)) throw Error("model size overflows 64 bits");
    if (__builtin_add_overflow(n, k, &n)) throw Error("model size overflows 64 bits");
  }
  return n;
}

}  // namespace wick
