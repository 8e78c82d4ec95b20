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

namespace wick::io {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 8;
  double dropout = 0;
  bool use_rslora = false;
  // target_modules as a list: a module matches when its path equals an entry or ends with "." + entry.
  // As a string (PEFT's regex form): target_regex holds it and target_modules is empty; "all-linear"
  // sets all_linear instead (every Linear of the model but lm_head, as PEFT expands it per model).
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};  // PEFT's default for qwen2 and llama
  std::optional<std::string> target_regex;
  bool all_linear = false;
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
  std::string weights_path;                 // the adapter_model.safetensors read (for messages); "" if built here
};

// Reads <dir>/adapter_config.json and <dir>/adapter_model.safetensors. Tensors (F32/BF16/F16) come back
// as f32 host tensors owning their memory. As PEFT, only modules the config selects (target_modules,
// exclude_modules, layers_to_transform) are kept; the others are listed in `ignored`, with a warning.
AdapterFiles load_peft_adapter(const std::string& dir);

// Writes <dir>/adapter_config.json and <dir>/adapter_model.safetensors (F32, PEFT's tensor names
// "base_model.model.<module>.lora_{A,B}.weight"), each atomically; creates dir if needed.
void save_peft_adapter(const std::string& dir, const LoraConfig& cfg, const std::map<std::string, LoraPair>& modules);

}  // namespace wick::io
