// Qwen2 (Qwen2, Qwen2.5, Qwen2.5-Coder): transformers' modeling_qwen2.py. Pre-norm layers, q/k/v biases
// (no o_proj bias), head_dim = hidden_size / num_attention_heads, default RoPE, SwiGLU MLP without biases.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"
#include "model/family.h"
#include "model/layer.h"

namespace wick {

namespace {

void read_config(const nlohmann::json& j, ModelConfig& c, const std::string& where) {
  head_dim_from_hidden(j, c, where, /*explicit_ok=*/false);
  c.attention_bias = true;
  c.o_bias = c.mlp_bias = c.qk_norm = false;
}

void write_config(nlohmann::json& j, const ModelConfig& c) {
  j["max_window_layers"] = c.num_layers;
  j["sliding_window"] = nullptr;
  j["use_sliding_window"] = false;
}

}  // namespace

extern const Family kQwen2Family = {"qwen2", "Qwen2ForCausalLM", "Qwen2, Qwen2.5, Qwen2.5-Coder", read_config, write_config,
                                    llama_style_weights, &kPreNormLayer};

}  // namespace wick
