// Llama (Llama 2, Llama 3, 3.1, 3.2 and their fine-tunes): transformers' modeling_llama.py. Pre-norm layers,
// head_dim its own field (default hidden_size / num_attention_heads), biases on q/k/v/o when attention_bias
// and on gate/up/down when mlp_bias (both off in Meta's checkpoints), default or Llama 3 ("llama3") RoPE,
// tied or untied lm_head.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"
#include "model/family.h"
#include "model/layer.h"

namespace wick {

namespace {

void read_config(const nlohmann::json& j, ModelConfig& c, const std::string& where) {
  head_dim_from_hidden(j, c, where, /*explicit_ok=*/true);
  c.attention_bias = c.o_bias = io::get_bool(j, "attention_bias", where).value_or(false);
  c.mlp_bias = io::get_bool(j, "mlp_bias", where).value_or(false);
  c.qk_norm = false;
}

void write_config(nlohmann::json& j, const ModelConfig& c) {
  j["attention_bias"] = c.attention_bias;
  j["head_dim"] = c.head_dim;
  j["mlp_bias"] = c.mlp_bias;
  j["pretraining_tp"] = 1;
}

}  // namespace

extern const Family kLlamaFamily = {"llama", "LlamaForCausalLM", "Llama 2, Llama 3.x", read_config, write_config,
                                    llama_style_weights, &kPreNormLayer, /*llama3_rope=*/true};

}  // namespace wick
