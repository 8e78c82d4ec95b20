// LoRA adapters on a loaded CausalLM: attach fresh (PEFT's initialisation) or from a PEFT adapter folder,
// export (for saving), detach, and the trainable parameters as one list for the optimizer. Which modules an
// adapter may wrap, and their shapes, come from the family's weight table (model/family.h).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "io/peft_adapter.h"
#include "model/causal_lm.h"

namespace wick {

// The short names of every LoRA-targetable Linear of every family ("all" in the CLI, before the model is
// known): q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
const std::vector<std::string>& all_lora_targets();

// The module paths of every LoRA-targetable Linear of a model with this config: each entry of its family's
// weight table with lora set and role Weight ("model.layers.3.self_attn.q_proj", ...).
std::vector<std::string> lora_module_paths(const ModelConfig& cfg);
// Refuses, as PEFT does, a target selection (target_modules / exclude_modules / layers_to_transform) that
// selects no module of the model, and one that selects lm_head or the embeddings (not supported).
// all-linear always selects something and is not checked.
void check_targets(const io::LoraConfig& lc, const ModelConfig& cfg, const std::string& where);
// The entries of a target_modules list that match no module of the model on their own (a typo such as
// "q_prj" beside "v_proj"): PEFT ignores them silently when another entry matches; wick train warns. Empty for
// all-linear and a regex.
std::vector<std::string> unmatched_targets(const io::LoraConfig& lc, const ModelConfig& cfg);

// check_targets, then that every module of the adapter is a LoRA-targetable Linear of a model with this
// config (its family's weight table) and that A is [r, in] and B [out, r] for it, and that every module of the
// model the config selects has its lora_A and lora_B (else an error naming the adapter file and the missing
// tensors); where names the adapter.
void validate_against(const io::AdapterFiles& adapter, const ModelConfig& cfg, const std::string& where);

// Every decoder layer's linears grouped by the input they read (LayerWeights::lora_groups). Attach lays the
// adapters of a group out as one f32 block (and alloc_lora_grads their gradients likewise), so that x A^T of a
// group is one GEMM (model/linear.h).
std::vector<std::vector<Linear*>> lora_groups(CausalLM& m);

// Fresh adapters on every targeted linear: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform, a = sqrt(5)),
// B = 0, as PEFT's init_lora_weights=True. Deterministic in seed. Throws when no module matches.
void attach_new_adapters(CausalLM& m, const io::LoraConfig& cfg, uint64_t seed);
// Adapters read from a PEFT folder. Every tensor must match a module of the model with the right shapes,
// else a wick::Error naming the tensor, the expected shape and the folder.
void attach_adapters(CausalLM& m, const io::AdapterFiles& files, const std::string& where);
void detach_adapters(CausalLM& m);
// Host f32 copies of every active adapter, keyed by module path.
std::map<std::string, io::LoraPair> export_adapters(CausalLM& m);

// Trainable state, in a fixed order (layer, then q k v o gate up down, then A before B).
struct LoraParam {
  std::string name;  // PEFT parameter name: base_model.model.<module>.lora_A.weight
  Tensor* value;
  Tensor* grad;
};
std::vector<LoraParam> lora_params(CausalLM& m);
void alloc_lora_grads(CausalLM& m);  // zeroed f32 dA, dB beside every A, B
void zero_lora_grads(CausalLM& m);

// W += scale * B A for every adapted linear, computed in f32 and rounded once to W's dtype, then detaches.
void merge_adapters(CausalLM& m);

// Merges a PEFT adapter into a Hugging Face model folder without loading the model for compute:
// writes out_dir with config.json, the weights in the base dtype (model.safetensors, or shards of at most
// max_shard_bytes with model.safetensors.index.json; lora/merge_folder.h), the chat template and the
// tokenizer/generation files copied. A non-empty out_dir is refused unless overwrite; then the model files it
// held are removed first (no old shard, index or tokenizer file stays beside the new weights).
void merge_adapter_folder(const std::string& model_dir, const std::string& adapter_dir, const std::string& out_dir,
                          int64_t max_shard_bytes = 5'000'000'000, bool overwrite = false);

}  // namespace wick
