// Mistral (Mistral 7B v0.2+, Mistral-Nemo): transformers' modeling_mistral.py. The Llama layer without
// biases, head_dim its own field (null or absent: hidden_size / num_attention_heads), default RoPE. A
// sliding window shorter than max_position_embeddings (Mistral 7B v0.1) changes the attention and is refused.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"
#include "model/family.h"
#include "model/layer.h"

namespace wick {

namespace {

void read_config(const nlohmann::json& j, ModelConfig& c, const std::string& where) {
  head_dim_from_hidden(j, c, where, /*explicit_ok=*/true);
  c.attention_bias = c.o_bias = c.mlp_bias = c.qk_norm = false;
  const int64_t max_pos = io::get_int(j, "max_position_embeddings", where).value_or(c.max_position_embeddings);
  if (const auto w = io::get_int(j, "sliding_window", where); w && *w < max_pos)
    throw Error("field 'sliding_window' is " + std::to_string(*w) + ", shorter than max_position_embeddings " +
                    std::to_string(max_pos) + "; sliding-window attention is not supported yet",
                where, "Mistral 7B v0.2 and later set it to null");
}

void write_config(nlohmann::json& j, const ModelConfig& c) {
  j["head_dim"] = c.head_dim;
  j["sliding_window"] = nullptr;
}

}  // namespace

extern const Family kMistralFamily = {"mistral", "MistralForCausalLM", "Mistral 7B v0.2+", read_config, write_config,
                                      llama_style_weights, &kPreNormLayer};

}  // namespace wick
