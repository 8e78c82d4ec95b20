// Model configuration read from a Hugging Face config.json (formats.md §2.1), in both the Hub style
// (top-level rope_theta, torch_dtype) and the transformers-5 style (rope_parameters, dtype). The fields
// every family shares are read here; model_type picks the family (model/family.h), which reads its own
// (head_dim, biases, q/k norms, Gemma 3's sliding layers). What wick cannot compute correctly yet is refused
// with a clear error (a RoPE scaling the family does not use, a sliding window it does not have, another
// model_type).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick {

struct Family;

// RoPE rescaling: Llama 3's ("rope_type": "llama3") or, when linear, every frequency divided by factor
// ("rope_type": "linear", Gemma 3 4B+ on its full-attention layers); factor 0 = none (the default RoPE).
struct RopeScaling {
  double factor = 0, low_freq_factor = 1, high_freq_factor = 4;
  int64_t original_max_position_embeddings = 8192;
  bool linear = false;
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
  bool qk_norm = false;        // RMSNorm of each q / k head before RoPE (qwen3, gemma3)
  // Gemma 3 (model/families/gemma3.cpp) sets these; the defaults are the Llama-style model.
  bool norm_plus_one = false;        // every RMSNorm scales by (1 + w): weights stored as offsets from 1
  bool sandwich_norms = false;       // RMSNorm on the attention and MLP outputs before each residual add
  bool embed_scaled = false;         // token embeddings times sqrt(hidden_size)
  bool gelu_mlp = false;             // MLP activation gelu_pytorch_tanh (GeGLU), else silu (SwiGLU)
  double query_pre_attn_scalar = 0;  // attention scale = query_pre_attn_scalar^-0.5; 0: head_dim^-0.5
  int64_t sliding_window = 0;        // keys a sliding-window layer sees, its own position included
  std::vector<bool> sliding_layers;  // per layer: sliding-window attention; empty: every layer is full
  double rope_local_theta = 10000.0; // RoPE base of the sliding layers (never rescaled)
  std::string torch_dtype = "float32";  // as written: "bfloat16", "float32", ...
  std::vector<int64_t> bos_token_ids, eos_token_ids;  // ids outside [0, vocab) are dropped (absent)

  static ModelConfig from_json_file(const std::string& path);  // throws wick::Error naming path + field
  // The config.json of a Hugging Face model folder: "no config.json in the model folder" naming the folder when
  // it has none (a folder that is not a model's), else from_json_file.
  static ModelConfig from_model_dir(const std::string& dir);
  static ModelConfig from_json_string(const std::string& text, const std::string& where);
  std::string to_json() const;  // a config.json transformers loads (Hub style)
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  bool is_sliding(int64_t layer) const {
    return layer >= 0 && layer < static_cast<int64_t>(sliding_layers.size()) && sliding_layers[layer];
  }
  int64_t attention_window(int64_t layer) const { return is_sliding(layer) ? sliding_window : 0; }
  float attention_scale() const;  // query_pre_attn_scalar^-0.5 or head_dim^-0.5, as transformers' f32
  int64_t num_parameters() const;  // from the family's weight table
  const Family& family() const;     // by model_type (model/family.h)
};

}  // namespace wick
