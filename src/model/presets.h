// Published configs of every family (formats.md §2.2) and a tiny Qwen2 one, for random-weight models that
// cost exactly what the real ones do (benchmarks, tests, the demo).
#pragma once
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace wick {

ModelConfig preset_config(const std::string& name);  // one of preset_names()
std::vector<std::string> preset_names();
float preset_embed_std(const std::string& name);  // the std of the embedding rows write_random_model uses

// Writes a Hugging Face model folder: config.json, generation_config.json, model.safetensors with random
// weights for every tensor of the family's table (N(0, 0.02), norms near 1; deterministic in seed) in `dtype`, and the tokenizer
// files found in tokenizer_dir (tokenizer.json, tokenizer_config.json) when it is not empty. replace: the model
// files out_dir held are removed first, after every check passed (init-model --overwrite).
void write_random_model(const ModelConfig& cfg, const std::string& out_dir, uint64_t seed, DType dtype,
                        const std::string& tokenizer_dir, float embed_std = 0.02f, bool replace = false);

}  // namespace wick
