// PEFT LoRA adapter files (formats.md §4): adapter_config.json + adapter_model.safetensors, read and
// written the way PEFT does, so adapters move between wick and transformers/PEFT unchanged. What wick
// cannot apply faithfully (DoRA, biases, modules_to_save, rank/alpha patterns, embedding LoRA...) is
// refused with a clear error instead of being silently dropped.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace wick::io {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 8;
  double dropout = 0;
  bool use_rslora = false;
  // target_modules as a list: a module matches when its path equals an entry or ends with "." + entry.
  // As a string (PEFT's regex form): target_regex holds it and target_modules is empty; "all-linear" is
  // expanded to the seven Qwen2 projections instead.
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};  // PEFT's default for qwen2
  std::optional<std::string> target_regex;
  // exclude_modules (same list/regex rules) and layers_to_transform restrict targets().
  std::vector<std::string> exclude_modules;
  std::optional<std::string> exclude_regex;
  std::vector<int64_t> layers_to_transform;  // empty = every layer
  std::string base_model_name_or_path;
  std::string task_type = "CAUSAL_LM";
  std::string init_lora_weights = "true";  // as PEFT spells it: "true", "false", "gaussian", ...

  double scale() const;  // alpha / r, or alpha / sqrt(r) with rsLoRA
  // The rules the loader applies: r >= 1, alpha finite, dropout in [0, 1), some target; wick::Error at where.
  void check(const std::string& where) const;
  // Whether PEFT would put a LoRA on the module at this path (e.g. "model.layers.0.self_attn.q_proj").
  bool targets(const std::string& module_path) const;

  // adapter_config.json text <-> LoraConfig (where = path for messages).
  static LoraConfig from_json_string(const std::string& text, const std::string& where);
  std::string to_json() const;  // PEFT's fields, indent 2, sorted keys
};

struct LoraPair {
  Tensor A;  // [r, in] f32 host
  Tensor B;  // [out, r] f32 host
};

struct AdapterFiles {
  LoraConfig cfg;
  std::map<std::string, LoraPair> modules;  // key: HF module path, e.g. "model.layers.0.self_attn.q_proj"
  std::vector<std::string> ignored;         // modules in the file that the config does not select (not applied)
};

// Reads <dir>/adapter_config.json and <dir>/adapter_model.safetensors. Tensors (F32/BF16/F16) come back
// as f32 host tensors owning their memory. As PEFT, only modules the config selects (target_modules,
// exclude_modules, layers_to_transform) are kept; the others are listed in `ignored`, with a warning.
AdapterFiles load_peft_adapter(const std::string& dir);

// Writes <dir>/adapter_config.json and <dir>/adapter_model.safetensors (F32, PEFT's tensor names
// "base_model.model.<module>.lora_{A,B}.weight"), each atomically; creates dir if needed.
void save_peft_adapter(const std::string& dir, const LoraConfig& cfg, const std::map<std::string, LoraPair>& modules);

// The seven projections of every layer of a Qwen2 model with this config, as module paths.
std::vector<std::string> qwen2_linear_paths(const ModelConfig& cfg);
// Refuses, as PEFT does, a target_modules that selects no module of the model, and one that selects
// lm_head or the embeddings (not supported).
void check_targets(const LoraConfig& lc, const ModelConfig& cfg, const std::string& where);
// c when it selects exactly the modules present; else c with target_modules = the present module paths
// (and no regex, exclusions or layer list), so a written adapter_config.json always matches its tensors.
LoraConfig config_matching(const LoraConfig& c, const ModelConfig& cfg, const std::map<std::string, LoraPair>& modules);

// Checks check_targets, and that every module is a q/k/v/o/gate/up/down projection of a layer of a Qwen2 model with this
// config and that A is [r, in] and B [out, r] for it; where names the adapter in messages.
void validate_against(const AdapterFiles& adapter, const ModelConfig& cfg, const std::string& where);

// The [out, in] shape of a Qwen2 linear layer ("model.layers.3.mlp.down_proj"); nullopt if the path
// names no such projection of this config.
std::optional<std::pair<int64_t, int64_t>> qwen2_linear_shape(const ModelConfig& cfg, const std::string& module_path);

}  // namespace wick::io
