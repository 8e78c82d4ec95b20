// Qwen2-family model configuration read from a Hugging Face config.json (formats.md §2.1), in both the
// Hub style (top-level rope_theta, torch_dtype) and the transformers-5 style (rope_parameters, dtype).
// What wick cannot compute correctly yet is refused with a clear error (rope_scaling other than default,
// an enabled sliding window, another model_type).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick {

struct ModelConfig {
  std::string model_type = "qwen2";
  int64_t hidden_size = 0, intermediate_size = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0;
  int64_t head_dim = 0;   // hidden / heads for qwen2
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 32768;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = true;  // q/k/v biases (qwen2: true)
  std::string torch_dtype = "float32";  // as written: "bfloat16", "float32", ...
  std::vector<int64_t> bos_token_ids, eos_token_ids;  // ids outside [0, vocab) are dropped (absent)

  static ModelConfig from_json_file(const std::string& path);  // throws wick::Error naming path + field
  static ModelConfig from_json_string(const std::string& text, const std::string& where);
  std::string to_json() const;  // a config.json transformers loads (Hub style)
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  int64_t num_parameters() const;
};

}  // namespace wick
