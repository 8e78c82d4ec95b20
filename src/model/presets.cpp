#include "model/presets.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace wick {

namespace {
struct Geometry {
  const char* name;
  int64_t hidden, inter, layers, heads, kv, vocab;
  bool tie;
  float embed_std;  // transformers' init uses 0.02
};
const Geometry kPresets[] = {
    {"qwen2.5-0.5b", 896, 4864, 24, 14, 2, 151936, true, 0.02f},
    {"qwen2.5-1.5b", 1536, 8960, 28, 12, 2, 151936, true, 0.02f},
    {"qwen2.5-3b", 2048, 11008, 36, 16, 2, 151936, true, 0.02f},
    {"qwen2.5-7b", 3584, 18944, 28, 28, 4, 152064, false, 0.02f},
    // Small enough to train on a laptop CPU, with the full Qwen vocabulary so the real tokenizer works.
    // Tied logits are bounded by |embedding row| x |normed hidden| ~ std * C: with 0.02 a 128-wide model
    // could never be confident (loss >= ~7), so its rows are larger and a LoRA can teach it a behaviour.
    {"tiny", 128, 352, 2, 4, 2, 151936, true, 0.15f},
};
}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> n;
  for (const auto& g : kPresets) n.push_back(g.name);
  return n;
}

float preset_embed_std(const std::string& name) {
  for (const auto& g : kPresets)
    if (name == g.name) return g.embed_std;
  return 0.02f;
}

ModelConfig preset_config(const std::string& name) {
  for (const auto& g : kPresets) {
    if (name != g.name) continue;
    ModelConfig c;
    c.hidden_size = g.hidden;
    c.intermediate_size = g.inter;
    c.num_layers = g.layers;
    c.num_heads = g.heads;
    c.num_kv_heads = g.kv;
    c.head_dim = g.hidden / g.heads;
    c.vocab_size = g.vocab;
    c.tie_word_embeddings = g.tie;
    c.rope_theta = 1000000.0;
    c.rms_norm_eps = 1e-6;
    c.max_position_embeddings = 32768;
    c.torch_dtype = "bfloat16";
    c.bos_token_ids = {151643};
    c.eos_token_ids = {151645};
    return c;
  }
  std::string all;
  for (const auto& n : preset_names()) all += (all.empty() ? "" : "|") + n;
  throw Error("unknown preset '" + name + "'", "--preset", "use one of " + all);
}

void write_random_model(const ModelConfig& c, const std::string& out_dir, uint64_t seed, DType dtype,
                        const std::string& tokenizer_dir, float embed_std) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw Error("weights dtype must be f32, bf16 or f16", "--dtype");
  fs::create_directories(out_dir);
  Rng rng(seed);
  std::vector<std::pair<std::string, Tensor>> tensors;
  auto add = [&](const std::string& name, const Shape& s, float mean, float std) {
    Tensor h = Tensor::empty(s, DType::F32);
    float* p = h.data<float>();
    for (int64_t i = 0; i < h.numel(); i++) p[i] = mean + std * rng.normal();
    tensors.emplace_back(name, h.to(dtype));
  };
  const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim(), V = c.vocab_size;
  add("model.embed_tokens.weight", {V, C}, 0, embed_std);
  for (int64_t l = 0; l < c.num_layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {C}, 1, 0.05f);
    add(p + "post_attention_layernorm.weight", {C}, 1, 0.05f);
    add(p + "self_attn.q_proj.weight", {Q, C}, 0, 0.02f);
    add(p + "self_attn.q_proj.bias", {Q}, 0, 0.02f);
    add(p + "self_attn.k_proj.weight", {KV, C}, 0, 0.02f);
    add(p + "self_attn.k_proj.bias", {KV}, 0, 0.02f);
    add(p + "self_attn.v_proj.weight", {KV, C}, 0, 0.02f);
    add(p + "self_attn.v_proj.bias", {KV}, 0, 0.02f);
    add(p + "self_attn.o_proj.weight", {C, Q}, 0, 0.02f);
    add(p + "mlp.gate_proj.weight", {I, C}, 0, 0.02f);
    add(p + "mlp.up_proj.weight", {I, C}, 0, 0.02f);
    add(p + "mlp.down_proj.weight", {C, I}, 0, 0.02f);
  }
  add("model.norm.weight", {C}, 1, 0.05f);
  if (!c.tie_word_embeddings) add("lm_head.weight", {V, C}, 0, 0.02f);
  io::save_safetensors((fs::path(out_dir) / "model.safetensors").string(), tensors);

  ModelConfig cc = c;
  cc.torch_dtype = dtype == DType::BF16 ? "bfloat16" : dtype == DType::F16 ? "float16" : "float32";
  io::write_file_atomic((fs::path(out_dir) / "config.json").string(), cc.to_json());
  nlohmann::json gen = {{"bos_token_id", 151643}, {"eos_token_id", {151645, 151643}}, {"pad_token_id", 151643},
                        {"do_sample", false}, {"transformers_version", "4.43.1"}};
  io::write_file_atomic((fs::path(out_dir) / "generation_config.json").string(), gen.dump(2));
  if (!tokenizer_dir.empty()) {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      const fs::path src = fs::path(tokenizer_dir) / f;
      if (!fs::exists(src))
        throw Error(std::string("missing ") + f, tokenizer_dir, "run scripts/fetch_tokenizer.sh (or setup) first");
      io::write_file_atomic((fs::path(out_dir) / f).string(), io::read_file(src.string()));
    }
  }
}

}  // namespace wick
