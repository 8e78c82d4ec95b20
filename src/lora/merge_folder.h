// A model folder's tensors with a PEFT adapter folded in, read lazily (for wick merge and export-gguf),
// and the sharded safetensors layout transformers writes (save_pretrained's max_shard_size).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_export.h"

namespace wick {

// Every tensor of model_dir's checkpoint (single file or shards), in the checkpoint's order; a LoRA-adapted
// linear's weight is W + scale * B A, computed in f32 and rounded once to W's dtype. adapter_dir "" = the
// base weights. The adapter is checked against config.json and every module must match a weight.
std::vector<io::LazyTensor> merged_model_tensors(const std::string& model_dir, const std::string& adapter_dir);

// "5GB" (10^9), "500MB", "2GiB" (2^30), "100KB", "1000" (bytes): transformers' convert_file_size_to_int.
int64_t parse_shard_size(const std::string& s);

// Groups tensors of these byte sizes into shards of at most max_bytes each, in order; a tensor larger than
// the limit gets a shard of its own, placed before the shard being filled (huggingface_hub's
// split_torch_state_dict_into_shards, which transformers' save_pretrained uses).
std::vector<std::vector<size_t>> plan_shards(const std::vector<int64_t>& nbytes, int64_t max_bytes);

// Writes out_dir/model.safetensors, or model-0000i-of-0000N.safetensors + model.safetensors.index.json
// ({"metadata": {"total_size"}, "weight_map"}) when the tensors exceed max_shard_bytes.
void save_sharded_safetensors(const std::string& out_dir, const std::vector<io::LazyTensor>& tensors,
                              int64_t max_shard_bytes);

// The files besides the weights that a merged folder carries over: config, generation config, chat
// template and every tokenizer file (those present are copied).
const std::vector<std::string>& merge_copied_files();

}  // namespace wick
