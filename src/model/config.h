// Model configuration read from a Hugging Face config.json (formats.md §2.1), in both the Hub style
// (top-level rope_theta, torch_dtype) and the transformers-5 style (rope_parameters, dtype). The fields
// every family shares are read here; model_type picks the family (model/family.h), which reads its own
// (head_dim, biases, q/k norms). What wick cannot compute correctly yet is refused with a clear error
// (a RoPE scaling the family does not use, an enabled sliding window, another model_type).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick {

struct Family;

// Llama 3's RoPE rescaling ("rope_type": "llama3"); factor 0 = none (the default RoPE).
struct RopeScaling {
  double factor = 0, low_freq_factor = 1, high_freq_factor = 4;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type = "qwen2";
  int64_t hidden_size = 0, intermediate_size = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0;
  int64_t head_dim = 0;   // hidden / heads for qwen2; its own field for qwen3 and llama
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 32768;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  // Set by the family from config.json (model/families/*.cpp):
  bool attention_bias = true;  // q/k/v biases (qwen2: always)
  bool o_bias = false;         // o_proj bias (llama, qwen3: = attention_bias)
  bool mlp_bias = false;       // gate/up/down biases (llama's mlp_bias)
  bool qk_norm = false;        // RMSNorm of each q / k head before RoPE (qwen3)
  std::string torch_dtype = "float32";  // as written: "bfloat16", "float32", ...
  std::vector<int64_t> bos_token_ids, eos_token_ids;  // ids outside [0, vocab) are dropped (absent)

  static ModelConfig from_json_file(const std::string& path);  // throws wick::Error naming path + field
  static ModelConfig from_json_string(const std::string& text, const std::string& where);
  std::string to_json() const;  // a config.json transformers loads (Hub style)
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  int64_t num_parameters() const;  // from the family's weight table
  const Family& family() const;     // by model_type (model/family.h)
};

}  // namespace wick
