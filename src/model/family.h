// A model family (qwen2, qwen3, llama, ...) as data: its config.json fields, its weight table, and the
// decoder-layer code it runs. Everything that knows a family's tensor names or shapes reads the table:
// loading and random models (model/causal_lm.cpp), init-model (model/presets.cpp), the PEFT adapter checks
// and LoRA target names (lora/), the parameter count (model/config.cpp). A family is one file under
// model/families/ plus one line in family.cpp's registry (docs/architecture.md, "Adding a family").
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/tensor.h"
#include "model/config.h"
#include "model/linear.h"

namespace wick {

// The weights of one decoder layer. A family fills the slots its table names; the others stay undefined
// and the layer code skips them (as llama.cpp's llama_layer does).
struct LayerWeights {
  Tensor input_norm;      // [C] before attention (HF input_layernorm)
  Tensor post_norm;       // [C] before the MLP (HF post_attention_layernorm; Gemma's pre_feedforward_layernorm)
  Tensor q_norm, k_norm;  // [D] RMSNorm of every q / k head before RoPE (Qwen3, Gemma 3), or undefined
  Tensor attn_out_norm;   // [C] on the attention output before the residual add (Gemma's post_attention_layernorm)
  Tensor mlp_out_norm;    // [C] on the MLP output before the residual add (Gemma's post_feedforward_layernorm)
  Linear q, k, v, o, gate, up, down;
  // The seven projections in PEFT's order of target names. The index is part of the training state
  // (dropout seeds, saved adapter products), so the order is fixed for every family.
  std::vector<Linear*> linears() { return {&q, &k, &v, &o, &gate, &up, &down}; }
  // The projections grouped by the input they read: {q, k, v}, {o}, {gate, up}, {down}. A group's adapters
  // are laid out as one block (lora/lora.h) so that x A^T of the group is one GEMM (model/linear.h).
  std::vector<std::vector<Linear*>> lora_groups() { return {{&q, &k, &v}, {&o}, {&gate, &up}, {&down}}; }
};
// Index in linears() of the first member of each lora_groups() entry (dropout seeds follow linears()).
inline constexpr int kLoraGroups = 4;
inline constexpr int kLoraGroupFirst[kLoraGroups] = {0, 3, 4, 6};

struct ModelWeights {
  Tensor embed;       // [V, C]
  Tensor final_norm;  // [C]
  Tensor lm_head;     // [V, C]; the same tensor as embed when tied
  std::vector<LayerWeights> layers;
};

// What a tensor is: decides how random models fill it and whether LoRA can wrap it.
enum class WeightRole { Embedding, LmHead, Norm, Weight, Bias };

// One tensor of a family's checkpoint, with its place in ModelWeights.
struct WeightSpec {
  std::string name;    // Hugging Face name, e.g. "model.layers.3.self_attn.q_proj.weight"
  Shape shape;         // from config.json; Linear weights [out, in] as HF stores them
  WeightRole role = WeightRole::Weight;
  int64_t layer = -1;  // decoder layer, -1 for model-level tensors
  bool lora = false;   // a Linear weight a LoRA adapter can wrap (PEFT module path = module())
  Tensor ModelWeights::*model_slot = nullptr;   // model-level tensor
  Tensor LayerWeights::*tensor_slot = nullptr;  // layer tensor (norms)
  Linear LayerWeights::*linear_slot = nullptr;  // layer Linear: its w (Weight) or b (Bias)
  std::string module() const;                   // name without ".weight" / ".bias"
};
// The tensor a spec names inside w (w.layers must already hold the layer).
Tensor& slot_of(ModelWeights& w, const WeightSpec& s);

struct LayerCode;  // model/layer.h

struct Family {
  const char* model_type;    // config.json "model_type"
  const char* architecture;  // config.json "architectures"[0], written by ModelConfig::to_json
  const char* models;        // for messages: the checkpoints it covers
  // The family's own config.json fields, read after the common ones (model/config.cpp) into c: head_dim,
  // biases, q/k norms, what it refuses. Throws wick::Error naming where and the field.
  void (*read_config)(const nlohmann::json& j, ModelConfig& c, const std::string& where);
  // Its fields in a config.json written by ModelConfig::to_json (the common ones are there already).
  void (*write_config)(nlohmann::json& j, const ModelConfig& c);
  // Every tensor of a checkpoint with config c, in checkpoint order (model-level first and last).
  std::vector<WeightSpec> (*weights)(const ModelConfig& c);
  const LayerCode* layer;    // the decoder layer it runs (model/layer.h)
  bool llama3_rope = false;  // accepts rope_type "llama3"
  const char* hidden_act = "silu";  // the only "hidden_act" config.json may name
  // read_config reads layer_types, sliding_window and the RoPE (per layer type) itself: the common reader
  // neither refuses sliding layers nor reads rope_theta / rope_scaling / rope_parameters (Gemma 3).
  bool layer_typed = false;
};

const std::vector<const Family*>& families();
const Family* find_family(const std::string& model_type);  // nullptr when unknown
std::string supported_families();  // "qwen2 (Qwen2, ...), qwen3 (...), ..." for messages

// The pre-norm Llama-style table (Qwen2, Qwen3, Llama, Mistral): embed_tokens; per layer input_layernorm,
// post_attention_layernorm, [q_norm, k_norm when c.qk_norm], q/k/v/o_proj (biases as c says), gate/up/
// down_proj; model.norm; lm_head unless tied. Families with another layout write their own.
std::vector<WeightSpec> llama_style_weights(const ModelConfig& c);

// Helpers for the families' read_config: head_dim = hidden_size / num_attention_heads, refusing a
// separate "head_dim" field that disagrees (explicit_ok: a differing head_dim is the family's own field).
void head_dim_from_hidden(const nlohmann::json& j, ModelConfig& c, const std::string& where, bool explicit_ok);

// Consumers of the table.
// [out, in] of the LoRA-targetable Linear at this PEFT module path, nullopt if the model has none there.
std::optional<std::pair<int64_t, int64_t>> lora_linear_shape(const ModelConfig& c, const std::string& module);
// The short names ("q_proj", ...) of the Linears LoRA can wrap, in table order: of one family, or of
// every family (what "--targets all" expands to before the model is known).
std::vector<std::string> lora_target_names(const ModelConfig& c);
std::vector<std::string> lora_target_names_all_families();
// Sum of the table's tensor sizes; wick::Error when it overflows 64 bits.
int64_t count_parameters(const ModelConfig& c);

}  // namespace wick
