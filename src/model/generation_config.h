// generation_config.json: the end-of-sequence ids and the sampling defaults a model ships with.
// eos comes from generation_config.json when it names one, else from config.json; ids outside the
// vocabulary are dropped. Sampling fields are optional: absent means "use the caller's default".
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"

namespace wick {

struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;  // every id that ends generation
  std::optional<int64_t> bos_token_id, pad_token_id;
  std::optional<bool> do_sample;  // HF samples only when true; otherwise greedy
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;

  // text = the file's contents; where = its path for messages.
  static GenerationConfig from_json_string(const std::string& text, const std::string& where, const ModelConfig& cfg);
};

// <model_dir>/generation_config.json if present, else defaults taken from cfg (its eos ids).
GenerationConfig load_generation_config(const std::string& model_dir, const ModelConfig& cfg);
std::vector<int64_t> load_generation_eos(const std::string& model_dir, const ModelConfig& cfg);

}  // namespace wick
