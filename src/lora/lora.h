// LoRA adapters on a loaded Qwen2Model: attach fresh (PEFT's initialisation) or from a PEFT adapter folder,
// export (for saving), detach, and the trainable parameters as one list for the optimizer.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "io/peft_adapter.h"
#include "model/qwen2.h"

namespace wick {

// The seven projection names PEFT targets in Qwen2 ("all" in the CLI).
const std::vector<std::string>& all_lora_targets();

// The linears of each decoder layer that read one input: {q, k, v}, {o}, {gate, up}, {down}. Attach lays the
// adapters of a group out as one f32 block (and alloc_lora_grads their gradients likewise), so that x A^T of a
// group is one GEMM (model/linear.h).
std::vector<std::vector<Linear*>> lora_groups(Qwen2Model& m);

// Fresh adapters on every targeted linear: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform, a = sqrt(5)),
// B = 0, as PEFT's init_lora_weights=True. Deterministic in seed. Throws when no module matches.
void attach_new_adapters(Qwen2Model& m, const io::LoraConfig& cfg, uint64_t seed);
// Adapters read from a PEFT folder. Every tensor must match a module of the model with the right shapes,
// else a wick::Error naming the tensor, the expected shape and the folder.
void attach_adapters(Qwen2Model& m, const io::AdapterFiles& files, const std::string& where);
void detach_adapters(Qwen2Model& m);
// Host f32 copies of every active adapter, keyed by module path.
std::map<std::string, io::LoraPair> export_adapters(Qwen2Model& m);

// Trainable state, in a fixed order (layer, then q k v o gate up down, then A before B).
struct LoraParam {
  std::string name;  // PEFT parameter name: base_model.model.<module>.lora_A.weight
  Tensor* value;
  Tensor* grad;
};
std::vector<LoraParam> lora_params(Qwen2Model& m);
void alloc_lora_grads(Qwen2Model& m);  // zeroed f32 dA, dB beside every A, B
void zero_lora_grads(Qwen2Model& m);

// W += scale * B A for every adapted linear, computed in f32 and rounded once to W's dtype, then detaches.
void merge_adapters(Qwen2Model& m);

// Merges a PEFT adapter into a Hugging Face model folder without loading the model for compute:
// writes out_dir with config.json, model.safetensors in the base dtype, and the tokenizer/generation files copied.
void merge_adapter_folder(const std::string& model_dir, const std::string& adapter_dir, const std::string& out_dir);

}  // namespace wick
