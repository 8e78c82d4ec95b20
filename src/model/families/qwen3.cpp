// Qwen3 dense (Qwen3-0.6B ... 32B): transformers' modeling_qwen3.py. The Qwen2 layer with RMSNorm on every
// q and k head (q_norm, k_norm [head_dim]) before RoPE, head_dim its own field (default 128), and biases
// only when attention_bias (on q/k/v/o; off in every published checkpoint).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"
#include "model/family.h"
#include "model/layer.h"

namespace wick {

namespace {

void read_config(const nlohmann::json& j, ModelConfig& c, const std::string& where) {
  const auto hd = io::get_int(j, "head_dim", where);
  c.head_dim = hd.value_or(128);  // Qwen3Config's default
  c.attention_bias = c.o_bias = io::get_bool(j, "attention_bias", where).value_or(false);
  c.mlp_bias = false;
  c.qk_norm = true;
}

void write_config(nlohmann::json& j, const ModelConfig& c) {
  j["attention_bias"] = c.attention_bias;
  j["head_dim"] = c.head_dim;
  j["max_window_layers"] = c.num_layers;
  j["sliding_window"] = nullptr;
  j["use_sliding_window"] = false;
}

}  // namespace

extern const Family kQwen3Family = {"qwen3", "Qwen3ForCausalLM", "Qwen3 dense", read_config, write_config,
                                    llama_style_weights, &kPreNormLayer};

}  // namespace wick
